//! Reading and writing `portless-proto` frames on a tunnel stream.

use bytes::{Bytes, BytesMut};
use portless_proto::{
    DecodeError, FRAME_HEADER_LEN, FrameHeader, FrameKind, HeaderList, MAX_DATA_FRAME,
    decode_message, encode_data_header, encode_message,
};
use serde::{Serialize, de::DeserializeOwned};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};

use crate::TransportError;
use crate::headers::to_header_list;

/// Read buffer: big enough for a typical request head in one read.
const READ_BUFFER: usize = 8 * 1024;

/// One element of a body on a request stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFrame {
    /// Body bytes.
    Data(Bytes),
    /// Trailing headers; the body is complete.
    Trailers(HeaderList),
    /// The body is complete.
    End,
    /// The sender gave up: what arrived is not a complete body.
    Abort,
}

/// Frame reader over the receiving half of a stream.
pub struct FramedRecv<R> {
    inner: BufReader<R>,
    partial: Partial,
}

/// Progress of a body frame read by [`FramedRecv::poll_body_frame`], kept between polls so
/// a body can be read without a future per frame.
#[derive(Default)]
struct Partial {
    header: [u8; FRAME_HEADER_LEN],
    header_filled: usize,
    payload: Option<(FrameHeader, BytesMut, usize)>,
}

impl<R: AsyncRead + Unpin> FramedRecv<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        Self {
            inner: BufReader::with_capacity(READ_BUFFER, inner),
            partial: Partial::default(),
        }
    }

    /// Reads the next frame header; `None` at a clean end of stream before any byte.
    pub async fn read_header(&mut self) -> Result<Option<FrameHeader>, TransportError> {
        let mut bytes = [0u8; FRAME_HEADER_LEN];
        let mut filled = 0;
        while filled < FRAME_HEADER_LEN {
            let n = self
                .inner
                .read(&mut bytes[filled..])
                .await
                .map_err(|e| TransportError::io("reading a frame header", e))?;
            if n == 0 {
                return if filled == 0 {
                    Ok(None)
                } else {
                    Err(TransportError::Closed)
                };
            }
            filled += n;
        }
        Ok(Some(FrameHeader::decode(bytes)?))
    }

    async fn read_payload(&mut self, len: usize) -> Result<BytesMut, TransportError> {
        let mut payload = BytesMut::zeroed(len);
        self.inner
            .read_exact(&mut payload)
            .await
            .map_err(|e| TransportError::io("reading a frame", e))?;
        Ok(payload)
    }

    /// Reads one message of the given kind; any other kind, or the end of stream, is an
    /// error.
    pub async fn read_message<T: DeserializeOwned>(
        &mut self,
        kind: FrameKind,
        expected: &'static str,
    ) -> Result<T, TransportError> {
        let header = self.read_header().await?.ok_or(TransportError::Closed)?;
        if header.kind != kind {
            return Err(DecodeError::Unexpected {
                got: header.kind,
                expected,
            }
            .into());
        }
        let payload = self.read_payload(header.len).await?;
        Ok(decode_message(&payload)?)
    }

    /// Reads the next message after its header was read by [`FramedRecv::read_header`].
    pub async fn read_payload_as<T: DeserializeOwned>(
        &mut self,
        header: FrameHeader,
    ) -> Result<T, TransportError> {
        let payload = self.read_payload(header.len).await?;
        Ok(decode_message(&payload)?)
    }

    /// Reads the next body frame. The end of the stream without `End` is reported as
    /// [`BodyFrame::Abort`]: a body is complete only when the sender says so.
    pub async fn read_body_frame(&mut self) -> Result<BodyFrame, TransportError> {
        std::future::poll_fn(|cx| self.poll_body_frame(cx)).await
    }

    /// Poll form of [`FramedRecv::read_body_frame`]; cancel-safe (progress is kept).
    pub fn poll_body_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<BodyFrame, TransportError>> {
        loop {
            if let Some((header, payload, filled)) = &mut self.partial.payload {
                while *filled < header.len {
                    let mut buf = ReadBuf::new(&mut payload[*filled..]);
                    ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf))
                        .map_err(|e| TransportError::io("reading a body frame", e))?;
                    let n = buf.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(TransportError::Closed));
                    }
                    *filled += n;
                }
                let header = *header;
                let payload = std::mem::take(payload);
                self.partial.payload = None;
                return Poll::Ready(body_frame(header, payload));
            }
            while self.partial.header_filled < FRAME_HEADER_LEN {
                let partial = &mut self.partial;
                let mut buf = ReadBuf::new(&mut partial.header[partial.header_filled..]);
                ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf))
                    .map_err(|e| TransportError::io("reading a body frame", e))?;
                let n = buf.filled().len();
                if n == 0 {
                    return Poll::Ready(if partial.header_filled == 0 {
                        Ok(BodyFrame::Abort)
                    } else {
                        Err(TransportError::Closed)
                    });
                }
                partial.header_filled += n;
            }
            self.partial.header_filled = 0;
            let header = FrameHeader::decode(self.partial.header)?;
            self.partial.payload = Some((header, BytesMut::zeroed(header.len), 0));
        }
    }

    /// The underlying reader, for the raw phase after an upgrade. Bytes already buffered are
    /// kept: the returned reader yields them first.
    pub fn into_raw(self) -> BufReader<R> {
        self.inner
    }
}

fn body_frame(header: FrameHeader, payload: BytesMut) -> Result<BodyFrame, TransportError> {
    match header.kind {
        FrameKind::Data => Ok(BodyFrame::Data(payload.freeze())),
        FrameKind::Trailers => Ok(BodyFrame::Trailers(decode_message(&payload)?)),
        FrameKind::End => Ok(BodyFrame::End),
        FrameKind::Abort => Ok(BodyFrame::Abort),
        got => Err(DecodeError::Unexpected {
            got,
            expected: "a body frame",
        }
        .into()),
    }
}

/// A stream that can send its last bytes and its end together.
///
/// Over HTTP/2 the difference matters: when the final frame and `END_STREAM` travel in
/// separate DATA frames, the receiver may process the final frame and drop the stream before
/// `END_STREAM` arrives, and h2 then resets a stream that was in fact complete (and counts
/// the late frames as protocol errors against the whole connection).
pub trait FinishWith: AsyncWrite + Unpin + Send {
    /// Writes `last`, then ends the stream.
    fn finish_with(&mut self, last: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send {
        async move {
            self.write_all(last).await?;
            self.shutdown().await
        }
    }
}

impl FinishWith for tokio::io::DuplexStream {}

/// Frame writer over the sending half of a stream.
pub struct FramedSend<W> {
    inner: W,
    scratch: BytesMut,
}

impl<W: AsyncWrite + Unpin> FramedSend<W> {
    /// Wraps a writer.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            scratch: BytesMut::new(),
        }
    }

    async fn write_io(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.inner
            .write_all(bytes)
            .await
            .map_err(|e| TransportError::io("writing to the tunnel stream", e))
    }

    /// Writes one serialized message.
    pub async fn write_message<T: Serialize>(
        &mut self,
        kind: FrameKind,
        message: &T,
    ) -> Result<(), TransportError> {
        self.scratch.clear();
        encode_message(kind, message, &mut self.scratch)?;
        let frame = self.scratch.split().freeze();
        self.write_io(&frame).await
    }

    /// Writes an already encoded frame (see `portless_proto::encode_message`): lets a caller
    /// encode once and retry on another stream.
    pub async fn write_encoded(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        self.write_io(frame).await
    }

    /// Writes body bytes as one or more `Data` frames.
    pub async fn write_data(&mut self, mut data: &[u8]) -> Result<(), TransportError> {
        while !data.is_empty() {
            let n = data.len().min(MAX_DATA_FRAME);
            self.write_io(&encode_data_header(n)).await?;
            self.write_io(&data[..n]).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes an empty frame of `kind` (`End`, `Abort`).
    pub async fn write_marker(&mut self, kind: FrameKind) -> Result<(), TransportError> {
        let header = FrameHeader { kind, len: 0 }.encode();
        self.write_io(&header).await
    }

    /// Half-closes the stream: no more bytes will be sent.
    ///
    /// Prefer [`FramedSend::finish_with_message`] or [`FramedSend::end_body`] to end a stream
    /// right after its last frame.
    pub async fn finish(&mut self) -> Result<(), TransportError> {
        self.inner
            .shutdown()
            .await
            .map_err(|e| TransportError::io("closing the tunnel stream", e))
    }

    /// The underlying writer, for the raw phase after an upgrade.
    pub fn into_raw(self) -> W {
        self.inner
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: FinishWith> FramedSend<W> {
    async fn finish_with_frame(&mut self) -> Result<(), TransportError> {
        let frame = self.scratch.split().freeze();
        self.inner
            .finish_with(&frame)
            .await
            .map_err(|e| TransportError::io("ending the tunnel stream", e))
    }

    /// Writes one message and ends the stream with it.
    pub async fn finish_with_message<T: Serialize>(
        &mut self,
        kind: FrameKind,
        message: &T,
    ) -> Result<(), TransportError> {
        self.scratch.clear();
        encode_message(kind, message, &mut self.scratch)?;
        self.finish_with_frame().await
    }

    /// Marks the body complete (with trailers when there are any) and ends the stream.
    pub async fn end_body(&mut self, trailers: Option<&HeaderList>) -> Result<(), TransportError> {
        match trailers {
            Some(trailers) => {
                self.finish_with_message(FrameKind::Trailers, trailers)
                    .await
            }
            None => {
                self.scratch.clear();
                self.scratch.extend_from_slice(
                    &FrameHeader {
                        kind: FrameKind::End,
                        len: 0,
                    }
                    .encode(),
                );
                self.finish_with_frame().await
            }
        }
    }

    /// Streams an HTTP body as frames as it arrives: `Data` per chunk, then `End` or
    /// `Trailers` together with the end of the stream. A failing body is sent as `Abort`, so
    /// the receiver never takes a cut body for a whole one.
    pub async fn send_body<B>(&mut self, body: B) -> Result<(), TransportError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let mut body = std::pin::pin!(body);
        loop {
            let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.write_data(&data).await?,
                    Err(frame) => {
                        let trailers = frame.into_trailers().ok().map(|t| to_header_list(&t));
                        return self.end_body(trailers.as_ref()).await;
                    }
                },
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "body failed; aborting the stream");
                    let _ = self.write_marker(FrameKind::Abort).await;
                    let _ = self.inner.flush().await;
                    return Err(TransportError::Aborted);
                }
                None => return self.end_body(None).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portless_proto::{Control, RequestHead};

    #[tokio::test]
    async fn body_frames_round_trip_and_a_missing_end_reads_as_abort() {
        let (a, b) = tokio::io::duplex(1024);
        let writer = tokio::spawn(async move {
            let mut send = FramedSend::new(a);
            send.write_message(FrameKind::RequestHead, &RequestHead::new("POST", "/", "h"))
                .await
                .unwrap();
            send.write_data(&vec![7u8; MAX_DATA_FRAME + 10])
                .await
                .unwrap();
            let trailers: HeaderList = vec![("grpc-status".into(), b"0".to_vec())];
            send.write_message(FrameKind::Trailers, &trailers)
                .await
                .unwrap();
            send.write_message(FrameKind::Control, &Control::Drain)
                .await
                .unwrap();
            send.write_data(b"cut").await.unwrap();
            // dropped without End
        });
        let mut recv = FramedRecv::new(b);
        let head: RequestHead = recv
            .read_message(FrameKind::RequestHead, "head")
            .await
            .unwrap();
        assert_eq!(head.method, "POST");
        let mut total = 0;
        loop {
            match recv.read_body_frame().await.unwrap() {
                BodyFrame::Data(d) => total += d.len(),
                BodyFrame::Trailers(t) => {
                    assert_eq!(t[0].0, "grpc-status");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(total, MAX_DATA_FRAME + 10);
        let control: Control = recv
            .read_message(FrameKind::Control, "control")
            .await
            .unwrap();
        assert_eq!(control, Control::Drain);
        assert!(matches!(
            recv.read_body_frame().await.unwrap(),
            BodyFrame::Data(_)
        ));
        assert_eq!(recv.read_body_frame().await.unwrap(), BodyFrame::Abort);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_frame_kind_is_an_error() {
        let (a, b) = tokio::io::duplex(1024);
        let mut send = FramedSend::new(a);
        send.write_message(FrameKind::Control, &Control::Ping(1))
            .await
            .unwrap();
        let mut recv = FramedRecv::new(b);
        let err = recv
            .read_message::<RequestHead>(FrameKind::RequestHead, "a request head")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("expected a request head"), "{err}");
    }
}
