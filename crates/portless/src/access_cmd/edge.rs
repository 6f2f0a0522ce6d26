//! One stream through the edge: TLS to the edge (the hostname as SNI, whatever address is
//! dialled), an HTTP/1.1 upgrade request carrying the credential, and the `101` that turns
//! the connection into raw bytes toward the connector's rule.
//!
//! The request goes through the edge's normal HTTPS path, so the application's access
//! policy judges it like any other request; a refusal comes back as an ordinary response
//! (401 or a redirect to the portal when sign-in is needed, 403 when refused), which is
//! turned into an error that says what to do.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use portless_tls::rustls::ClientConfig;
use portless_tls::rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::auth::Presented;
use super::target::Target;

/// The protocol named in `Upgrade:`: what the edge forwards to the connector's raw rules.
pub(crate) const UPGRADE_PROTOCOL: &str = "portless-tcp";
/// Longest response head read before giving up on an edge that is not one.
const MAX_HEAD: usize = 16 * 1024;
/// How long connecting, the handshake and the edge's answer may take together.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to reach the edge for one hostname.
#[derive(Clone)]
pub(crate) struct EdgeDialer {
    /// The hostname: SNI, `Host`, and the token's audience.
    pub(crate) target: Target,
    /// The address dialled (`host:port`).
    pub(crate) address: String,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) presented: Presented,
}

/// An open stream: the TLS connection after the `101`, and any bytes that arrived with the
/// response head (they belong to the stream).
pub(crate) struct Opened {
    pub(crate) stream: TlsStream<TcpStream>,
    pub(crate) early: Vec<u8>,
}

impl EdgeDialer {
    /// Opens one upgraded stream, or fails with a message naming the fix.
    pub(crate) async fn open(&self) -> anyhow::Result<Opened> {
        tokio::time::timeout(OPEN_TIMEOUT, self.open_inner())
            .await
            .with_context(|| {
                format!(
                    "the edge at {} did not answer within {}s",
                    self.address,
                    OPEN_TIMEOUT.as_secs()
                )
            })?
    }

    async fn open_inner(&self) -> anyhow::Result<Opened> {
        let tcp = TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("cannot connect to the edge at {}", self.address))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(self.target.host.clone())
            .with_context(|| format!("{:?} is not a valid TLS server name", self.target.host))?;
        let mut stream = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .with_context(|| {
                format!(
                    "TLS with the edge at {} for {} failed (pass --ca-file when the edge uses a private CA)",
                    self.address, self.target.host
                )
            })?;
        stream
            .write_all(self.request().as_bytes())
            .await
            .context("the edge closed the connection before the request was sent")?;
        let (head, early) = read_head(&mut stream).await?;
        let status = status_of(&head)?;
        if status == 101 {
            return Ok(Opened { stream, early });
        }
        bail!("{}", self.refusal(status, &head, &early))
    }

    /// The upgrade request.
    fn request(&self) -> String {
        let mut request = format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE_PROTOCOL}\r\nUser-Agent: portless-access/{version}\r\n",
            host = self.target.host,
            version = env!("CARGO_PKG_VERSION"),
        );
        for (name, value) in self.presented.headers() {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request
    }

    /// The error for a response other than `101`.
    fn refusal(&self, status: u16, head: &str, body: &[u8]) -> String {
        let host = &self.target.host;
        let detail = header(head, "portless-error")
            .map(|e| format!(" (portless-error: {e})"))
            .unwrap_or_default();
        match status {
            401 | 302 | 303 => format!(
                "the edge refused the stream to {host}: sign-in required. {}",
                self.presented.fix(&self.target)
            ),
            403 => format!(
                "the edge refused the stream to {host} (403 forbidden): {}",
                match self.presented {
                    Presented::Nothing { .. } => self.presented.fix(&self.target),
                    _ => format!(
                        "{}; or the access policy does not let this identity in",
                        self.presented.fix(&self.target)
                    ),
                }
            ),
            400 if message(body).is_some() => format!(
                "the edge refused the stream to {host}: {}",
                message(body).unwrap_or_default()
            ),
            _ => format!(
                "the edge answered {status} instead of opening a stream to {host}{detail}: check that {host} is routed to a tunnel whose ingress rule is ssh://, tcp:// or rdp://"
            ),
        }
    }
}

/// Reads up to the end of the response head; returns it and the bytes after it.
async fn read_head(stream: &mut TlsStream<TcpStream>) -> anyhow::Result<(String, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_end(&buffer) {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let mut rest = buffer.split_off(end + 4);
            // A refusal's body (up to 4 KiB) helps the message; a 101 has none.
            let wanted = header(&head, "content-length")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
                .min(4096);
            while rest.len() < wanted {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => rest.extend_from_slice(&chunk[..n]),
                }
            }
            return Ok((head, rest));
        }
        if buffer.len() > MAX_HEAD {
            bail!(
                "the edge's answer has no end of head within {MAX_HEAD} bytes: is this address an edge?"
            );
        }
        let n = stream
            .read(&mut chunk)
            .await
            .context("reading the edge's answer")?;
        if n == 0 {
            bail!("the edge closed the connection without answering the upgrade request");
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn find_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The status code of `HTTP/1.1 NNN reason`.
fn status_of(head: &str) -> anyhow::Result<u16> {
    let line = head.lines().next().unwrap_or_default();
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| {
            format!("the edge answered {line:?}, which is not an HTTP/1.1 status line")
        })
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `message` of a JSON refusal body.
fn message(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find('{')?;
    let value: serde_json::Value = serde_json::from_str(text[start..].trim()).ok()?;
    Some(value.get("message")?.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_for_status_and_headers() {
        let head = "HTTP/1.1 403 Forbidden\r\nPortless-Error: denied\r\ncontent-type: text/html";
        assert_eq!(status_of(head).unwrap(), 403);
        assert_eq!(header(head, "portless-error"), Some("denied"));
        assert!(status_of("SSH-2.0-OpenSSH").is_err());
        assert_eq!(find_end(b"HTTP/1.1 101 x\r\n\r\nabc"), Some(14));
        assert_eq!(
            message(b"{\"status\":400,\"message\":\"bad\"}\n").as_deref(),
            Some("bad")
        );
    }
}
