//! Frame header and message (de)serialization with bounded sizes.

use bytes::{BufMut, BytesMut};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::DecodeError;

/// The protocol version this build speaks. A frame with another version is refused, so a
/// future incompatible change fails loudly instead of being misread.
pub const PROTOCOL_VERSION: u8 = 1;

/// Bytes in a frame header: version, kind, 32-bit big-endian payload length.
pub const FRAME_HEADER_LEN: usize = 6;

/// Largest encoded message (registration, control, heads). Request heads are the biggest:
/// 64 KiB bounds the header block an edge forwards, like common proxies' defaults.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// Largest body chunk in one `Data` frame; senders split larger chunks. Bounds how much a
/// receiver must hold before it can hand a chunk on.
pub const MAX_DATA_FRAME: usize = 256 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Connector → edge, first frame of the control stream.
    Register = 1,
    /// Edge → connector, answer to `Register`.
    RegisterResponse = 2,
    /// Control message, either direction, on the control stream.
    Control = 3,
    /// Edge → connector, first frame of a request stream.
    RequestHead = 4,
    /// Connector → edge, the origin's response head.
    ResponseHead = 5,
    /// A chunk of body bytes (raw payload, no serialization).
    Data = 6,
    /// Trailing headers; ends the body.
    Trailers = 7,
    /// The sender gave up on this body (origin reset, client gone): the receiver must not
    /// treat what it got as a complete body.
    Abort = 8,
    /// Connector → edge, the request could not be served; carries an [`crate::StreamError`].
    StreamError = 9,
    /// The body is complete. A stream that ends without `End` (or `Trailers`) was cut short:
    /// transports may finish a stream implicitly when a handle is dropped, so the end of a
    /// body is never inferred from the end of the stream.
    End = 10,
}

impl FrameKind {
    fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Register,
            2 => Self::RegisterResponse,
            3 => Self::Control,
            4 => Self::RequestHead,
            5 => Self::ResponseHead,
            6 => Self::Data,
            7 => Self::Trailers,
            8 => Self::Abort,
            9 => Self::StreamError,
            10 => Self::End,
            _ => return None,
        })
    }

    /// Largest payload accepted for this kind.
    pub fn max_len(self) -> usize {
        match self {
            Self::Data => MAX_DATA_FRAME,
            Self::End => 0,
            _ => MAX_MESSAGE_LEN,
        }
    }
}

/// A decoded frame header: what follows and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The kind of the payload.
    pub kind: FrameKind,
    /// Payload length in bytes, already checked against [`FrameKind::max_len`].
    pub len: usize,
}

impl FrameHeader {
    /// Decodes and bounds-checks a frame header.
    pub fn decode(bytes: [u8; FRAME_HEADER_LEN]) -> Result<Self, DecodeError> {
        if bytes[0] != PROTOCOL_VERSION {
            return Err(DecodeError::Version {
                got: bytes[0],
                supported: PROTOCOL_VERSION,
            });
        }
        let kind = FrameKind::from_u8(bytes[1]).ok_or(DecodeError::Kind(bytes[1]))?;
        let len = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
        if len > kind.max_len() {
            return Err(DecodeError::TooLong {
                kind,
                len,
                max: kind.max_len(),
            });
        }
        Ok(Self { kind, len })
    }

    /// Encodes this header.
    pub fn encode(self) -> [u8; FRAME_HEADER_LEN] {
        let len = (self.len as u32).to_be_bytes();
        [
            PROTOCOL_VERSION,
            self.kind as u8,
            len[0],
            len[1],
            len[2],
            len[3],
        ]
    }
}

/// Appends a complete framed message (header and serialized payload) to `dst`.
pub fn encode_message<T: Serialize>(
    kind: FrameKind,
    message: &T,
    dst: &mut BytesMut,
) -> Result<(), DecodeError> {
    let start = dst.len();
    dst.put_bytes(0, FRAME_HEADER_LEN);
    if let Err(e) = postcard::to_io(message, (&mut *dst).writer()) {
        dst.truncate(start);
        return Err(DecodeError::Malformed(e.to_string()));
    }
    let len = dst.len() - start - FRAME_HEADER_LEN;
    if len > kind.max_len() {
        dst.truncate(start);
        return Err(DecodeError::TooLong {
            kind,
            len,
            max: kind.max_len(),
        });
    }
    dst[start..start + FRAME_HEADER_LEN].copy_from_slice(&FrameHeader { kind, len }.encode());
    Ok(())
}

/// Appends the header of a `Data` frame of `len` bytes; the caller writes the bytes after it.
pub fn encode_data_header(len: usize) -> [u8; FRAME_HEADER_LEN] {
    FrameHeader {
        kind: FrameKind::Data,
        len,
    }
    .encode()
}

/// Deserializes a message payload (the bytes after the header).
pub fn decode_message<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    let (message, rest) =
        postcard::take_from_bytes(payload).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Control, RequestHead};
    use proptest::prelude::*;

    fn split(buf: &[u8]) -> (FrameHeader, &[u8]) {
        let mut head = [0u8; FRAME_HEADER_LEN];
        head.copy_from_slice(&buf[..FRAME_HEADER_LEN]);
        let header = FrameHeader::decode(head).unwrap();
        (header, &buf[FRAME_HEADER_LEN..])
    }

    #[test]
    fn control_round_trip() {
        let mut buf = BytesMut::new();
        encode_message(FrameKind::Control, &Control::Ping(7), &mut buf).unwrap();
        let (header, payload) = split(&buf);
        assert_eq!(header.kind, FrameKind::Control);
        assert_eq!(header.len, payload.len());
        assert_eq!(
            decode_message::<Control>(payload).unwrap(),
            Control::Ping(7)
        );
    }

    #[test]
    fn unknown_version_is_refused_with_both_versions_named() {
        let err = FrameHeader::decode([9, 1, 0, 0, 0, 0]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("version 9"), "{text}");
        assert!(text.contains("version 1"), "{text}");
    }

    #[test]
    fn oversized_frames_are_refused_before_reading_them() {
        let header = FrameHeader {
            kind: FrameKind::RequestHead,
            len: MAX_MESSAGE_LEN + 1,
        };
        assert!(matches!(
            FrameHeader::decode(header.encode()),
            Err(DecodeError::TooLong { .. })
        ));
        let data = FrameHeader {
            kind: FrameKind::Data,
            len: MAX_DATA_FRAME,
        };
        assert_eq!(FrameHeader::decode(data.encode()).unwrap(), data);
    }

    #[test]
    fn unknown_kind_is_refused() {
        assert!(matches!(
            FrameHeader::decode([PROTOCOL_VERSION, 200, 0, 0, 0, 0]),
            Err(DecodeError::Kind(200))
        ));
    }

    #[test]
    fn encoding_a_too_large_message_fails_and_leaves_the_buffer_as_it_was() {
        let mut head = RequestHead::new("GET", "/", "a.test");
        head.headers
            .push(("x-big".into(), vec![b'a'; MAX_MESSAGE_LEN]));
        let mut buf = BytesMut::from(&b"keep"[..]);
        assert!(encode_message(FrameKind::RequestHead, &head, &mut buf).is_err());
        assert_eq!(&buf[..], b"keep");
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut buf = BytesMut::new();
        encode_message(FrameKind::Control, &Control::Drain, &mut buf).unwrap();
        buf.put_u8(0);
        let payload = &buf[FRAME_HEADER_LEN..];
        assert!(decode_message::<Control>(payload).is_err());
    }

    proptest! {
        #[test]
        fn request_heads_round_trip(
            method in "[A-Z]{1,10}",
            path in "/[ -~]{0,100}",
            host in "[a-z0-9.-]{1,60}",
            headers in proptest::collection::vec(("[a-z-]{1,20}", proptest::collection::vec(any::<u8>(), 0..50)), 0..20),
        ) {
            let mut head = RequestHead::new(&method, &path, &host);
            head.headers = headers;
            let mut buf = BytesMut::new();
            encode_message(FrameKind::RequestHead, &head, &mut buf).unwrap();
            let (header, payload) = split(&buf);
            prop_assert_eq!(header.kind, FrameKind::RequestHead);
            prop_assert_eq!(decode_message::<RequestHead>(payload).unwrap(), head);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_message::<RequestHead>(&bytes);
            let _ = decode_message::<crate::Register>(&bytes);
            if bytes.len() >= FRAME_HEADER_LEN {
                let mut head = [0u8; FRAME_HEADER_LEN];
                head.copy_from_slice(&bytes[..FRAME_HEADER_LEN]);
                let _ = FrameHeader::decode(head);
            }
        }
    }
}
