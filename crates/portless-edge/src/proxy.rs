//! One public request through a tunnel stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portless_proto::{
    ErrorClass, FrameKind, RequestHead, ResponseHead, StreamError, encode_message,
};
use portless_transport::{
    FinishWith as _, FramedRecv, FramedSend, RecvHalf, SendHalf, TunnelBody, content_length,
    to_header_map,
};
use tokio::io::AsyncWriteExt as _;
use tower::Service;
use tracing::debug;

use crate::body::{EdgeBody, GaugeGuard};
use crate::context::{Canonical, RequestContext, Routed};
use crate::edge::EdgeState;
use crate::forwarding::{Forwarded, request_headers, strip_response, upgrade_protocol};
use crate::registry::InFlight;

/// Connections tried for one request before answering `tunnel_down`.
const MAX_ATTEMPTS: usize = 4;

/// Last service of the pipeline: one admitted request through a tunnel stream.
#[derive(Clone)]
pub(crate) struct Proxy {
    pub(crate) state: Arc<EdgeState>,
}

impl Service<Request<Incoming>> for Proxy {
    type Response = Response<EdgeBody>;
    type Error = ErrorClass;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EdgeBody>, ErrorClass>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ErrorClass>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            let gauge = GaugeGuard::new(&state.metrics.concurrent);
            forward(&state, request, gauge).await
        })
    }
}

/// Why no response head came back.
pub(crate) enum Failure {
    /// The connector answered with an error class.
    Answered(ErrorClass),
    /// The stream or its connection failed.
    Transport,
}

async fn forward(
    state: &Arc<EdgeState>,
    request: Request<Incoming>,
    gauge: GaugeGuard,
) -> Result<Response<EdgeBody>, ErrorClass> {
    let (mut parts, body) = request.into_parts();
    // Earlier layers always set these; a request without them is refused, not guessed at.
    let (Some(context), Some(canonical), Some(Routed::Tunnel(route))) = (
        parts.extensions.remove::<RequestContext>(),
        parts.extensions.remove::<Canonical>(),
        parts.extensions.remove::<Routed>(),
    ) else {
        return Err(ErrorClass::Internal);
    };
    let request_id = context.request_id.as_str();
    let client = context.client;
    let host = canonical.host;
    let path = canonical.path_and_query;
    if !state.https_guard.allows(&host, client.ip()) {
        return Err(ErrorClass::AccessDenied);
    }
    let upgrade = upgrade_protocol(parts.version, &parts.headers);
    if upgrade.is_some() && !state.https_guard.allows_upgrade(&host) {
        return Err(ErrorClass::BadRequest);
    }
    // UDP flows start only at a UDP port of the edge, behind its allow-list and flow cap; a
    // public request must not open one at the connector's `udp://` rule.
    if upgrade
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(portless_transport::UDP_UPGRADE))
    {
        return Err(ErrorClass::BadRequest);
    }
    let has_body = upgrade.is_none() && !body.is_end_stream();
    let headers = request_headers(
        &parts.headers,
        &Forwarded {
            client_ip: client.ip(),
            host: &host,
            request_id,
            upgrade: upgrade.as_deref(),
        },
    );
    let head = RequestHead {
        method: parts.method.as_str().to_owned(),
        path,
        host,
        headers,
        upgrade: upgrade.clone(),
        has_body,
        request_id: request_id.to_owned(),
    };
    // Encoded once: a head too large for the protocol is the client's problem (400), not a
    // reason to try every connection.
    let mut encoded = bytes::BytesMut::new();
    encode_message(FrameKind::RequestHead, &head, &mut encoded)
        .map_err(|_| ErrorClass::BadRequest)?;
    // A request is replayed on another connection only when nothing of it can have had an
    // effect that matters: no body, and a method that is idempotent by definition.
    let replayable = !has_body && upgrade.is_none() && is_idempotent(&parts.method);
    let mut body = Some(body);
    let mut tried = Vec::with_capacity(2);
    let (claim, send, recv, answer) = loop {
        let claim = state
            .registry
            .pick(route.tunnel_id, &tried)
            .ok_or(ErrorClass::TunnelDown)?;
        tried.push(claim.connection().id);
        let Ok(stream) = claim.connection().connection.open_stream().await else {
            continue;
        };
        let mut send = FramedSend::new(stream.send);
        let mut recv = FramedRecv::new(stream.recv);
        let send = if has_body || upgrade.is_some() {
            if send.write_encoded(&encoded).await.is_err() {
                // Nothing of the body was read yet: another connection can take it.
                continue;
            }
            match body.take() {
                Some(body) if has_body => {
                    state.tasks.spawn(pump_request_body(body, send));
                    None
                }
                _ => Some(send),
            }
        } else {
            // No body: the head and the end of the stream go out together.
            if send.get_mut().finish_with(&encoded).await.is_err() {
                continue;
            }
            None
        };
        match read_answer(&mut recv).await {
            Ok(answer) => break (claim, send, recv, answer),
            Err(Failure::Answered(class)) => return Err(class),
            Err(Failure::Transport) if replayable && tried.len() < MAX_ATTEMPTS => {
                state.metrics.retries.inc();
                continue;
            }
            Err(Failure::Transport) => return Err(ErrorClass::TunnelDown),
        }
    };
    let status = StatusCode::from_u16(answer.status).map_err(|_| ErrorClass::Internal)?;
    let mut headers = to_header_map(&answer.headers).map_err(|_| ErrorClass::Internal)?;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    strip_response(&mut headers, switching);
    let body = if switching {
        let (Some(on_upgrade), Some(send)) =
            (parts.extensions.remove::<hyper::upgrade::OnUpgrade>(), send)
        else {
            return Err(ErrorClass::Internal);
        };
        state
            .tasks
            .spawn(splice(on_upgrade, recv, send, claim, gauge));
        EdgeBody::empty()
    } else if answer.has_body && parts.method != Method::HEAD {
        EdgeBody::Tunnel {
            body: TunnelBody::new(recv, content_length(&headers)),
            _claim: Some(claim),
            _gauge: gauge,
        }
    } else {
        recv.into_raw().get_mut().abort();
        EdgeBody::empty()
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

pub(crate) async fn read_answer(recv: &mut FramedRecv<RecvHalf>) -> Result<ResponseHead, Failure> {
    let header = match recv.read_header().await {
        Ok(Some(header)) => header,
        _ => return Err(Failure::Transport),
    };
    match header.kind {
        FrameKind::ResponseHead => recv
            .read_payload_as::<ResponseHead>(header)
            .await
            .map_err(|_| Failure::Transport),
        FrameKind::StreamError => match recv.read_payload_as::<StreamError>(header).await {
            Ok(error) => {
                debug!(class = error.class.as_str(), detail = %error.message, "connector could not serve the request");
                Err(Failure::Answered(error.class))
            }
            Err(_) => Err(Failure::Transport),
        },
        _ => Err(Failure::Transport),
    }
}

/// Streams the client's request body into the tunnel as it arrives.
async fn pump_request_body(body: Incoming, mut send: FramedSend<SendHalf>) {
    if send.send_body(body).await.is_err() {
        send.get_mut().abort();
    }
}

/// After a `101`: raw bytes both ways between the client and the tunnel stream, each
/// direction closed on its own (half-close) when its source ends.
async fn splice(
    on_upgrade: hyper::upgrade::OnUpgrade,
    recv: FramedRecv<RecvHalf>,
    send: FramedSend<SendHalf>,
    _claim: InFlight,
    _gauge: GaugeGuard,
) {
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(upgraded));
    let mut tunnel_read = recv.into_raw();
    let mut tunnel_write = send.into_raw();
    let up = async {
        let _ = portless_transport::pump(&mut client_read, &mut tunnel_write, |_| {}).await;
        let _ = tunnel_write.shutdown().await;
    };
    let down = async {
        let _ = portless_transport::pump(&mut tunnel_read, &mut client_write, |_| {}).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
