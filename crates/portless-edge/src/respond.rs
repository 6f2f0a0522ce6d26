//! Outermost layer: every request gets an id, every refusal becomes a page, every response
//! is counted.
//!
//! Inner layers answer `Err(ErrorClass)` when they refuse a request; only this layer turns a
//! class into a status, a page and a metric, so the mapping lives in one place.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use portless_proto::ErrorClass;
use tower::{Layer, Service};
use tracing::debug;

use crate::body::EdgeBody;
use crate::context::RequestContext;
use crate::edge::EdgeState;
use crate::forwarding::REQUEST_ID;
use crate::metrics::CodeLabel;
use crate::pages::error_page;

/// Wraps the pipeline of one client connection.
#[derive(Clone)]
pub(crate) struct RespondLayer {
    pub(crate) state: Arc<EdgeState>,
    pub(crate) client: SocketAddr,
}

impl<S> Layer<S> for RespondLayer {
    type Service = Respond<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Respond {
            inner,
            state: self.state.clone(),
            client: self.client,
        }
    }
}

/// The service of [`RespondLayer`].
#[derive(Clone)]
pub(crate) struct Respond<S> {
    inner: S,
    state: Arc<EdgeState>,
    client: SocketAddr,
}

impl<S> Service<Request<Incoming>> for Respond<S>
where
    S: Service<Request<Incoming>, Response = Response<EdgeBody>, Error = ErrorClass>,
    S::Future: Send + 'static,
{
    type Response = Response<EdgeBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EdgeBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Inner layers are always ready and never fail readiness; a failure would be a bug
        // answered per request below.
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        self.state.metrics.requests.inc();
        let context = RequestContext {
            request_id: new_request_id(),
            client: self.client,
            accept: request.headers().get(header::ACCEPT).cloned(),
        };
        request.extensions_mut().insert(context.clone());
        let answer = self.inner.call(request);
        let state = self.state.clone();
        Box::pin(async move {
            let mut response = match answer.await {
                Ok(response) => response,
                Err(class) => {
                    state.metrics.error(class);
                    debug!(
                        request_id = context.request_id,
                        class = class.as_str(),
                        "request answered with an error page"
                    );
                    error_page(class, &context.request_id, context.accept.as_ref())
                }
            };
            if let Ok(value) = HeaderValue::from_str(&context.request_id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            state
                .metrics
                .responses
                .get_or_create(&CodeLabel {
                    status_code: response.status().as_u16(),
                })
                .inc();
            Ok(response)
        })
    }
}

/// A request id: 128 random bits in hex. Ids correlate log lines and support requests;
/// they are not secrets, so a fast non-cryptographic generator (no syscall per request)
/// is enough.
pub(crate) fn new_request_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}
