//! An HTTP body read from tunnel body frames, streamed without buffering.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncRead;

use crate::headers::to_header_map;
use crate::{BodyFrame, FramedRecv, TransportError};

/// The body that follows a head on a tunnel stream: `Data` frames until `End` or
/// `Trailers`. An `Abort`, or a stream that ends early, is an error, so the receiver (hyper)
/// resets its side instead of presenting a truncated body as complete.
///
/// With a known length (`Content-Length`), the last chunk is handed on only together with the
/// end of the body: hyper stops polling a body once it has its declared length, and a stream
/// dropped before its end frame is reset, which HTTP/2 (the TCP fallback) then counts against
/// the whole connection when the end frame arrives late.
pub struct TunnelBody<R> {
    recv: Option<FramedRecv<R>>,
    /// Bytes still expected, when the length is known.
    remaining: Option<u64>,
    /// The last chunk, held until the end frame is read.
    held: Option<Bytes>,
    /// Trailers read while a chunk was held.
    trailers: Option<HeaderMap>,
}

impl<R> TunnelBody<R> {
    /// A body read from `recv`; `length` is the declared `Content-Length`, if any.
    pub fn new(recv: FramedRecv<R>, length: Option<u64>) -> Self {
        Self {
            recv: Some(recv),
            remaining: length,
            held: None,
            trailers: None,
        }
    }

    /// A body with no frames at all.
    pub fn empty() -> Self {
        Self {
            recv: None,
            remaining: None,
            held: None,
            trailers: None,
        }
    }

    fn flush_held(&mut self) -> Option<Result<Frame<Bytes>, TransportError>> {
        if let Some(data) = self.held.take() {
            return Some(Ok(Frame::data(data)));
        }
        self.trailers.take().map(|t| Ok(Frame::trailers(t)))
    }
}

impl<R: AsyncRead + Unpin> Body for TunnelBody<R> {
    type Data = Bytes;
    type Error = TransportError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, TransportError>>> {
        let this = &mut *self;
        loop {
            let Some(recv) = this.recv.as_mut() else {
                return Poll::Ready(this.flush_held());
            };
            let frame = match ready!(recv.poll_body_frame(cx)) {
                Ok(frame) => frame,
                Err(e) => {
                    this.recv = None;
                    this.held = None;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match frame {
                BodyFrame::Data(data) => {
                    if this.held.is_some() {
                        this.recv = None;
                        this.held = None;
                        return Poll::Ready(Some(Err(TransportError::Aborted)));
                    }
                    let Some(remaining) = this.remaining else {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    };
                    let len = data.len() as u64;
                    if len > remaining {
                        this.recv = None;
                        return Poll::Ready(Some(Err(TransportError::Aborted)));
                    }
                    this.remaining = Some(remaining - len);
                    if remaining > len {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    // The last chunk: read the end frame before handing it on.
                    this.held = Some(data);
                }
                BodyFrame::Trailers(list) => {
                    this.recv = None;
                    match to_header_map(&list) {
                        Ok(map) => this.trailers = Some(map),
                        Err(e) => {
                            this.held = None;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
                BodyFrame::End => this.recv = None,
                BodyFrame::Abort => {
                    this.recv = None;
                    this.held = None;
                    return Poll::Ready(Some(Err(TransportError::Aborted)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_none() && self.held.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.recv, self.remaining) {
            (None, _) => SizeHint::with_exact(self.held.as_ref().map_or(0, |h| h.len() as u64)),
            (Some(_), Some(remaining)) => {
                SizeHint::with_exact(remaining + self.held.as_ref().map_or(0, |h| h.len() as u64))
            }
            (Some(_), None) => SizeHint::default(),
        }
    }
}

/// The declared `Content-Length` of a message, if it is a single valid number.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt as _;

    use super::*;
    use crate::FramedSend;

    #[tokio::test]
    async fn with_a_known_length_the_last_chunk_comes_with_the_end() {
        let (a, b) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            let mut send = FramedSend::new(a);
            send.write_data(b"hello ").await.unwrap();
            send.write_data(b"world").await.unwrap();
            // The end frame arrives later than the last byte.
            tokio::time::sleep(Duration::from_millis(100)).await;
            send.end_body(None).await.unwrap();
        });
        let mut body = TunnelBody::new(FramedRecv::new(b), Some(11));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"hello ");
        assert!(!body.is_end_stream());
        let last = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&last[..], b"world");
        assert!(
            body.is_end_stream(),
            "the last chunk was handed on before the end frame was read"
        );
        assert!(body.frame().await.is_none());
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn more_bytes_than_declared_or_a_missing_end_are_errors() {
        let (a, b) = tokio::io::duplex(4096);
        let mut send = FramedSend::new(a);
        send.write_data(b"too long").await.unwrap();
        let mut body = TunnelBody::new(FramedRecv::new(b), Some(3));
        assert!(body.frame().await.unwrap().is_err());

        let (a, b) = tokio::io::duplex(4096);
        let mut send = FramedSend::new(a);
        send.write_data(b"cut").await.unwrap();
        drop(send);
        let mut body = TunnelBody::new(FramedRecv::new(b), None);
        assert!(body.frame().await.unwrap().unwrap().is_data());
        assert!(
            body.frame().await.unwrap().is_err(),
            "a stream that ends without End is cut"
        );
    }

    #[test]
    fn content_length_needs_one_valid_value() {
        let mut headers = HeaderMap::new();
        assert_eq!(content_length(&headers), None);
        headers.insert("content-length", "42".parse().unwrap());
        assert_eq!(content_length(&headers), Some(42));
        headers.append("content-length", "42".parse().unwrap());
        assert_eq!(content_length(&headers), None);
    }
}
