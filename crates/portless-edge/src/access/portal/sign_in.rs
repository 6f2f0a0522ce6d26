//! The portal's sign-in methods beside the password: an upstream OpenID provider (start and
//! callback) and the email PIN (request and code).
//!
//! Both end in [`SessionStore::external_login`](portless_access::session::SessionStore):
//! a new session id that holds the login whole (provider, email, name, groups), judged by the
//! policy like any other identity — under the fail-closed rule that only rules naming such
//! identities admit them.

use std::collections::HashMap;

use http::{HeaderMap, StatusCode};
use portless_access::AuthLevel;
use portless_access::audit::{AuditResult, LoginStep};
use portless_access::email_pin::{BrowserBinding, EmailAddress, PinError, Withheld};
use portless_access::session::{ExternalLogin, PortalSession, SessionId};

use super::super::identify::external_identity;
use super::super::pages;
use super::super::sign_in::PendingFlow;
use super::{Visit, next_url, with_session};
use crate::body::EdgeBody;

type Page = http::Response<EdgeBody>;

impl Visit<'_> {
    /// `POST /oidc/<name>/start`: sends the browser to the provider, the login kept here.
    pub(super) async fn oidc_start(
        &self,
        id: &SessionId,
        name: &str,
        form: &HashMap<String, String>,
    ) -> Page {
        let Some(provider) = self.access.sign_in.provider(name, &self.portal.host) else {
            return unknown_method();
        };
        let rd = form.get("rd").filter(|rd| !rd.is_empty()).cloned();
        if self.validated_rd(rd.as_deref()).is_err() {
            return super::bad_link();
        }
        let client = match provider.client(self.now).await {
            Ok(client) => client,
            Err(e) => {
                self.audit_detail(LoginStep::Oidc, None, AuditResult::Failure, "unavailable");
                tracing::warn!(provider = name, error = %e, "sign-in provider unavailable");
                return pages::provider_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("{} cannot be reached", provider.config.display_name),
                    "The sign-in provider did not answer. Try again in a moment, or choose another way to sign in.",
                    rd.as_deref(),
                );
            }
        };
        let request = client.begin(self.now);
        let url = request.url.clone();
        let flow = PendingFlow {
            provider: name.to_owned(),
            request,
            rd,
        };
        self.access.sign_in.start_flow(id.as_str(), flow, self.now);
        super::redirect(StatusCode::SEE_OTHER, &url)
    }

    /// `GET /oidc/<name>/callback?code=…&state=…`: the provider's answer, in the browser
    /// that started the login (its portal session holds the login's state, nonce and PKCE
    /// verifier; they are used once).
    pub(super) async fn oidc_callback(
        &self,
        headers: &HeaderMap,
        name: &str,
        query: Option<&str>,
    ) -> Page {
        let param = |key| super::super::http_util::query_param(query, key);
        let flow = self
            .session(headers)
            .and_then(|(id, _)| Some((self.access.sign_in.take_flow(id.as_str())?, id)));
        let Some((flow, id)) = flow.filter(|(flow, _)| flow.provider == name) else {
            self.audit_detail(LoginStep::Oidc, None, AuditResult::Failure, "no_login");
            return not_completed(
                "This sign-in was not started in this browser, or it has already been used or has expired.",
                None,
            );
        };
        if let Some(error) = param("error") {
            self.audit_detail(
                LoginStep::Oidc,
                None,
                AuditResult::Failure,
                "provider_error",
            );
            return not_completed(
                &format!(
                    "The provider ended the sign-in ({}).",
                    error.chars().take(64).collect::<String>()
                ),
                flow.rd.as_deref(),
            );
        }
        let (Some(code), Some(state)) = (param("code"), param("state")) else {
            return not_completed("The provider's answer is incomplete.", flow.rd.as_deref());
        };
        let Some(provider) = self.access.sign_in.provider(name, &self.portal.host) else {
            return unknown_method();
        };
        let upstream = match provider.client(self.now).await {
            Ok(client) => client.finish(&flow.request, &code, &state, self.now).await,
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "sign-in provider unavailable");
                return not_completed(
                    "The sign-in provider could not be reached.",
                    flow.rd.as_deref(),
                );
            }
        };
        let upstream = match upstream {
            Ok(upstream) => upstream,
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "upstream sign-in refused");
                self.audit_detail(LoginStep::Oidc, None, AuditResult::Failure, "refused");
                return not_completed(
                    &format!("The provider's answer was refused: {e}."),
                    flow.rd.as_deref(),
                );
            }
        };
        let Some(email) = upstream.email.clone() else {
            self.audit_detail(LoginStep::Oidc, None, AuditResult::Failure, "no_email");
            return not_completed(
                &format!(
                    "Your {} account did not share an email address, which this portal needs to know who you are.",
                    provider.config.display_name
                ),
                flow.rd.as_deref(),
            );
        };
        let login = ExternalLogin {
            provider: Some(name.to_owned()),
            email: email.clone(),
            name: upstream.name,
            groups: upstream.groups,
        };
        let new = self
            .access
            .sessions
            .external_login(&id, login, provider.config.level, self.now);
        self.audit_login(LoginStep::Oidc, Some(&email), AuditResult::Success);
        with_session(
            super::redirect(StatusCode::SEE_OTHER, &next_url(flow.rd.as_deref())),
            &new,
        )
    }

    /// `POST /login/email`: mails a PIN if some rule could allow the address. The answer is
    /// the same page, after the same work, whether or not a mail goes out.
    pub(super) fn pin_request(
        &self,
        id: &SessionId,
        session: &PortalSession,
        form: &HashMap<String, String>,
    ) -> Page {
        let Some(pin) = &self.access.sign_in.pin else {
            return unknown_method();
        };
        let rd = form.get("rd").map(String::as_str);
        let typed = form.get("email").map(|e| e.trim()).unwrap_or_default();
        let policy = self.access.policy();
        let binding = BrowserBinding::new(id.as_str());
        let could_be_allowed = |address: &EmailAddress| {
            policy.could_allow(&external_identity(
                pin_login(address.as_str()),
                AuthLevel::OneFactor,
            ))
        };
        let requested = match pin.book.request(
            typed,
            &binding,
            self.context.client.ip(),
            self.now,
            could_be_allowed,
        ) {
            Ok(requested) => requested,
            Err(_) => {
                return self.login_page(
                    &session.csrf_token,
                    rd,
                    Some("That is not an email address. Check it and try again."),
                );
            }
        };
        let detail = match requested.withheld {
            None => "sent",
            Some(Withheld::NotAllowed) => "not_allowed",
            Some(Withheld::AddressRateLimited) => "address_rate_limited",
            Some(Withheld::IpRateLimited) => "ip_rate_limited",
        };
        let result = if requested.sent() {
            AuditResult::Success
        } else {
            AuditResult::Failure
        };
        self.audit_detail(
            LoginStep::EmailPinRequest,
            Some(requested.address.as_str()),
            result,
            detail,
        );
        if let Some(issued) = requested.pin {
            pin.send(issued);
        }
        pages::pin_sent(&session.csrf_token, rd, requested.address.as_str(), None)
    }

    /// `POST /login/email/verify`: the PIN typed back, in the browser that asked for it.
    pub(super) fn pin_verify(
        &self,
        id: &SessionId,
        session: &PortalSession,
        form: &HashMap<String, String>,
    ) -> Page {
        let Some(pin) = &self.access.sign_in.pin else {
            return unknown_method();
        };
        let rd = form.get("rd").map(String::as_str);
        let typed = form.get("email").map(|e| e.trim()).unwrap_or_default();
        let code = form.get("code").map(String::as_str).unwrap_or_default();
        let key = EmailAddress::parse(typed)
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|_| typed.to_ascii_lowercase());
        let ip = self.context.client.ip();
        let banned = self.access.regulator.is_banned(Some(&key), ip, self.now);
        let verified = if banned {
            Err("banned")
        } else {
            pin.book
                .verify(typed, code, &BrowserBinding::new(id.as_str()), self.now)
                .map_err(|e| match e {
                    PinError::Address(_) | PinError::Malformed => "malformed",
                    PinError::NonePending => "none_pending",
                    PinError::Wrong { burned: false } => "wrong_code",
                    PinError::Wrong { burned: true } => "wrong_code_burned",
                    PinError::OtherBrowser => "other_browser",
                })
        };
        let verified = match verified {
            Ok(verified) => verified,
            Err(reason) => {
                if !banned {
                    self.access
                        .regulator
                        .record_failure(Some(&key), ip, self.now);
                }
                let result = if banned {
                    AuditResult::Banned
                } else {
                    AuditResult::Failure
                };
                // The page says the same whatever the reason; the audit log says which.
                self.audit_detail(LoginStep::EmailPin, Some(&key), result, reason);
                return pages::pin_sent(
                    &session.csrf_token,
                    rd,
                    &key,
                    Some("That code is not valid. Check the latest mail, or ask for a new code."),
                );
            }
        };
        let email = verified.address.as_str().to_owned();
        self.access.regulator.record_success(&email);
        let new = self.access.sessions.external_login(
            id,
            pin_login(&email),
            AuthLevel::OneFactor,
            self.now,
        );
        self.audit_login(LoginStep::EmailPin, Some(&email), AuditResult::Success);
        with_session(super::redirect(StatusCode::SEE_OTHER, &next_url(rd)), &new)
    }
}

/// The login an email PIN proves: the address, nothing else.
fn pin_login(email: &str) -> ExternalLogin {
    ExternalLogin {
        provider: None,
        email: email.to_owned(),
        name: None,
        groups: Vec::new(),
    }
}

fn unknown_method() -> Page {
    pages::message_with_link(
        StatusCode::NOT_FOUND,
        "Unknown sign-in method",
        "This portal does not offer that way to sign in.",
        ("Back to sign-in", "/"),
    )
}

fn not_completed(text: &str, rd: Option<&str>) -> Page {
    pages::provider_error(StatusCode::FORBIDDEN, "Sign-in not completed", text, rd)
}
