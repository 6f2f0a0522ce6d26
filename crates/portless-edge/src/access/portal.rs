//! The login portal on the auth host: password, then TOTP; TOTP enrolment after
//! re-authentication; sign-out; and a code exchange that hands each application its own
//! session (see `app_paths`).
//!
//! Every state-changing request is a form POST that must carry the session's CSRF token and,
//! when the browser sends one, an `Origin` of the portal itself. Sessions get a new id at each
//! factor step. First-factor answers take at least `login_floor`, whatever happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use portless_access::audit::{AuditEvent, AuditKind, AuditResult, LoginStep};
use portless_access::policy::{Decision, LoginMethods};
use portless_access::redirect::RedirectTarget;
use portless_access::session::{PortalSession, SessionId};
use portless_access::totp::{TotpSecret, provisioning_uri};
use portless_access::{AccessRequest, AuthLevel};
use portless_proto::ErrorClass;
use portless_proto::canonical_path;
use secrecy::SecretString;

use super::http_util::{
    CookieValue, PORTAL_COOKIE, cookie, encode, read_form, redirect, set_cookie,
};
use super::identify::session_identity;
use super::setup::PortalSite;
use super::{EdgeAccess, app_paths, forward, pages};
use crate::body::EdgeBody;
use crate::context::{Canonical, RequestContext};
use crate::edge::EdgeState;

mod passkeys;
mod sign_in;

type Answer = Result<Response<EdgeBody>, ErrorClass>;

/// Everything one portal request needs.
struct Visit<'a> {
    access: &'a EdgeAccess,
    portal: &'a PortalSite,
    context: &'a RequestContext,
    now: SystemTime,
}

/// Answers a request to a portal host.
pub(crate) async fn handle(
    state: &Arc<EdgeState>,
    access: &Arc<EdgeAccess>,
    request: Request<Incoming>,
    context: &RequestContext,
    canonical: &Canonical,
) -> Answer {
    let _ = state;
    let Some(portal) = access.portal_at(&canonical.host) else {
        return Err(ErrorClass::NoRoute);
    };
    let visit = Visit {
        access,
        portal,
        context,
        now: SystemTime::now(),
    };
    let path = canonical.path();
    if let Some(endpoint) = forward::endpoint(path) {
        return forward::handle(access, endpoint, &request, context).await;
    }
    let method = request.method().clone();
    match (method, path) {
        (Method::GET | Method::HEAD, pages::STYLESHEET_PATH) => Ok(stylesheet()),
        (Method::GET | Method::HEAD, super::passkey_pages::SCRIPT_PATH) => {
            Ok(super::passkey_pages::script())
        }
        (Method::GET | Method::HEAD, "/settings") => Ok(visit.settings(request.headers()).await),
        (Method::POST, path) if passkeys::is_json_endpoint(path) => {
            visit.passkey_json(path, request).await
        }
        (Method::GET | Method::HEAD, "/.well-known/jwks.json" | "/cdn-cgi/access/certs") => {
            Ok(app_paths::jwks(access))
        }
        (Method::GET | Method::HEAD, "/") => Ok(visit.index(request.headers(), canonical).await),
        (Method::GET | Method::HEAD, "/logout") => {
            Ok(visit.logout_page(request.headers(), canonical))
        }
        (Method::GET | Method::HEAD, "/settings/totp") => {
            Ok(visit.enrolment(request.headers()).await)
        }
        (
            Method::POST,
            "/login"
            | "/2fa/totp"
            | "/settings/reauth"
            | "/settings/totp"
            | "/logout"
            | "/login/email"
            | "/login/email/verify"
            | "/settings/passkey/remove",
        ) => visit.post(path, request).await,
        (Method::POST, _) if oidc_path(path, "start").is_some() => visit.post(path, request).await,
        (Method::GET, _) if oidc_path(path, "callback").is_some() => {
            let name = oidc_path(path, "callback").unwrap_or_default();
            Ok(visit
                .oidc_callback(request.headers(), name, canonical.query())
                .await)
        }
        _ => Err(ErrorClass::NoRoute),
    }
}

/// The provider name in `/oidc/<name>/<action>`.
fn oidc_path<'p>(path: &'p str, action: &str) -> Option<&'p str> {
    let rest = path.strip_prefix("/oidc/")?;
    let (name, tail) = rest.split_once('/')?;
    (tail == action && !name.is_empty()).then_some(name)
}

/// Where to continue after a sign-in step: the portal's index with the target, which
/// validates it again.
fn next_url(rd: Option<&str>) -> String {
    match rd {
        Some(rd) if !rd.is_empty() => format!("/?rd={}", encode(rd)),
        _ => "/".to_owned(),
    }
}

/// The page for an `rd` that was refused.
fn bad_link() -> Response<EdgeBody> {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        "The address to return to was refused: it must be an https address of an \
         application this portal serves. Open the application again to get a fresh link.",
    )
}

fn stylesheet() -> Response<EdgeBody> {
    let mut response = Response::new(EdgeBody::full(Bytes::from_static(
        pages::STYLESHEET.as_bytes(),
    )));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// A response that also sets the portal cookie to `session` (for the browser's session).
fn with_session(response: Response<EdgeBody>, session: &SessionId) -> Response<EdgeBody> {
    with_session_for(response, session, None)
}

/// Like [`with_session`], kept by the browser for `max_age` ("keep me signed in").
fn with_session_for(
    mut response: Response<EdgeBody>,
    session: &SessionId,
    max_age: Option<std::time::Duration>,
) -> Response<EdgeBody> {
    let max_age = max_age.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(PORTAL_COOKIE, Some(session.as_str()), max_age),
    );
    response
}

// === impl Visit ===

impl Visit<'_> {
    /// The browser's live portal session, if any.
    fn session(&self, headers: &HeaderMap) -> Option<(SessionId, PortalSession)> {
        let CookieValue::One(value) = cookie(headers, PORTAL_COOKIE) else {
            return None;
        };
        let id = SessionId::parse(&value)?;
        let session = self.access.sessions.get(&id, self.now)?;
        Some((id, session))
    }

    /// The live session, or a new anonymous one (returned with `true`: set its cookie).
    fn session_or_new(&self, headers: &HeaderMap) -> (SessionId, PortalSession, bool) {
        match self.session(headers) {
            Some((id, session)) => (id, session, false),
            None => {
                let (id, session) = self.access.sessions.create_anonymous(self.now);
                (id, session, true)
            }
        }
    }

    /// The `rd` parameter, validated (attack class E); `Err` when it was refused.
    fn validated_rd(&self, rd: Option<&str>) -> Result<Option<Target>, ()> {
        match rd.filter(|rd| !rd.is_empty()) {
            None => Ok(None),
            Some(rd) => self
                .access
                .redirects
                .validate(rd)
                .ok()
                .and_then(|t| Target::new(&t))
                .map(Some)
                .ok_or(()),
        }
    }

    /// The sign-in page, offering the methods the target's rules could accept (all of them
    /// without a target).
    fn login_page(&self, csrf: &str, rd: Option<&str>, error: Option<&str>) -> Response<EdgeBody> {
        let offered: Vec<_> = self
            .access
            .sign_in
            .providers
            .iter()
            .filter(|p| p.portal_host == self.portal.host)
            .collect();
        let names: Vec<&str> = offered.iter().map(|p| p.config.name.as_str()).collect();
        let target = self.validated_rd(rd).ok().flatten();
        let methods = match &target {
            Some(target) if target.host != self.portal.host => self.access.policy().login_methods(
                &AccessRequest {
                    host: &target.host,
                    path: target.path(),
                    query: target.query(),
                    method: "GET",
                    client_ip: self.context.client.ip(),
                    identity: None,
                },
                &names,
            ),
            // No application named (or a portal page): every method this portal has.
            _ => LoginMethods {
                users_file: true,
                email_pin: true,
                oidc: names.iter().map(|n| (*n).to_owned()).collect(),
            },
        };
        let choices = pages::LoginChoices {
            password: methods.users_file,
            email_pin: methods.email_pin && self.access.sign_in.pin.is_some(),
            passkey: methods.users_file && self.access.passkeys_at(&self.portal.host).is_some(),
            providers: offered
                .iter()
                .filter(|p| methods.oidc.contains(&p.config.name))
                .map(|p| pages::ProviderChoice {
                    name: &p.config.name,
                    display_name: &p.config.display_name,
                })
                .collect(),
        };
        pages::login(csrf, rd, error, &choices)
    }

    /// `GET /?rd=…`: sign in, continue to a second factor, or hand the application a code.
    async fn index(&self, headers: &HeaderMap, canonical: &Canonical) -> Response<EdgeBody> {
        let rd_raw = super::http_util::query_param(canonical.query(), "rd");
        let rm = super::http_util::query_param(canonical.query(), "rm")
            .filter(|m| Method::from_bytes(m.as_bytes()).is_ok())
            .unwrap_or_else(|| "GET".to_owned());
        let Ok(target) = self.validated_rd(rd_raw.as_deref()) else {
            return bad_link();
        };
        let (id, session, new) = self.session_or_new(headers);
        let response = self
            .continue_flow(&id, &session, target.as_ref(), rd_raw.as_deref(), &rm)
            .await;
        if new {
            with_session(response, &id)
        } else {
            response
        }
    }

    async fn continue_flow(
        &self,
        id: &SessionId,
        session: &PortalSession,
        target: Option<&Target>,
        rd: Option<&str>,
        method: &str,
    ) -> Response<EdgeBody> {
        let Some(user) = session.user.as_deref() else {
            return self.login_page(&session.csrf_token, rd, None);
        };
        let level = session.level.unwrap_or(AuthLevel::OneFactor);
        let identity = session_identity(self.access, user, level, session.external.clone());
        let Some(identity) = identity else {
            // Removed or disabled since login: the session ends here.
            self.access.sessions.revoke(id);
            let (id, fresh) = self.access.sessions.create_anonymous(self.now);
            return with_session(self.login_page(&fresh.csrf_token, rd, None), &id);
        };
        let Some(target) = target else {
            return pages::message(
                StatusCode::OK,
                "Signed in",
                &format!(
                    "You are signed in as {}. You can close this page or open an application.",
                    identity.name()
                ),
            );
        };
        if target.host == self.portal.host {
            // Back to a portal page (enrolment, for instance): no application to ask.
            return redirect(StatusCode::FOUND, &target.url);
        }
        let policy = self.access.policy();
        let decision = policy.evaluate(&AccessRequest {
            host: &target.host,
            path: target.path(),
            query: target.query(),
            method,
            client_ip: self.context.client.ip(),
            identity: Some(&identity),
        });
        match decision {
            Decision::Allow { .. } | Decision::Bypass { .. } => {
                match self.access.sessions.issue_code(id, &target.host, self.now) {
                    Some(code) => redirect(
                        StatusCode::FOUND,
                        &format!(
                            "https://{}/cdn-cgi/access/callback?code={}&rd={}",
                            target.authority,
                            encode(code.as_str()),
                            encode(&target.path_and_query)
                        ),
                    ),
                    None => self.login_page(&session.csrf_token, rd, None),
                }
            }
            Decision::SecondFactorRequired { .. }
            | Decision::LoginRequired {
                level: AuthLevel::TwoFactor,
                ..
            } if session.external.is_some() => pages::message_with_link(
                StatusCode::FORBIDDEN,
                "Two-step verification needed",
                &format!(
                    "This application needs two-step verification, which a sign-in as {} cannot give here. Sign in with an account of this portal instead.",
                    identity.name()
                ),
                ("Sign in with another account", "/logout"),
            ),
            Decision::SecondFactorRequired { .. }
            | Decision::LoginRequired {
                level: AuthLevel::TwoFactor,
                ..
            } => {
                if self.access.has_second_factor(user).await {
                    self.second_factor_page(&session.csrf_token, rd, identity.name())
                        .await
                } else {
                    pages::message_with_link(
                        StatusCode::FORBIDDEN,
                        "Two-step verification needed",
                        "This application needs a second factor, and this account has none yet. Set one up, then open the application again.",
                        ("Set up two-step verification", "/settings/totp"),
                    )
                }
            }
            Decision::LoginRequired { .. } => self.login_page(&session.csrf_token, rd, None),
            Decision::Deny { .. } => pages::denied(
                Some(identity.name()),
                &self.context.request_id,
                pages::SwitchAccount::Form {
                    csrf: &session.csrf_token,
                    rd,
                },
            ),
        }
    }

    /// Every form post: CSRF and origin first, then the step.
    async fn post(&self, path: &str, request: Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        if !self.same_origin(&parts.headers) {
            return Ok(pages::message(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was sent from another site.",
            ));
        }
        let Ok(form) = read_form(&parts.headers, body).await else {
            return Err(ErrorClass::BadRequest);
        };
        let Some((id, session)) = self.session(&parts.headers) else {
            return Ok(self.expired());
        };
        let csrf = form.get("csrf").map(String::as_str).unwrap_or_default();
        if !session.csrf_ok(csrf) {
            // The session stays as it is: a forged cross-site post must not be able to
            // replace it (its answer's cookies would be stored by the browser).
            return Ok(pages::message(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form is out of date or was not sent from this portal. Go back, reload the page and try again.",
            ));
        }
        if let Some(name) = oidc_path(path, "start") {
            return Ok(self.oidc_start(&id, name, &form).await);
        }
        Ok(match path {
            "/login" => self.login(&id, &form).await,
            "/login/email" => self.pin_request(&id, &session, &form),
            "/login/email/verify" => self.pin_verify(&id, &session, &form),
            "/2fa/totp" => self.totp(&id, &session, &form).await,
            "/settings/reauth" => self.reauth(&id, &session, &form).await,
            "/settings/totp" => self.confirm_totp(&id, &session, &form).await,
            "/settings/passkey/remove" => self.remove_passkey(&session, &form).await,
            _ => self.logout(&id, form.get("rd").map(String::as_str)),
        })
    }

    /// A form must come from the portal's own pages: `Origin` (when sent) must be the
    /// portal, `Sec-Fetch-Site` (when sent) `same-origin` or `none`, and without `Origin` a
    /// `Referer` (when sent) must be on the portal. Clients that send none of them are left
    /// to the CSRF token and SameSite cookies.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let portal = self.portal.base_url.as_bytes();
        if let Some(site) = headers.get("sec-fetch-site")
            && !matches!(site.as_bytes(), b"same-origin" | b"none")
        {
            return false;
        }
        match headers.get(header::ORIGIN).map(HeaderValue::as_bytes) {
            Some(origin) => origin.eq_ignore_ascii_case(portal),
            None => headers.get(header::REFERER).is_none_or(|referer| {
                let referer = referer.as_bytes();
                referer.len() > portal.len()
                    && referer[..portal.len()].eq_ignore_ascii_case(portal)
                    && referer[portal.len()] == b'/'
            }),
        }
    }

    fn expired(&self) -> Response<EdgeBody> {
        let (id, session) = self.access.sessions.create_anonymous(self.now);
        with_session(
            self.login_page(
                &session.csrf_token,
                None,
                Some("That form had expired. Please sign in again."),
            ),
            &id,
        )
    }

    async fn login(&self, id: &SessionId, form: &HashMap<String, String>) -> Response<EdgeBody> {
        let started = Instant::now();
        let login = form.get("username").map(|s| s.trim()).unwrap_or_default();
        let password = form.get("password").map(String::as_str).unwrap_or_default();
        let rd = form.get("rd").map(String::as_str);
        let remember = form.get("remember_me").is_some_and(|v| v == "1");
        let ip = self.context.client.ip();
        let users = self.access.users.current();
        // One counter per person, whatever form of their name they typed.
        let key = users.canonical_login(login);
        let banned = self.access.regulator.is_banned(Some(&key), ip, self.now);
        // A banned login still costs one verification, so a ban cannot be told apart.
        let outcome = users
            .clone()
            .authenticate_blocking(login.to_owned(), SecretString::from(password.to_owned()))
            .await;
        tokio::time::sleep_until((started + self.access.options.login_floor).into()).await;
        let result = match (&outcome, banned) {
            (_, true) => AuditResult::Banned,
            (Ok(_), false) => AuditResult::Success,
            (Err(_), false) => AuditResult::Failure,
        };
        // A login that names no user is logged without it: people type passwords into the
        // username field.
        let who = users.find_login(login).map(|_| key.as_str());
        self.audit_login(LoginStep::Password, who, result);
        match outcome {
            Ok(user) if !banned => {
                self.access.regulator.record_success(&key);
                let new = self
                    .access
                    .sessions
                    .first_factor(id, &user.name, remember, self.now);
                let next = match rd {
                    Some(rd) if !rd.is_empty() => format!("/?rd={}", encode(rd)),
                    _ => "/".to_owned(),
                };
                let keep = remember
                    .then(|| self.access.sessions.limits().remember_me)
                    .flatten();
                with_session_for(redirect(StatusCode::SEE_OTHER, &next), &new, keep)
            }
            _ => {
                if !banned {
                    self.access
                        .regulator
                        .record_failure(Some(&key), ip, self.now);
                }
                let csrf = self
                    .access
                    .sessions
                    .get(id, self.now)
                    .map(|s| s.csrf_token)
                    .unwrap_or_default();
                self.login_page(&csrf, rd, Some("Incorrect username or password."))
            }
        }
    }

    async fn totp(
        &self,
        id: &SessionId,
        session: &PortalSession,
        form: &HashMap<String, String>,
    ) -> Response<EdgeBody> {
        let Some(user) = session.user.as_deref() else {
            return self.expired();
        };
        let rd = form.get("rd").map(String::as_str);
        let code = form.get("code").map(|c| c.trim()).unwrap_or_default();
        let ip = self.context.client.ip();
        let banned = self.access.regulator.is_banned(Some(user), ip, self.now);
        let verified = !banned
            && self
                .access
                .totp
                .verify(user, code, unix(self.now))
                .await
                .is_ok();
        self.audit_login(LoginStep::Totp, Some(user), audit_result(banned, verified));
        if !verified {
            if !banned {
                self.access
                    .regulator
                    .record_failure(Some(user), ip, self.now);
            }
            return pages::totp(
                &session.csrf_token,
                rd,
                user,
                Some("That code is not valid. Wait for the next one and try again."),
            );
        }
        let Some(new) = self.access.sessions.second_factor(id, self.now) else {
            return self.expired();
        };
        let next = match rd {
            Some(rd) if !rd.is_empty() => format!("/?rd={}", encode(rd)),
            _ => "/".to_owned(),
        };
        with_session(redirect(StatusCode::SEE_OTHER, &next), &new)
    }

    /// `GET /settings/totp`: enrolment, after a fresh password; replacing an existing
    /// second factor needs a two-factor session too.
    async fn enrolment(&self, headers: &HeaderMap) -> Response<EdgeBody> {
        let Some((_, session)) = self.session(headers) else {
            return redirect(
                StatusCode::FOUND,
                &format!(
                    "/?rd={}",
                    encode(&format!("{}/settings/totp", self.portal.base_url))
                ),
            );
        };
        let Some(user) = session.user.as_deref() else {
            return redirect(
                StatusCode::FOUND,
                &format!(
                    "/?rd={}",
                    encode(&format!("{}/settings/totp", self.portal.base_url))
                ),
            );
        };
        if session.external.is_some() {
            return pages::message_with_link(
                StatusCode::FORBIDDEN,
                "Not available for this account",
                "Two-step verification is set up where this account comes from (your identity provider or mailbox), not here.",
                ("Back to the portal", "/"),
            );
        }
        if self.access.totp_enrolled(user).await && session.level != Some(AuthLevel::TwoFactor) {
            return pages::totp(
                &session.csrf_token,
                Some(&format!("{}/settings/totp", self.portal.base_url)),
                user,
                None,
            );
        }
        if !session.may_change_credentials(self.now) {
            return pages::reauthenticate(&session.csrf_token, user, None);
        }
        self.enrolment_page(&session, user, None)
    }

    fn enrolment_page(
        &self,
        session: &PortalSession,
        user: &str,
        error: Option<&str>,
    ) -> Response<EdgeBody> {
        // The pending secret travels in the form, sealed to this user: nothing to keep
        // server-side between the page and the confirmation.
        let pending = self.access.totp.enrol(user);
        let sealed = pending.as_ref().ok().and_then(|p| {
            self.access
                .secretbox
                .seal(p.secret.as_bytes(), &enrol_aad(user))
                .ok()
        });
        match (pending, sealed) {
            (Ok(pending), Some(sealed)) => pages::enrol_totp(
                &session.csrf_token,
                &pending.secret.to_base32(),
                &pending.uri,
                &URL_SAFE_NO_PAD.encode(sealed),
                error,
            ),
            _ => pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Setup unavailable",
                "A new key could not be made. Try again; if it keeps failing, tell the administrator.",
            ),
        }
    }

    async fn reauth(
        &self,
        id: &SessionId,
        session: &PortalSession,
        form: &HashMap<String, String>,
    ) -> Response<EdgeBody> {
        let started = Instant::now();
        let Some(user) = session.user.clone() else {
            return self.expired();
        };
        let password = SecretString::from(form.get("password").cloned().unwrap_or_default());
        let ip = self.context.client.ip();
        let banned = self.access.regulator.is_banned(Some(&user), ip, self.now);
        let outcome = self
            .access
            .users
            .current()
            .authenticate_blocking(user.clone(), password)
            .await;
        tokio::time::sleep_until((started + self.access.options.login_floor).into()).await;
        let ok = !banned && outcome.is_ok();
        self.audit_login(LoginStep::Password, Some(&user), audit_result(banned, ok));
        if !ok {
            if !banned {
                self.access
                    .regulator
                    .record_failure(Some(&user), ip, self.now);
            }
            return pages::reauthenticate(&session.csrf_token, &user, Some("Incorrect password."));
        }
        match self.access.sessions.reauthenticated(id, self.now) {
            Some(new) => {
                // The passkey settings ask for the password with `next=/settings`.
                let to = match form.get("next").map(String::as_str) {
                    Some("/settings") => "/settings",
                    _ => "/settings/totp",
                };
                with_session(redirect(StatusCode::SEE_OTHER, to), &new)
            }
            None => self.expired(),
        }
    }

    async fn confirm_totp(
        &self,
        id: &SessionId,
        session: &PortalSession,
        form: &HashMap<String, String>,
    ) -> Response<EdgeBody> {
        let Some(user) = session.user.as_deref() else {
            return self.expired();
        };
        if !session.may_change_credentials(self.now)
            || (self.access.totp_enrolled(user).await
                && session.level != Some(AuthLevel::TwoFactor))
        {
            return pages::reauthenticate(&session.csrf_token, user, None);
        }
        let secret = form
            .get("pending")
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|sealed| self.access.secretbox.open(&sealed, &enrol_aad(user)).ok())
            .and_then(|bytes| TotpSecret::from_bytes(bytes).ok());
        let Some(secret) = secret else {
            return self.enrolment_page(
                session,
                user,
                Some("The setup form had expired; here is a new key."),
            );
        };
        let code = form.get("code").map(|c| c.trim()).unwrap_or_default();
        match self
            .access
            .totp
            .confirm(user, &secret, code, unix(self.now))
            .await
        {
            Ok(()) => {
                self.audit_login(LoginStep::TotpEnrolment, Some(user), AuditResult::Success);
                // The code just proved the new factor: this session is now two-factor.
                let new = self.access.sessions.second_factor(id, self.now);
                let page = pages::message_with_link(
                    StatusCode::OK,
                    "Two-step verification is on",
                    "From now on, signing in asks for a code from your authenticator app. You can open the application again.",
                    ("Back to the portal", "/"),
                );
                match new {
                    Some(new) => with_session(page, &new),
                    None => page,
                }
            }
            Err(_) => {
                self.audit_login(LoginStep::TotpEnrolment, Some(user), AuditResult::Failure);
                let uri = provisioning_uri(
                    self.access.totp.params(),
                    &secret,
                    &self.access.totp_issuer,
                    user,
                )
                .unwrap_or_default();
                pages::enrol_totp(
                    &session.csrf_token,
                    &secret.to_base32(),
                    &uri,
                    form.get("pending").map(String::as_str).unwrap_or_default(),
                    Some("That code did not match. Check the key and try the next code."),
                )
            }
        }
    }

    /// `GET /logout[?rd=…]`: the confirmation (a form); a valid `rd` rides along, so the
    /// sign-in page for that application follows ("sign in with another account").
    fn logout_page(&self, headers: &HeaderMap, canonical: &Canonical) -> Response<EdgeBody> {
        let rd = super::http_util::query_param(canonical.query(), "rd");
        let target = self.validated_rd(rd.as_deref()).ok().flatten();
        match self.session(headers) {
            Some((_, session)) if session.user.is_some() => {
                pages::logout_confirm(&session.csrf_token, target.as_ref().map(|t| t.url.as_str()))
            }
            _ => pages::message_with_link(
                StatusCode::OK,
                "Signed out",
                "You are not signed in.",
                ("Sign in", "/"),
            ),
        }
    }

    /// Ends the session; with a valid `rd` ("sign in with another account"), goes on to the
    /// sign-in page for it.
    fn logout(&self, id: &SessionId, rd: Option<&str>) -> Response<EdgeBody> {
        let user = self.access.sessions.get(id, self.now).and_then(|s| s.user);
        self.access.sessions.revoke(id);
        self.audit_login(LoginStep::Logout, user.as_deref(), AuditResult::Success);
        let mut response = match self.validated_rd(rd) {
            Ok(Some(target)) => redirect(
                StatusCode::SEE_OTHER,
                &format!("/?rd={}", encode(&target.url)),
            ),
            _ => pages::message_with_link(
                StatusCode::OK,
                "Signed out",
                "You are signed out of every application on this portal.",
                ("Sign in again", "/"),
            ),
        };
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(PORTAL_COOKIE, None, None));
        response
    }

    fn audit_login(&self, step: LoginStep, who: Option<&str>, result: AuditResult) {
        self.audit_event(step, who, result, None);
    }

    /// A login step's audit event with a short reason (`unavailable`, `not_allowed`...).
    fn audit_detail(
        &self,
        step: LoginStep,
        who: Option<&str>,
        result: AuditResult,
        detail: &'static str,
    ) {
        self.audit_event(step, who, result, Some(detail));
    }

    /// The one way portal steps (password, TOTP, providers, PIN, passkeys) are audited.
    fn audit_event(
        &self,
        step: LoginStep,
        who: Option<&str>,
        result: AuditResult,
        detail: Option<&str>,
    ) {
        self.access.audit.record(AuditEvent {
            at: self.now,
            kind: AuditKind::Login(step),
            who: who.map(str::to_owned),
            what: step.what().to_owned(),
            rule: None,
            result,
            client: self.context.client.ip(),
            request_id: self.context.request_id.clone(),
            detail: detail.map(str::to_owned),
        });
    }
}

/// Binds a sealed pending TOTP secret to the user it was made for.
fn enrol_aad(user: &str) -> Vec<u8> {
    format!("portless totp enrolment\0{user}").into_bytes()
}

fn audit_result(banned: bool, ok: bool) -> AuditResult {
    match (banned, ok) {
        (true, _) => AuditResult::Banned,
        (false, true) => AuditResult::Success,
        (false, false) => AuditResult::Failure,
    }
}

/// Seconds since the Unix epoch (0 for a clock before it, which no code matches).
fn unix(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A validated `rd`, split the way the policy and the callback need it.
struct Target {
    /// The whole URL, as validated.
    url: String,
    /// Canonical host.
    host: String,
    /// `host[:port]` as in the URL.
    authority: String,
    /// Canonical path and query (what the application will be asked).
    path_and_query: String,
    path_len: usize,
}

impl Target {
    fn new(validated: &RedirectTarget) -> Option<Self> {
        let url = validated.url().to_owned();
        let rest = url.strip_prefix("https://")?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        let path_and_query = canonical_path(&path).ok()?;
        let path_len = path_and_query.find('?').unwrap_or(path_and_query.len());
        Some(Self {
            host: validated.host().to_owned(),
            authority: authority.to_owned(),
            url,
            path_and_query,
            path_len,
        })
    }

    fn path(&self) -> &str {
        &self.path_and_query[..self.path_len]
    }

    fn query(&self) -> Option<&str> {
        self.path_and_query
            .get(self.path_len..)
            .and_then(|q| q.strip_prefix('?'))
    }
}
