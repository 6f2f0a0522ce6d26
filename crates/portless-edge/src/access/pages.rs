//! The portal's pages: plain HTML forms that work without JavaScript, one stylesheet served
//! from the portal itself, and a strict Content-Security-Policy (no inline script or style).
//!
//! Every page has the same frame: a header naming the product and the portal's host (so a
//! person sees where they are typing a password), then one card for the step at hand. The
//! stylesheet (`pages/portal.css`) lays it out from 320px phones to desktops, follows the
//! system's dark mode, and keeps every control at least 44px tall.
//!
//! Layout: this file (the frame, shared pieces, the password/TOTP/denied/sign-out pages),
//! `login` (the sign-in choices, email PIN, provider errors); the settings and passkey
//! pages are in `passkey_pages`.

mod login;

use std::future::Future;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::EdgeBody;

pub(crate) use login::{LoginChoices, ProviderChoice, login, pin_sent, provider_error};

tokio::task_local! {
    /// The portal host shown in the header of pages rendered while answering it.
    static PORTAL_HOST: String;
}

/// Runs `answer` (the handling of one portal request) with `host` shown in the header of
/// every page it renders. Pages rendered elsewhere show the product name only.
pub(crate) async fn on_portal<F: Future>(host: &str, answer: F) -> F::Output {
    PORTAL_HOST.scope(host.to_owned(), answer).await
}

/// Every portal response carries this policy: nothing runs, nothing is framed, forms post
/// only to the portal (and its redirects go back to applications over HTTPS).
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
img-src 'self' data:; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet, served at [`STYLESHEET_PATH`].
pub(crate) const STYLESHEET: &str = include_str!("pages/portal.css");

/// The portal's icon, inline (no request; the CSP allows `data:` images): a padlock.
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24'%3E\
%3Crect width='24' height='24' rx='5' fill='%232350c4'/%3E%3Cg fill='none' stroke='white' stroke-width='2.2' \
stroke-linecap='round'%3E%3Cpath d='M8 11V9a4 4 0 0 1 8 0v2'/%3E%3Crect x='6' y='11' width='12' height='8' rx='1.5'/%3E\
%3C/g%3E%3C/svg%3E";

/// Where the stylesheet is served on the portal host.
pub(crate) const STYLESHEET_PATH: &str = "/.portless/portal.css";

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML).
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response<EdgeBody> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"same-origin\"><meta name=\"color-scheme\" content=\"light dark\">\
<title>{title} · Portless</title><link rel=\"icon\" href=\"{FAVICON}\"><link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\"></head>\
<body><header class=\"site\"><span class=\"brand\">Portless</span>{host}</header>\
<main><div class=\"card\">{body}</div></main></body></html>\n",
        title = escape(title),
        host = PORTAL_HOST
            .try_with(|host| format!("<span class=\"host\">{}</span>", escape(host)))
            .unwrap_or_default(),
    );
    let mut response = Response::new(EdgeBody::full(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

/// Headers every portal answer carries.
pub(crate) fn secure_headers(headers: &mut http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: applications never see the portal's URLs (with
    // their `rd`), and the portal's own form posts keep a real `Origin` (under
    // `no-referrer` browsers send `Origin: null`, which the origin check refuses).
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The hidden fields every portal form carries.
pub(crate) fn hidden(csrf: &str, rd: Option<&str>) -> String {
    let mut out = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    );
    if let Some(rd) = rd {
        out.push_str(&format!(
            "<input type=\"hidden\" name=\"rd\" value=\"{}\">",
            escape(rd)
        ));
    }
    out
}

/// An error box (announced by screen readers), or nothing.
pub(crate) fn error_box(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

/// `401` when the page shows an error (a refused credential), `200` otherwise.
pub(crate) fn status_for(error: Option<&str>) -> StatusCode {
    if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    }
}

/// A one-time code field (`code`): digits, the platform's code autofill, a phone's keypad.
pub(crate) fn code_field(label: &str, autofocus: bool) -> String {
    format!(
        "<label for=\"code\">{}</label>\
<input class=\"code\" type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]*\" \
autocomplete=\"one-time-code\" autocapitalize=\"none\" spellcheck=\"false\" maxlength=\"8\" required{}>",
        escape(label),
        if autofocus { " autofocus" } else { "" }
    )
}

/// The second-factor (TOTP) form.
pub(crate) fn totp(
    csrf: &str,
    rd: Option<&str>,
    user: &str,
    error: Option<&str>,
) -> Response<EdgeBody> {
    let body = format!(
        "<h1>Two-step verification</h1><p class=\"lead\">Signed in as <strong>{user}</strong>. Enter the 6-digit code from your authenticator app.</p>{error}\
<form method=\"post\" action=\"/2fa/totp\">{hidden}{code}\
<button type=\"submit\">Verify</button></form>{switch}",
        user = escape(user),
        error = error_box(error),
        hidden = hidden(csrf, rd),
        code = code_field("Code", true),
        switch = switch_account(csrf, None, "Sign out / switch account"),
    );
    page(status_for(error), "Two-step verification", &body)
}

/// Asked before credentials change: the password again.
pub(crate) fn reauthenticate(csrf: &str, user: &str, error: Option<&str>) -> Response<EdgeBody> {
    let body = format!(
        "<h1>Confirm it is you</h1><p class=\"lead\">Changing sign-in methods of <strong>{user}</strong> needs your password again.</p>{error}\
<form method=\"post\" action=\"/settings/reauth\">{hidden}\
<input type=\"text\" name=\"username\" value=\"{user}\" autocomplete=\"username\" hidden>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>\
<button type=\"submit\">Continue</button></form>",
        user = escape(user),
        error = error_box(error),
        hidden = hidden(csrf, None),
    );
    page(status_for(error), "Confirm it is you", &body)
}

/// TOTP enrolment: the secret to add to an authenticator app, and a code to prove it.
pub(crate) fn enrol_totp(
    csrf: &str,
    secret_base32: &str,
    uri: &str,
    sealed: &str,
    error: Option<&str>,
) -> Response<EdgeBody> {
    let body = format!(
        "<h1>Set up two-step verification</h1>\
<p class=\"lead\">Add this key to your authenticator app (or open the link on your phone), then enter the code it shows.</p>\
<p class=\"key\">Key: <code>{secret}</code></p><p><a class=\"button secondary\" href=\"{uri}\">Open in authenticator app</a></p>{error}\
<form method=\"post\" action=\"/settings/totp\">{hidden}<input type=\"hidden\" name=\"pending\" value=\"{sealed}\">\
{code}<button type=\"submit\">Turn on</button></form>",
        secret = escape(secret_base32),
        uri = escape(uri),
        error = error_box(error),
        hidden = hidden(csrf, None),
        sealed = escape(sealed),
        code = code_field("Code", false),
    );
    page(StatusCode::OK, "Set up two-step verification", &body)
}

/// A short message page with a way on: a link styled as a button.
pub(crate) fn message_with_link(
    status: StatusCode,
    title: &str,
    text: &str,
    link: (&str, &str),
) -> Response<EdgeBody> {
    let (label, href) = link;
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a class=\"button\" href=\"{}\">{}</a></p>",
            escape(title),
            escape(text),
            escape(href),
            escape(label)
        ),
    )
}

/// A short message page (signed out, enrolment done, ...).
pub(crate) fn message(status: StatusCode, title: &str, text: &str) -> Response<EdgeBody> {
    page(
        status,
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)),
    )
}

/// How the "Access denied" page offers another account.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SwitchAccount<'a> {
    /// No way (no portal serves this host).
    Nowhere,
    /// A link to the portal's sign-out page (from an application's host, where no portal
    /// form can be posted).
    Link(&'a str),
    /// On the portal: a sign-out form with the session's CSRF token that returns to the
    /// sign-in page for `rd`.
    Form {
        /// The session's CSRF token.
        csrf: &'a str,
        /// Where to go after signing in again.
        rd: Option<&'a str>,
    },
}

/// "Access denied", with the request id and a way to switch account.
pub(crate) fn denied(
    user: Option<&str>,
    request_id: &str,
    switch: SwitchAccount<'_>,
) -> Response<EdgeBody> {
    let who = user
        .map(|u| format!("<p class=\"lead\">You are signed in as <strong>{}</strong>, and this account may not open this page.</p>", escape(u)))
        .unwrap_or_else(|| "<p class=\"lead\">This page is not open to you.</p>".to_owned());
    let rid = if request_id.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"note\">If you think this is wrong, give the administrator this request id: \
<code class=\"copy\" id=\"request-id\">{}</code></p>",
            escape(request_id)
        )
    };
    let switch = match switch {
        SwitchAccount::Nowhere => String::new(),
        SwitchAccount::Link(url) => format!(
            "<p><a class=\"button secondary\" href=\"{}\">Sign in with another account</a></p>",
            escape(url)
        ),
        SwitchAccount::Form { csrf, rd } => {
            switch_account(csrf, rd, "Sign in with another account")
        }
    };
    let body = format!("<h1>Access denied</h1>{who}{rid}{switch}");
    let mut response = page(StatusCode::FORBIDDEN, "Access denied", &body);
    response
        .headers_mut()
        .insert("portless-error", HeaderValue::from_static("access_denied"));
    response
}

/// A sign-out button (a form: signing out changes state, so it is never a plain link).
/// With `rd`, the portal shows the sign-in page for it afterwards.
pub(crate) fn switch_account(csrf: &str, rd: Option<&str>, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/logout\">{}<button class=\"secondary\" type=\"submit\">{}</button></form>",
        hidden(csrf, rd),
        escape(label)
    )
}

/// The sign-out confirmation (reached by links from applications). With `rd` (a validated
/// application address), the sign-in page for it follows.
pub(crate) fn logout_confirm(csrf: &str, rd: Option<&str>) -> Response<EdgeBody> {
    let body = format!(
        "<h1>Sign out</h1><p class=\"lead\">Sign out of every application on this portal?</p>{}",
        switch_account(csrf, rd, "Sign out / switch account")
    );
    page(StatusCode::OK, "Sign out", &body)
}

#[cfg(test)]
mod tests;
