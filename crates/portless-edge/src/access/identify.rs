//! The identity a request to an application proves: a service token, an access-client
//! token (`cf-access-token`), or an application session cookie — re-read against the users file at every request, so a disabled user or
//! a changed group takes effect at once.

use std::time::SystemTime;

use http::HeaderMap;
use portless_access::service_token::token_from_headers;
use portless_access::session::{AppSessionId, ExternalLogin};
use portless_access::{AuthLevel, Identity, Source, Subject};
use secrecy::ExposeSecret as _;

use super::http_util::{APP_COOKIE, CookieValue, cookie};
use super::{EdgeAccess, cli_login};

/// What a request proved about who sent it.
#[derive(Debug)]
pub(crate) enum Presented {
    /// Nothing: anonymous.
    Anonymous,
    /// A valid session or service token.
    Identity(Identity),
    /// Service-token headers that are malformed (one of the pair, two values): `400`.
    Malformed,
    /// A service token that does not authenticate: `403`, and never a login page (a machine
    /// cannot log in). `who` names the client id for the audit log.
    BadToken { who: String, reason: &'static str },
}

/// Who is behind a request to application `host`.
pub(crate) async fn identify(
    access: &EdgeAccess,
    headers: &HeaderMap,
    host: &str,
    now: SystemTime,
) -> Presented {
    match token_from_headers(headers) {
        Err(_) => return Presented::Malformed,
        Ok(Some((client_id, secret))) => {
            return match access
                .tokens
                .authenticate(&client_id, secret.expose_secret(), now)
                .await
            {
                Ok(token) => Presented::Identity(token.identity()),
                Err(refusal) => Presented::BadToken {
                    who: client_id,
                    reason: refusal.as_str(),
                },
            };
        }
        Ok(None) => {}
    }
    match one_header(headers, cli_login::TOKEN_HEADER) {
        Err(()) => return Presented::Malformed,
        Ok(Some(token)) => return cli_token_identity(access, token, host, now),
        Ok(None) => {}
    }
    let CookieValue::One(value) = cookie(headers, APP_COOKIE) else {
        // Absent, or sent twice (cookie tossing): anonymous either way.
        return Presented::Anonymous;
    };
    let Some(view) =
        AppSessionId::parse(&value).and_then(|id| access.sessions.app_session(&id, host, now))
    else {
        return Presented::Anonymous;
    };
    match session_identity(access, &view.user, view.level, view.external) {
        Some(identity) => Presented::Identity(identity),
        None => Presented::Anonymous,
    }
}

/// The identity of a session: from its external login when it has one (kept whole in the
/// session), else from the users file as it is now.
pub(crate) fn session_identity(
    access: &EdgeAccess,
    user: &str,
    level: AuthLevel,
    external: Option<ExternalLogin>,
) -> Option<Identity> {
    match external {
        Some(login) => Some(external_identity(login, level)),
        None => user_identity(access, user, level),
    }
}

/// The identity an external login proves: named by its email address. Takes the login by
/// value: the session store already handed out a copy for this request.
pub(crate) fn external_identity(login: ExternalLogin, level: AuthLevel) -> Identity {
    let source = match login.provider {
        Some(provider) => Source::Oidc(provider),
        None => Source::EmailPin,
    };
    Identity {
        subject: Subject::User {
            name: login.email.clone(),
            level,
            source,
        },
        display_name: login.name.unwrap_or_else(|| login.email.clone()),
        email: Some(login.email),
        groups: login.groups,
    }
}

/// The identity of `user` as the users file says now; `None` when removed or disabled.
pub(crate) fn user_identity(access: &EdgeAccess, user: &str, level: AuthLevel) -> Option<Identity> {
    let users = access.users.current();
    let record = users.get(user)?;
    if record.is_disabled() {
        return None;
    }
    Some(record.identity(level))
}

/// The value of header `name`: `None` when absent, `Err` when sent twice or not text.
fn one_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    first.to_str().map(|v| Some(v.trim())).map_err(|_| ())
}

/// Who an access-client token names, on application `host`: verified (signature, type `cli`,
/// this host, this edge's issuer, times), then, for a users-file person, re-read from the
/// users file as for a session, so a disabled user or a changed group counts at once.
fn cli_token_identity(access: &EdgeAccess, token: &str, host: &str, now: SystemTime) -> Presented {
    let refused = |reason: &'static str| Presented::BadToken {
        who: "cli-token".to_owned(),
        reason,
    };
    let Some(portal) = access.portal_for(host) else {
        return refused("no_portal");
    };
    let claims =
        match access
            .keys
            .verifier(now)
            .verify_cli(token, &portal.base_url, &[host.to_owned()], now)
        {
            Ok(claims) => claims,
            Err(error) => return refused(error.reason()),
        };
    let identity = match claims.identity_source() {
        Some(Source::UsersFile) => user_identity(access, &claims.sub, claims.level()),
        Some(_) => claims.identity(),
        None => None,
    };
    match identity {
        Some(identity) => Presented::Identity(identity),
        None => refused("user_unknown_or_disabled"),
    }
}
