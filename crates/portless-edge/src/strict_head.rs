//! Strict HTTP/1.1 request heads on public connections (attack class J: request smuggling).
//!
//! hyper's HTTP/1 parser is lenient where lenience lets two parsers disagree about where a
//! request ends: it takes `Transfer-Encoding` over a `Content-Length` sent beside it, and
//! accepts bare-LF line endings. A front proxy (or an origin behind the connector) that
//! reads the same bytes differently would see a different next request. So every request
//! head on an HTTP/1 connection is checked here, on the raw bytes the client sent, *before*
//! hyper sees any of it; a head that could be read two ways is answered `400 Bad Request`
//! with `Connection: close` and the connection ends. It never reaches routing, the access
//! check or a tunnel.
//!
//! Two parts:
//! * [`Http1Guard`], sans-IO: fed the client's bytes ([`Http1Guard::receive`]) and the bytes
//!   hyper writes back ([`Http1Guard::sent`]), it releases only bytes that belong to checked
//!   heads and to the bodies they frame. It follows request boundaries by parsing
//!   `Content-Length` bodies and chunked bodies (chunk sizes, extensions, trailers), and
//!   response boundaries the same way, so that a refusal of a pipelined request is written
//!   only after hyper has answered every earlier one, in order.
//! * [`StrictHttp1`], the `AsyncRead + AsyncWrite` wrapper around the client's TLS stream
//!   that drives the guard.
//!
//! Upgrades: once a request asks for one (`Upgrade:` header, or `CONNECT`), the bytes after
//! it are held back until hyper answers it. On `101 Switching Protocols` (or a 2xx to
//! `CONNECT`) the connection stops being HTTP — what follows is WebSocket frames or raw TCP —
//! and everything passes through unchecked from then on. Any other answer means the
//! connection is still HTTP, and checking resumes with the held bytes.
//!
//! A connection that opens with the HTTP/2 preface (prior knowledge without ALPN) is passed
//! through: HTTP/2 is framed by the h2 crate and has no such ambiguity. Connections that
//! negotiated `h2` by ALPN are not wrapped at all.
//!
//! Layout: `head` (request lines and header lines), `framing` (bodies), `guard` (the
//! sans-IO core); the wrapper is here.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

mod framing;
mod guard;
mod head;

use guard::{Http1Guard, ReadAction};

/// Longest request head (request line and header lines), and longest trailer section:
/// hyper's own limit (its default read buffer, 8 KiB + 100 × 4 KiB), so the guard changes
/// nothing about which large heads are served; larger ones get hyper's answer, 431. (Heads
/// too large for the tunnel protocol are refused later, with 400, as before.)
pub(crate) const MAX_HEAD: usize = 8 * 1024 + 100 * 4 * 1024;

/// Why a request head (or the chunked framing of its body) is refused. The message is the
/// body of the 400 answer, so it says what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadViolation {
    /// A line ends in LF without CR.
    #[error("a line ends with a bare LF; end every line with CRLF")]
    BareLf,
    /// A CR not followed by LF.
    #[error("a line holds a bare CR; CR may only end a line, followed by LF")]
    BareCr,
    /// A header line starts with a space or tab (obsolete line folding).
    #[error("a header line starts with whitespace (obs-fold); put each header on one line")]
    ObsFold,
    /// NUL or another control character in a line.
    #[error("a line holds a control character (NUL, ...); send visible characters only")]
    ControlCharacter,
    /// Both `Content-Length` and `Transfer-Encoding`.
    #[error("both Content-Length and Transfer-Encoding are present; send one of them")]
    ContentLengthAndTransferEncoding,
    /// More than one `Content-Length` (even with equal values).
    #[error("Content-Length is present more than once; send it once")]
    DuplicateContentLength,
    /// `Content-Length` that is not a plain decimal number.
    #[error("Content-Length is not a decimal number of bytes")]
    InvalidContentLength,
    /// `Transfer-Encoding` other than exactly one `chunked`.
    #[error("Transfer-Encoding must be exactly \"chunked\" (HTTP/1.1 only), sent once")]
    UnsupportedTransferEncoding,
    /// Whitespace between a header name and the colon.
    #[error("whitespace between a header name and its colon; remove it")]
    SpaceBeforeColon,
    /// A header line without a colon.
    #[error("a header line has no colon")]
    MissingColon,
    /// A header name with characters outside the token set, or `Content_Length` /
    /// `Transfer_Encoding` spelled with underscores.
    #[error(
        "a header name holds characters not allowed in a token, or spells a framing header with '_'"
    )]
    InvalidHeaderName,
    /// The request line is not `METHOD SP target SP HTTP/1.x`.
    #[error("the request line must be METHOD, one space, the target, one space, HTTP/1.1")]
    InvalidRequestLine,
    /// The method is not a token.
    #[error("the method holds characters that are not allowed in a token")]
    InvalidMethod,
    /// The request target is not origin-form, absolute-form, `*` for OPTIONS, or
    /// authority-form for CONNECT.
    #[error(
        "the request target must be /path, an absolute http(s) URL, * (OPTIONS) or host:port (CONNECT)"
    )]
    InvalidTarget,
    /// An HTTP version other than 1.0 or 1.1.
    #[error("the HTTP version must be HTTP/1.1 or HTTP/1.0")]
    UnsupportedVersion,
    /// An HTTP/1.1 request without `Host`.
    #[error("the Host header is missing")]
    MissingHost,
    /// More than one `Host`.
    #[error("the Host header is present more than once")]
    DuplicateHost,
    /// A request head (or trailer section) longer than [`MAX_HEAD`].
    #[error("the request head is larger than 408 KiB")]
    TooLarge,
    /// Malformed chunked framing (size line, CRLF after the data, trailers).
    #[error("the chunked body framing is malformed")]
    InvalidChunk,
}

impl HeadViolation {
    /// Status of the refusal.
    fn status_line(self) -> &'static str {
        match self {
            HeadViolation::TooLarge => "431 Request Header Fields Too Large",
            _ => "400 Bad Request",
        }
    }

    /// The whole refusal: status, `Connection: close`, a short body naming the problem.
    pub(crate) fn response(self) -> Vec<u8> {
        let body = format!("{self}\n");
        format!(
            "HTTP/1.1 {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n{}: bad_request\r\n\r\n{body}",
            self.status_line(),
            body.len(),
            crate::pages::ERROR_CLASS,
        )
        .into_bytes()
    }
}

// === the wrapper ===

/// Where the refusal is in being written.
#[derive(Debug)]
enum RefusalProgress {
    /// Writing these bytes, this many done.
    Writing(Vec<u8>, usize),
    Flushing,
    ShuttingDown,
    Done,
}

/// An HTTP/1 client connection with every request head checked before hyper reads it.
#[derive(Debug)]
pub(crate) struct StrictHttp1<IO> {
    inner: IO,
    guard: Http1Guard,
    refusal: Option<RefusalProgress>,
    /// Set when a read is held until hyper writes; woken on the next write.
    held_reader: Option<Waker>,
    /// How long a head may take to arrive while hyper is idle (see
    /// [`Http1Guard::awaiting_head`]), and the running deadline.
    header_timeout: Duration,
    head_deadline: Option<Pin<Box<Sleep>>>,
    client: std::net::SocketAddr,
}

impl<IO> StrictHttp1<IO> {
    /// Wraps the stream of `client`; a request head must arrive within `header_timeout`.
    pub(crate) fn new(inner: IO, client: std::net::SocketAddr, header_timeout: Duration) -> Self {
        Self {
            inner,
            guard: Http1Guard::default(),
            refusal: None,
            held_reader: None,
            header_timeout,
            head_deadline: None,
            client,
        }
    }

    /// Whether the head being awaited is overdue (arms the deadline when one is awaited).
    fn head_overdue(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.guard.awaiting_head() {
            self.head_deadline = None;
            return false;
        }
        let timeout = self.header_timeout;
        let deadline = self
            .head_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        deadline.as_mut().poll(cx).is_ready()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> StrictHttp1<IO> {
    /// Writes the refusal, flushes, shuts the stream down; then hyper reads the end.
    fn poll_refuse(
        &mut self,
        cx: &mut Context<'_>,
        violation: HeadViolation,
    ) -> Poll<io::Result<()>> {
        loop {
            match self.refusal.get_or_insert_with(|| {
                tracing::debug!(client = %self.client, problem = %violation, "refused an HTTP/1 request head");
                RefusalProgress::Writing(violation.response(), 0)
            }) {
                RefusalProgress::Writing(bytes, done) => {
                    let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *done += n;
                    if *done == bytes.len() {
                        self.refusal = Some(RefusalProgress::Flushing);
                    }
                }
                RefusalProgress::Flushing => {
                    ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                    self.refusal = Some(RefusalProgress::ShuttingDown);
                }
                RefusalProgress::ShuttingDown => {
                    // The answer is out; a failing close changes nothing for the client.
                    let _ = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
                    self.refusal = Some(RefusalProgress::Done);
                }
                RefusalProgress::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for StrictHttp1<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let ready = this.guard.ready();
            if !ready.is_empty() {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.guard.take_ready(n);
                return Poll::Ready(Ok(()));
            }
            match this.guard.read_action() {
                ReadAction::Read => {}
                ReadAction::Tunnel => return Pin::new(&mut this.inner).poll_read(cx, buf),
                ReadAction::Hold => {
                    this.held_reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                // The end of the stream, once the refusal is out.
                ReadAction::Refuse(violation) => return this.poll_refuse(cx, violation),
                ReadAction::Close(violation) => {
                    tracing::debug!(client = %this.client, problem = %violation, "closed an HTTP/1 connection mid-request");
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, violation)));
                }
            }
            if this.head_overdue(cx) {
                tracing::debug!(client = %this.client, "no complete HTTP/1 request head in time");
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
            let mut scratch = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // The client closed; a partial head is never passed on.
                return Poll::Ready(Ok(()));
            }
            this.guard.receive(read.filled());
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for StrictHttp1<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.refusal.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.guard.sent(&buf[..n]);
        if let Some(waker) = this.held_reader.take() {
            waker.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusal.is_some() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusal.is_some() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
