//! One request stream: read the head, pick the rule, answer from the rule's service.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portless_ingress::Service;
use portless_proto::{ErrorClass, FrameKind, RequestHead, ResponseHead, StreamError};
use portless_transport::{
    FramedRecv, FramedSend, RecvHalf, SendHalf, TunnelStream, to_header_list,
};
use tokio::io::AsyncWriteExt as _;
use tracing::debug;

use crate::connector::Shared;
use crate::metrics::CodeLabel;
use crate::{hello, origin};

/// Longest wait for the edge to acknowledge a finished response.
const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a service produced.
enum Answer {
    /// A complete response held in memory.
    Fixed(ResponseHead, Option<Bytes>),
    /// An origin's response, body still to stream.
    Origin(Box<(http::Response<Incoming>, Option<FramedRecv<RecvHalf>>)>),
    /// No response: an error class for the edge's page.
    Failed(StreamError),
}

/// Decrements the in-flight gauge when the stream is done.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serves one stream opened by the edge.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TunnelStream) {
    let mut recv = FramedRecv::new(stream.recv);
    let mut send = FramedSend::new(stream.send);
    let head = match recv
        .read_message::<RequestHead>(FrameKind::RequestHead, "a request head")
        .await
    {
        Ok(head) => head,
        Err(e) => {
            debug!(error = %e, "stream without a valid request head");
            return;
        }
    };
    let metrics = &shared.metrics;
    metrics.requests.inc();
    metrics.concurrent.inc();
    let _in_flight = InFlight(&metrics.concurrent);
    let answer = answer(&shared, &head, recv).await;
    let status = match &answer {
        Answer::Fixed(response, _) => Some(response.status),
        Answer::Origin(origin) => Some(origin.0.status().as_u16()),
        Answer::Failed(error) => {
            metrics.error(error.class);
            debug!(request_id = %head.request_id, class = error.class.as_str(), detail = %error.message, "request not served");
            None
        }
    };
    if let Some(status_code) = status {
        metrics
            .responses
            .get_or_create(&CodeLabel { status_code })
            .inc();
    }
    if let Err(e) = write_answer(answer, &head, &mut send).await {
        debug!(request_id = %head.request_id, error = %e, "answering the edge failed");
        send.get_mut().abort();
        return;
    }
    // The stream counts as in flight until the edge has every byte: a drain that closes the
    // connection when the last stream ends must not cut a response still in transit.
    let _ = tokio::time::timeout(DELIVERY_WAIT, send.get_mut().delivered()).await;
}

async fn answer(shared: &Shared, head: &RequestHead, recv: FramedRecv<RecvHalf>) -> Answer {
    let rules = shared.rules.current();
    let path = head.path.split('?').next().unwrap_or("/");
    let hit = rules.ingress.find(&head.host, path);
    match hit.rule.service() {
        Service::HttpStatus(code) => Answer::Fixed(
            ResponseHead {
                status: code.as_u16(),
                headers: vec![("content-length".into(), b"0".to_vec())],
                has_body: false,
            },
            None,
        ),
        Service::HelloWorld => {
            let (response, body) = hello::respond(head);
            Answer::Fixed(response, Some(body))
        }
        Service::Http { .. } | Service::Unix { .. } => {
            let (body, keep) = if head.upgrade.is_some() {
                (origin::no_body(), Some(recv))
            } else if head.has_body {
                (origin::tunnel_body(recv, head), None)
            } else {
                (origin::no_body(), None)
            };
            match origin::send(&rules.origins, hit.index, hit.rule, head, body).await {
                Ok(response) => Answer::Origin(Box::new((response, keep))),
                Err(error) => Answer::Failed(error),
            }
        }
        other => Answer::Failed(StreamError {
            class: ErrorClass::OriginUnreachable,
            message: format!(
                "service {other} (rule #{}) is not served over HTTP by this connector yet",
                hit.index + 1
            ),
        }),
    }
}

async fn write_answer(
    answer: Answer,
    head: &RequestHead,
    send: &mut FramedSend<SendHalf>,
) -> Result<(), portless_transport::TransportError> {
    match answer {
        Answer::Failed(error) => {
            send.finish_with_message(FrameKind::StreamError, &error)
                .await
        }
        Answer::Fixed(response, body) => {
            if !response.has_body {
                return send
                    .finish_with_message(FrameKind::ResponseHead, &response)
                    .await;
            }
            send.write_message(FrameKind::ResponseHead, &response)
                .await?;
            if let Some(body) = body {
                send.write_data(&body).await?;
            }
            send.end_body(None).await
        }
        Answer::Origin(origin) => {
            let (mut response, keep) = *origin;
            let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            let has_body = !switching
                && head.method != "HEAD"
                && !http_body::Body::is_end_stream(response.body());
            let response_head = ResponseHead {
                status: response.status().as_u16(),
                headers: to_header_list(response.headers()),
                has_body,
            };
            if !switching && !has_body {
                return send
                    .finish_with_message(FrameKind::ResponseHead, &response_head)
                    .await;
            }
            send.write_message(FrameKind::ResponseHead, &response_head)
                .await?;
            if switching {
                let Some(recv) = keep else {
                    return Err(portless_transport::TransportError::Aborted);
                };
                let upgraded = hyper::upgrade::on(&mut response)
                    .await
                    .map_err(|_| portless_transport::TransportError::Aborted)?;
                splice(upgraded, recv, send).await;
                return Ok(());
            }
            send.send_body(response.into_body()).await
        }
    }
}

/// Raw bytes both ways between the tunnel stream and the origin after a `101`, each
/// direction closed on its own.
async fn splice(
    upgraded: hyper::upgrade::Upgraded,
    recv: FramedRecv<RecvHalf>,
    send: &mut FramedSend<SendHalf>,
) {
    let (mut origin_read, mut origin_write) = tokio::io::split(TokioIo::new(upgraded));
    let mut tunnel_read = recv.into_raw();
    let tunnel_write = send.get_mut();
    let up = async {
        let _ = tokio::io::copy(&mut tunnel_read, &mut origin_write).await;
        let _ = origin_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut origin_read, tunnel_write).await;
        let _ = tunnel_write.shutdown().await;
    };
    tokio::join!(up, down);
}
