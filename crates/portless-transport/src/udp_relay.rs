//! Relaying one UDP flow between a local UDP socket and its tunnel stream (plus the flow's
//! QUIC datagrams), the same on the edge (a public client) and on the connector (the origin).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::datagram::{DatagramError, FlowDatagrams, StreamDatagrams, write_stream_datagram};
use crate::{MAX_STREAM_DATAGRAM, SendHalf};

/// How one datagram crossed the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowPath {
    /// As a QUIC datagram.
    Datagram,
    /// Framed on the flow's stream (TCP fallback, or too large for a QUIC datagram).
    Stream,
}

impl FlowPath {
    /// Label for metrics: `quic_datagram` or `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Datagram => "quic_datagram",
            Self::Stream => "stream",
        }
    }
}

/// What the relay tells its caller, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEvent {
    /// A local datagram went into the tunnel.
    Sent {
        /// How.
        path: FlowPath,
        /// Payload bytes.
        bytes: usize,
    },
    /// A datagram from the tunnel went to the local socket.
    Received {
        /// How it came.
        path: FlowPath,
        /// Payload bytes.
        bytes: usize,
    },
    /// Datagrams from the tunnel dropped because the flow's queue was full.
    Dropped(u64),
}

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// No datagram either way for the idle timeout.
    Idle,
    /// The peer closed the flow's stream, or the connection is gone.
    TunnelEnded,
    /// The local side ended (the queue closed, the socket failed).
    LocalEnded,
}

/// The local end of a flow.
pub struct LocalUdp<'a> {
    /// Where datagrams from the tunnel are sent.
    pub socket: &'a UdpSocket,
    /// `Some`: send to this address (the edge's public socket, shared by every client);
    /// `None`: the socket is connected (the connector's socket toward the origin).
    pub peer: Option<SocketAddr>,
    /// `Some`: datagrams toward the tunnel arrive here (the edge's port task reads the
    /// shared socket); `None`: read them from `socket`.
    pub inbound: Option<&'a mut mpsc::Receiver<Bytes>>,
}

/// Relays a flow until it idles for `idle_timeout`, the tunnel side ends it, or the local
/// side does. Datagrams go as QUIC datagrams when `datagrams` is given and they fit, else on
/// the stream; both paths are read.
pub async fn relay_flow<R: AsyncRead + Unpin + Send>(
    local: LocalUdp<'_>,
    send: &mut SendHalf,
    recv: R,
    datagrams: Option<FlowDatagrams>,
    idle_timeout: Duration,
    events: &(dyn Fn(FlowEvent) + Sync),
) -> FlowEnd {
    let LocalUdp {
        socket,
        peer,
        inbound,
    } = local;
    let (sender, receiver) = match datagrams.map(FlowDatagrams::split) {
        Some((sender, receiver)) => (Some(sender), Some(receiver)),
        None => (None, None),
    };
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || {
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(ms, Ordering::Relaxed);
    };
    let deliver = move |payload: Bytes, path: FlowPath| async move {
        // A local send error (an origin not listening yet, a client gone) loses this one
        // datagram, as UDP would; the flow goes on.
        let _ = match peer {
            Some(peer) => socket.send_to(&payload, peer).await,
            None => socket.send(&payload).await,
        };
        events(FlowEvent::Received {
            path,
            bytes: payload.len(),
        });
    };
    let uplink = async {
        let mut inbound = inbound;
        let mut buf = vec![0u8; MAX_STREAM_DATAGRAM];
        loop {
            let payload = match inbound.as_deref_mut() {
                Some(queue) => match queue.recv().await {
                    Some(payload) => payload,
                    None => return FlowEnd::LocalEnded,
                },
                None => match socket.recv(&mut buf).await {
                    Ok(n) => Bytes::copy_from_slice(&buf[..n]),
                    // An ICMP "port unreachable" for an earlier datagram: the origin is not
                    // listening (yet); later datagrams may well get through.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(_) => return FlowEnd::LocalEnded,
                },
            };
            touch();
            let path = match sender.as_ref().map(|s| s.send(&payload)) {
                Some(Ok(())) => FlowPath::Datagram,
                Some(Err(DatagramError::Closed)) => return FlowEnd::TunnelEnded,
                Some(Err(_)) | None => FlowPath::Stream,
            };
            if path == FlowPath::Stream && write_stream_datagram(send, &payload).await.is_err() {
                return FlowEnd::TunnelEnded;
            }
            events(FlowEvent::Sent {
                path,
                bytes: payload.len(),
            });
        }
    };
    let from_stream = async {
        let mut reader = StreamDatagrams::new(recv);
        while let Ok(Some(payload)) = reader.next().await {
            touch();
            deliver(payload, FlowPath::Stream).await;
        }
        FlowEnd::TunnelEnded
    };
    let from_datagrams = async {
        let Some(mut receiver) = receiver else {
            return std::future::pending::<FlowEnd>().await;
        };
        while let Some(payload) = receiver.recv().await {
            touch();
            let dropped = receiver.take_dropped();
            if dropped > 0 {
                events(FlowEvent::Dropped(dropped));
            }
            deliver(payload, FlowPath::Datagram).await;
        }
        FlowEnd::TunnelEnded
    };
    let idle = async {
        loop {
            let quiet = start
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if quiet >= idle_timeout {
                return FlowEnd::Idle;
            }
            tokio::time::sleep(idle_timeout - quiet).await;
        }
    };
    tokio::select! {
        end = uplink => end,
        end = from_stream => end,
        end = from_datagrams => end,
        end = idle => end,
    }
}
