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
}
