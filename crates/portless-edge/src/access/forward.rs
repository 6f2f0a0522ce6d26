//! The forward-auth endpoints on the portal host, for reverse proxies (Traefik, nginx
//! `auth_request`, Caddy, HAProxy, Envoy) that keep serving their applications themselves
//! and ask Portless only "may this request pass?".
//!
//! Same identities, same policy, same code exchange as the integrated path: when the proxy
//! asks about the application's `/cdn-cgi/access/callback`, the answer carries that
//! application's own session cookie and the redirect back (proxies pass non-2xx answers,
//! with their headers, to the browser).

use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use portless_access::forward_auth::{
    Endpoint, ForwardAuthOutcome, ForwardAuthRequest, TrustedProxies, response,
};
use portless_access::policy::Decision;
use portless_proto::ErrorClass;

use super::EdgeAccess;
use super::app_paths::local_path;
use super::http_util::{APP_COOKIE, query_param, set_cookie};
use super::identify::{Presented, identify};
use crate::body::EdgeBody;
use crate::context::RequestContext;

/// The endpoint at `path`, if it is one.
pub(crate) fn endpoint(path: &str) -> Option<Endpoint> {
    Endpoint::from_path(path).map(|(endpoint, _)| endpoint)
}

/// Answers one forward-auth call.
pub(crate) async fn handle(
    access: &EdgeAccess,
    endpoint: Endpoint,
    request: &Request<Incoming>,
    context: &RequestContext,
) -> Result<Response<EdgeBody>, ErrorClass> {
    let trusted = TrustedProxies::new(access.options.trusted_proxies.clone());
    let parsed = ForwardAuthRequest::parse(
        endpoint,
        request.method(),
        request.uri(),
        request.headers(),
        context.client.ip(),
        &trusted,
    );
    let target = match parsed {
        Ok(target) => target,
        Err(error) => {
            tracing::debug!(%error, "forward-auth call refused");
            return Ok(finish(response(endpoint, None, &error.outcome())));
        }
    };
    if crate::canonicalize::conflicting_method_override(request.headers(), &target.method) {
        // The proxy passes the client's headers on: `X-Forwarded-Method: OPTIONS` with
        // `X-HTTP-Method-Override: GET` would be judged as OPTIONS while an origin that
        // honours the override serves a GET (class D). The integrated path refuses the same
        // request in `canonicalize`; only the call's own method was checked there.
        return Ok(finish(response(
            endpoint,
            Some(&target),
            &ForwardAuthOutcome::Malformed,
        )));
    }
    let now = SystemTime::now();
    if target.path == "/cdn-cgi/access/callback" {
        return Ok(callback(access, endpoint, &target, now));
    }
    let identity = match identify(access, request.headers(), &target.host, now).await {
        Presented::Anonymous => None,
        Presented::Identity(identity) => Some(identity),
        Presented::Malformed => {
            return Ok(finish(response(
                endpoint,
                Some(&target),
                &ForwardAuthOutcome::Malformed,
            )));
        }
        Presented::BadToken { .. } => {
            return Ok(finish(response(
                endpoint,
                Some(&target),
                &ForwardAuthOutcome::Forbidden,
            )));
        }
    };
    let decision = access
        .policy()
        .evaluate(&target.access_request(identity.as_ref()));
    let outcome = match decision {
        Decision::Bypass { .. } | Decision::Allow { .. } => ForwardAuthOutcome::Allowed(identity),
        Decision::LoginRequired { .. } | Decision::SecondFactorRequired { .. } => {
            match access.portal_for(&target.host) {
                Some(portal) => ForwardAuthOutcome::LoginRequired {
                    portal_login_url: format!("{}/", portal.base_url),
                },
                None => ForwardAuthOutcome::Forbidden,
            }
        }
        Decision::Deny { .. } => ForwardAuthOutcome::Forbidden,
    };
    Ok(finish(response(endpoint, Some(&target), &outcome)))
}

/// The proxy asks about the application's callback: redeem the code here and answer with
/// the cookie and the way back (401 for nginx, which passes only 401/403 on).
fn callback(
    access: &EdgeAccess,
    endpoint: Endpoint,
    target: &ForwardAuthRequest,
    now: SystemTime,
) -> Response<EdgeBody> {
    let query = target.query.as_deref();
    let code = query_param(query, "code").unwrap_or_default();
    let back = query_param(query, "rd")
        .filter(|rd| local_path(rd))
        .unwrap_or_else(|| "/".to_owned());
    let status = if endpoint == Endpoint::AuthRequest {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FOUND
    };
    match access.sessions.redeem_code(&code, &target.host, now) {
        Some(session) => {
            let mut answer = Response::new(EdgeBody::full(Bytes::new()));
            *answer.status_mut() = status;
            let origin = target.url();
            let base = origin
                .strip_suffix(&format!(
                    "{}{}",
                    target.path,
                    query.map(|q| format!("?{q}")).unwrap_or_default()
                ))
                .unwrap_or(&origin)
                .to_owned();
            if let Ok(location) = http::HeaderValue::from_str(&format!("{base}{back}")) {
                answer.headers_mut().insert(header::LOCATION, location);
            }
            answer.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(APP_COOKIE, Some(session.as_str()), None),
            );
            answer.headers_mut().insert(
                header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            answer
        }
        None => {
            let outcome = match access.portal_for(&target.host) {
                Some(portal) => ForwardAuthOutcome::LoginRequired {
                    portal_login_url: format!("{}/", portal.base_url),
                },
                None => ForwardAuthOutcome::Forbidden,
            };
            finish(response(endpoint, Some(target), &outcome))
        }
    }
}

/// A forward-auth answer with an empty body; a refusal names its class in `portless-error`
/// (the status alone does not tell a proxy's operator a malformed call from a denial).
fn finish(answer: Response<()>) -> Response<EdgeBody> {
    let (mut parts, ()) = answer.into_parts();
    let class = match parts.status {
        StatusCode::BAD_REQUEST => Some("bad_request"),
        StatusCode::FORBIDDEN => Some("access_denied"),
        _ => None,
    };
    if let Some(class) = class {
        parts
            .headers
            .insert("portless-error", http::HeaderValue::from_static(class));
    }
    Response::from_parts(parts, EdgeBody::full(Bytes::new()))
}
