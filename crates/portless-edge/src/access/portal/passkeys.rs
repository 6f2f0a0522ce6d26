//! The portal's passkey handlers: the settings page (list, remove, add), passkey as second
//! factor, and passwordless "Sign in with a passkey".
//!
//! The ceremonies are JSON POSTs from `passkey.js` to `/passkey/...` and `/2fa/passkey/...`:
//! each needs the portal's own origin (the rules of `same_origin`), a JSON content type (so a
//! cross-site page cannot send one without a CORS preflight), the session's CSRF token in the
//! `Portless-Csrf` header, and a live portal session, whose id keys the pending challenge.
//! Registering or removing a passkey needs a re-authentication within `REAUTH_WINDOW` and,
//! if the user already has a second factor, a two-factor session. Each factor step gives the
//! session a new id; failures count towards bans and every step is audited.

use http_body_util::BodyExt as _;
use portless_access::passkey::{PasskeyError, PasskeyRegistry};
use serde_json::{Value, json};

use super::super::passkey_pages::{self, Settings};
use super::*;

/// Largest JSON body accepted (a WebAuthn response is a few kilobytes).
const MAX_JSON: usize = 64 * 1024;

/// The JSON endpoints.
pub(super) fn is_json_endpoint(path: &str) -> bool {
    matches!(
        path,
        "/passkey/register/start"
            | "/passkey/register/finish"
            | "/passkey/login/start"
            | "/passkey/login/finish"
            | "/2fa/passkey/start"
            | "/2fa/passkey/finish"
    )
}

/// A JSON answer carrying the portal's headers.
fn answer(status: StatusCode, body: &Value) -> Response<EdgeBody> {
    let mut response = super::super::http_util::json(status, body.to_string());
    pages::secure_headers(response.headers_mut());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn refusal(status: StatusCode, message: &str) -> Response<EdgeBody> {
    answer(status, &json!({ "error": message }))
}

/// Where to go after a factor step: back through `/` with the (re-validated) `rd`.
fn next(rd: Option<&str>) -> String {
    match rd {
        Some(rd) if !rd.is_empty() => format!("/?rd={}", encode(rd)),
        _ => "/".to_owned(),
    }
}

/// The `detail` an audit event gets for a refusal.
fn detail(error: &PasskeyError) -> &'static str {
    match error {
        PasskeyError::NoChallenge => "no_challenge",
        PasskeyError::Malformed { .. } => "malformed",
        PasskeyError::Refused { .. } => "refused",
        PasskeyError::NotEnrolled => "not_enrolled",
        PasskeyError::UnknownCredential => "unknown_credential",
        PasskeyError::CounterRegression { .. } => "counter_regression",
        PasskeyError::AlreadyRegistered => "already_registered",
        PasskeyError::TooMany { .. } => "too_many",
        PasskeyError::InvalidName { .. } => "invalid_name",
        _ => "error",
    }
}

/// Whether a refusal was a credential that failed (counted towards bans), rather than a
/// missing or malformed request (a reload, a double click), which proves nothing.
fn is_guess(error: &PasskeyError) -> bool {
    matches!(
        error,
        PasskeyError::Refused { .. }
            | PasskeyError::UnknownCredential
            | PasskeyError::CounterRegression { .. }
    )
}

/// What the user is told (never the library's internals).
fn user_message(error: &PasskeyError) -> String {
    match error {
        PasskeyError::Refused { .. } | PasskeyError::Malformed { .. } => {
            "The passkey was not accepted. Try again.".to_owned()
        }
        PasskeyError::CounterRegression { .. } => {
            "This passkey was refused because it may have been copied. Sign in another way and \
             replace it."
                .to_owned()
        }
        PasskeyError::Store(_) | PasskeyError::Corrupt { .. } | PasskeyError::Challenge { .. } => {
            "Passkeys are unavailable right now. Try again later.".to_owned()
        }
        other => sentence(&other.to_string()),
    }
}

/// `text` with a capital first letter, as a sentence on a page.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// === impl Visit ===

impl Visit<'_> {
    /// `GET /settings`: the user's passkeys (and a link to TOTP), after a fresh password;
    /// a user with a second factor must have used it in this session.
    pub(super) async fn settings(&self, headers: &HeaderMap) -> Response<EdgeBody> {
        let back = format!(
            "/?rd={}",
            encode(&format!("{}/settings", self.portal.base_url))
        );
        let Some((_, session)) = self.session(headers) else {
            return redirect(StatusCode::FOUND, &back);
        };
        let Some(user) = session.user.as_deref() else {
            return redirect(StatusCode::FOUND, &back);
        };
        if let Some(page) = self.step_up_page(&session, user).await {
            return page;
        }
        self.settings_page(&session, user, None, None).await
    }

    /// The page to show instead when `session` may not change `user`'s credentials now.
    async fn step_up_page(
        &self,
        session: &PortalSession,
        user: &str,
    ) -> Option<Response<EdgeBody>> {
        if self.access.has_second_factor(user).await && session.level != Some(AuthLevel::TwoFactor)
        {
            let rd = format!("{}/settings", self.portal.base_url);
            return Some(
                self.second_factor_page(&session.csrf_token, Some(&rd), user)
                    .await,
            );
        }
        if !session.may_change_credentials(self.now) {
            return Some(passkey_pages::reauthenticate(&session.csrf_token, user));
        }
        None
    }

    async fn settings_page(
        &self,
        session: &PortalSession,
        user: &str,
        notice: Option<&str>,
        error: Option<&str>,
    ) -> Response<EdgeBody> {
        let registry = self.access.passkeys_at(&self.portal.host);
        let passkeys = match registry {
            Some(registry) => registry.list(user).await.unwrap_or_default(),
            None => Vec::new(),
        };
        passkey_pages::settings(&Settings {
            csrf: &session.csrf_token,
            user,
            passkeys: &passkeys,
            enabled: registry.is_some(),
            totp: self.access.totp_enrolled(user).await,
            notice,
            error,
        })
    }

    /// The second-factor page for `user`: passkey and TOTP as enrolled.
    pub(super) async fn second_factor_page(
        &self,
        csrf: &str,
        rd: Option<&str>,
        user: &str,
    ) -> Response<EdgeBody> {
        let totp = self.access.totp_enrolled(user).await;
        if self.access.passkeys_at(&self.portal.host).is_some()
            && self.access.passkey_enrolled(user).await
        {
            passkey_pages::second_factor(csrf, rd, user, totp, None)
        } else {
            pages::totp(csrf, rd, user, None)
        }
    }

    /// `POST /settings/passkey/remove` (a form, CSRF checked by `post`).
    pub(super) async fn remove_passkey(
        &self,
        session: &PortalSession,
        form: &HashMap<String, String>,
    ) -> Response<EdgeBody> {
        let Some(user) = session.user.as_deref() else {
            return self.expired();
        };
        if let Some(page) = self.step_up_page(session, user).await {
            return page;
        }
        let Some(registry) = self.access.passkeys_at(&self.portal.host) else {
            return self.settings_page(session, user, None, None).await;
        };
        let credential = form.get("id").map(String::as_str).unwrap_or_default();
        match registry.remove(user, credential).await {
            Ok(true) => {
                self.audit_event(
                    LoginStep::PasskeyRemoval,
                    Some(user),
                    AuditResult::Success,
                    None,
                );
                redirect(StatusCode::SEE_OTHER, "/settings")
            }
            Ok(false) => {
                self.settings_page(
                    session,
                    user,
                    None,
                    Some("That passkey was already removed."),
                )
                .await
            }
            Err(_) => {
                self.settings_page(
                    session,
                    user,
                    None,
                    Some("The passkey could not be removed. Try again."),
                )
                .await
            }
        }
    }

    /// Every JSON endpoint: origin, session, CSRF header and body first, then the step.
    pub(super) async fn passkey_json(&self, path: &str, request: Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        if !self.same_origin(&parts.headers) {
            return Ok(refusal(
                StatusCode::FORBIDDEN,
                "This request was sent from another site.",
            ));
        }
        let Some(registry) = self.access.passkeys_at(&self.portal.host) else {
            return Ok(refusal(
                StatusCode::NOT_FOUND,
                "Passkeys are turned off on this portal.",
            ));
        };
        let Some((id, session)) = self.session(&parts.headers) else {
            return Ok(refusal(
                StatusCode::UNAUTHORIZED,
                "Your session has expired. Reload the page and try again.",
            ));
        };
        let csrf = parts
            .headers
            .get("portless-csrf")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !session.csrf_ok(csrf) {
            return Ok(refusal(
                StatusCode::FORBIDDEN,
                "This page is out of date or was not sent from this portal. Reload it and try again.",
            ));
        }
        let Some(body) = read_json(&parts.headers, body).await else {
            return Ok(refusal(
                StatusCode::BAD_REQUEST,
                "The request must be a JSON object sent by the portal's page.",
            ));
        };
        Ok(match path {
            "/passkey/register/start" => self.register_start(registry, &id, &session, &body).await,
            "/passkey/register/finish" => {
                self.register_finish(registry, &id, &session, &body).await
            }
            "/2fa/passkey/start" => self.second_factor_start(registry, &id, &session).await,
            "/2fa/passkey/finish" => {
                self.second_factor_finish(registry, &id, &session, &body)
                    .await
            }
            "/passkey/login/start" => self.passwordless_start(registry, &id),
            _ => self.passwordless_finish(registry, &id, &body).await,
        })
    }

    /// Why `session` may not register or remove a passkey now, if it may not.
    async fn may_not_change(&self, session: &PortalSession) -> Option<Response<EdgeBody>> {
        let Some(user) = session.user.as_deref() else {
            return Some(refusal(StatusCode::UNAUTHORIZED, "Sign in first."));
        };
        if self.access.has_second_factor(user).await && session.level != Some(AuthLevel::TwoFactor)
        {
            return Some(refusal(
                StatusCode::FORBIDDEN,
                "Confirm with your second factor first: reload the page.",
            ));
        }
        if !session.may_change_credentials(self.now) {
            return Some(refusal(
                StatusCode::FORBIDDEN,
                "Confirm your password first: reload the page.",
            ));
        }
        None
    }

    async fn register_start(
        &self,
        registry: &PasskeyRegistry,
        id: &SessionId,
        session: &PortalSession,
        body: &Value,
    ) -> Response<EdgeBody> {
        if let Some(refused) = self.may_not_change(session).await {
            return refused;
        }
        let user = session.user.as_deref().unwrap_or_default();
        let display = self
            .access
            .users
            .current()
            .get(user)
            .map_or_else(|| user.to_owned(), |u| u.display_name().to_owned());
        let name = body["name"].as_str().unwrap_or_default();
        match registry
            .start_registration(id, user, &display, name, self.now)
            .await
        {
            Ok(options) => answer(StatusCode::OK, &options),
            Err(e) => refusal(StatusCode::BAD_REQUEST, &user_message(&e)),
        }
    }

    async fn register_finish(
        &self,
        registry: &PasskeyRegistry,
        id: &SessionId,
        session: &PortalSession,
        body: &Value,
    ) -> Response<EdgeBody> {
        if let Some(refused) = self.may_not_change(session).await {
            return refused;
        }
        let user = session.user.as_deref().unwrap_or_default();
        let credential = body["credential"].to_string();
        match registry
            .finish_registration(id, user, &credential, self.now)
            .await
        {
            Ok(_) => {
                self.audit_event(
                    LoginStep::PasskeyRegistration,
                    Some(user),
                    AuditResult::Success,
                    None,
                );
                // The verified passkey just proved a factor, as a TOTP confirmation does.
                let response = answer(StatusCode::OK, &json!({ "redirect": "/settings" }));
                match self.access.sessions.second_factor(id, self.now) {
                    Some(new) => with_session(response, &new),
                    None => response,
                }
            }
            Err(e) => {
                self.audit_event(
                    LoginStep::PasskeyRegistration,
                    Some(user),
                    AuditResult::Failure,
                    Some(detail(&e)),
                );
                refusal(StatusCode::BAD_REQUEST, &user_message(&e))
            }
        }
    }

    async fn second_factor_start(
        &self,
        registry: &PasskeyRegistry,
        id: &SessionId,
        session: &PortalSession,
    ) -> Response<EdgeBody> {
        let Some(user) = session.user.as_deref() else {
            return refusal(StatusCode::UNAUTHORIZED, "Sign in first.");
        };
        match registry.start_authentication(id, user, self.now).await {
            Ok(options) => answer(StatusCode::OK, &options),
            Err(e) => refusal(StatusCode::BAD_REQUEST, &user_message(&e)),
        }
    }

    async fn second_factor_finish(
        &self,
        registry: &PasskeyRegistry,
        id: &SessionId,
        session: &PortalSession,
        body: &Value,
    ) -> Response<EdgeBody> {
        let Some(user) = session.user.as_deref() else {
            return refusal(StatusCode::UNAUTHORIZED, "Sign in first.");
        };
        let ip = self.context.client.ip();
        let banned = self.access.regulator.is_banned(Some(user), ip, self.now);
        let outcome = registry
            .finish_authentication(id, user, &body["credential"].to_string(), self.now)
            .await;
        match (outcome, banned) {
            (_, true) => {
                self.audit_event(LoginStep::Passkey, Some(user), AuditResult::Banned, None);
                refusal(
                    StatusCode::UNAUTHORIZED,
                    "The passkey was not accepted. Try again later.",
                )
            }
            (Ok(_), false) => {
                self.audit_event(LoginStep::Passkey, Some(user), AuditResult::Success, None);
                self.access.regulator.record_success(user);
                let Some(new) = self.access.sessions.second_factor(id, self.now) else {
                    return refusal(StatusCode::UNAUTHORIZED, "Your session has expired.");
                };
                let to = next(body["rd"].as_str());
                with_session(answer(StatusCode::OK, &json!({ "redirect": to })), &new)
            }
            (Err(e), false) => {
                self.audit_event(
                    LoginStep::Passkey,
                    Some(user),
                    AuditResult::Failure,
                    Some(detail(&e)),
                );
                if is_guess(&e) {
                    self.access
                        .regulator
                        .record_failure(Some(user), ip, self.now);
                }
                refusal(StatusCode::UNAUTHORIZED, &user_message(&e))
            }
        }
    }

    fn passwordless_start(&self, registry: &PasskeyRegistry, id: &SessionId) -> Response<EdgeBody> {
        match registry.start_discoverable(id, self.now) {
            Ok(options) => answer(StatusCode::OK, &options),
            Err(e) => refusal(StatusCode::BAD_REQUEST, &user_message(&e)),
        }
    }

    async fn passwordless_finish(
        &self,
        registry: &PasskeyRegistry,
        id: &SessionId,
        body: &Value,
    ) -> Response<EdgeBody> {
        let ip = self.context.client.ip();
        let refused_banned = |who: Option<&str>| {
            self.audit_event(LoginStep::PasskeyLogin, who, AuditResult::Banned, None);
            refusal(
                StatusCode::UNAUTHORIZED,
                "The passkey was not accepted. Try again later.",
            )
        };
        if self.access.regulator.is_banned(None, ip, self.now) {
            // The challenge is spent all the same.
            let _ = registry
                .finish_discoverable(id, &body["credential"].to_string(), self.now)
                .await;
            return refused_banned(None);
        }
        let login = match registry
            .finish_discoverable(id, &body["credential"].to_string(), self.now)
            .await
        {
            Ok(login) => login,
            Err(e) => {
                let who = match &e {
                    PasskeyError::CounterRegression { user, .. } => Some(user.as_str()),
                    _ => None,
                };
                self.audit_event(
                    LoginStep::PasskeyLogin,
                    who,
                    AuditResult::Failure,
                    Some(detail(&e)),
                );
                if is_guess(&e) {
                    self.access.regulator.record_failure(who, ip, self.now);
                }
                return refusal(StatusCode::UNAUTHORIZED, &user_message(&e));
            }
        };
        let user = login.user.as_str();
        if self.access.regulator.is_banned(Some(user), ip, self.now) {
            return refused_banned(Some(user));
        }
        let level = if login.user_verified {
            AuthLevel::TwoFactor
        } else {
            AuthLevel::OneFactor
        };
        if super::super::identify::user_identity(self.access, user, level).is_none() {
            // Removed or disabled in the users file: a passkey does not outlive the account.
            self.audit_event(
                LoginStep::PasskeyLogin,
                Some(user),
                AuditResult::Failure,
                Some("unknown_user"),
            );
            return refusal(StatusCode::UNAUTHORIZED, "This account cannot sign in.");
        }
        self.audit_event(
            LoginStep::PasskeyLogin,
            Some(user),
            AuditResult::Success,
            None,
        );
        self.access.regulator.record_success(user);
        let mut new = self.access.sessions.first_factor(id, user, false, self.now);
        if login.user_verified {
            match self.access.sessions.second_factor(&new, self.now) {
                Some(stepped) => new = stepped,
                None => return refusal(StatusCode::UNAUTHORIZED, "Your session has expired."),
            }
        }
        let to = next(body["rd"].as_str());
        with_session(answer(StatusCode::OK, &json!({ "redirect": to })), &new)
    }
}

/// A JSON object body of at most [`MAX_JSON`] bytes with a JSON content type.
async fn read_json(headers: &HeaderMap, body: Incoming) -> Option<Value> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return None;
    }
    let bytes = http_body_util::Limited::new(body, MAX_JSON)
        .collect()
        .await
        .ok()?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then_some(value)
}
