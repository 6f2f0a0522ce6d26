//! Request and response heads carried at the start of request streams.

use serde::{Deserialize, Serialize};

/// Header fields in order, names lowercase, values as raw bytes (header values need not be
/// UTF-8). Repeated names are repeated entries, as on the wire.
pub type HeaderList = Vec<(String, Vec<u8>)>;

/// What the edge sends to the connector for one HTTP request (or upgrade).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHead {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Canonical path and query, always starting with `/`. The same value routing and policy
    /// saw, and the one the origin receives.
    pub path: String,
    /// Canonical hostname (lowercase, no trailing dot, no port).
    pub host: String,
    /// End-to-end header fields (hop-by-hop ones already removed), including the edge's
    /// `x-forwarded-*` and request id.
    pub headers: HeaderList,
    /// The protocol requested in `Upgrade` (e.g. `websocket`); after a 101 response the
    /// stream carries raw bytes both ways.
    pub upgrade: Option<String>,
    /// Whether body frames follow (false when the request has no body at all).
    pub has_body: bool,
    /// The request id the edge assigned (also in the headers), for the connector's logs.
    pub request_id: String,
}

impl RequestHead {
    /// A head with no headers and no body.
    pub fn new(method: &str, path: &str, host: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            host: host.to_owned(),
            headers: Vec::new(),
            upgrade: None,
            has_body: false,
            request_id: String::new(),
        }
    }
}

/// What the connector sends back: the origin's (or a built-in service's) response head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// End-to-end header fields.
    pub headers: HeaderList,
    /// Whether body frames follow.
    pub has_body: bool,
}
