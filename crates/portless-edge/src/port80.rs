//! The plain-HTTP listener (port 80): ACME HTTP-01 answers, and a redirect to HTTPS for
//! everything else.
//!
//! * `GET /.well-known/acme-challenge/TOKEN` answers the key authorization of a pending order
//!   of this edge; for hostnames in `acme_challenge_to_origin` the request goes through the
//!   tunnel to the origin instead (origins that manage their own certificates).
//! * Any other request with a valid `Host` gets `308 Permanent Redirect` to the same host, path
//!   and query over https; a missing or malformed `Host` gets `400`, so a redirect never
//!   points at a name the client did not ask for.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tracing::debug;

use crate::body::EdgeBody;
use crate::canonicalize::canonicalize;
use crate::edge::EdgeState;
use crate::stack;

/// The path prefix of HTTP-01 challenges (RFC 8555 §8.3).
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Accepts plain-HTTP connections until shutdown.
pub(crate) async fn serve_port80(listener: TcpListener, state: Arc<EdgeState>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.options.client_header_timeout)
        .keep_alive(true);
    loop {
        let (socket, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "port-80 accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = state.public_shutdown.cancelled() => return,
        };
        let state2 = state.clone();
        let builder = builder.clone();
        state.tasks.spawn(async move {
            let service =
                hyper::service::service_fn(move |request| answer(state2.clone(), client, request));
            let connection = builder.serve_connection(TokioIo::new(socket), service);
            if let Err(e) = connection.await {
                debug!(%client, error = %e, "port-80 connection ended with an error");
            }
        });
    }
}

async fn answer(
    state: Arc<EdgeState>,
    client: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<EdgeBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(canonical) = canonicalize(&parts) else {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "bad request: a valid Host header is required\n",
        ));
    };
    if let Some(token) = canonical.path().strip_prefix(CHALLENGE_PREFIX) {
        if state.challenge_to_origin(&canonical.host) {
            // The origin answers its own challenges: the normal proxy path, without access
            // policy (the CA cannot sign in).
            let pipeline = stack::challenge_pipeline(state.clone(), client);
            return pipeline.oneshot(Request::from_parts(parts, body)).await;
        }
        let answer = state
            .acme
            .as_ref()
            .and_then(|acme| acme.challenges().http_answer(token));
        return Ok(match answer {
            Some(key_authorization) => {
                let mut response = plain(StatusCode::OK, "");
                *response.body_mut() = EdgeBody::full(Bytes::from(key_authorization));
                response
            }
            None => plain(StatusCode::NOT_FOUND, "no such ACME challenge\n"),
        });
    }
    let port = match state.options.http.https_port {
        Some(443) | None => String::new(),
        Some(port) => format!(":{port}"),
    };
    let location = format!(
        "https://{}{port}{}",
        canonical.host, canonical.path_and_query
    );
    let Ok(location) = HeaderValue::try_from(location) else {
        return Ok(plain(StatusCode::BAD_REQUEST, "bad request\n"));
    };
    let mut response = plain(StatusCode::PERMANENT_REDIRECT, "");
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

fn plain(status: StatusCode, text: &'static str) -> Response<EdgeBody> {
    let mut response = Response::new(EdgeBody::full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
