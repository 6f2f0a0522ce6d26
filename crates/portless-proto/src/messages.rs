//! Registration and control messages of the control stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TunnelSecret;

/// First message of a connection: the connector asks to serve a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// The tunnel this connection serves.
    pub tunnel_id: Uuid,
    /// Proof of the tunnel secret. It travels only inside TLS 1.3 to an edge the connector
    /// has verified; the edge hashes it and compares with the stored hash in constant time.
    pub secret: TunnelSecret,
    /// Stable for one connector process; groups its connections (one replica).
    pub connector_id: Uuid,
    /// Index of this connection within the connector (0-based).
    pub conn_index: u8,
    /// The connector's release, for logs.
    pub client_version: String,
    /// Optional capabilities the connector supports, for forward compatibility.
    pub features: Vec<String>,
}

/// The edge's answer to [`Register`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterResponse {
    /// The connection now serves the tunnel.
    Registered(Registered),
    /// The edge refused the connection.
    Refused(Refused),
}

/// Success of a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// Id of this connection at the edge, shown in both sides' logs.
    pub connection_id: Uuid,
    /// The edge's name (location), for the connector's log line.
    pub edge_name: String,
}

/// Failure of a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// Machine-readable reason.
    pub code: RefusalCode,
    /// Human-readable explanation with the fix.
    pub message: String,
    /// When set, the connector should wait at least this long before retrying.
    pub retry_after_ms: Option<u64>,
}

/// Why an edge refused a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    /// Unknown tunnel or wrong secret (deliberately not distinguished).
    Unauthorized,
    /// The edge is shutting down; try another edge or later.
    ShuttingDown,
    /// The edge has too many connections for this tunnel.
    Overloaded,
    /// The edge could not check the credentials (store unavailable); fail closed, retry.
    Unavailable,
}

/// Messages on the control stream after registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Connector → edge: send no new requests on this connection; in-flight ones finish.
    Drain,
    /// Liveness probe carrying an opaque value echoed by [`Control::Pong`].
    Ping(u64),
    /// Answer to [`Control::Ping`].
    Pong(u64),
    /// Edge → connector: the tunnel's remotely managed config (the connector YAML format),
    /// sent right after registration and whenever it changes. Only sent to connectors that
    /// announced [`Register::FEATURE_CONFIG_UPDATES`]: an older connector would fail to decode
    /// it and drop the connection. The whole message must fit in [`crate::MAX_MESSAGE_LEN`],
    /// so `yaml` is at most [`Control::MAX_CONFIG_YAML_LEN`] bytes.
    ConfigUpdate {
        /// The tunnel's config version in the edge's store; it only grows.
        version: u64,
        /// The config text.
        yaml: String,
    },
    /// Connector → edge: what the connector did with a [`Control::ConfigUpdate`].
    ConfigStatus {
        /// The version this status is about.
        version: u64,
        /// Whether the connector now serves this version's rules.
        applied: bool,
        /// Why not, when `applied` is false (validation errors, or local config in use);
        /// at most [`Control::MAX_STATUS_ERROR_LEN`] bytes.
        error: Option<String>,
    },
    /// Edge → connector: the edge's identity-assertion key set (JWKS JSON, as published at
    /// `/cdn-cgi/access/certs`), sent right after registration and whenever the keys rotate.
    /// A connector verifies the assertions of rules with `originRequest.access` against it.
    /// Only sent to connectors that announced [`Register::FEATURE_ACCESS_KEYS`]; at most
    /// [`Control::MAX_ACCESS_KEYS_LEN`] bytes.
    AccessKeys {
        /// The JWKS JSON (`{"keys":[...]}`).
        jwks: String,
    },
}

impl Register {
    /// Feature: the connector understands [`Control::ConfigUpdate`] and answers it with
    /// [`Control::ConfigStatus`].
    pub const FEATURE_CONFIG_UPDATES: &'static str = "config-updates";

    /// Feature: the connector understands [`Control::AccessKeys`] (and verifies identity
    /// assertions with them).
    pub const FEATURE_ACCESS_KEYS: &'static str = "access-keys";
}

impl Control {
    /// Largest config text a [`Control::ConfigUpdate`] carries: the message limit minus the
    /// encoding overhead (variant tag, version and length varints: at most 14 bytes), with
    /// room to spare. Pushing a larger config is refused up front.
    pub const MAX_CONFIG_YAML_LEN: usize = crate::MAX_MESSAGE_LEN - 64;

    /// Longest error text a [`Control::ConfigStatus`] carries; longer errors are cut so the
    /// status always fits in one message (the full text is in the connector's log).
    pub const MAX_STATUS_ERROR_LEN: usize = 16 * 1024;

    /// Largest key set a [`Control::AccessKeys`] carries (the message limit minus the
    /// encoding overhead, with room to spare); a few keys take well under 1 KiB.
    pub const MAX_ACCESS_KEYS_LEN: usize = crate::MAX_MESSAGE_LEN - 64;

    /// A [`Control::ConfigStatus`], with `error` cut to [`Control::MAX_STATUS_ERROR_LEN`] bytes
    /// on a character boundary.
    pub fn config_status(version: u64, applied: bool, error: Option<&str>) -> Control {
        let error = error.map(|text| {
            let mut end = text.len().min(Self::MAX_STATUS_ERROR_LEN);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_owned()
        });
        Control::ConfigStatus {
            version,
            applied,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameKind, MAX_MESSAGE_LEN, decode_message, encode_message};

    #[test]
    fn the_largest_config_update_fits_in_one_message() {
        let update = Control::ConfigUpdate {
            version: u64::MAX,
            yaml: "a".repeat(Control::MAX_CONFIG_YAML_LEN),
        };
        let mut buf = bytes::BytesMut::new();
        encode_message(FrameKind::Control, &update, &mut buf).unwrap();
        assert!(buf.len() <= crate::FRAME_HEADER_LEN + MAX_MESSAGE_LEN);
        let back: Control = decode_message(&buf[crate::FRAME_HEADER_LEN..]).unwrap();
        assert_eq!(back, update);
    }

    #[test]
    fn access_keys_round_trip() {
        let keys = Control::AccessKeys {
            jwks: r#"{"keys":[{"kty":"EC","kid":"k"}]}"#.to_owned(),
        };
        let mut buf = bytes::BytesMut::new();
        encode_message(FrameKind::Control, &keys, &mut buf).unwrap();
        let back: Control = decode_message(&buf[crate::FRAME_HEADER_LEN..]).unwrap();
        assert_eq!(back, keys);
        let largest = Control::AccessKeys {
            jwks: "a".repeat(Control::MAX_ACCESS_KEYS_LEN),
        };
        let mut buf = bytes::BytesMut::new();
        encode_message(FrameKind::Control, &largest, &mut buf).unwrap();
        assert!(buf.len() <= crate::FRAME_HEADER_LEN + MAX_MESSAGE_LEN);
    }

    #[test]
    fn a_long_status_error_is_cut_on_a_character_boundary() {
        let long = "é".repeat(Control::MAX_STATUS_ERROR_LEN);
        let Control::ConfigStatus { error, .. } = Control::config_status(3, false, Some(&long))
        else {
            panic!("not a status");
        };
        let error = error.unwrap();
        assert!(error.len() <= Control::MAX_STATUS_ERROR_LEN);
        assert!(error.chars().all(|c| c == 'é'));
    }
}
