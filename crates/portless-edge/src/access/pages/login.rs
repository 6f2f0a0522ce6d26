//! The sign-in pages: the choice of methods (upstream providers, password, a code by email,
//! a passkey), the "we sent you a code" step, and the page for a provider sign-in that did
//! not complete.
//!
//! Every method is a plain form that works without JavaScript, except the passkey button,
//! which stays hidden (class `needs-js`) until the passkey script shows it.

use http::{Response, StatusCode};

use super::super::http_util::encode;
use super::{code_field, error_box, escape, hidden, page, status_for};
use crate::body::EdgeBody;

/// Where the passkey script is served (it un-hides `#passkey-login`).
pub(crate) const PASSKEY_SCRIPT_PATH: &str = "/.portless/passkey.js";

/// The sign-in methods the login page offers (those the target's rules could accept).
#[derive(Clone, Debug, Default)]
pub(crate) struct LoginChoices<'a> {
    /// Username and password (the users file).
    pub password: bool,
    /// A one-time code sent by email.
    pub email_pin: bool,
    /// A passkey (needs the passkey script).
    pub passkey: bool,
    /// Upstream OpenID providers, in the order shown.
    pub providers: Vec<ProviderChoice<'a>>,
}

/// One upstream OpenID provider on the login page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProviderChoice<'a> {
    /// Its configured name (the path segment of `/oidc/<name>/start`).
    pub name: &'a str,
    /// What people see: "Continue with <display_name>".
    pub display_name: &'a str,
}

impl LoginChoices<'_> {
    /// Username and password only (the portal before providers).
    #[cfg(test)]
    pub(crate) fn password_only() -> Self {
        Self {
            password: true,
            ..Self::default()
        }
    }

    /// How many methods are shown (the passkey counts: with JavaScript it is one).
    fn count(&self) -> usize {
        usize::from(self.password)
            + usize::from(self.email_pin)
            + usize::from(self.passkey)
            + self.providers.len()
    }
}

/// "or", between two sign-in methods.
const DIVIDER: &str = "<div class=\"divider\" role=\"separator\">or</div>";

/// The sign-in page: providers first, then the password form, the email code form and the
/// passkey button, each offered only when `choices` allows it.
pub(crate) fn login(
    csrf: &str,
    rd: Option<&str>,
    error: Option<&str>,
    choices: &LoginChoices<'_>,
) -> Response<EdgeBody> {
    // The providers are one group of buttons; the other methods are one block each.
    let mut blocks = Vec::new();
    if !choices.providers.is_empty() {
        blocks.push(
            choices
                .providers
                .iter()
                .map(|p| provider_form(csrf, rd, p))
                .collect::<String>(),
        );
    }
    // Focus the first field of the first form that has one.
    if choices.password {
        blocks.push(password_form(csrf, rd, true));
    }
    if choices.email_pin {
        blocks.push(email_form(csrf, rd, !choices.password));
    }
    let mut body = format!("<h1>Sign in</h1>{}{}", destination(rd), error_box(error));
    body.push_str(&blocks.join(DIVIDER));
    if choices.passkey {
        body.push_str(&passkey_button(!blocks.is_empty()));
    }
    if choices.count() == 0 {
        body.push_str(
            "<p>No sign-in method is open for this address. If you think you should have \
             access, ask the administrator.</p>",
        );
    }
    page(status_for(error), "Sign in", &body)
}

/// "to continue to <host>", from a validated `rd` (nothing when there is none).
fn destination(rd: Option<&str>) -> String {
    let host = rd
        .and_then(|rd| rd.strip_prefix("https://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .filter(|authority| !authority.is_empty() && !authority.contains('@'));
    match host {
        Some(authority) => {
            let host = authority
                .rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(authority, |(host, _)| host);
            format!(
                "<p class=\"lead\">to continue to <strong>{}</strong></p>",
                escape(host)
            )
        }
        None => String::new(),
    }
}

fn provider_form(csrf: &str, rd: Option<&str>, provider: &ProviderChoice<'_>) -> String {
    format!(
        "<form class=\"provider\" method=\"post\" action=\"/oidc/{name}/start\">{hidden}\
<button class=\"secondary\" type=\"submit\">Continue with {display}</button></form>",
        name = escape(provider.name),
        hidden = hidden(csrf, rd),
        display = escape(provider.display_name),
    )
}

fn password_form(csrf: &str, rd: Option<&str>, autofocus: bool) -> String {
    format!(
        "<form method=\"post\" action=\"/login\">{hidden}\
<label for=\"username\">Username or email</label>\
<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required{focus}>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<div class=\"check\"><input type=\"checkbox\" id=\"remember_me\" name=\"remember_me\" value=\"1\"><label for=\"remember_me\">Keep me signed in</label></div>\
<button type=\"submit\">Sign in</button></form>",
        hidden = hidden(csrf, rd),
        focus = if autofocus { " autofocus" } else { "" },
    )
}

fn email_form(csrf: &str, rd: Option<&str>, autofocus: bool) -> String {
    format!(
        "<form method=\"post\" action=\"/login/email\">{hidden}\
<label for=\"email\">Email address</label>\
<input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"email\" autocapitalize=\"none\" spellcheck=\"false\" inputmode=\"email\" required{focus}>\
<button class=\"secondary\" type=\"submit\">Email me a sign-in code</button></form>",
        hidden = hidden(csrf, rd),
        focus = if autofocus { " autofocus" } else { "" },
    )
}

/// The passkey button, in a section hidden until the passkey script (which reads the CSRF
/// token from the page's forms) finds WebAuthn in the browser and shows it with its "or".
/// When it is the only method, a note says why nothing works without JavaScript.
fn passkey_button(after_others: bool) -> String {
    let mut out = String::from("<section id=\"passkey-login\" hidden>");
    if after_others {
        out.push_str("<div class=\"divider\" role=\"separator\">or</div>");
    }
    out.push_str(&format!(
        "<button type=\"button\" class=\"secondary\" id=\"passkey-signin\">Sign in with a passkey</button>\
<p id=\"passkey-status\" role=\"status\"></p></section>{noscript}\
<script src=\"{PASSKEY_SCRIPT_PATH}\" defer></script>",
        noscript = if after_others {
            ""
        } else {
            "<noscript><p class=\"note\">Signing in with a passkey needs JavaScript: turn it \
             on for this site, then reload the page.</p></noscript>"
        },
    ));
    out
}

/// After an address was given: the same words whether or not a code was sent (so the page
/// does not tell who may sign in), and the form for the code.
pub(crate) fn pin_sent(
    csrf: &str,
    rd: Option<&str>,
    address: &str,
    error: Option<&str>,
) -> Response<EdgeBody> {
    let back = match rd.filter(|rd| !rd.is_empty()) {
        Some(rd) => format!("/?rd={}", encode(rd)),
        None => "/".to_owned(),
    };
    let body = format!(
        "<h1>Check your email</h1>\
<p class=\"lead\">If <strong>{address}</strong> may sign in here, we have sent a code to it. \
It is valid for 10 minutes and can be used once.</p>{error}\
<form method=\"post\" action=\"/login/email/verify\">{hidden}\
<input type=\"hidden\" name=\"email\" value=\"{address}\">{code}\
<button type=\"submit\">Sign in</button></form>\
<p class=\"links\"><a href=\"{back}\">Use another address</a></p>",
        address = escape(address),
        error = error_box(error),
        hidden = hidden(csrf, rd),
        code = code_field("Code from the email", true),
        back = escape(&back),
    );
    page(status_for(error), "Check your email", &body)
}

/// A provider sign-in that did not complete (the provider could not be reached, the person
/// cancelled, the answer was refused): what happened, and a way to try again.
pub(crate) fn provider_error(
    status: StatusCode,
    title: &str,
    text: &str,
    rd: Option<&str>,
) -> Response<EdgeBody> {
    let again = match rd.filter(|rd| !rd.is_empty()) {
        Some(rd) => format!("/?rd={}", encode(rd)),
        None => "/".to_owned(),
    };
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p><p><a class=\"button\" href=\"{}\">Try again</a></p>",
            escape(title),
            escape(text),
            escape(&again),
        ),
    )
}
