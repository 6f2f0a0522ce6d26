//! Paths the edge answers itself on every application host, under `/cdn-cgi/access/`:
//! * `callback?code=…&rd=/path` — turns a one-time code from the portal into this host's
//!   own session cookie (so a cookie of one application is useless on another);
//! * `logout` — sends the browser to the portal's sign-out;
//! * `certs` — the JWKS that verifies the assertion origins receive.

use std::time::SystemTime;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use portless_access::audit::{AuditEvent, AuditKind, AuditResult, LoginStep};
use portless_proto::ErrorClass;

use super::EdgeAccess;
use super::http_util::{APP_COOKIE, json, query_param, redirect, set_cookie};
use crate::body::EdgeBody;
use crate::context::{Canonical, RequestContext};

/// Prefix of the reserved paths.
pub(crate) const PREFIX: &str = "/cdn-cgi/access/";

/// Answers a reserved path; `None` for every other path (the request goes on to the policy).
pub(crate) async fn handle(
    access: &EdgeAccess,
    request: &Request<Incoming>,
    context: &RequestContext,
    canonical: &Canonical,
) -> Option<Result<Response<EdgeBody>, ErrorClass>> {
    let rest = canonical.path().strip_prefix(PREFIX)?;
    if rest == "cli" {
        // Judged by the policy first, then answered by `cli_login`.
        return None;
    }
    Some(match rest {
        "certs" => Ok(jwks(access)),
        "callback" => Ok(callback(access, context, canonical)),
        "logout" => Ok(match access.portal_for(&canonical.host) {
            Some(portal) => redirect(StatusCode::FOUND, &format!("{}/logout", portal.base_url)),
            None => redirect(StatusCode::FOUND, "/"),
        }),
        _ => {
            let _ = request;
            Err(ErrorClass::NoRoute)
        }
    })
}

/// The assertion keys as JWKS.
pub(crate) fn jwks(access: &EdgeAccess) -> Response<EdgeBody> {
    let mut response = json(StatusCode::OK, access.keys.jwks_json(SystemTime::now()));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// Redeems the portal's one-time code for a session on this host.
fn callback(
    access: &EdgeAccess,
    context: &RequestContext,
    canonical: &Canonical,
) -> Response<EdgeBody> {
    let now = SystemTime::now();
    let code = query_param(canonical.query(), "code").unwrap_or_default();
    // The path to go back to: on this host only (an absolute or scheme-relative URL here
    // would be an open redirect).
    let back = query_param(canonical.query(), "rd")
        .filter(|rd| local_path(rd))
        .unwrap_or_else(|| "/".to_owned());
    let Some(session) = access.sessions.redeem_code(&code, &canonical.host, now) else {
        access.audit.record(AuditEvent {
            at: now,
            kind: AuditKind::Login(LoginStep::CodeExchange),
            who: None,
            what: LoginStep::CodeExchange.what().to_owned(),
            rule: None,
            result: AuditResult::Failure,
            client: context.client.ip(),
            request_id: context.request_id.clone(),
            detail: Some(canonical.host.clone()),
        });
        // Expired, reused or for another host: start again at the portal.
        return match access.portal_for(&canonical.host) {
            Some(portal) => redirect(
                StatusCode::FOUND,
                &format!(
                    "{}/?rd={}",
                    portal.base_url,
                    super::http_util::encode(&format!("https://{}{back}", canonical.authority))
                ),
            ),
            None => redirect(StatusCode::FOUND, "/"),
        };
    };
    let mut response = redirect(StatusCode::FOUND, &back);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(APP_COOKIE, Some(session.as_str()), None),
    );
    response
}

/// `/path`, not `//host` or `/\host` (both leave the host in browsers).
pub(crate) fn local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control() || c == '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_back() {
        for good in ["/", "/a/b?c=d", "/x#y"] {
            assert!(local_path(good), "{good}");
        }
        for bad in [
            "//evil.test/",
            "/\\evil.test",
            "https://evil.test/",
            "",
            "evil",
            "/a\r\nb",
            "/a\\b",
        ] {
            assert!(!local_path(bad), "{bad}");
        }
    }
}
