//! The access layer: every request to a routed host is judged against the policy before the
//! proxy sees it; the portal host is answered here and never proxied.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use portless_access::assertion::AssertionClaims;
use portless_access::audit::{AuditEvent, AuditKind, AuditResult};
use portless_access::headers::{set_identity_headers, strip_edge_cookies, strip_identity_headers};
use portless_access::policy::Decision;
use portless_access::{AccessRequest, Identity};
use portless_proto::ErrorClass;
use tower::{Layer, Service};
use tracing::debug;

use super::http_util::{encode, json, redirect};
use super::identify::{Presented, identify};
use super::{EdgeAccess, app_paths, cli_login, pages, portal};
use crate::body::EdgeBody;
use crate::context::{Canonical, RequestContext, Routed};
use crate::edge::EdgeState;

type Answer = Result<Response<EdgeBody>, ErrorClass>;

/// Judges each request; see the module doc.
#[derive(Clone)]
pub(crate) struct AccessLayer {
    pub(crate) state: Arc<EdgeState>,
}

impl<S> Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Access {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service of [`AccessLayer`].
#[derive(Clone)]
pub(crate) struct Access<S> {
    inner: S,
    state: Arc<EdgeState>,
}

impl<S> Service<Request<Incoming>> for Access<S>
where
    S: Service<Request<Incoming>, Response = Response<EdgeBody>, Error = ErrorClass>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<EdgeBody>;
    type Error = ErrorClass;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ErrorClass>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let Some(access) = self.state.access.clone() else {
            // No access configured: every route is public, but identity headers a client
            // made up still never reach an origin.
            strip_identity_headers(request.headers_mut());
            return Box::pin(self.inner.call(request));
        };
        // The ready inner service handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(judge(state, access, inner, request))
    }
}

async fn judge<S>(
    state: Arc<EdgeState>,
    access: Arc<EdgeAccess>,
    mut inner: S,
    mut request: Request<Incoming>,
) -> Answer
where
    S: Service<Request<Incoming>, Response = Response<EdgeBody>, Error = ErrorClass>,
{
    let (Some(context), Some(canonical), Some(routed)) = (
        request.extensions().get::<RequestContext>().cloned(),
        request.extensions().get::<Canonical>().cloned(),
        request.extensions().get::<Routed>().cloned(),
    ) else {
        return Err(ErrorClass::Internal);
    };
    if matches!(routed, Routed::Portal) {
        return pages::on_portal(
            &canonical.host,
            portal::handle(&state, &access, request, &context, &canonical),
        )
        .await;
    }
    if let Some(answer) = app_paths::handle(&access, &request, &context, &canonical).await {
        return answer;
    }
    let now = SystemTime::now();
    let identity = match identify(&access, request.headers(), &canonical.host, now).await {
        Presented::Anonymous => None,
        Presented::Identity(identity) => Some(identity),
        Presented::Malformed => return Err(ErrorClass::BadRequest),
        Presented::BadToken { who, reason } => {
            record(
                &access,
                &context,
                &canonical,
                request.method(),
                Some(who),
                AuditResult::Deny,
                Some(reason.to_owned()),
                "token",
            );
            return Ok(pages::denied(
                None,
                &context.request_id,
                pages::SwitchAccount::Nowhere,
            ));
        }
    };
    let policy = access.policy();
    let decision = policy.evaluate(&AccessRequest {
        host: &canonical.host,
        path: canonical.path(),
        query: canonical.query(),
        method: request.method().as_str(),
        client_ip: context.client.ip(),
        identity: identity.as_ref(),
    });
    let rule = rule_label(&decision);
    record(
        &access,
        &context,
        &canonical,
        request.method(),
        identity.as_ref().map(|i| i.name().to_owned()),
        decision_label(&decision),
        None,
        &rule,
    );
    match decision {
        Decision::Bypass { .. } | Decision::Allow { .. } if canonical.path() == cli_login::PATH => {
            match &identity {
                Some(identity) => cli_login::answer(
                    &access,
                    identity,
                    request.headers(),
                    &canonical,
                    &context,
                    now,
                ),
                // A public path still needs someone to mint a token for.
                None => Ok(login_required(
                    &access,
                    request.method(),
                    request.headers(),
                    &canonical,
                )),
            }
        }
        Decision::Bypass { .. } | Decision::Allow { .. } => {
            let assertion = match &identity {
                Some(identity) => Some(sign(&access, identity, &canonical.host, now)?),
                None => None,
            };
            let headers = request.headers_mut();
            strip_identity_headers(headers);
            strip_edge_cookies(headers);
            set_identity_headers(headers, identity.as_ref(), assertion.as_deref())
                .map_err(|_| ErrorClass::BadRequest)?;
            inner.call(request).await
        }
        Decision::LoginRequired { .. } | Decision::SecondFactorRequired { .. } => Ok(
            login_required(&access, request.method(), request.headers(), &canonical),
        ),
        Decision::Deny { .. } => Ok(pages::denied(
            // A person is told which account was refused; a machine's token is not an account.
            identity
                .as_ref()
                .filter(|i| matches!(i.subject, portless_access::Subject::User { .. }))
                .map(Identity::name),
            &context.request_id,
            access
                .portal_for(&canonical.host)
                .map(|p| {
                    format!(
                        "{}/logout?rd={}",
                        p.base_url,
                        encode(&format!(
                            "https://{}{}",
                            canonical.authority, canonical.path_and_query
                        ))
                    )
                })
                .as_deref()
                .map_or(pages::SwitchAccount::Nowhere, pages::SwitchAccount::Link),
        )),
    }
}

/// The signed assertion for `identity` on application `host`.
fn sign(
    access: &EdgeAccess,
    identity: &Identity,
    host: &str,
    now: SystemTime,
) -> Result<String, ErrorClass> {
    let issuer = access
        .portal_for(host)
        .map(|p| p.base_url.as_str())
        .unwrap_or_default();
    let claims =
        AssertionClaims::for_identity(identity, host, issuer, now, access.options.assertion_ttl);
    access.keys.sign(&claims).map_err(|e| {
        debug!(error = %e, "signing the assertion failed");
        ErrorClass::Internal
    })
}

/// Browsers go to the portal; scripts and XHR get `401`.
fn login_required(
    access: &EdgeAccess,
    method: &Method,
    headers: &HeaderMap,
    canonical: &Canonical,
) -> Response<EdgeBody> {
    let Some(portal) = access.portal_for(&canonical.host) else {
        return pages::denied(None, "", pages::SwitchAccount::Nowhere);
    };
    let target = format!(
        "https://{}{}",
        canonical.authority, canonical.path_and_query
    );
    let location = format!(
        "{}/?rd={}&rm={}",
        portal.base_url,
        encode(&target),
        encode(method.as_str())
    );
    if !wants_html(headers) {
        let mut response = json(
            StatusCode::UNAUTHORIZED,
            format!("{{\"status\":401,\"error\":\"login_required\",\"login\":{location:?}}}\n"),
        );
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return response;
    }
    let status = if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        StatusCode::FOUND
    } else {
        StatusCode::SEE_OTHER
    };
    redirect(status, &location)
}

/// A browser navigation (HTML accepted, not an XHR).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    let xhr = headers
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    !xhr && html
}

fn decision_label(decision: &Decision) -> AuditResult {
    match decision {
        Decision::Bypass { .. } => AuditResult::Bypass,
        Decision::Allow { .. } => AuditResult::Allow,
        Decision::LoginRequired { .. } => AuditResult::LoginRequired,
        Decision::SecondFactorRequired { .. } => AuditResult::SecondFactorRequired,
        Decision::Deny { .. } => AuditResult::Deny,
    }
}

fn rule_label(decision: &Decision) -> String {
    decision.rule().to_string()
}

#[allow(clippy::too_many_arguments)]
fn record(
    access: &EdgeAccess,
    context: &RequestContext,
    canonical: &Canonical,
    method: &Method,
    who: Option<String>,
    result: AuditResult,
    detail: Option<String>,
    rule: &str,
) {
    access.audit.record(AuditEvent {
        at: SystemTime::now(),
        kind: AuditKind::AccessDecision,
        who,
        // The path only: query strings carry tokens and codes that have no place in a log.
        what: format!("{method} https://{}{}", canonical.host, canonical.path()),
        rule: Some(rule.to_owned()),
        result,
        client: context.client.ip(),
        request_id: context.request_id.clone(),
        detail,
    });
}
