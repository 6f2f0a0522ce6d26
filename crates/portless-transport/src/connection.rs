//! Established tunnel connections, on the edge side and on the connector side.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::h2io::{H2Recv, H2Send};
use crate::{Datagrams, Protocol, RecvHalf, SendHalf, TransportError, TunnelStream};

/// The edge's handle on one connector connection: it opens one stream per request.
///
/// Cheap to clone; all clones refer to the same connection.
#[derive(Clone)]
pub struct EdgeConnection {
    inner: EdgeInner,
    remote: SocketAddr,
}

#[derive(Clone)]
enum EdgeInner {
    Quic(quinn::Connection, Datagrams),
    H2 {
        requests: h2::client::SendRequest<Bytes>,
        /// Cancelled when the HTTP/2 session ends, or to end it: the task driving the
        /// session watches it and drops the socket.
        done: CancellationToken,
    },
}

impl EdgeConnection {
    pub(crate) fn quic(
        connection: quinn::Connection,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let remote = connection.remote_address();
        let datagrams = Datagrams::start(connection.clone(), tasks);
        Self {
            inner: EdgeInner::Quic(connection, datagrams),
            remote,
        }
    }

    /// The connection's QUIC datagrams, for UDP flows; `None` over the TCP fallback.
    pub fn datagrams(&self) -> Option<&Datagrams> {
        match &self.inner {
            EdgeInner::Quic(_, datagrams) => Some(datagrams),
            EdgeInner::H2 { .. } => None,
        }
    }

    pub(crate) fn h2(
        requests: h2::client::SendRequest<Bytes>,
        done: CancellationToken,
        remote: SocketAddr,
    ) -> Self {
        Self {
            inner: EdgeInner::H2 { requests, done },
            remote,
        }
    }

    /// Opens a new stream toward the connector. Waits while the connection is at its stream
    /// limit, so a burst queues instead of failing.
    pub async fn open_stream(&self) -> Result<TunnelStream, TransportError> {
        match &self.inner {
            EdgeInner::Quic(connection, _) => {
                let (send, recv) = connection.open_bi().await?;
                Ok(TunnelStream {
                    send: SendHalf::Quic(send),
                    recv: RecvHalf::Quic(recv),
                })
            }
            EdgeInner::H2 { requests, .. } => {
                let mut requests = requests.clone().ready().await?;
                let request = http::Request::post("https://tunnel.portless/stream")
                    .body(())
                    .map_err(|e| TransportError::Quic(e.to_string()))?;
                let (response, send) = requests.send_request(request, false)?;
                Ok(TunnelStream {
                    send: SendHalf::H2(H2Send::new(send)),
                    recv: RecvHalf::H2(H2Recv::pending(response)),
                })
            }
        }
    }

    /// The transport of this connection.
    pub fn protocol(&self) -> Protocol {
        match self.inner {
            EdgeInner::Quic(..) => Protocol::Quic,
            EdgeInner::H2 { .. } => Protocol::Tcp,
        }
    }

    /// The connector's address as seen by the edge.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Closes the connection at once; open streams fail.
    pub fn close(&self, reason: &str) {
        match &self.inner {
            EdgeInner::Quic(connection, _) => connection.close(0u8.into(), reason.as_bytes()),
            EdgeInner::H2 { done, .. } => done.cancel(),
        }
    }

    /// Resolves when the connection is closed, by either side or by a network failure.
    pub async fn closed(&self) {
        match &self.inner {
            EdgeInner::Quic(connection, _) => {
                connection.closed().await;
            }
            EdgeInner::H2 { done, .. } => done.cancelled().await,
        }
    }

    /// The smoothed round-trip time, where the transport measures it.
    pub fn rtt(&self) -> Option<std::time::Duration> {
        match &self.inner {
            EdgeInner::Quic(connection, _) => Some(connection.rtt()),
            EdgeInner::H2 { .. } => None,
        }
    }
}

/// The connector's handle on one edge connection: it accepts the streams the edge opens.
pub struct ConnectorConnection {
    inner: ConnectorInner,
    remote: SocketAddr,
}

enum ConnectorInner {
    /// The connection and its (per-connection) endpoint, kept to wait for a clean close,
    /// and its datagrams.
    Quic(quinn::Connection, quinn::Endpoint, Datagrams),
    H2 {
        streams: mpsc::UnboundedReceiver<TunnelStream>,
        done: CancellationToken,
    },
}

impl ConnectorConnection {
    pub(crate) fn quic(
        connection: quinn::Connection,
        endpoint: quinn::Endpoint,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let remote = connection.remote_address();
        let datagrams = Datagrams::start(connection.clone(), tasks);
        Self {
            inner: ConnectorInner::Quic(connection, endpoint, datagrams),
            remote,
        }
    }

    /// The connection's QUIC datagrams, for UDP flows; `None` over the TCP fallback.
    pub fn datagrams(&self) -> Option<&Datagrams> {
        match &self.inner {
            ConnectorInner::Quic(_, _, datagrams) => Some(datagrams),
            ConnectorInner::H2 { .. } => None,
        }
    }

    pub(crate) fn h2(
        streams: mpsc::UnboundedReceiver<TunnelStream>,
        done: CancellationToken,
        remote: SocketAddr,
    ) -> Self {
        Self {
            inner: ConnectorInner::H2 { streams, done },
            remote,
        }
    }

    /// The next stream opened by the edge; `None` once the connection is closed.
    pub async fn accept_stream(&mut self) -> Option<TunnelStream> {
        match &mut self.inner {
            ConnectorInner::Quic(connection, ..) => {
                let (send, recv) = connection.accept_bi().await.ok()?;
                Some(TunnelStream {
                    send: SendHalf::Quic(send),
                    recv: RecvHalf::Quic(recv),
                })
            }
            ConnectorInner::H2 { streams, .. } => streams.recv().await,
        }
    }

    /// The transport of this connection.
    pub fn protocol(&self) -> Protocol {
        match self.inner {
            ConnectorInner::Quic(..) => Protocol::Quic,
            ConnectorInner::H2 { .. } => Protocol::Tcp,
        }
    }

    /// The edge's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// A handle that can close the connection from another task.
    pub fn closer(&self) -> ConnectionCloser {
        match &self.inner {
            ConnectorInner::Quic(connection, endpoint, _) => {
                ConnectionCloser::Quic(connection.clone(), endpoint.clone())
            }
            ConnectorInner::H2 { done, .. } => ConnectionCloser::H2(done.clone()),
        }
    }
}

/// Closes a [`ConnectorConnection`] from anywhere.
#[derive(Clone)]
pub enum ConnectionCloser {
    /// A QUIC connection and its endpoint.
    Quic(quinn::Connection, quinn::Endpoint),
    /// An HTTP/2 session, ended by cancelling its driver.
    H2(CancellationToken),
}

impl ConnectionCloser {
    /// Closes the connection at once.
    pub fn close(&self, reason: &str) {
        match self {
            Self::Quic(connection, _) => connection.close(0u8.into(), reason.as_bytes()),
            Self::H2(done) => done.cancel(),
        }
    }

    /// Closes the connection and waits (at most `limit`) until the peer has been told, so a
    /// process that exits right after does not leave the edge waiting for a timeout.
    pub async fn close_and_flush(&self, reason: &str, limit: std::time::Duration) {
        self.close(reason);
        if let Self::Quic(_, endpoint) = self {
            let _ = tokio::time::timeout(limit, endpoint.wait_idle()).await;
        }
    }

    /// Resolves when the connection is closed.
    pub async fn closed(&self) {
        match self {
            Self::Quic(connection, _) => {
                connection.closed().await;
            }
            Self::H2(done) => done.cancelled().await,
        }
    }
}

pub(crate) fn quic_stream(send: quinn::SendStream, recv: quinn::RecvStream) -> TunnelStream {
    TunnelStream {
        send: SendHalf::Quic(send),
        recv: RecvHalf::Quic(recv),
    }
}
