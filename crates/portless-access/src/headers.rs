//! Identity headers toward origins: what the client may not send, and what the edge sets.
//!
//! An origin behind Portless trusts `Remote-User` and the signed assertion because only the
//! edge can set them. That holds only if every client-supplied header that *could* be read as
//! an identity is removed first, in every spelling a server might fold together (any case,
//! `_` instead of `-`: attack class F), and if the edge's own cookies never reach the origin
//! (class G: an origin, or a script on it, could replay them).
//!
//! Order for the edge: read the credentials the client presents (session cookie, service
//! token headers, `cf-access-token`) → [`strip_identity_headers`] and [`strip_edge_cookies`]
//! → [`set_identity_headers`].

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{CONNECTION, COOKIE, HeaderName, HeaderValue};

use crate::Identity;

/// Client-supplied headers that are removed, by normalized name (lowercase, `_` → `-`).
///
/// | name | why |
/// |---|---|
/// | `remote-*` (`remote-user`, `-groups`, `-name`, `-email`, ...) | the edge's identity headers |
/// | `portless-*` (but see [`KEPT_CLIENT_HEADERS`]) | Portless's own: assertion, client id/secret |
/// | `cf-access-jwt-assertion` | the signed assertion origins verify |
/// | `cf-access-authenticated-user-email` | identity in the hosted-access convention |
/// | `cf-access-client-id`, `cf-access-client-secret` | service-token credentials (read, then removed) |
/// | `cf-access-token` | a non-browser token (read, then removed) |
/// | `x-forwarded-user`, `-email`, `-groups`, `-preferred-username`, `-access-token` | oauth2-proxy style identity |
/// | `x-auth-request-*` | nginx `auth_request` identity conventions |
/// | `x-remote-user`, `x-remote-group`, `x-remote-groups`, `x-remote-email` | Apache / Kubernetes style |
/// | `x-webauth-user`, `x-webauth-groups`, `x-webauth-email` | Grafana-style auth proxy |
/// | `x-original-url`, `x-rewrite-url` | the path as a proxy claims it: frameworks that route by them would serve another path than the one the policy judged (class C) |
///
/// Also removed: the `_` spellings of the forwarding headers the edge sets itself
/// ([`FORWARDING_HEADERS`]), and the `Connection` tokens naming a removed header.
pub const IDENTITY_HEADERS: &[&str] = &[
    "cf-access-jwt-assertion",
    "cf-access-authenticated-user-email",
    "cf-access-client-id",
    "cf-access-client-secret",
    "cf-access-token",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-remote-user",
    "x-remote-group",
    "x-remote-groups",
    "x-remote-email",
    "x-webauth-user",
    "x-webauth-groups",
    "x-webauth-email",
    "x-original-url",
    "x-rewrite-url",
];

/// Forwarding headers the edge replaces with its own values on the way to the origin. The
/// `-` forms are replaced there; a client's `_` form (`X_Forwarded_For`) would survive that
/// and reach origins that fold `_` into `-` (CGI, PHP, some proxies), which might then read
/// the client's value instead of the edge's (class F). The `_` forms are removed here.
pub const FORWARDING_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
    "x-request-id",
];

/// Prefixes (normalized) of removed headers: every name starting with one of them goes.
pub const IDENTITY_HEADER_PREFIXES: &[&str] = &["remote-", "portless-", "x-auth-request-"];

/// Client headers under a removed prefix that are kept because they are requests, not
/// identities: the bastion mode's destination choice, read by the connector.
pub const KEPT_CLIENT_HEADERS: &[&str] = &["portless-jump-destination"];

/// The edge's own cookies, which never reach an origin.
pub const EDGE_COOKIES: &[&str] = &[
    "__Host-portless-session",
    "__Host-portless-app",
    "CF_Authorization",
];

/// `Remote-User`: the username, or a service token's client id.
pub const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
/// `Remote-Groups`: the user's groups, comma-joined.
pub const REMOTE_GROUPS: HeaderName = HeaderName::from_static("remote-groups");
/// `Remote-Name`: the display name.
pub const REMOTE_NAME: HeaderName = HeaderName::from_static("remote-name");
/// `Remote-Email`: the email address.
pub const REMOTE_EMAIL: HeaderName = HeaderName::from_static("remote-email");
/// The signed assertion, in the hosted-access convention's header.
pub const CF_ACCESS_JWT_ASSERTION: HeaderName = HeaderName::from_static("cf-access-jwt-assertion");
/// The signed assertion, in Portless's own header.
pub const PORTLESS_JWT_ASSERTION: HeaderName = HeaderName::from_static("portless-jwt-assertion");

/// Why the identity headers cannot be set; the edge denies the request rather than send a
/// header an origin could split or misread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityHeaderError {
    /// A value holds a control character (CR, LF, NUL, ...), which no header may carry.
    #[error("the {header} value holds a control character; fix the user's entry in the users file")]
    ControlCharacter {
        /// The header the value was for.
        header: &'static str,
    },
    /// A group name holds a comma, which would read as two groups in `Remote-Groups`.
    #[error(
        "the group {group:?} holds a comma, which Remote-Groups cannot carry; rename the group"
    )]
    CommaInGroup {
        /// The group name.
        group: String,
    },
}

/// The normalized form of a header name: lowercase, `_` as `-`.
/// The name lowercase with `_` read as `-`. Runs for every header of every request: header
/// names from the HTTP parser are already lowercase, so only unusual names are copied.
fn normalized(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b == b'_' || b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase().replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Whether a client header with this name is removed before the request goes on.
pub fn is_identity_header(name: &str) -> bool {
    let folded = normalized(name);
    let folded: &str = &folded;
    if KEPT_CLIENT_HEADERS.contains(&folded) {
        return false;
    }
    IDENTITY_HEADERS.contains(&folded)
        || IDENTITY_HEADER_PREFIXES
            .iter()
            .any(|p| folded.starts_with(p))
        || (name.contains('_') && FORWARDING_HEADERS.contains(&folded))
}

/// Removes every client-supplied header that could be taken for an identity (see
/// [`IDENTITY_HEADERS`], [`IDENTITY_HEADER_PREFIXES`] and [`FORWARDING_HEADERS`]), in any
/// case and `_`/`-` form.
///
/// `Connection` tokens that name such a header are removed too: a proxy drops the headers
/// `Connection` lists, so `Connection: Remote-User` would otherwise remove the `Remote-User`
/// (and the assertion) the edge sets afterwards — an origin would see a signed-in request
/// without the identity it relies on (class F, hop-by-hop abuse).
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
    strip_connection_tokens(headers);
}

/// Rewrites every `Connection` header without the tokens [`is_identity_header`] names (and
/// without the edge's own `Remote-*` and assertion names, which it covers); a header left
/// empty goes.
fn strip_connection_tokens(headers: &mut HeaderMap) {
    let values: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
    if !values
        .iter()
        .any(|v| connection_tokens(v).any(is_identity_header))
    {
        return;
    }
    headers.remove(CONNECTION);
    for value in values {
        let kept: Vec<&str> = connection_tokens(&value)
            .filter(|token| !is_identity_header(token))
            .collect();
        if kept.is_empty() {
            continue;
        }
        // Tokens of a valid header value joined by ", ": still a valid header value.
        if let Ok(value) = HeaderValue::from_str(&kept.join(", ")) {
            headers.append(CONNECTION, value);
        }
    }
}

/// The comma-separated tokens of a `Connection` value (none when it is not ASCII).
fn connection_tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Removes the edge's own cookies ([`EDGE_COOKIES`]) from every `Cookie` header.
pub fn strip_edge_cookies(headers: &mut HeaderMap) {
    strip_cookies(headers, EDGE_COOKIES);
}

/// Removes the cookies named in `names` (compared ASCII case-insensitively, so a look-alike
/// spelling goes too) from every `Cookie` header. Other cookies are kept byte for byte, in
/// order, joined by `; `; a header left empty is dropped, and a header without any named
/// cookie is not touched at all.
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    let values: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    let mut kept_values = Vec::with_capacity(values.len());
    for value in values {
        match without_cookies(value.as_bytes(), names) {
            None => kept_values.push(value),
            Some(rest) if rest.is_empty() => {}
            // Built from pieces of a valid header value joined by "; ": still valid.
            Some(rest) => {
                if let Ok(value) = HeaderValue::from_bytes(&rest) {
                    kept_values.push(value);
                }
            }
        }
    }
    headers.remove(COOKIE);
    for value in kept_values {
        headers.append(COOKIE, value);
    }
}

/// The cookie header without the named cookies, or `None` if none of them is in it.
fn without_cookies(value: &[u8], names: &[&str]) -> Option<Vec<u8>> {
    let mut removed = false;
    let mut kept: Vec<&[u8]> = Vec::new();
    for pair in value.split(|&b| b == b';') {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            continue;
        }
        let name = pair
            .split(|&b| b == b'=')
            .next()
            .unwrap_or(pair)
            .trim_ascii();
        if names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
        {
            removed = true;
        } else {
            kept.push(pair);
        }
    }
    removed.then(|| kept.join(&b"; "[..]))
}

/// Sets the edge's identity headers, replacing anything already there: all four `Remote-*`
/// always (empty when anonymous, so a client's value can never survive), and both assertion
/// headers when `assertion_jwt` is given (removed otherwise).
///
/// Nothing is changed when a value cannot be a header value; the caller then denies.
pub fn set_identity_headers(
    headers: &mut HeaderMap,
    identity: Option<&Identity>,
    assertion_jwt: Option<&str>,
) -> Result<(), IdentityHeaderError> {
    let (user, groups, name, email) = match identity {
        Some(identity) => {
            if let Some(group) = identity.groups.iter().find(|g| g.contains(',')) {
                return Err(IdentityHeaderError::CommaInGroup {
                    group: group.clone(),
                });
            }
            (
                identity.name().to_owned(),
                identity.groups.join(","),
                identity.display_name.clone(),
                identity.email.clone().unwrap_or_default(),
            )
        }
        None => Default::default(),
    };
    let mut values = vec![
        (REMOTE_USER, header_value("Remote-User", &user)?),
        (REMOTE_GROUPS, header_value("Remote-Groups", &groups)?),
        (REMOTE_NAME, header_value("Remote-Name", &name)?),
        (REMOTE_EMAIL, header_value("Remote-Email", &email)?),
    ];
    match assertion_jwt {
        Some(jwt) => {
            let value = header_value("Cf-Access-Jwt-Assertion", jwt)?;
            values.push((CF_ACCESS_JWT_ASSERTION, value.clone()));
            values.push((PORTLESS_JWT_ASSERTION, value));
        }
        None => {
            headers.remove(CF_ACCESS_JWT_ASSERTION);
            headers.remove(PORTLESS_JWT_ASSERTION);
        }
    }
    for (name, value) in values {
        headers.insert(name, value);
    }
    Ok(())
}

/// A header value from text: UTF-8 bytes are allowed (a display name like `Zoë`), control
/// characters (including tab and DEL) are not.
fn header_value(header: &'static str, text: &str) -> Result<HeaderValue, IdentityHeaderError> {
    if text.chars().any(char::is_control) {
        return Err(IdentityHeaderError::ControlCharacter { header });
    }
    HeaderValue::from_bytes(text.as_bytes())
        .map_err(|_| IdentityHeaderError::ControlCharacter { header })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_names_fold_case_and_underscores() {
        assert!(is_identity_header("Remote_User"));
        assert!(is_identity_header("REMOTE-GROUPS"));
        assert!(is_identity_header("x_auth_request_email"));
        assert!(!is_identity_header("portless_jump_destination"));
        assert!(!is_identity_header("remoteuser"));
        assert!(!is_identity_header("x-forwarded-for"));
        // The edge replaces the `-` forms; the `_` forms would survive that.
        assert!(is_identity_header("X_Forwarded_For"));
        assert!(is_identity_header("x_real_ip"));
        assert!(is_identity_header("X-Original-URL"));
        assert!(is_identity_header("x_rewrite_url"));
    }

    #[test]
    fn connection_cannot_remove_what_the_edge_sets() {
        let mut headers = HeaderMap::new();
        headers.append(
            CONNECTION,
            HeaderValue::from_static("keep-alive, Remote-User, Cf-Access-Jwt-Assertion"),
        );
        headers.append(CONNECTION, HeaderValue::from_static("remote_groups"));
        headers.append(CONNECTION, HeaderValue::from_static("Upgrade"));
        strip_identity_headers(&mut headers);
        let left: Vec<&str> = headers
            .get_all(CONNECTION)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["keep-alive", "Upgrade"]);
        // Untouched when no token names an identity header.
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("close,x-custom"));
        strip_identity_headers(&mut headers);
        assert_eq!(headers[CONNECTION], "close,x-custom");
    }

    #[test]
    fn without_cookies_leaves_untouched_headers_alone() {
        assert_eq!(without_cookies(b"a=1; b=2", EDGE_COOKIES), None);
        assert_eq!(
            without_cookies(b"a=1;CF_Authorization=x;  b=2 ", EDGE_COOKIES).unwrap(),
            b"a=1; b=2"
        );
    }
}
