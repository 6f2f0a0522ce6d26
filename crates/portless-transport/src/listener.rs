//! The edge's tunnel listener: QUIC on UDP and TLS over TCP on the same port number.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::connection::quic_stream;
use crate::{EdgeConnection, TransportConfig, TransportError, TunnelStream};

/// Handshakes allowed to run at once; more wait in the accept queue. Bounds the work an
/// unauthenticated flood can make the edge do.
const MAX_PENDING_HANDSHAKES: usize = 256;

/// A connection that finished its handshake and opened its control stream. It is not
/// registered yet: the edge reads `Register` from `control` next.
pub struct Accepted {
    /// The connection, for opening request streams.
    pub connection: EdgeConnection,
    /// The control stream.
    pub control: TunnelStream,
}

/// Accepts connector connections over QUIC and TCP.
pub struct TunnelListener {
    accepted: mpsc::Receiver<Accepted>,
    tcp_addr: SocketAddr,
    endpoint: Option<quinn::Endpoint>,
}

impl TunnelListener {
    /// Starts accepting on already-bound sockets (so tests can bind port 0). `udp` is
    /// optional: without it the edge serves the TCP fallback only. Accept tasks run on
    /// `tasks` and stop when `shutdown` is cancelled.
    pub fn start(
        tcp: TcpListener,
        udp: Option<std::net::UdpSocket>,
        tls: Arc<rustls::ServerConfig>,
        config: TransportConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, TransportError> {
        let tcp_addr = tcp
            .local_addr()
            .map_err(|e| TransportError::io("reading the tunnel listener address", e))?;
        let (tx, accepted) = mpsc::channel(64);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
        let endpoint = match udp {
            Some(socket) => {
                let endpoint = quic_endpoint(socket, tls.clone(), &config)?;
                tasks.spawn(accept_quic(
                    endpoint.clone(),
                    config.clone(),
                    tx.clone(),
                    handshakes.clone(),
                    tasks.clone(),
                    shutdown.clone(),
                ));
                Some(endpoint)
            }
            None => None,
        };
        tasks.spawn(accept_tcp(
            tcp,
            TlsAcceptor::from(tls),
            config,
            tx,
            handshakes,
            tasks.clone(),
            shutdown,
        ));
        Ok(Self {
            accepted,
            tcp_addr,
            endpoint,
        })
    }

    /// The next connection that completed its handshake; `None` after shutdown.
    pub async fn accept(&mut self) -> Option<Accepted> {
        self.accepted.recv().await
    }

    /// The TCP address (the UDP port has the same number when bound by the caller so).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The QUIC address, when QUIC is served.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.endpoint.as_ref().and_then(|e| e.local_addr().ok())
    }

    /// Closes every QUIC connection with a reason the connectors log, and stops QUIC.
    pub fn close_quic(&self, reason: &str) {
        if let Some(endpoint) = &self.endpoint {
            endpoint.close(0u8.into(), reason.as_bytes());
        }
    }

    /// Waits until closed QUIC connections have told their peers (so the UDP port is free
    /// again when the listener is dropped).
    pub async fn wait_idle(&self) {
        if let Some(endpoint) = &self.endpoint {
            endpoint.wait_idle().await;
        }
    }
}

fn quic_endpoint(
    socket: std::net::UdpSocket,
    tls: Arc<rustls::ServerConfig>,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, TransportError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TransportError::QuicConfig(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    // The connector opens exactly one stream (control); requests are opened by the edge.
    server.transport_config(config.quic(1));
    socket
        .set_nonblocking(true)
        .map_err(|e| TransportError::io("configuring the QUIC socket", e))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| TransportError::io("starting the QUIC endpoint", e))
}

async fn accept_quic(
    endpoint: quinn::Endpoint,
    config: TransportConfig,
    tx: mpsc::Sender<Accepted>,
    handshakes: Arc<tokio::sync::Semaphore>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            () = shutdown.cancelled() => break,
        };
        let Some(incoming) = incoming else { break };
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            break;
        };
        let tx = tx.clone();
        let timeout = config.handshake_timeout;
        let shutdown = shutdown.clone();
        let datagram_tasks = tasks.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let remote = incoming.remote_address();
            let handshake = async {
                let connection = incoming.await?;
                let (send, recv) = connection.accept_bi().await?;
                Ok::<_, TransportError>(Accepted {
                    connection: EdgeConnection::quic(connection, &datagram_tasks),
                    control: quic_stream(send, recv),
                })
            };
            tokio::select! {
                result = tokio::time::timeout(timeout, handshake) => match result {
                    Ok(Ok(accepted)) => { let _ = tx.send(accepted).await; }
                    Ok(Err(e)) => debug!(%remote, error = %e, "QUIC tunnel handshake failed"),
                    Err(_) => debug!(%remote, "QUIC tunnel handshake timed out"),
                },
                () = shutdown.cancelled() => {}
            }
        });
    }
}

async fn accept_tcp(
    listener: TcpListener,
    tls: TlsAcceptor,
    config: TransportConfig,
    tx: mpsc::Sender<Accepted>,
    handshakes: Arc<tokio::sync::Semaphore>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (socket, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                debug!(error = %e, "accepting a tunnel TCP connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            break;
        };
        let tx = tx.clone();
        let tls = tls.clone();
        let config = config.clone();
        let shutdown = shutdown.clone();
        let driver_tasks = tasks.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let timeout = config.handshake_timeout;
            let handshake = tcp_handshake(socket, remote, tls, &config, &driver_tasks, &shutdown);
            match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(accepted)) => {
                    let _ = tx.send(accepted).await;
                }
                Ok(Err(e)) => debug!(%remote, error = %e, "TCP tunnel handshake failed"),
                Err(_) => debug!(%remote, "TCP tunnel handshake timed out"),
            }
        });
    }
}

async fn tcp_handshake(
    socket: TcpStream,
    remote: SocketAddr,
    tls: TlsAcceptor,
    config: &TransportConfig,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Accepted, TransportError> {
    let _ = socket.set_nodelay(true);
    let stream = tls
        .accept(crate::config::buffered_socket(socket))
        .await
        .map_err(|e| TransportError::io("TLS handshake with a connector", e))?;
    let (requests, session) = config.h2_client().handshake::<_, Bytes>(stream).await?;
    let done = shutdown.child_token();
    let watched = done.clone();
    tasks.spawn(async move {
        tokio::select! {
            result = session => {
                if let Err(e) = result {
                    debug!(%remote, error = %e, "tunnel HTTP/2 session ended");
                }
            }
            () = watched.cancelled() => {}
        }
        watched.cancel();
    });
    let connection = EdgeConnection::h2(requests, done, remote);
    let control = connection.open_stream().await?;
    Ok(Accepted {
        connection,
        control,
    })
}
