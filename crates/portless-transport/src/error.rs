//! Transport errors.

use std::io;

/// Why a tunnel connection or stream could not be established or used.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The TLS configuration could not be used for QUIC.
    #[error("TLS configuration is not usable for QUIC: {0}")]
    QuicConfig(String),
    /// The QUIC handshake or connection failed.
    #[error("QUIC connection failed: {0}")]
    Quic(String),
    /// The HTTP/2 session failed.
    #[error("HTTP/2 session failed: {0}")]
    H2(#[from] h2::Error),
    /// The handshake did not finish in time.
    #[error("handshake with {0} timed out")]
    HandshakeTimeout(String),
    /// The peer closed the connection.
    #[error("the tunnel connection is closed")]
    Closed,
    /// The sender abandoned the body: what arrived is incomplete.
    #[error("the body was cut short by the other side")]
    Aborted,
    /// A header name or value HTTP does not allow.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// A frame could not be decoded.
    #[error(transparent)]
    Decode(#[from] portless_proto::DecodeError),
}

impl TransportError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<quinn::ConnectionError> for TransportError {
    fn from(e: quinn::ConnectionError) -> Self {
        Self::Quic(e.to_string())
    }
}

impl From<quinn::ConnectError> for TransportError {
    fn from(e: quinn::ConnectError) -> Self {
        Self::Quic(e.to_string())
    }
}
