//! `AsyncRead` / `AsyncWrite` over HTTP/2 streams, so the TCP fallback looks like QUIC to
//! everything above it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h2::{RecvStream, SendStream, client::ResponseFuture};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest chunk handed to h2 per write: bounds the copy made of the caller's buffer.
const MAX_WRITE: usize = 256 * 1024;

/// The sending half of an HTTP/2 stream, with flow control turned into backpressure.
pub struct H2Send {
    inner: SendStream<Bytes>,
    finished: bool,
}

impl H2Send {
    pub(crate) fn new(inner: SendStream<Bytes>) -> Self {
        Self {
            inner,
            finished: false,
        }
    }

    /// Sends `last` with `END_STREAM` on its final DATA frame.
    pub(crate) async fn write_final(&mut self, mut last: &[u8]) -> io::Result<()> {
        if self.finished {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        loop {
            if last.is_empty() {
                self.finished = true;
                return self.inner.send_data(Bytes::new(), true).map_err(h2_to_io);
            }
            self.inner.reserve_capacity(last.len());
            let capacity = std::future::poll_fn(|cx| {
                loop {
                    let capacity = self.inner.capacity();
                    if capacity > 0 {
                        return Poll::Ready(Ok(capacity));
                    }
                    match ready!(self.inner.poll_capacity(cx)) {
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Poll::Ready(Err(h2_to_io(e))),
                        None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                    }
                }
            })
            .await?;
            let n = capacity.min(last.len());
            let end = n == last.len();
            self.inner
                .send_data(Bytes::copy_from_slice(&last[..n]), end)
                .map_err(h2_to_io)?;
            if end {
                self.finished = true;
                return Ok(());
            }
            last = &last[n..];
        }
    }

    /// Resets the stream: the peer's reads fail instead of seeing an end of stream.
    pub(crate) fn reset(&mut self) {
        self.inner.send_reset(h2::Reason::CANCEL);
        self.finished = true;
    }
}

fn h2_to_io(e: h2::Error) -> io::Error {
    if e.is_io() {
        e.into_io()
            .unwrap_or_else(|| io::Error::other("h2 I/O error"))
    } else {
        io::Error::new(io::ErrorKind::ConnectionReset, e)
    }
}

impl AsyncWrite for H2Send {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.finished {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let want = buf.len().min(MAX_WRITE);
        self.inner.reserve_capacity(want);
        let available = loop {
            let capacity = self.inner.capacity();
            if capacity > 0 {
                break capacity;
            }
            match ready!(self.inner.poll_capacity(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(h2_to_io(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        };
        let n = available.min(want);
        self.inner
            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
            .map_err(h2_to_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // h2 sends as soon as the connection task runs; there is no user-space buffer here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.finished {
            self.finished = true;
            self.inner.send_data(Bytes::new(), true).map_err(h2_to_io)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// The receiving half of an HTTP/2 stream. On the edge it first waits for the connector's
/// response head, which the connector sends as soon as it accepts the stream.
pub struct H2Recv {
    state: RecvState,
    chunk: Bytes,
}

enum RecvState {
    Pending(ResponseFuture),
    Ready(RecvStream),
    Done,
}

impl H2Recv {
    pub(crate) fn ready(stream: RecvStream) -> Self {
        Self {
            state: RecvState::Ready(stream),
            chunk: Bytes::new(),
        }
    }

    pub(crate) fn pending(response: ResponseFuture) -> Self {
        Self {
            state: RecvState::Pending(response),
            chunk: Bytes::new(),
        }
    }

    /// Stops reading: the peer's writes fail.
    pub(crate) fn stop(&mut self) {
        self.state = RecvState::Done;
        self.chunk = Bytes::new();
    }
}

impl AsyncRead for H2Recv {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.chunk.is_empty() {
                let n = this.chunk.len().min(buf.remaining());
                buf.put_slice(&this.chunk[..n]);
                this.chunk.advance(n);
                return Poll::Ready(Ok(()));
            }
            match &mut this.state {
                RecvState::Pending(response) => {
                    let response = ready!(Pin::new(response).poll(cx)).map_err(h2_to_io)?;
                    if response.status() != http::StatusCode::OK {
                        return Poll::Ready(Err(io::Error::other(format!(
                            "connector refused the stream with status {}",
                            response.status()
                        ))));
                    }
                    this.state = RecvState::Ready(response.into_body());
                }
                RecvState::Ready(stream) => match ready!(stream.poll_data(cx)) {
                    Some(Ok(data)) => {
                        // Give the window back right away: memory is bounded by the one
                        // chunk held here, and the sender keeps going.
                        let _ = stream.flow_control().release_capacity(data.len());
                        this.chunk = data;
                    }
                    Some(Err(e)) => return Poll::Ready(Err(h2_to_io(e))),
                    None => {
                        this.state = RecvState::Done;
                        return Poll::Ready(Ok(()));
                    }
                },
                RecvState::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

use std::future::Future as _;
