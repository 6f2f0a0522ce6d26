//! Any bytes a peer sends: frame headers and every message type must decode or fail, never
//! panic, and what decodes must re-encode to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portless_proto::{
    decode_message, encode_message, Control, FrameHeader, FrameKind, Register, RegisterResponse,
    RequestHead, ResponseHead, StreamError, FRAME_HEADER_LEN,
};

fn round_trip<T>(kind: FrameKind, payload: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(message) = decode_message::<T>(payload) {
        let mut buf = bytes::BytesMut::new();
        if encode_message(kind, &message, &mut buf).is_ok() {
            let again: T = decode_message(&buf[FRAME_HEADER_LEN..]).expect("re-decode");
            assert_eq!(again, message);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() >= FRAME_HEADER_LEN {
        let mut head = [0u8; FRAME_HEADER_LEN];
        head.copy_from_slice(&data[..FRAME_HEADER_LEN]);
        let _ = FrameHeader::decode(head);
    }
    round_trip::<Register>(FrameKind::Register, data);
    round_trip::<RegisterResponse>(FrameKind::RegisterResponse, data);
    round_trip::<Control>(FrameKind::Control, data);
    round_trip::<RequestHead>(FrameKind::RequestHead, data);
    round_trip::<ResponseHead>(FrameKind::ResponseHead, data);
    round_trip::<StreamError>(FrameKind::StreamError, data);
});
