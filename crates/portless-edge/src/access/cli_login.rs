//! `/cdn-cgi/access/cli` on an application host: where `portless access login` sends the
//! browser. It is answered only after the request passed the application's policy like any
//! other path (so an anonymous browser goes through the portal first, and a user the policy
//! refuses gets nothing); then it mints a CLI token for that person and this host, and sends
//! the browser back to the client's loopback listener with it.
//!
//! The callback is checked strictly: `http://127.0.0.1:PORT/…`, `http://[::1]:PORT/…` or
//! `http://localhost:PORT/…` only, so a crafted link cannot make a signed-in browser hand a
//! token to another host. The `state` the client chose comes back unchanged for the client to
//! check, so a token it did not ask for is refused there.

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use portless_access::Identity;
use portless_access::assertion::CliClaims;
use portless_access::audit::{AuditEvent, AuditKind, AuditResult, LoginStep};
use portless_proto::ErrorClass;
use tracing::debug;

use super::EdgeAccess;
use super::http_util::{encode, json, query_param, redirect};
use crate::body::EdgeBody;
use crate::context::{Canonical, RequestContext};

/// The path the access client opens in the browser.
pub(crate) const PATH: &str = "/cdn-cgi/access/cli";
/// The header a CLI token is presented in (as the incumbent's client sends it).
pub(crate) const TOKEN_HEADER: &str = "cf-access-token";

/// Mints a token for `identity` on this host and redirects to the client's callback; a
/// `400` naming the problem when the callback or state is unacceptable, a `403` for a
/// machine identity or a request that itself came with a CLI token (a token cannot renew
/// itself, or a stolen one would live forever).
pub(crate) fn answer(
    access: &EdgeAccess,
    identity: &Identity,
    headers: &HeaderMap,
    canonical: &Canonical,
    context: &RequestContext,
    now: SystemTime,
) -> Result<Response<EdgeBody>, ErrorClass> {
    let Some(callback) = query_param(canonical.query(), "callback")
        .as_deref()
        .and_then(loopback_callback)
    else {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "bad_callback",
            "the callback must be http://127.0.0.1:PORT/..., http://[::1]:PORT/... or http://localhost:PORT/...: start the sign-in with `portless access login`",
        ));
    };
    let Some(state) = query_param(canonical.query(), "state").filter(|s| valid_state(s)) else {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "bad_state",
            "the state must be 16 to 128 characters of A-Z, a-z, 0-9, '-' and '_': start the sign-in with `portless access login`",
        ));
    };
    if headers.contains_key(TOKEN_HEADER) {
        return Ok(refusal(
            StatusCode::FORBIDDEN,
            "token_renewal",
            "a CLI token cannot be used to get another one: sign in with the browser",
        ));
    }
    let issuer = access
        .portal_for(&canonical.host)
        .map(|p| p.base_url.as_str())
        .unwrap_or_default();
    let Some(claims) = CliClaims::for_identity(
        identity,
        &canonical.host,
        issuer,
        now,
        access.options.cli_token_ttl,
    ) else {
        return Ok(refusal(
            StatusCode::FORBIDDEN,
            "not_a_person",
            "CLI tokens are for people; a machine presents its service token directly",
        ));
    };
    let token = access.keys.sign_cli(&claims).map_err(|e| {
        debug!(error = %e, "signing the CLI token failed");
        ErrorClass::Internal
    })?;
    access.audit.record(AuditEvent {
        at: now,
        kind: AuditKind::Login(LoginStep::CliToken),
        who: Some(identity.name().to_owned()),
        what: LoginStep::CliToken.what().to_owned(),
        rule: None,
        result: AuditResult::Success,
        client: context.client.ip(),
        request_id: context.request_id.clone(),
        detail: Some(canonical.host.clone()),
    });
    let separator = if callback.contains('?') { '&' } else { '?' };
    let location = format!(
        "{callback}{separator}token={}&state={}",
        encode(&token),
        encode(&state)
    );
    let mut response = redirect(StatusCode::FOUND, &location);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(response)
}

fn refusal(status: StatusCode, error: &str, message: &str) -> Response<EdgeBody> {
    let mut response = json(
        status,
        format!(
            "{{\"status\":{},\"error\":{error:?},\"message\":{message:?}}}\n",
            status.as_u16()
        ),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `callback` when it is a plain-HTTP URL on a loopback address with an explicit port and
/// nothing that could move it elsewhere (user info, fragment, backslashes, control
/// characters); `None` otherwise.
pub(crate) fn loopback_callback(callback: &str) -> Option<String> {
    let rest = callback.strip_prefix("http://")?;
    if callback
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#' || c == '@')
    {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (host, port) = authority.rsplit_once(':')?;
    if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
        return None;
    }
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if !port_ok || !(path.is_empty() || path.starts_with('/')) {
        return None;
    }
    Some(callback.to_owned())
}

/// What a client's `state` may be: enough randomness to be unguessable, nothing to escape.
fn valid_state(state: &str) -> bool {
    (16..=128).contains(&state.len())
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_callbacks_are_accepted() {
        for good in [
            "http://127.0.0.1:4321/callback",
            "http://[::1]:4321/callback?x=1",
            "http://localhost:65535/",
            "http://127.0.0.1:1",
        ] {
            assert_eq!(loopback_callback(good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "https://127.0.0.1:4321/callback",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:80x/",
            "http://evil.test:4321/",
            "http://127.0.0.1.evil.test:4321/",
            "http://127.0.0.1:4321@evil.test/",
            "http://user@127.0.0.1:4321/",
            "http://127.0.0.1:4321\\@evil.test/",
            "http://127.0.0.1:4321/#frag",
            "http://127.0.0.1:4321/a b",
            "http://127.0.0.2:4321/",
            "http://localhost.:4321/",
            "//127.0.0.1:4321/",
            "",
        ] {
            assert_eq!(loopback_callback(bad), None, "{bad}");
        }
    }

    #[test]
    fn states_are_long_and_plain() {
        assert!(valid_state("abcdefghijklmnop"));
        assert!(valid_state(&"a-_9".repeat(32)));
        assert!(!valid_state("short"));
        assert!(!valid_state(&"a".repeat(129)));
        assert!(!valid_state("abcdefghijklmnop&token=x"));
    }
}
