//! The portal's passkey pages and script: the settings page (the user's passkeys, each
//! removable by a plain form; adding one needs the script), the second-factor choice, the
//! "Sign in with a passkey" section of the login page, and `passkey.js`.
//!
//! The script is a static file served from the portal (`script-src 'self'`): no inline script
//! and no inline event handlers anywhere. Markup is kept simple and semantic; the look is the
//! stylesheet's.

use std::time::SystemTime;

use http::{HeaderValue, Response, StatusCode, header};
use portless_access::passkey::PasskeyInfo;

use super::pages::{escape, page};
use crate::body::EdgeBody;

/// Where the script is served on the portal host.
pub(crate) const SCRIPT_PATH: &str = "/.portless/passkey.js";

/// The script: the browser side of every passkey ceremony (see `passkey.js`).
pub(crate) const SCRIPT: &str = include_str!("passkey.js");

/// The script, as served.
pub(crate) fn script() -> Response<EdgeBody> {
    let mut response = Response::new(EdgeBody::full(bytes::Bytes::from_static(SCRIPT.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

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

/// The second step when the user has a passkey: the passkey, and the TOTP form too when the
/// user has TOTP (which works without JavaScript).
pub(crate) fn second_factor(
    csrf: &str,
    rd: Option<&str>,
    user: &str,
    totp: bool,
    error: Option<&str>,
) -> Response<EdgeBody> {
    let totp_form = if totp {
        format!(
            "<form method=\"post\" action=\"/2fa/totp\">{hidden}\
<label for=\"code\">Or enter the code from your authenticator app</label>\
<input class=\"code\" type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]*\" autocomplete=\"one-time-code\" maxlength=\"8\" required>\
<button type=\"submit\" class=\"secondary\">Verify code</button></form>",
            hidden = hidden(csrf, rd),
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Two-step verification</h1><p>Signed in as <strong>{user}</strong>. Confirm with your passkey.</p>{error}\
<form id=\"passkey-second-factor\">{hidden}\
<button type=\"button\" id=\"passkey-2fa\">Use your passkey</button>\
<p id=\"passkey-status\" role=\"status\"></p></form>{totp_form}\
<form method=\"post\" action=\"/logout\">{logout}<button class=\"secondary\" type=\"submit\">Sign out / switch account</button></form>\
<script src=\"{SCRIPT_PATH}\" defer></script>",
        user = escape(user),
        error = error_box(error),
        hidden = hidden(csrf, rd),
        logout = hidden(csrf, None),
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(status, "Two-step verification", &body)
}

/// The password again, before passkeys change (returns to `/settings`).
pub(crate) fn reauthenticate(csrf: &str, user: &str) -> Response<EdgeBody> {
    let body = format!(
        "<h1>Confirm it is you</h1><p>Changing sign-in methods of <strong>{user}</strong> needs your password again.</p>\
<form method=\"post\" action=\"/settings/reauth\">{hidden}<input type=\"hidden\" name=\"next\" value=\"/settings\">\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>\
<button type=\"submit\">Continue</button></form>",
        user = escape(user),
        hidden = hidden(csrf, None),
    );
    page(StatusCode::OK, "Confirm it is you", &body)
}

/// What the settings page shows.
pub(crate) struct Settings<'a> {
    pub(crate) csrf: &'a str,
    pub(crate) user: &'a str,
    pub(crate) passkeys: &'a [PasskeyInfo],
    /// Whether passkeys are on for this portal.
    pub(crate) enabled: bool,
    pub(crate) totp: bool,
    pub(crate) notice: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
}

/// `/settings`: the user's sign-in methods.
pub(crate) fn settings(s: &Settings<'_>) -> Response<EdgeBody> {
    let notice = s
        .notice
        .map(|n| format!("<p class=\"note\" role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default();
    let rows: String = s
        .passkeys
        .iter()
        .map(|p| {
            let used = p.last_used_at.map_or_else(|| "never".to_owned(), timestamp);
            format!(
                "<li class=\"passkey\"><strong class=\"passkey-name\">{name}</strong> \
<span class=\"note\">added {created}, last used {used}</span>\
<form method=\"post\" action=\"/settings/passkey/remove\">{hidden}\
<input type=\"hidden\" name=\"id\" value=\"{id}\">\
<button type=\"submit\" class=\"secondary\">Remove {name}</button></form></li>",
                name = escape(&p.name),
                created = escape(&timestamp(p.created_at)),
                used = escape(&used),
                hidden = hidden(s.csrf, None),
                id = escape(&p.id),
            )
        })
        .collect();
    let list = if s.passkeys.is_empty() {
        "<p id=\"passkey-none\">No passkeys yet.</p>".to_owned()
    } else {
        format!("<ul id=\"passkeys\">{rows}</ul>")
    };
    let add = if s.enabled {
        format!(
            "<form id=\"passkey-register\">{hidden}\
<label for=\"passkey-name\">Name of the new passkey</label>\
<input type=\"text\" id=\"passkey-name\" name=\"name\" maxlength=\"64\" placeholder=\"Laptop\" required>\
<button type=\"button\" id=\"passkey-add\" disabled>Add a passkey</button>\
<p id=\"passkey-status\" role=\"status\"><noscript>Adding a passkey needs JavaScript.</noscript></p></form>\
<script src=\"{SCRIPT_PATH}\" defer></script>",
            hidden = hidden(s.csrf, None),
        )
    } else {
        "<p class=\"note\">Passkeys are turned off on this portal.</p>".to_owned()
    };
    let totp = if s.totp {
        "<p>Authenticator app: on. <a href=\"/settings/totp\">Replace it</a></p>"
    } else {
        "<p>Authenticator app: off. <a href=\"/settings/totp\">Set it up</a></p>"
    };
    let body = format!(
        "<h1>Sign-in methods</h1><p>Signed in as <strong>{user}</strong>.</p>{notice}{error}\
<h2>Passkeys</h2>{list}{add}<h2>Authenticator app</h2>{totp}<p><a href=\"/\">Back to the portal</a></p>",
        user = escape(s.user),
        error = error_box(s.error),
    );
    page(StatusCode::OK, "Sign-in methods", &body)
}

/// `2026-12-01 21:36 UTC`.
fn timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn text(response: Response<EdgeBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn settings_escape_names_and_remove_without_script() {
        let passkeys = [PasskeyInfo {
            id: "abc".into(),
            name: "<b>Laptop</b>".into(),
            created_at: SystemTime::UNIX_EPOCH,
            last_used_at: None,
        }];
        let html = text(settings(&Settings {
            csrf: "tok",
            user: "alice",
            passkeys: &passkeys,
            enabled: true,
            totp: false,
            notice: None,
            error: None,
        }))
        .await;
        assert!(html.contains("&lt;b&gt;Laptop&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<b>Laptop"));
        assert!(html.contains("action=\"/settings/passkey/remove\""));
        assert!(html.contains("name=\"csrf\" value=\"tok\""));
        assert!(html.contains("added 1970-01-01 00:00 UTC, last used never"));
        let handler = html.split(" on").skip(1).any(|rest| {
            rest.split('=')
                .next()
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase()))
        });
        assert!(!handler, "no inline handlers: {html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn the_script_has_no_eval_and_sends_the_csrf_header() {
        assert!(SCRIPT.contains("'Portless-Csrf'"));
        assert!(!SCRIPT.contains("eval("));
        assert!(!SCRIPT.contains("innerHTML"));
    }
}
