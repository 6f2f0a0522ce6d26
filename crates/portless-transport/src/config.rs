//! Transport tuning shared by QUIC and HTTP/2 sessions.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::TcpStream;

/// Flow-control windows, stream limits and timeouts of tunnel connections.
///
/// The windows bound how many bytes a stream or connection may have in flight, and so bound
/// memory on both sides whatever the size of a transfer.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Bytes one stream may have unacknowledged in flight.
    pub stream_window: u32,
    /// Bytes all streams of one connection may have in flight together.
    pub connection_window: u32,
    /// Concurrent request streams the edge may open on one connection.
    pub max_streams: u32,
    /// Interval of QUIC keep-alive packets.
    pub keep_alive: Duration,
    /// A connection with no traffic for this long is dead.
    pub idle_timeout: Duration,
    /// Limit for the TLS (and QUIC) handshake.
    pub handshake_timeout: Duration,
    /// Bytes of QUIC datagrams (UDP flows) a connection buffers each way; beyond it the
    /// oldest are dropped, as a congested UDP path would.
    pub datagram_buffer: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            stream_window: 2 * 1024 * 1024,
            connection_window: 16 * 1024 * 1024,
            max_streams: 10_000,
            keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            datagram_buffer: 1024 * 1024,
        }
    }
}

impl TransportConfig {
    /// quinn settings. `accept_streams` is how many bidirectional streams the *peer* may open:
    /// the connector accepts many (requests), the edge accepts one (the control stream).
    pub(crate) fn quic(&self, accept_streams: u32) -> Arc<quinn::TransportConfig> {
        let mut config = quinn::TransportConfig::default();
        config
            .max_concurrent_bidi_streams(accept_streams.into())
            .max_concurrent_uni_streams(0u8.into())
            .stream_receive_window(self.stream_window.into())
            .receive_window(self.connection_window.into())
            .send_window(u64::from(self.connection_window))
            .keep_alive_interval(Some(self.keep_alive))
            .datagram_receive_buffer_size(Some(self.datagram_buffer))
            .datagram_send_buffer_size(self.datagram_buffer);
        if let Ok(timeout) = quinn::IdleTimeout::try_from(self.idle_timeout) {
            config.max_idle_timeout(Some(timeout));
        }
        Arc::new(config)
    }

    /// h2 client settings (edge side).
    pub(crate) fn h2_client(&self) -> h2::client::Builder {
        let mut builder = h2::client::Builder::new();
        builder
            .initial_window_size(self.stream_window)
            .initial_connection_window_size(self.connection_window)
            .max_frame_size(H2_MAX_FRAME)
            .max_send_buffer_size(H2_MAX_FRAME as usize)
            .enable_push(false);
        builder
    }

    /// h2 server settings (connector side).
    pub(crate) fn h2_server(&self) -> h2::server::Builder {
        let mut builder = h2::server::Builder::new();
        builder
            .initial_window_size(self.stream_window)
            .initial_connection_window_size(self.connection_window)
            .max_frame_size(H2_MAX_FRAME)
            .max_send_buffer_size(H2_MAX_FRAME as usize)
            .max_concurrent_streams(self.max_streams);
        builder
    }
}

/// The socket under a TCP tunnel's TLS, read through a buffer.
///
/// rustls reads at most 4 KiB per call from the socket under it, so a bulk transfer would cost
/// four or more system calls per 16 KiB record; through this buffer one call fetches many
/// records. One buffer per tunnel connection (there are few of them).
pub(crate) fn buffered_socket(socket: TcpStream) -> BufReader<TcpStream> {
    BufReader::with_capacity(TUNNEL_READ_BUFFER, socket)
}

/// Read buffer under a TCP tunnel's TLS.
const TUNNEL_READ_BUFFER: usize = 256 * 1024;

/// HTTP/2 frames up to 64 KiB: fewer frame headers on bulk transfers than the 16 KiB default.
const H2_MAX_FRAME: u32 = 64 * 1024;
