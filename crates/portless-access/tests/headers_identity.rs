//! What reaches an origin: client-supplied identity headers gone in every spelling (attack
//! class F), the edge's cookies gone (class G), the edge's own identity headers set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::HeaderMap;
use http::header::{COOKIE, HeaderName, HeaderValue};
use portless_access::headers::{
    IdentityHeaderError, set_identity_headers, strip_edge_cookies, strip_identity_headers,
};
use portless_access::{AuthLevel, Identity, Subject};

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn alice() -> Identity {
    Identity {
        subject: Subject::User {
            name: "alice".into(),
            level: AuthLevel::TwoFactor,
            source: portless_access::Source::UsersFile,
        },
        display_name: "Alice Doe".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["admins".into(), "dev".into()],
    }
}

#[test]
fn every_identity_header_spelling_is_stripped() {
    let forged = [
        "Remote-User",
        "remote_user",
        "REMOTE_GROUPS",
        "Remote-Name",
        "remote-email",
        "Remote-Anything",
        "Cf-Access-Jwt-Assertion",
        "cf_access_jwt_assertion",
        "Portless-Jwt-Assertion",
        "portless_jwt_assertion",
        "Cf-Access-Authenticated-User-Email",
        "X-Forwarded-User",
        "x_forwarded_user",
        "X-Forwarded-Email",
        "X-Forwarded-Groups",
        "X-Forwarded-Preferred-Username",
        "X-Auth-Request-User",
        "x_auth_request_email",
        "X-Remote-User",
        "X-WebAuth-User",
        "CF-Access-Client-Id",
        "CF-Access-Client-Secret",
        "cf_access_client_secret",
        "Portless-Client-Id",
        "Portless-Client-Secret",
        "cf-access-token",
        "Portless-Anything",
    ];
    let mut pairs: Vec<(&str, &str)> = forged.iter().map(|n| (*n, "admin")).collect();
    pairs.push(("Accept", "text/html"));
    pairs.push(("X-Forwarded-For", "10.0.0.1"));
    pairs.push(("Authorization", "Bearer origin-token"));
    pairs.push(("Portless-Jump-Destination", "db:5432"));
    pairs.push(("Remoteuser", "not-a-prefix-match"));
    let mut headers = map(&pairs);
    strip_identity_headers(&mut headers);
    let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(
        left,
        [
            "accept",
            "authorization",
            "portless-jump-destination",
            "remoteuser",
            "x-forwarded-for",
        ],
        "only non-identity headers survive"
    );
}

#[test]
fn edge_cookies_never_reach_the_origin() {
    let cases: &[(&[&str], &[&str])] = &[
        // (Cookie headers in, Cookie headers out)
        (&["a=1; __Host-portless-session=s3cret; b=2"], &["a=1; b=2"]),
        (&["__Host-portless-session=s3cret"], &[]),
        (&["CF_Authorization=jwt"], &[]),
        (&["cf_authorization=jwt; theme=dark"], &["theme=dark"]),
        (&["__Host-portless-app=x;__Host-portless-session=y"], &[]),
        (
            &["a=1", "__Host-portless-app=x", "b=\"quoted; no\""],
            &["a=1", "b=\"quoted; no\""],
        ),
        (&["a=1;b=2"], &["a=1;b=2"]), // untouched: byte for byte
        (&["  CF_Authorization = x ; keep=me"], &["keep=me"]),
        (
            &["portless-session=not-ours"],
            &["portless-session=not-ours"],
        ),
    ];
    for (input, expected) in cases {
        let mut headers = HeaderMap::new();
        for value in *input {
            headers.append(COOKIE, HeaderValue::from_str(value).unwrap());
        }
        headers.insert("accept", HeaderValue::from_static("*/*"));
        strip_edge_cookies(&mut headers);
        let out: Vec<&str> = headers
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(out, *expected, "{input:?}");
        assert_eq!(headers["accept"], "*/*");
    }
}

#[test]
fn identity_headers_are_set_over_anything_present() {
    let mut headers = map(&[("remote-user", "mallory"), ("remote-groups", "admins")]);
    set_identity_headers(&mut headers, Some(&alice()), Some("e.y.j")).unwrap();
    assert_eq!(headers.get_all("remote-user").iter().count(), 1);
    assert_eq!(headers["remote-user"], "alice");
    assert_eq!(headers["remote-groups"], "admins,dev");
    assert_eq!(headers["remote-name"], "Alice Doe");
    assert_eq!(headers["remote-email"], "alice@example.com");
    assert_eq!(headers["cf-access-jwt-assertion"], "e.y.j");
    assert_eq!(headers["portless-jwt-assertion"], "e.y.j");
}

#[test]
fn anonymous_requests_get_all_four_headers_empty_and_no_assertion() {
    let mut headers = map(&[
        ("remote-email", "admin@example.com"),
        ("cf-access-jwt-assertion", "forged"),
    ]);
    set_identity_headers(&mut headers, None, None).unwrap();
    for name in [
        "remote-user",
        "remote-groups",
        "remote-name",
        "remote-email",
    ] {
        assert_eq!(headers[name], "", "{name}");
    }
    assert!(headers.get("cf-access-jwt-assertion").is_none());
    assert!(headers.get("portless-jwt-assertion").is_none());
}

#[test]
fn service_tokens_are_named_by_client_id() {
    let token = Identity {
        subject: Subject::ServiceToken {
            name: "ci".into(),
            client_id: "abc123.access".into(),
        },
        display_name: String::new(),
        email: None,
        groups: vec![],
    };
    let mut headers = HeaderMap::new();
    set_identity_headers(&mut headers, Some(&token), None).unwrap();
    assert_eq!(headers["remote-user"], "abc123.access");
    assert_eq!(headers["remote-email"], "");
}

#[test]
fn non_ascii_display_names_pass_but_control_characters_are_refused() {
    let mut zoe = alice();
    zoe.display_name = "Zoë Ünal".into();
    let mut headers = HeaderMap::new();
    set_identity_headers(&mut headers, Some(&zoe), None).unwrap();
    assert_eq!(headers["remote-name"].as_bytes(), "Zoë Ünal".as_bytes());

    for bad in [
        "Alice\r\nRemote-User: root",
        "Alice\nX",
        "Alice\0",
        "A\tB",
        "A\u{7f}",
    ] {
        let mut evil = alice();
        evil.display_name = bad.into();
        let mut headers = map(&[("remote-user", "before")]);
        let err = set_identity_headers(&mut headers, Some(&evil), Some("jwt")).unwrap_err();
        assert_eq!(
            err,
            IdentityHeaderError::ControlCharacter {
                header: "Remote-Name"
            }
        );
        assert_eq!(
            headers["remote-user"], "before",
            "nothing changed on refusal"
        );
    }
    let mut evil = alice();
    evil.email = Some("a@example.com\r\nX: y".into());
    assert!(set_identity_headers(&mut HeaderMap::new(), Some(&evil), None).is_err());
    assert!(set_identity_headers(&mut HeaderMap::new(), Some(&alice()), Some("a\nb")).is_err());
}

#[test]
fn a_group_with_a_comma_is_refused() {
    let mut evil = alice();
    evil.groups = vec!["users,admins".into()];
    let err = set_identity_headers(&mut HeaderMap::new(), Some(&evil), None).unwrap_err();
    assert!(matches!(err, IdentityHeaderError::CommaInGroup { .. }));
}
