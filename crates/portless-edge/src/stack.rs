//! The edge's request pipeline, composed in one place:
//!
//! ```text
//! respond → canonicalize → route → access → proxy
//! ```
//!
//! * `respond` gives every request an id and turns refusals into pages and metrics;
//! * `canonicalize` refuses ambiguous requests and computes the canonical host and path once;
//! * `route` picks the tunnel for the canonical host (or the portal);
//! * `access` judges the request against the policy, answers the portal, and sets the
//!   identity headers and signed assertion origins receive;
//! * `proxy` streams the request through one of that tunnel's connections.
//!
//! A request refused by a layer never reaches the layers after it.

use std::net::SocketAddr;
use std::sync::Arc;

use tower::ServiceBuilder;

use crate::access::AccessLayer;
use crate::canonicalize::CanonicalizeLayer;
use crate::edge::EdgeState;
use crate::proxy::Proxy;
use crate::respond::RespondLayer;
use crate::routing::RouteLayer;

/// The pipeline for one client connection from `client`.
pub(crate) fn pipeline(
    state: Arc<EdgeState>,
    client: SocketAddr,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::body::EdgeBody>,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(RespondLayer {
            state: state.clone(),
            client,
        })
        .layer(CanonicalizeLayer)
        .layer(RouteLayer {
            state: state.clone(),
        })
        .layer(AccessLayer {
            state: state.clone(),
        })
        .service(Proxy { state })
}

/// The pipeline for ACME HTTP-01 requests passed to an origin (`acme_challenge_to_origin`):
/// the same layers without access policy, because the CA validating a challenge cannot
/// sign in. Only `/.well-known/acme-challenge/` paths ever reach it.
pub(crate) fn challenge_pipeline(
    state: Arc<EdgeState>,
    client: SocketAddr,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::body::EdgeBody>,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(RespondLayer {
            state: state.clone(),
            client,
        })
        .layer(CanonicalizeLayer)
        .layer(RouteLayer {
            state: state.clone(),
        })
        .service(Proxy { state })
}
