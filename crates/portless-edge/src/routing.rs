//! Routing layer: which tunnel serves the canonical host (or whether it is the portal).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use portless_proto::ErrorClass;
use tower::{Layer, Service};

use crate::body::EdgeBody;
use crate::context::{Canonical, Routed};
use crate::edge::EdgeState;

/// Adds [`Routed`] to each request, or answers `404 no_route`.
#[derive(Clone)]
pub(crate) struct RouteLayer {
    pub(crate) state: Arc<EdgeState>,
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Route {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service of [`RouteLayer`].
#[derive(Clone)]
pub(crate) struct Route<S> {
    inner: S,
    state: Arc<EdgeState>,
}

impl<S> Service<Request<Incoming>> for Route<S>
where
    S: Service<Request<Incoming>, Response = Response<EdgeBody>, Error = ErrorClass>,
    S::Future: Send + 'static,
{
    type Response = Response<EdgeBody>;
    type Error = ErrorClass;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EdgeBody>, ErrorClass>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ErrorClass>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let host = request
            .extensions()
            .get::<Canonical>()
            .map(|c| c.host.as_str());
        let portal = self
            .state
            .access
            .as_ref()
            .zip(host)
            .is_some_and(|(access, host)| access.portal_at(host).is_some());
        let target = if portal {
            Some(Routed::Portal)
        } else {
            host.and_then(|host| self.state.routes.lookup(host))
                .map(Routed::Tunnel)
        };
        match target {
            Some(target) => {
                request.extensions_mut().insert(target);
                Box::pin(self.inner.call(request))
            }
            None => Box::pin(std::future::ready(Err(ErrorClass::NoRoute))),
        }
    }
}
