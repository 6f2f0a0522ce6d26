//! Small HTTP pieces the portal needs: bounded form bodies, cookies, redirects.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::body::EdgeBody;

/// Largest form the portal reads: a login form is a few hundred bytes.
const MAX_FORM: usize = 16 * 1024;

/// Cookie of the portal session, on the portal host only (`__Host-`: Secure, path `/`, no
/// Domain, so no other host can set or read it).
pub(crate) const PORTAL_COOKIE: &str = "__Host-portless-session";
/// Cookie of an application session, on that application's host only.
pub(crate) const APP_COOKIE: &str = "__Host-portless-app";

/// Why a form could not be read.
#[derive(Debug)]
pub(crate) enum FormError {
    /// Not `application/x-www-form-urlencoded`.
    ContentType,
    /// Larger than [`MAX_FORM`], or the body failed.
    Body,
    /// A field appears twice (one parser would take the first, another the last).
    DuplicateField,
}

/// Reads an urlencoded form of at most [`MAX_FORM`] bytes.
pub(crate) async fn read_form(
    headers: &HeaderMap,
    body: Incoming,
) -> Result<HashMap<String, String>, FormError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(FormError::ContentType);
    }
    let bytes = http_body_util::Limited::new(body, MAX_FORM)
        .collect()
        .await
        .map_err(|_| FormError::Body)?
        .to_bytes();
    parse_form(&bytes)
}

/// Parses urlencoded pairs, refusing repeated names.
pub(crate) fn parse_form(bytes: &[u8]) -> Result<HashMap<String, String>, FormError> {
    let mut fields = HashMap::new();
    for (name, value) in form_urlencoded::parse(bytes) {
        if fields
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(FormError::DuplicateField);
        }
    }
    Ok(fields)
}

/// Query parameters (repeated names keep the first: only used for `rd`/`code`, checked
/// afterwards).
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// What the `Cookie` headers say about one cookie name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CookieValue {
    /// Not sent.
    Absent,
    /// Sent once.
    One(String),
    /// Sent more than once (cookie tossing): trusted neither way.
    Ambiguous,
}

/// The value of cookie `name` across every `Cookie` header.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> CookieValue {
    let mut found = CookieValue::Absent;
    for header in headers.get_all(header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for parsed in cookie::Cookie::split_parse(text).flatten() {
            if parsed.name() == name {
                found = match found {
                    CookieValue::Absent => CookieValue::One(parsed.value().to_owned()),
                    _ => CookieValue::Ambiguous,
                };
            }
        }
    }
    found
}

/// A `Set-Cookie` for a host-only session cookie; `None` as value deletes it.
pub(crate) fn set_cookie(
    name: &str,
    value: Option<&str>,
    max_age_secs: Option<i64>,
) -> HeaderValue {
    let mut builder = cookie::Cookie::build((name.to_owned(), value.unwrap_or("").to_owned()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::Lax);
    match (value, max_age_secs) {
        (None, _) => builder = builder.max_age(cookie::time::Duration::ZERO),
        (Some(_), Some(secs)) => builder = builder.max_age(cookie::time::Duration::seconds(secs)),
        (Some(_), None) => {}
    }
    // A cookie built from our own ASCII names and base64url values is always a valid header.
    HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("portless-invalid=; Max-Age=0"))
}

/// A redirect. `303` after a form post (the browser follows with GET), `302` otherwise.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response<EdgeBody> {
    let mut response = Response::new(EdgeBody::full(Bytes::new()));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    } else {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Percent-encodes a value for a query string.
pub(crate) fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A JSON body.
pub(crate) fn json(status: StatusCode, body: String) -> Response<EdgeBody> {
    let mut response = Response::new(EdgeBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_form_fields_are_refused() {
        assert!(parse_form(b"a=1&b=2").is_ok());
        assert!(matches!(
            parse_form(b"rd=https%3A%2F%2Fa&rd=https%3A%2F%2Fevil"),
            Err(FormError::DuplicateField)
        ));
    }

    #[test]
    fn a_tossed_cookie_is_ambiguous() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-portless-app=x"),
        );
        assert_eq!(cookie(&headers, APP_COOKIE), CookieValue::One("x".into()));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-portless-app=y"),
        );
        assert_eq!(cookie(&headers, APP_COOKIE), CookieValue::Ambiguous);
        assert_eq!(cookie(&headers, "b"), CookieValue::Absent);
    }

    #[test]
    fn session_cookies_are_host_only_and_secure() {
        let value = set_cookie(PORTAL_COOKIE, Some("abc"), None);
        let text = value.to_str().unwrap();
        assert!(text.starts_with("__Host-portless-session=abc"));
        for part in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!text.contains("Domain"));
    }
}
