//! Tunnel sessions between a Portless edge and its connectors.
//!
//! A *connection* is one outbound session from a connector to an edge, over QUIC (UDP) or,
//! where UDP is blocked, TLS 1.3 over TCP with HTTP/2 stream multiplexing in reversed roles
//! (the connector dials and serves HTTP/2; the edge is the HTTP/2 client). Either way the
//! rest of Portless sees the same thing: a control [`TunnelStream`] opened right after the
//! handshake, then one [`TunnelStream`] per proxied request, opened by the edge.
//!
//! Main types: [`TunnelListener`] (edge side, accepts both protocols on one port number),
//! [`EdgeConnection`] (edge side, opens streams), [`dial`] and [`ConnectorConnection`]
//! (connector side, accepts streams), [`TunnelStream`], [`FramedRecv`] / [`FramedSend`]
//! (frame I/O over a stream), [`Datagrams`] / [`FlowDatagrams`] (UDP flows), [`Backoff`].
//!
//! Layout:
//! * `config` — transport tuning shared by both protocols;
//! * `stream` — the protocol-independent stream halves;
//! * `h2io` — `AsyncRead`/`AsyncWrite` over HTTP/2 streams;
//! * `framed` — reading and writing `portless-proto` frames on a stream;
//! * `body` — an `http_body::Body` over body frames;
//! * `headers` — header map ⇄ wire header list;
//! * `listener` — the edge's tunnel listener (QUIC + TCP);
//! * `dial` — the connector's dialer;
//! * `connection` — established connections on both sides;
//! * `datagram` — UDP flows: QUIC datagrams by flow id, datagrams framed on a stream;
//! * `udp_relay` — one UDP flow between a local socket and the tunnel;
//! * `pump` — raw bytes from a reader to a writer, in chunks that grow with the traffic;
//! * `backoff` — exponential backoff with full jitter.

mod backoff;
mod body;
mod config;
mod connection;
mod datagram;
mod dial;
mod error;
mod framed;
mod h2io;
mod headers;
mod listener;
mod pump;
mod stream;
mod udp_relay;

pub use backoff::Backoff;
pub use body::{TunnelBody, content_length};
pub use config::TransportConfig;
pub use connection::{ConnectionCloser, ConnectorConnection, EdgeConnection};
pub use datagram::{
    DatagramError, Datagrams, FlowDatagrams, FlowReceiver, FlowSender, MAX_STREAM_DATAGRAM,
    StreamDatagrams, UDP_FLOW_HEADER, UDP_IDLE_HEADER, UDP_UPGRADE, write_stream_datagram,
};
pub use dial::{DialTarget, Dialer, dial};
pub use error::TransportError;
pub use framed::{BodyFrame, FinishWith, FramedRecv, FramedSend};
pub use headers::{to_header_list, to_header_map};
pub use listener::{Accepted, TunnelListener};
pub use pump::{MAX_CHUNK, pump};
pub use stream::{RecvHalf, SendHalf, TunnelStream};
pub use udp_relay::{FlowEnd, FlowEvent, FlowPath, LocalUdp, relay_flow};

/// Which transport a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// QUIC over UDP.
    Quic,
    /// TLS 1.3 over TCP with HTTP/2 multiplexing.
    Tcp,
}

impl Protocol {
    /// Lowercase name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quic => "quic",
            Self::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
