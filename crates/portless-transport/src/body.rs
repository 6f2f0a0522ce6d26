//! An HTTP body read from tunnel body frames, streamed without buffering.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncRead;

use crate::headers::to_header_map;
use crate::{BodyFrame, FramedRecv, TransportError};

/// The body that follows a head on a tunnel stream: `Data` frames until `End` or
/// `Trailers`. An `Abort`, or a stream that ends early, is an error, so the receiver (hyper)
/// resets its side instead of presenting a truncated body as complete.
pub struct TunnelBody<R> {
    recv: Option<FramedRecv<R>>,
}

impl<R> TunnelBody<R> {
    /// A body read from `recv`.
    pub fn new(recv: FramedRecv<R>) -> Self {
        Self { recv: Some(recv) }
    }

    /// A body with no frames at all.
    pub fn empty() -> Self {
        Self { recv: None }
    }
}

impl<R: AsyncRead + Unpin> Body for TunnelBody<R> {
    type Data = Bytes;
    type Error = TransportError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, TransportError>>> {
        let Some(recv) = self.recv.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(recv.poll_body_frame(cx));
        let result = match frame {
            Ok(BodyFrame::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
            Ok(BodyFrame::Trailers(list)) => {
                to_header_map(&list).map(|map| Some(Frame::trailers(map)))
            }
            Ok(BodyFrame::End) => Ok(None),
            Ok(BodyFrame::Abort) => Err(TransportError::Aborted),
            Err(e) => Err(e),
        };
        self.recv = None;
        Poll::Ready(result.transpose())
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.recv.is_none() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}
