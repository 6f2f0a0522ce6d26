//! The settings page: a signed-in user's second factors (TOTP, passkeys) and sign-out.

use http::{Response, StatusCode};

use super::{escape, page, switch_account};
use crate::body::EdgeBody;

/// The second factors a user has, as the settings page shows them.
#[derive(Clone, Copy, Debug, Default)]
#[allow(dead_code, reason = "the /settings route comes with the passkeys")]
pub(crate) struct Factors {
    /// An authenticator app (TOTP) is set up.
    pub totp: bool,
    /// Passkeys are offered on this portal (the passkey slot is shown).
    pub passkeys_enabled: bool,
}

/// `GET /settings`: one row per factor. `passkeys_html` is the passkey list, already
/// rendered (and escaped) by the passkey pages; it is shown when passkeys are enabled.
#[allow(dead_code, reason = "the /settings route comes with the passkeys")]
pub(crate) fn settings(
    csrf: &str,
    user: &str,
    factors: &Factors,
    passkeys_html: &str,
) -> Response<EdgeBody> {
    let (state, action) = if factors.totp {
        ("<span class=\"badge on\">On</span>", "Replace")
    } else {
        ("<span class=\"badge\">Off</span>", "Set up")
    };
    let totp = format!(
        "<section class=\"factor\" aria-labelledby=\"totp-title\"><div>\
<h2 id=\"totp-title\">Authenticator app {state}</h2>\
<p class=\"note\">A 6-digit code from an app on your phone.</p></div>\
<a class=\"button secondary\" href=\"/settings/totp\">{action}</a></section>"
    );
    let passkeys = if factors.passkeys_enabled {
        format!(
            "<section class=\"factor\" aria-labelledby=\"passkeys-title\" id=\"passkeys\"><div>\
<h2 id=\"passkeys-title\">Passkeys</h2>{passkeys_html}</div></section>"
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Sign-in methods</h1><p class=\"lead\">Signed in as <strong>{user}</strong>.</p>\
{totp}{passkeys}{signout}",
        user = escape(user),
        signout = switch_account(csrf, None, "Sign out"),
    );
    page(StatusCode::OK, "Sign-in methods", &body)
}
