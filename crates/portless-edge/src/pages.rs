//! Error pages: small, distinct per class, with the request id, in HTML or JSON.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use portless_proto::ErrorClass;

use crate::body::EdgeBody;
use crate::forwarding::REQUEST_ID;

/// Response header naming the error class, for scripts and support requests.
pub(crate) const ERROR_CLASS: &str = "portless-error";

fn title_and_advice(class: ErrorClass) -> (&'static str, &'static str) {
    match class {
        ErrorClass::NoRoute => (
            "No route for this hostname",
            "This edge does not serve this hostname. The operator can bind it with `portless tunnel route HOSTNAME TUNNEL`.",
        ),
        ErrorClass::TunnelDown => (
            "Tunnel down",
            "The tunnel for this hostname has no live connector connection. The operator should check that `portless tunnel run` is running and can reach the edge.",
        ),
        ErrorClass::OriginUnreachable => (
            "Origin unreachable",
            "The tunnel is up, but the connector could not connect to the origin service. The operator should check that the service is running at the address in the ingress rules.",
        ),
        ErrorClass::OriginTimeout => (
            "Origin timed out",
            "The tunnel is up, but the origin service did not answer in time.",
        ),
        ErrorClass::OriginDown => (
            "Origin down",
            "The tunnel is up, but health checks mark the origin service as down.",
        ),
        ErrorClass::EgressDenied => (
            "Origin not allowed",
            "The connector refused to contact this origin: its ingress rules do not allow the address.",
        ),
        ErrorClass::BadRequest => (
            "Bad request",
            "The request was malformed and was not forwarded.",
        ),
        ErrorClass::Internal => (
            "Internal error",
            "Something went wrong at the edge. The request id below helps the operator find it in the logs.",
        ),
        ErrorClass::AccessDenied => (
            "Access denied",
            "The connector refused this request: its rules require a valid identity assertion from the edge, and the request carried none, or one that did not verify. Sign in through the edge again; the operator finds the reason in the connector's log.",
        ),
    }
}

fn wants_json(accept: Option<&HeaderValue>) -> bool {
    accept
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page for `class`; JSON when the client's `Accept` prefers it.
pub(crate) fn error_page(
    class: ErrorClass,
    request_id: &str,
    accept: Option<&HeaderValue>,
) -> Response<EdgeBody> {
    let status = StatusCode::from_u16(class.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let (title, advice) = title_and_advice(class);
    let (content_type, body) = if wants_json(accept) {
        let body = format!(
            "{{\"status\":{},\"error\":\"{}\",\"title\":\"{}\",\"detail\":\"{}\",\"requestId\":\"{}\"}}\n",
            status.as_u16(),
            class.as_str(),
            title,
            advice.replace('"', "'"),
            request_id
        );
        ("application/json", body)
    } else {
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{code} {title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}code{{background:#eee;padding:0 .2rem}}small{{color:#666}}</style></head>\
<body><h1>{code} · {title}</h1><p>{advice}</p><p><small>Error class <code>{class}</code> · request id <code>{rid}</code> · Portless</small></p></body></html>\n",
            code = status.as_u16(),
            title = title,
            advice = escape(advice),
            class = class.as_str(),
            rid = escape(request_id),
        );
        ("text/html; charset=utf-8", body)
    };
    let mut response = Response::new(EdgeBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(ERROR_CLASS, HeaderValue::from_static(class.as_str()));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, value);
    }
    response
}
