//! What the pipeline learns about a request, layer by layer, kept in its extensions.
//!
//! Each layer adds one typed value and later layers read it, so no layer re-derives what an
//! earlier one decided (the canonical host in particular is computed exactly once).

use std::net::SocketAddr;

use http::HeaderValue;

use crate::routes::RouteTarget;

/// Set by the outermost layer for every request: what error pages and logs need.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    /// The request id, also sent to the origin and the client.
    pub(crate) request_id: String,
    /// The client's address (the TCP peer).
    pub(crate) client: SocketAddr,
    /// The client's `Accept`, to answer errors in HTML or JSON.
    pub(crate) accept: Option<HeaderValue>,
}

/// What the TLS handshake of the client's connection said.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionInfo {
    /// The SNI the client sent, canonical; `None` when it sent none.
    pub(crate) server_name: Option<String>,
}

/// The canonical request, computed once: routing, access policy and the origin all see
/// exactly these values.
// The access layer (next) reads the path, query and authority.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub(crate) struct Canonical {
    /// Lowercase, no port, no trailing dot, punycode.
    pub(crate) host: String,
    /// The authority as the client wrote it (with port), for redirects back to this host.
    pub(crate) authority: String,
    /// Canonical path and query, as sent to the origin.
    pub(crate) path_and_query: String,
    /// Length of the path part of `path_and_query`.
    pub(crate) path_len: usize,
}

#[allow(dead_code)]
impl Canonical {
    /// The canonical path, without the query.
    pub(crate) fn path(&self) -> &str {
        &self.path_and_query[..self.path_len]
    }

    /// The query string without `?`, if any.
    pub(crate) fn query(&self) -> Option<&str> {
        self.path_and_query
            .get(self.path_len..)
            .and_then(|rest| rest.strip_prefix('?'))
    }
}

/// Who serves the request (set by the routing layer).
#[derive(Debug, Clone)]
pub(crate) enum Routed {
    /// A tunnel.
    Tunnel(RouteTarget),
    /// The edge's own login portal.
    Portal,
}
