//! Protocol-independent stream halves.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::h2io::{H2Recv, H2Send};

/// Application error code sent when a stream is abandoned (QUIC `RESET_STREAM`/`STOP_SENDING`).
const ABANDONED: u32 = 1;

/// One bidirectional stream of a tunnel connection: a request, an upgraded connection or
/// the control channel. Each half can be closed on its own (half-close).
pub struct TunnelStream {
    /// Bytes toward the peer.
    pub send: SendHalf,
    /// Bytes from the peer.
    pub recv: RecvHalf,
}

impl TunnelStream {
    /// Abandons both directions: the peer sees an error, never a clean end.
    pub fn abort(&mut self) {
        self.send.abort();
        self.recv.abort();
    }
}

/// The sending half of a [`TunnelStream`].
pub enum SendHalf {
    /// A QUIC stream.
    Quic(quinn::SendStream),
    /// An HTTP/2 stream of the TCP fallback.
    H2(H2Send),
}

impl SendHalf {
    /// After the stream is finished: resolves when the peer has acknowledged every byte (QUIC),
    /// so closing the connection afterwards loses nothing. HTTP/2 sessions flush on their
    /// graceful close instead, so this returns at once for them.
    pub async fn delivered(&self) {
        if let Self::Quic(s) = self {
            let _ = s.stopped().await;
        }
    }

    /// Resets the stream so the peer's reads fail.
    pub fn abort(&mut self) {
        match self {
            Self::Quic(s) => {
                let _ = s.reset(ABANDONED.into());
            }
            Self::H2(s) => s.reset(),
        }
    }
}

/// The receiving half of a [`TunnelStream`].
pub enum RecvHalf {
    /// A QUIC stream.
    Quic(quinn::RecvStream),
    /// An HTTP/2 stream of the TCP fallback.
    H2(H2Recv),
}

impl RecvHalf {
    /// Tells the peer to stop sending.
    pub fn abort(&mut self) {
        match self {
            Self::Quic(s) => {
                let _ = s.stop(ABANDONED.into());
            }
            Self::H2(s) => s.stop(),
        }
    }
}

// === impl SendHalf ===

impl crate::FinishWith for SendHalf {
    async fn finish_with(&mut self, last: &[u8]) -> io::Result<()> {
        match self {
            Self::Quic(s) => {
                use tokio::io::AsyncWriteExt as _;
                s.write_all(last).await?;
                s.shutdown().await
            }
            Self::H2(s) => s.write_final(last).await,
        }
    }
}

impl AsyncWrite for SendHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Quic(s) => Pin::new(s).poll_write(cx, buf).map_err(io::Error::from),
            Self::H2(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Quic(s) => Pin::new(s).poll_flush(cx),
            Self::H2(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Quic(s) => Pin::new(s).poll_shutdown(cx),
            Self::H2(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

// === impl RecvHalf ===

impl AsyncRead for RecvHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Quic(s) => Pin::new(s).poll_read(cx, buf),
            Self::H2(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}
