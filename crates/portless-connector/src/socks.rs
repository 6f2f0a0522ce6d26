//! The `socks-proxy` service: after the `101`, the tunnel stream speaks SOCKS5 (RFC 1928)
//! and the connector is the SOCKS server.
//!
//! Only what a tunnel needs is served: the "no authentication" method (the edge has already
//! authenticated the visitor), the CONNECT command, and IPv4, IPv6 and domain addresses.
//! A domain is resolved once by the connector, and the address checked by the strict egress
//! policy (`egress::strict`) is the address dialed. Written here rather than taken from a
//! crate: the server side of that subset is ~100 lines, and the SOCKS crates either bring
//! their own listener and resolver (which would bypass the guard) or a client we do not need.
//!
//! Every message has a fixed or one-byte-length-prefixed size (at most 262 bytes), read
//! into fixed buffers, and the negotiation must arrive within [`HANDSHAKE_TIMEOUT`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use portless_ingress::IpRule;
use portless_proto::ErrorClass;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tracing::debug;

use crate::egress::{ChosenDialError, Destination, EgressPolicy};

/// Longest time the client gets to send its greeting and its request.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const VERSION: u8 = 5;
const METHOD_NO_AUTH: u8 = 0x00;
const METHOD_NONE_ACCEPTABLE: u8 = 0xff;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_V6: u8 = 0x04;

/// RFC 1928 §6 reply codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Reply {
    /// `X'00'` succeeded.
    Succeeded = 0,
    /// `X'01'` general SOCKS server failure.
    GeneralFailure = 1,
    /// `X'02'` connection not allowed by ruleset.
    NotAllowed = 2,
    /// `X'03'` network unreachable.
    NetworkUnreachable = 3,
    /// `X'04'` host unreachable.
    HostUnreachable = 4,
    /// `X'05'` connection refused.
    ConnectionRefused = 5,
    /// `X'07'` command not supported.
    CommandNotSupported = 7,
    /// `X'08'` address type not supported.
    AddressTypeNotSupported = 8,
}

/// What one SOCKS stream may reach: the rule's strict egress settings.
pub(crate) struct Job {
    /// Resolution (static answers) and dialing.
    pub(crate) egress: EgressPolicy,
    /// 1-based rule number, for logs and messages.
    pub(crate) rule: usize,
    /// The rule's `originRequest.ipRules`.
    pub(crate) ip_rules: Vec<IpRule>,
    /// The rule's `connectTimeout`.
    pub(crate) connect_timeout: Duration,
}

/// Why a SOCKS negotiation ended without a connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocksError {
    /// The tunnel stream failed or closed mid-negotiation.
    #[error("the SOCKS client went away: {0}")]
    Io(#[from] io::Error),
    /// The greeting or request did not arrive in time.
    #[error("the SOCKS handshake took longer than {}s", HANDSHAKE_TIMEOUT.as_secs())]
    TimedOut,
    /// Not SOCKS5.
    #[error("SOCKS version {0} is not supported (only 5)")]
    Version(u8),
    /// The client offered no method, or not "no authentication".
    #[error("the SOCKS client offered no acceptable method (only \"no authentication\")")]
    NoAcceptableMethod,
    /// BIND, UDP ASSOCIATE or an unknown command.
    #[error("SOCKS command {0:#04x} is not supported (only CONNECT)")]
    Command(u8),
    /// An address type other than IPv4, domain or IPv6.
    #[error("SOCKS address type {0:#04x} is not supported")]
    AddressType(u8),
    /// A domain that is not a DNS name, or port 0.
    #[error("the SOCKS destination is invalid: {0}")]
    BadDestination(String),
    /// The policy refused, or the dial failed.
    #[error(transparent)]
    Dial(#[from] ChosenDialError),
}

impl SocksError {
    /// The error class for the connector's metrics; `None` when the client just left.
    pub(crate) fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Io(_) => None,
            Self::TimedOut => Some(ErrorClass::OriginTimeout),
            Self::Dial(dial) => Some(dial.class()),
            Self::Version(_)
            | Self::NoAcceptableMethod
            | Self::Command(_)
            | Self::AddressType(_)
            | Self::BadDestination(_) => Some(ErrorClass::BadRequest),
        }
    }

    /// The reply owed to the client, when the negotiation got as far as a request.
    fn reply(&self) -> Option<Reply> {
        Some(match self {
            Self::Io(_) | Self::TimedOut | Self::Version(_) | Self::NoAcceptableMethod => {
                return None;
            }
            Self::Command(_) => Reply::CommandNotSupported,
            Self::AddressType(_) => Reply::AddressTypeNotSupported,
            Self::BadDestination(_) => Reply::GeneralFailure,
            Self::Dial(ChosenDialError::Refused { .. }) => Reply::NotAllowed,
            Self::Dial(ChosenDialError::Lookup { .. } | ChosenDialError::TimedOut { .. }) => {
                Reply::HostUnreachable
            }
            Self::Dial(ChosenDialError::Connect { source, .. }) => match source.kind() {
                io::ErrorKind::ConnectionRefused => Reply::ConnectionRefused,
                io::ErrorKind::NetworkUnreachable => Reply::NetworkUnreachable,
                _ => Reply::HostUnreachable,
            },
        })
    }
}

/// Runs the SOCKS5 negotiation on a freshly upgraded tunnel stream and returns the
/// connected destination, its success reply sent. On failure the reply (if one is owed)
/// has been sent and the caller closes the stream.
pub(crate) async fn negotiate<R, W>(
    read: &mut R,
    write: &mut W,
    job: &Job,
) -> Result<TcpStream, SocksError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let result = async {
        let destination = tokio::time::timeout(HANDSHAKE_TIMEOUT, request(read, write))
            .await
            .map_err(|_| SocksError::TimedOut)??;
        debug!(rule = job.rule, destination = %destination, "SOCKS CONNECT");
        let stream = job
            .egress
            .connect_chosen(job.rule, &job.ip_rules, &destination, job.connect_timeout)
            .await?;
        Ok::<_, SocksError>(stream)
    }
    .await;
    match result {
        Ok(stream) => {
            reply(write, Reply::Succeeded, stream.local_addr().ok()).await?;
            Ok(stream)
        }
        Err(error) => {
            if let Some(code) = error.reply() {
                // The client may already be gone; the error being reported is the first one.
                let _ = reply(write, code, None).await;
            }
            Err(error)
        }
    }
}

/// Reads the greeting, selects "no authentication", reads the request.
async fn request<R, W>(read: &mut R, write: &mut W) -> Result<Destination, SocksError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let [version, count] = read_array(read).await?;
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    let mut methods = [0u8; 255];
    let methods = &mut methods[..usize::from(count)];
    read.read_exact(methods).await?;
    if !methods.contains(&METHOD_NO_AUTH) {
        write.write_all(&[VERSION, METHOD_NONE_ACCEPTABLE]).await?;
        write.flush().await?;
        return Err(SocksError::NoAcceptableMethod);
    }
    write.write_all(&[VERSION, METHOD_NO_AUTH]).await?;
    write.flush().await?;

    let [version, command, _reserved, kind] = read_array(read).await?;
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    // The address is read whatever the command, so the reply follows a complete request.
    let host = match kind {
        ATYP_V4 => IpAddr::V4(Ipv4Addr::from(read_array::<_, 4>(read).await?)).to_string(),
        ATYP_V6 => IpAddr::V6(Ipv6Addr::from(read_array::<_, 16>(read).await?)).to_string(),
        ATYP_DOMAIN => {
            let [len] = read_array(read).await?;
            let mut name = [0u8; 255];
            let name = &mut name[..usize::from(len)];
            read.read_exact(name).await?;
            String::from_utf8(name.to_vec())
                .map_err(|_| SocksError::BadDestination("the domain is not ASCII".into()))?
        }
        other => return Err(SocksError::AddressType(other)),
    };
    let port = u16::from_be_bytes(read_array(read).await?);
    if command != CMD_CONNECT {
        return Err(SocksError::Command(command));
    }
    Destination::new(&host, port).map_err(|e| SocksError::BadDestination(e.to_string()))
}

async fn read_array<R: AsyncRead + Unpin, const N: usize>(read: &mut R) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    read.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes a reply; `bound` is the connector's address toward the destination, on success.
async fn reply<W: AsyncWrite + Unpin>(
    write: &mut W,
    code: Reply,
    bound: Option<SocketAddr>,
) -> io::Result<()> {
    let bound = bound.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut message = Vec::with_capacity(22);
    message.extend_from_slice(&[VERSION, code as u8, 0]);
    match bound.ip() {
        IpAddr::V4(v4) => {
            message.push(ATYP_V4);
            message.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            message.push(ATYP_V6);
            message.extend_from_slice(&v6.octets());
        }
    }
    message.extend_from_slice(&bound.port().to_be_bytes());
    write.write_all(&message).await?;
    write.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(ip_rules: Vec<IpRule>) -> Job {
        Job {
            egress: EgressPolicy::default(),
            rule: 1,
            ip_rules,
            connect_timeout: Duration::from_secs(2),
        }
    }

    /// Runs a negotiation over an in-memory pipe; returns the outcome and what the server wrote.
    async fn run(input: &[u8], job: &Job) -> (Result<TcpStream, SocksError>, Vec<u8>) {
        let (client, server) = tokio::io::duplex(1024);
        let (mut server_read, mut server_write) = tokio::io::split(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(input).await.unwrap();
        drop(client_write);
        let outcome = negotiate(&mut server_read, &mut server_write, job).await;
        drop(server_write);
        drop(server_read);
        let mut written = Vec::new();
        client_read.read_to_end(&mut written).await.unwrap();
        (outcome, written)
    }

    #[tokio::test]
    async fn unsupported_commands_get_code_7_after_the_whole_request() {
        for command in [2u8, 3, 9] {
            let input = [5, 1, 0, 5, command, 0, 1, 127, 0, 0, 1, 0, 22];
            let (outcome, written) = run(&input, &job(Vec::new())).await;
            assert!(matches!(outcome, Err(SocksError::Command(c)) if c == command));
            assert_eq!(written, [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
        }
    }

    #[tokio::test]
    async fn refusals_and_bad_requests_get_their_codes() {
        let metadata = [5, 1, 0, 5, 1, 0, 1, 169, 254, 169, 254, 0, 80];
        let (outcome, written) = run(&metadata, &job(Vec::new())).await;
        assert!(matches!(
            outcome,
            Err(SocksError::Dial(ChosenDialError::Refused { .. }))
        ));
        assert_eq!(written[2..4], [5, 2]);
        let (outcome, written) = run(&[5, 1, 0, 5, 1, 0, 9, 1, 2], &job(Vec::new())).await;
        assert!(matches!(outcome, Err(SocksError::AddressType(9))));
        assert_eq!(written[2..4], [5, 8]);
        let (outcome, written) = run(&[5, 1, 2], &job(Vec::new())).await;
        assert!(matches!(outcome, Err(SocksError::NoAcceptableMethod)));
        assert_eq!(written, [5, 0xff]);
        let (outcome, written) = run(&[4, 1, 0, 80], &job(Vec::new())).await;
        assert!(matches!(outcome, Err(SocksError::Version(4))));
        assert!(written.is_empty());
    }

    #[tokio::test]
    async fn a_refused_port_is_connection_refused() {
        // Bind then drop: nothing listens on that port any more.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let allow = IpRule {
            prefix: "127.0.0.1/32".parse().unwrap(),
            ports: Vec::new(),
            allow: true,
        };
        let mut input = vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
        input.extend_from_slice(&port.to_be_bytes());
        let (outcome, written) = run(&input, &job(vec![allow])).await;
        assert!(outcome.is_err());
        assert_eq!(written[2..4], [5, 5]);
    }
}
