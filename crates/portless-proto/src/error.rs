//! Error classes shared by edge and connector, and decoding errors.

use serde::{Deserialize, Serialize};

use crate::FrameKind;

/// Why a request could not be served, as one closed set: the edge maps each class once to a
/// status code, an error page and a metric label, so users can tell *who* failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorClass {
    /// No route for this hostname at the edge.
    NoRoute,
    /// The hostname's tunnel has no live connection.
    TunnelDown,
    /// The connector could not connect to the origin (refused, unreachable, DNS, TLS).
    OriginUnreachable,
    /// The origin accepted the connection but did not answer in time.
    OriginTimeout,
    /// The origin is marked unhealthy by health checks.
    OriginDown,
    /// The connector refused to dial the origin (egress guard).
    EgressDenied,
    /// The request was malformed.
    BadRequest,
    /// A bug or an unexpected state; details are in the logs.
    Internal,
    /// The connector refused the request: its rule requires an identity assertion
    /// (`originRequest.access`) and the request carried none, or an invalid one.
    AccessDenied,
}

impl ErrorClass {
    /// Stable snake_case name used in metrics labels, logs and error pages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRoute => "no_route",
            Self::TunnelDown => "tunnel_down",
            Self::OriginUnreachable => "origin_unreachable",
            Self::OriginTimeout => "origin_timeout",
            Self::OriginDown => "origin_down",
            Self::EgressDenied => "egress_denied",
            Self::BadRequest => "bad_request",
            Self::Internal => "internal",
            Self::AccessDenied => "access_denied",
        }
    }

    /// The HTTP status a visitor receives for this class.
    pub fn status(self) -> u16 {
        match self {
            Self::NoRoute => 404,
            Self::TunnelDown => 503,
            Self::OriginUnreachable | Self::EgressDenied => 502,
            Self::OriginTimeout => 504,
            Self::OriginDown => 503,
            Self::BadRequest => 400,
            Self::Internal => 500,
            Self::AccessDenied => 403,
        }
    }

    /// Every class, for metrics pre-registration and exhaustive tests.
    pub const ALL: [ErrorClass; 9] = [
        Self::NoRoute,
        Self::TunnelDown,
        Self::OriginUnreachable,
        Self::OriginTimeout,
        Self::OriginDown,
        Self::EgressDenied,
        Self::BadRequest,
        Self::Internal,
        Self::AccessDenied,
    ];
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connector's answer when it cannot produce a response head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamError {
    /// What failed.
    pub class: ErrorClass,
    /// A short human-readable detail for logs (never shown with secrets).
    pub message: String,
}

/// A frame or message that cannot be decoded. Any of these ends the stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The peer speaks another protocol version.
    #[error(
        "peer speaks Portless tunnel protocol version {got}, this build speaks version {supported}: run the same Portless release on edge and connector"
    )]
    Version {
        /// Version byte received.
        got: u8,
        /// Version this build speaks.
        supported: u8,
    },
    /// Unknown frame kind byte.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// A frame longer than its kind allows.
    #[error("{kind:?} frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// The frame's kind.
        kind: FrameKind,
        /// Its announced length.
        len: usize,
        /// The limit for that kind.
        max: usize,
    },
    /// A frame of a kind not allowed at this point of the stream.
    #[error("unexpected {got:?} frame, expected {expected}")]
    Unexpected {
        /// What arrived.
        got: FrameKind,
        /// What the state machine expected.
        expected: &'static str,
    },
    /// The payload does not deserialize.
    #[error("malformed message: {0}")]
    Malformed(String),
}
