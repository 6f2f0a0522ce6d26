//! The sans-IO wire protocol spoken between a Portless edge and its connectors.
//!
//! Nothing here touches a socket or a clock: the types describe what is sent, and the
//! functions turn them into bytes and back with bounded sizes, so every protocol case is a
//! deterministic unit test and a fuzz target. The async readers and writers live in
//! `portless-transport`.
//!
//! Every tunnel *stream* starts with one framed message and may be followed by more frames:
//!
//! ```text
//! frame = version:u8 kind:u8 len:u32be payload[len]
//! ```
//!
//! * control stream (one per connection, opened by the connector):
//!   [`Register`] → [`RegisterResponse`], then [`Control`] messages both ways;
//! * request stream (opened by the edge): [`RequestHead`], body frames (`Data`, then `End`
//!   or `Trailers`, or `Abort`); the connector answers [`ResponseHead`] (or
//!   [`StreamError`]) and body frames. After a `101 Switching Protocols` both directions carry
//!   raw bytes until each side half-closes.
//!
//! Main types: [`FrameHeader`], [`FrameKind`], [`Register`], [`RegisterResponse`],
//! [`Control`], [`RequestHead`], [`ResponseHead`], [`StreamError`], [`ErrorClass`],
//! [`TunnelToken`], [`Credentials`].
//!
//! Layout:
//! * `canonical` — the one canonical form of a request's host and path;
//! * `frame` — frame header, kinds, size limits, message encode/decode;
//! * `messages` — registration and control messages;
//! * `http` — request and response heads carried on request streams;
//! * `error` — error classes shared by edge and connector, and decode errors;
//! * `credentials` — the tunnel token and credentials-file formats.

mod canonical;
mod credentials;
mod error;
mod frame;
mod http;
mod messages;

pub use canonical::{CanonicalError, canonical_host, canonical_path};
pub use credentials::{Credentials, CredentialsError, TunnelSecret, TunnelToken};
pub use error::{DecodeError, ErrorClass, StreamError};
pub use frame::{
    FRAME_HEADER_LEN, FrameHeader, FrameKind, MAX_DATA_FRAME, MAX_MESSAGE_LEN, PROTOCOL_VERSION,
    decode_message, encode_data_header, encode_message,
};
pub use http::{HeaderList, RequestHead, ResponseHead};
pub use messages::{Control, RefusalCode, Refused, Register, RegisterResponse, Registered};
