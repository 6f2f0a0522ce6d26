//! One request stream: read the head, pick the rule, answer from the rule's service.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portless_ingress::Service;
use portless_proto::{ErrorClass, FrameKind, RequestHead, ResponseHead, StreamError};
use portless_transport::{
    Datagrams, FramedRecv, FramedSend, RecvHalf, SendHalf, TunnelStream, pump, to_header_list,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::connector::Shared;
use crate::metrics::{CodeLabel, ReasonLabel};
use crate::{access, bastion, hello, origin, socks};

/// Longest wait for the edge to acknowledge a finished response.
const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a service produced.
enum Answer {
    /// A complete response held in memory.
    Fixed(ResponseHead, Option<Bytes>),
    /// An origin's response, body still to stream.
    Origin(Box<(http::Response<Incoming>, Option<FramedRecv<RecvHalf>>)>),
    /// A raw TCP origin, connected: answer `101` (upgrade protocol given) and splice.
    Tcp(Box<(TcpStream, FramedRecv<RecvHalf>, String)>),
    /// `socks-proxy`: answer `101` (upgrade protocol given), then serve SOCKS5 on the stream.
    Socks(Box<(socks::Job, FramedRecv<RecvHalf>, String)>),
    /// A `udp://` flow, set up: answer `101` and relay datagrams.
    Udp(Box<(crate::udp::UdpFlow, FramedRecv<RecvHalf>)>),
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
pub(crate) async fn serve(shared: Arc<Shared>, stream: TunnelStream, datagrams: Option<Datagrams>) {
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
    let answer = answer(&shared, &head, recv, datagrams.as_ref()).await;
    let status = match &answer {
        Answer::Fixed(response, _) => Some(response.status),
        Answer::Origin(origin) => Some(origin.0.status().as_u16()),
        Answer::Tcp(_) | Answer::Socks(_) | Answer::Udp(_) => {
            Some(StatusCode::SWITCHING_PROTOCOLS.as_u16())
        }
        Answer::Failed(error) => {
            metrics.error(error.class);
            if error.class == ErrorClass::EgressDenied {
                metrics.egress_denied.inc();
            }
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
    if let Err(e) = write_answer(&shared, answer, &head, &mut send).await {
        debug!(request_id = %head.request_id, error = %e, "answering the edge failed");
        send.get_mut().abort();
        return;
    }
    // The stream counts as in flight until the edge has every byte: a drain that closes the
    // connection when the last stream ends must not cut a response still in transit.
    let _ = tokio::time::timeout(DELIVERY_WAIT, send.get_mut().delivered()).await;
}

async fn answer(
    shared: &Shared,
    head: &RequestHead,
    recv: FramedRecv<RecvHalf>,
    datagrams: Option<&Datagrams>,
) -> Answer {
    let rules = shared.rules.current();
    if rules.pending {
        return Answer::Failed(crate::remote::no_rules_yet());
    }
    let path = head.path.split('?').next().unwrap_or("/");
    let hit = rules.ingress.find(&head.host, path);
    // Before anything else: a rule that requires an assertion serves nothing without one.
    if let Some(denied) = access_denied(shared, &hit, head) {
        return denied;
    }
    // `bastionMode` turns any rule into a bastion, as with the incumbent; a `socks-proxy`
    // rule stays one (the incumbent checks it first too).
    let socks = *hit.rule.service() == Service::SocksProxy
        || hit.rule.origin_request().proxy_type == portless_ingress::ProxyType::Socks;
    if hit.rule.origin_request().bastion_mode && !socks {
        return bastion_origin(shared, hit, head, recv).await;
    }
    // `proxyType: socks` makes any rule a SOCKS5 proxy, like a `socks-proxy` service.
    if socks {
        return socks_proxy(shared, hit, head, recv);
    }
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
            let body = match origin::with_length(hit.rule, body).await {
                Ok(body) => body,
                Err(origin::BufferError::TooLarge) => return too_large(),
                Err(origin::BufferError::Broken(error)) => return Answer::Failed(error),
            };
            match origin::send(&rules.origins, shared, hit.index, hit.rule, head, body).await {
                Ok(response) => Answer::Origin(Box::new((response, keep))),
                Err(error) => Answer::Failed(error),
            }
        }
        Service::Tcp { .. } => tcp_origin(shared, &rules.origins, hit, head, recv).await,
        Service::Bastion => bastion_origin(shared, hit, head, recv).await,
        Service::SocksProxy => socks_proxy(shared, hit, head, recv),
        Service::Udp { authority } => {
            match crate::udp::open(shared, hit.index + 1, authority, head, datagrams).await {
                Ok(flow) => Answer::Udp(Box::new((flow, recv))),
                Err(error) => Answer::Failed(error),
            }
        }
    }
}

/// The `access_denied` answer for a request to a rule with `originRequest.access` whose
/// assertion is missing or does not verify (logged at info with the reason, and counted);
/// `None` when the rule requires none or the assertion is valid.
fn access_denied(
    shared: &Shared,
    hit: &portless_ingress::RuleMatch<'_>,
    head: &RequestHead,
) -> Option<Answer> {
    let policy = hit
        .rule
        .origin_request()
        .access
        .as_ref()
        .filter(|policy| policy.required)?;
    let keys = shared.access.current();
    let now = std::time::SystemTime::now();
    let denied = match access::check(keys.as_deref(), policy, &head.headers, now) {
        Ok(claims) => {
            debug!(request_id = %head.request_id, rule = hit.index + 1, sub = %claims.sub, "identity assertion verified");
            return None;
        }
        Err(denied) => denied,
    };
    let reason = denied.reason();
    shared
        .metrics
        .access_denied
        .get_or_create(&ReasonLabel { reason })
        .inc();
    info!(request_id = %head.request_id, host = %head.host, rule = hit.index + 1, reason, detail = %denied, "refused a request without a valid identity assertion");
    Some(Answer::Failed(StreamError {
        class: ErrorClass::AccessDenied,
        message: denied.to_string(),
    }))
}

/// The upgrade protocol of a stream for a TCP-carrying rule, or the `bad_request` telling a
/// plain request to use the access client.
fn upgraded(
    head: &RequestHead,
    hit: &portless_ingress::RuleMatch<'_>,
    what: &str,
) -> Result<String, StreamError> {
    head.upgrade.clone().ok_or_else(|| StreamError {
        class: ErrorClass::BadRequest,
        message: format!(
            "this hostname serves {what} (rule #{}); use `portless access tcp` to reach it",
            hit.index + 1
        ),
    })
}

/// A `bastion` rule (or `bastionMode`): raw TCP to the destination in the jump header,
/// through the strict egress policy.
async fn bastion_origin(
    shared: &Shared,
    hit: portless_ingress::RuleMatch<'_>,
    head: &RequestHead,
    recv: FramedRecv<RecvHalf>,
) -> Answer {
    let rule = hit.index + 1;
    let protocol = match upgraded(head, &hit, "TCP through a bastion") {
        Ok(protocol) => protocol,
        Err(error) => return Answer::Failed(error),
    };
    let destination = match bastion::destination(head, rule) {
        Ok(destination) => destination,
        Err(error) => return Answer::Failed(error),
    };
    let options = hit.rule.origin_request();
    match shared
        .options
        .egress
        .connect_chosen(
            rule,
            &options.ip_rules,
            &destination,
            options.connect_timeout,
        )
        .await
    {
        Ok(stream) => Answer::Tcp(Box::new((stream, recv, protocol))),
        Err(error) => Answer::Failed(StreamError {
            class: error.class(),
            message: error.to_string(),
        }),
    }
}

/// A `socks-proxy` rule: only an upgraded stream can carry SOCKS; the rule's strict egress
/// settings go with the stream, read now so a config reload mid-handshake changes nothing.
fn socks_proxy(
    shared: &Shared,
    hit: portless_ingress::RuleMatch<'_>,
    head: &RequestHead,
    recv: FramedRecv<RecvHalf>,
) -> Answer {
    let protocol = match upgraded(head, &hit, "a SOCKS5 proxy") {
        Ok(protocol) => protocol,
        Err(error) => return Answer::Failed(error),
    };
    let options = hit.rule.origin_request();
    let job = socks::Job {
        egress: shared.options.egress.clone(),
        rule: hit.index + 1,
        ip_rules: options.ip_rules.clone(),
        connect_timeout: options.connect_timeout,
    };
    Answer::Socks(Box::new((job, recv, protocol)))
}

/// `413`: a body too large to buffer for `disableChunkedEncoding`.
fn too_large() -> Answer {
    let text = format!(
        "request body too large: with disableChunkedEncoding the connector buffers at most \
         {} MiB of a body sent without Content-Length\n",
        origin::MAX_BUFFERED_BODY / (1024 * 1024)
    );
    let response = ResponseHead {
        status: StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
        headers: vec![
            ("content-type".into(), b"text/plain; charset=utf-8".to_vec()),
            ("content-length".into(), text.len().to_string().into_bytes()),
        ],
        has_body: true,
    };
    Answer::Fixed(response, Some(Bytes::from(text)))
}

/// A `ssh://`, `rdp://`, `smb://` or `tcp://` rule: only an upgraded stream (what the access
/// client sends) can carry raw TCP; a plain request gets an explanation instead.
async fn tcp_origin(
    shared: &Shared,
    origins: &origin::OriginPool,
    hit: portless_ingress::RuleMatch<'_>,
    head: &RequestHead,
    recv: FramedRecv<RecvHalf>,
) -> Answer {
    let Some(protocol) = head.upgrade.clone() else {
        return Answer::Failed(StreamError {
            class: ErrorClass::BadRequest,
            message: format!(
                "this hostname serves TCP ({}, rule #{}); use `portless access tcp` to reach it",
                hit.rule.service(),
                hit.index + 1
            ),
        });
    };
    match origin::connect_tcp(origins, shared, hit.index, hit.rule).await {
        Ok(stream) => Answer::Tcp(Box::new((stream, recv, protocol))),
        Err(error) => Answer::Failed(error),
    }
}

async fn write_answer(
    shared: &Shared,
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
        Answer::Tcp(tcp) => {
            let (stream, recv, protocol) = *tcp;
            send.write_message(FrameKind::ResponseHead, &switching(protocol))
                .await?;
            splice_tcp(stream, recv.into_raw(), send.get_mut()).await;
            Ok(())
        }
        Answer::Udp(udp) => {
            let (flow, recv) = *udp;
            let mut head = switching(portless_transport::UDP_UPGRADE.to_owned());
            head.headers.extend(flow.response_headers());
            send.write_message(FrameKind::ResponseHead, &head).await?;
            crate::udp::relay(shared, flow, recv.into_raw(), send.get_mut()).await;
            Ok(())
        }
        Answer::Socks(socks) => {
            let (job, recv, protocol) = *socks;
            send.write_message(FrameKind::ResponseHead, &switching(protocol))
                .await?;
            let mut tunnel_read = recv.into_raw();
            match socks::negotiate(&mut tunnel_read, send.get_mut(), &job).await {
                Ok(stream) => splice_tcp(stream, tunnel_read, send.get_mut()).await,
                Err(error) => {
                    // The `101` is already counted: a failed SOCKS request counts as an error
                    // of its class (and a refusal as egress denied) like a failed dial would.
                    if let Some(class) = error.class() {
                        shared.metrics.error(class);
                        if class == ErrorClass::EgressDenied {
                            shared.metrics.egress_denied.inc();
                        }
                    }
                    debug!(request_id = %head.request_id, rule = job.rule, error = %error, "SOCKS request not served");
                    // RFC 1928: the server closes the connection after a failure reply.
                    let _ = send.get_mut().shutdown().await;
                }
            }
            Ok(())
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
                splice(TokioIo::new(upgraded), recv, send).await;
                return Ok(());
            }
            send.send_body(response.into_body()).await
        }
    }
}

/// The `101` that starts raw bytes on a stream, echoing the requested protocol.
fn switching(protocol: String) -> ResponseHead {
    ResponseHead {
        status: StatusCode::SWITCHING_PROTOCOLS.as_u16(),
        headers: vec![
            ("connection".into(), b"upgrade".to_vec()),
            ("upgrade".into(), protocol.into_bytes()),
        ],
        has_body: false,
    }
}

/// Raw bytes both ways between the tunnel stream and an upgraded origin connection after a
/// `101`.
async fn splice(
    origin: impl AsyncRead + AsyncWrite,
    recv: FramedRecv<RecvHalf>,
    send: &mut FramedSend<SendHalf>,
) {
    let (origin_read, origin_write) = tokio::io::split(origin);
    both_ways(origin_read, origin_write, recv.into_raw(), send.get_mut()).await;
}

/// [`splice`] for a TCP origin, whose halves split without a lock; `tunnel_read` may have
/// been read from already (a SOCKS negotiation).
async fn splice_tcp(
    mut origin: TcpStream,
    tunnel_read: impl AsyncRead + Unpin,
    tunnel_write: &mut SendHalf,
) {
    let (origin_read, origin_write) = origin.split();
    both_ways(origin_read, origin_write, tunnel_read, tunnel_write).await;
}

/// Copies both ways, each direction closed on its own (half-close): the end of one side's
/// bytes is passed on as a shutdown of the other side's writer, and the opposite direction
/// keeps flowing.
async fn both_ways(
    mut origin_read: impl AsyncRead + Unpin,
    mut origin_write: impl AsyncWrite + Unpin,
    mut tunnel_read: impl AsyncRead + Unpin,
    tunnel_write: &mut SendHalf,
) {
    let up = async {
        let _ = pump(&mut tunnel_read, &mut origin_write, |_| {}).await;
        let _ = origin_write.shutdown().await;
    };
    let down = async {
        let _ = pump(&mut origin_read, tunnel_write, |_| {}).await;
        let _ = tunnel_write.shutdown().await;
    };
    tokio::join!(up, down);
}
