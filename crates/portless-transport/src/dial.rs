//! The connector's dialer: QUIC, or TLS over TCP with HTTP/2.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::connection::quic_stream;
use crate::h2io::{H2Recv, H2Send};
use crate::{
    ConnectorConnection, Protocol, RecvHalf, SendHalf, TransportConfig, TransportError,
    TunnelStream,
};

/// Longest time a closing HTTP/2 session may spend flushing its last streams.
const H2_CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Where to dial: the edge's tunnel address and the name its certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTarget {
    /// The edge's tunnel address (same port number for UDP and TCP).
    pub addr: SocketAddr,
    /// The name verified in the edge's certificate.
    pub server_name: String,
}

/// Opens connections to edges. One per connector; cheap to share by reference.
pub struct Dialer {
    tls: Arc<rustls::ClientConfig>,
    quic: quinn::ClientConfig,
    config: TransportConfig,
    bind: Option<IpAddr>,
    tasks: TaskTracker,
}

impl Dialer {
    /// A dialer using `tls` (TLS 1.3, tunnel ALPN, edge verification) for both protocols.
    /// `bind` is the local address to dial from (`edge-bind-address`). Session tasks run on
    /// `tasks`.
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        config: TransportConfig,
        bind: Option<IpAddr>,
        tasks: TaskTracker,
    ) -> Result<Self, TransportError> {
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls.clone())
            .map_err(|e| TransportError::QuicConfig(e.to_string()))?;
        let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
        quic.transport_config(config.quic(config.max_streams));
        Ok(Self {
            tls,
            quic,
            config,
            bind,
            tasks,
        })
    }

    /// The transport settings.
    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// Dials `target` over `protocol` and returns the connection and its control stream.
    pub async fn dial(
        &self,
        protocol: Protocol,
        target: &DialTarget,
    ) -> Result<(ConnectorConnection, TunnelStream), TransportError> {
        let timeout = self.config.handshake_timeout;
        let attempt = async {
            match protocol {
                Protocol::Quic => self.dial_quic(target).await,
                Protocol::Tcp => self.dial_tcp(target).await,
            }
        };
        tokio::time::timeout(timeout, attempt).await.map_err(|_| {
            TransportError::HandshakeTimeout(format!("{} over {protocol}", target.addr))
        })?
    }

    async fn dial_quic(
        &self,
        target: &DialTarget,
    ) -> Result<(ConnectorConnection, TunnelStream), TransportError> {
        let local = SocketAddr::new(self.bind_ip(target.addr), 0);
        let socket = std::net::UdpSocket::bind(local)
            .map_err(|e| TransportError::io(format!("binding a UDP socket on {local}"), e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| TransportError::io("configuring the QUIC socket", e))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| TransportError::io("starting the QUIC endpoint", e))?;
        let connection = endpoint
            .connect_with(self.quic.clone(), target.addr, &target.server_name)?
            .await?;
        let (send, recv) = connection.open_bi().await?;
        Ok((
            ConnectorConnection::quic(connection, endpoint, &self.tasks),
            quic_stream(send, recv),
        ))
    }

    async fn dial_tcp(
        &self,
        target: &DialTarget,
    ) -> Result<(ConnectorConnection, TunnelStream), TransportError> {
        let socket = match self.bind {
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(|e| TransportError::io("creating a TCP socket", e))?;
                socket
                    .bind(SocketAddr::new(ip, 0))
                    .map_err(|e| TransportError::io(format!("binding to {ip}"), e))?;
                socket.connect(target.addr).await
            }
            None => TcpStream::connect(target.addr).await,
        }
        .map_err(|e| TransportError::io(format!("connecting to {}", target.addr), e))?;
        let _ = socket.set_nodelay(true);
        let name = ServerName::try_from(target.server_name.clone())
            .map_err(|e| TransportError::QuicConfig(format!("invalid edge name: {e}")))?;
        let stream = TlsConnector::from(self.tls.clone())
            .connect(name, crate::config::buffered_socket(socket))
            .await
            .map_err(|e| TransportError::io(format!("TLS handshake with {}", target.addr), e))?;
        let mut session = self
            .config
            .h2_server()
            .handshake::<_, Bytes>(stream)
            .await?;
        // The edge opens the control stream right after the handshake.
        let control = next_h2_stream(&mut session)
            .await
            .ok_or(TransportError::Closed)??;
        let (tx, rx) = mpsc::unbounded_channel();
        let done = CancellationToken::new();
        let watched = done.clone();
        let remote = target.addr;
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    next = next_h2_stream(&mut session) => match next {
                        Some(Ok(stream)) => {
                            if tx.send(stream).is_err() {
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            debug!(%remote, error = %e, "tunnel HTTP/2 session ended");
                            break;
                        }
                        None => break,
                    },
                    () = watched.cancelled() => {
                        // Close gracefully: GOAWAY, then keep driving the session until the
                        // open streams are flushed and closed.
                        session.graceful_shutdown();
                        let flush = async { while next_h2_stream(&mut session).await.is_some() {} };
                        let _ = tokio::time::timeout(H2_CLOSE_FLUSH, flush).await;
                        break;
                    }
                }
            }
            watched.cancel();
        });
        Ok((ConnectorConnection::h2(rx, done, remote), control))
    }

    fn bind_ip(&self, target: SocketAddr) -> IpAddr {
        match (self.bind, target) {
            (Some(ip), _) => ip,
            (None, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (None, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// Accepts the next HTTP/2 stream and answers it at once, so both directions are open. A
/// stream the edge already reset (a cancelled request) is skipped, not fatal to the session.
async fn next_h2_stream<T>(
    session: &mut h2::server::Connection<T, Bytes>,
) -> Option<Result<TunnelStream, TransportError>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let (request, mut respond) = match session.accept().await? {
            Ok(accepted) => accepted,
            Err(e) => return Some(Err(e.into())),
        };
        match respond.send_response(http::Response::new(()), false) {
            Ok(send) => {
                return Some(Ok(TunnelStream {
                    send: SendHalf::H2(H2Send::new(send)),
                    recv: RecvHalf::H2(H2Recv::ready(request.into_body())),
                }));
            }
            Err(e) => debug!(error = %e, "skipping a stream the edge already closed"),
        }
    }
}

/// Dials once with a fresh [`Dialer`]; convenient for tests and probes.
pub async fn dial(
    tls: Arc<rustls::ClientConfig>,
    config: TransportConfig,
    protocol: Protocol,
    target: &DialTarget,
    tasks: TaskTracker,
) -> Result<(ConnectorConnection, TunnelStream), TransportError> {
    Dialer::new(tls, config, None, tasks)?
        .dial(protocol, target)
        .await
}
