//! The portal's pages: plain HTML forms that work without JavaScript, one stylesheet served
//! from the portal itself, and a strict Content-Security-Policy (no inline script or style).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::EdgeBody;

/// Every portal response carries this policy: nothing runs, nothing is framed, forms post
/// only to the portal (and its redirects go back to applications over HTTPS).
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
img-src 'self' data:; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet, served at [`STYLESHEET_PATH`].
pub(crate) const STYLESHEET: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f5f7;color:#1d2330}\
main{max-width:26rem;margin:8vh auto;padding:2rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin:0 0 1rem}\
p{line-height:1.45}\
label{display:block;margin:.9rem 0 .3rem;font-weight:600}\
input[type=text],input[type=password],input[type=email]{width:100%;padding:.65rem;font-size:1rem;border:1px solid #b8bfcc;border-radius:.4rem}\
input.code{letter-spacing:.3em;font-family:ui-monospace,monospace;font-size:1.3rem}\
.check{display:flex;gap:.5rem;align-items:center;margin:.9rem 0}\
button{width:100%;margin-top:1.2rem;padding:.7rem;font-size:1rem;border:0;border-radius:.4rem;background:#2456d3;color:#fff;cursor:pointer}\
button.secondary{background:#e4e7ee;color:#1d2330}\
.error{background:#fdecec;color:#8a1c1c;padding:.6rem .8rem;border-radius:.4rem}\
.note{color:#5b6475;font-size:.9rem}\
code{background:#eef0f4;padding:.1rem .3rem;border-radius:.2rem;overflow-wrap:anywhere}\
a.button{display:block;text-align:center;margin-top:1.2rem;padding:.7rem;border-radius:.4rem;background:#2456d3;color:#fff;text-decoration:none}\
@media (max-width:30rem){main{margin:0;border-radius:0;min-height:100vh;box-shadow:none}}\
";

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
<meta name=\"referrer\" content=\"same-origin\">\
<title>{title} · Portless</title><link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\"></head>\
<body><main>{body}</main></body></html>\n",
        title = escape(title),
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
fn hidden(csrf: &str, rd: Option<&str>) -> String {
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

fn error_box(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

/// The first-factor form.
pub(crate) fn login(csrf: &str, rd: Option<&str>, error: Option<&str>) -> Response<EdgeBody> {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let body = format!(
        "<h1>Sign in</h1>{error}<form method=\"post\" action=\"/login\">{hidden}\
<label for=\"username\">Username or email</label>\
<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" required autofocus>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<div class=\"check\"><input type=\"checkbox\" id=\"remember_me\" name=\"remember_me\" value=\"1\"><label for=\"remember_me\">Keep me signed in</label></div>\
<button type=\"submit\">Sign in</button></form>{passkey}",
        error = error_box(error),
        hidden = hidden(csrf, rd),
        passkey = super::passkey_pages::login_section(),
    );
    page(status, "Sign in", &body)
}

/// The second-factor (TOTP) form.
pub(crate) fn totp(
    csrf: &str,
    rd: Option<&str>,
    user: &str,
    error: Option<&str>,
) -> Response<EdgeBody> {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let body = format!(
        "<h1>Two-step verification</h1><p>Signed in as <strong>{user}</strong>. Enter the 6-digit code from your authenticator app.</p>{error}\
<form method=\"post\" action=\"/2fa/totp\">{hidden}\
<label for=\"code\">Code</label>\
<input class=\"code\" type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]*\" autocomplete=\"one-time-code\" maxlength=\"8\" required autofocus>\
<button type=\"submit\">Verify</button></form>{switch}",
        user = escape(user),
        error = error_box(error),
        hidden = hidden(csrf, rd),
        switch = switch_account(csrf),
    );
    page(status, "Two-step verification", &body)
}

/// Asked before credentials change: the password again.
pub(crate) fn reauthenticate(csrf: &str, user: &str, error: Option<&str>) -> Response<EdgeBody> {
    let body = format!(
        "<h1>Confirm it is you</h1><p>Changing sign-in methods of <strong>{user}</strong> needs your password again.</p>{error}\
<form method=\"post\" action=\"/settings/reauth\">{hidden}\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>\
<button type=\"submit\">Continue</button></form>",
        user = escape(user),
        error = error_box(error),
        hidden = hidden(csrf, None),
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(status, "Confirm it is you", &body)
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
<p>Add this key to your authenticator app (or open the link on your phone), then enter the code it shows.</p>\
<p>Key: <code>{secret}</code></p><p><a href=\"{uri}\">Open in authenticator app</a></p>{error}\
<form method=\"post\" action=\"/settings/totp\">{hidden}<input type=\"hidden\" name=\"pending\" value=\"{sealed}\">\
<label for=\"code\">Code</label>\
<input class=\"code\" type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]*\" autocomplete=\"one-time-code\" maxlength=\"8\" required>\
<button type=\"submit\">Turn on</button></form>",
        secret = escape(secret_base32),
        uri = escape(uri),
        error = error_box(error),
        hidden = hidden(csrf, None),
        sealed = escape(sealed),
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

/// "Access denied", with the request id and a way to switch account.
pub(crate) fn denied(
    user: Option<&str>,
    request_id: &str,
    logout_url: Option<&str>,
) -> Response<EdgeBody> {
    let who = user
        .map(|u| format!("<p>You are signed in as <strong>{}</strong>, and this account may not open this page.</p>", escape(u)))
        .unwrap_or_else(|| "<p>This page is not open to you.</p>".to_owned());
    let switch = logout_url
        .map(|url| {
            format!(
                "<p><a href=\"{}\">Sign out / switch account</a></p>",
                escape(url)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Access denied</h1>{who}<p class=\"note\">Request id <code>{rid}</code>: give it to the administrator if you think this is wrong.</p>{switch}",
        rid = escape(request_id),
    );
    let mut response = page(StatusCode::FORBIDDEN, "Access denied", &body);
    response
        .headers_mut()
        .insert("portless-error", HeaderValue::from_static("access_denied"));
    response
}

/// A sign-out button (a form: signing out changes state, so it is never a plain link).
fn switch_account(csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/logout\">{}<button class=\"secondary\" type=\"submit\">Sign out / switch account</button></form>",
        hidden(csrf, None)
    )
}

/// The sign-out confirmation (reached by links from applications).
pub(crate) fn logout_confirm(csrf: &str) -> Response<EdgeBody> {
    let body = format!(
        "<h1>Sign out</h1><p>Sign out of every application on this portal?</p>{}",
        switch_account(csrf)
    );
    page(StatusCode::OK, "Sign out", &body)
}

/// After an email PIN was asked for: the same words whether or not a mail went out.
pub(crate) fn pin_sent(
    csrf: &str,
    rd: Option<&str>,
    address: &str,
    error: Option<&str>,
) -> Response<EdgeBody> {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let back = match rd {
        Some(rd) if !rd.is_empty() => format!("/?rd={}", super::http_util::encode(rd)),
        _ => "/".to_owned(),
    };
    let body = format!(
        "<h1>Check your email</h1><p>If <strong>{address}</strong> may sign in here, we have sent a code to it. It is valid for 10 minutes and can be used once.</p>{error}\
<form method=\"post\" action=\"/login/email/verify\">{hidden}\
<input type=\"hidden\" name=\"email\" value=\"{address}\">\
<label for=\"code\">Code</label>\
<input class=\"code\" type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]*\" autocomplete=\"one-time-code\" maxlength=\"6\" required autofocus>\
<button type=\"submit\">Sign in</button></form><p><a href=\"{back}\">Use another address</a></p>",
        address = escape(address),
        error = error_box(error),
        hidden = hidden(csrf, rd),
        back = escape(&back),
    );
    page(status, "Check your email", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(
            escape("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn pages_carry_a_strict_policy_and_no_inline_script() {
        let response = login("c", Some("https://a.test/\"><script>"), Some("<b>"));
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }

    #[test]
    fn the_referrer_policy_keeps_a_real_origin_on_the_portals_own_forms() {
        // Under `no-referrer` browsers post the forms with `Origin: null`, and the portal's
        // origin check refuses every sign-in (found by tests/browser.rs).
        let response = login("c", None, None);
        assert_eq!(response.headers()[header::REFERRER_POLICY], "same-origin");
    }
}
