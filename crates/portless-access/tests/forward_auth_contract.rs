//! The forward-auth endpoints' parsing and status contract, per endpoint, with the attack
//! classes that apply: A (fail-open parsing), B (host confusion), C (paths), D (methods),
//! F (forwarded headers and client address).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use http::header::HeaderValue;
use http::{Method, StatusCode, Uri};
use portless_access::forward_auth::{
    Endpoint, ForwardAuthError, ForwardAuthOutcome, ForwardAuthRequest, Scheme, TrustedProxies,
    login_redirect_url, response,
};
use portless_access::{AuthLevel, Identity, Subject};
use support::headers;

mod support;

const PROXY: &str = "10.0.0.2";

/// Header pairs, as the tables spell them.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

fn trusted() -> TrustedProxies {
    TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap()
}

/// The headers each endpoint needs to describe `GET https://app.example.com/x?y=1`.
fn valid(endpoint: Endpoint) -> Vec<(&'static str, &'static str)> {
    match endpoint {
        Endpoint::ForwardAuth | Endpoint::Verify => vec![
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/x?y=1"),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-for", "203.0.113.7"),
            ("accept", "text/html,application/xhtml+xml"),
        ],
        Endpoint::AuthRequest => vec![
            ("x-original-url", "https://app.example.com/x?y=1"),
            ("x-original-method", "GET"),
            ("x-forwarded-for", "203.0.113.7"),
            ("accept", "text/html"),
        ],
        Endpoint::ExtAuthz => vec![
            ("x-forwarded-proto", "https"),
            ("host", "app.example.com"),
            ("x-forwarded-for", "203.0.113.7"),
            ("accept", "text/html"),
        ],
    }
}

fn uri(endpoint: Endpoint) -> Uri {
    match endpoint {
        Endpoint::ExtAuthz => "/api/authz/ext-authz/x?y=1".parse().unwrap(),
        other => other.path().parse().unwrap(),
    }
}

fn parse_with(
    endpoint: Endpoint,
    method: Method,
    uri: Uri,
    pairs: &[(&str, &str)],
) -> Result<ForwardAuthRequest, ForwardAuthError> {
    ForwardAuthRequest::parse(
        endpoint,
        &method,
        &uri,
        &headers(pairs),
        PROXY.parse().unwrap(),
        &trusted(),
    )
}

fn parse(
    endpoint: Endpoint,
    pairs: &[(&str, &str)],
) -> Result<ForwardAuthRequest, ForwardAuthError> {
    parse_with(endpoint, Method::GET, uri(endpoint), pairs)
}

/// The valid headers of `endpoint` with `name` replaced by `value` (or removed when `None`).
fn with(
    endpoint: Endpoint,
    name: &'static str,
    value: Option<&'static str>,
) -> Vec<(&'static str, &'static str)> {
    let mut pairs: Vec<_> = valid(endpoint)
        .into_iter()
        .filter(|(n, _)| *n != name)
        .collect();
    if let Some(value) = value {
        pairs.push((name, value));
    }
    pairs
}

fn alice() -> Identity {
    Identity {
        subject: Subject::User {
            name: "alice".into(),
            level: AuthLevel::OneFactor,
            source: portless_access::Source::UsersFile,
        },
        display_name: "Alice Doe".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["admins".into(), "dev".into()],
    }
}

// === parsing ===

#[test]
fn every_endpoint_reads_the_same_canonical_target() {
    for endpoint in Endpoint::ALL {
        let request =
            parse(endpoint, &valid(endpoint)).unwrap_or_else(|e| panic!("{endpoint:?}: {e}"));
        assert_eq!(request.endpoint, endpoint);
        assert_eq!(request.scheme, Scheme::Https);
        assert_eq!(request.host, "app.example.com");
        assert_eq!(request.port, 443);
        assert_eq!(request.path, "/x");
        assert_eq!(request.query.as_deref(), Some("y=1"));
        assert_eq!(request.method, "GET");
        assert_eq!(request.client_ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert!(!request.is_xhr);
        assert!(request.accepts_html);
        assert_eq!(
            request.url(),
            "https://app.example.com/x?y=1",
            "{endpoint:?}"
        );
        let access = request.access_request(None);
        assert_eq!(
            (access.host, access.path, access.query, access.method),
            ("app.example.com", "/x", Some("y=1"), "GET")
        );
    }
}

#[test]
fn verify_falls_back_from_the_original_url_to_forwarded_headers() {
    let from_url = parse(
        Endpoint::Verify,
        &[
            ("x-original-url", "https://other.example.com:8443/z"),
            ("x-forwarded-method", "POST"),
        ],
    )
    .unwrap();
    assert_eq!(
        (
            from_url.host.as_str(),
            from_url.port,
            from_url.path.as_str()
        ),
        ("other.example.com", 8443, "/z")
    );
    assert_eq!(from_url.url(), "https://other.example.com:8443/z");
    assert_eq!(from_url.method, "POST");
}

#[test]
fn ports_come_from_the_host_or_x_forwarded_port() {
    let request = parse(
        Endpoint::ForwardAuth,
        &with(
            Endpoint::ForwardAuth,
            "x-forwarded-host",
            Some("app.example.com:8443"),
        ),
    )
    .unwrap();
    assert_eq!(request.port, 8443);
    let mut pairs = valid(Endpoint::ForwardAuth);
    pairs.push(("x-forwarded-port", "9443"));
    let request = parse(Endpoint::ForwardAuth, &pairs).unwrap();
    assert_eq!(request.port, 9443);
    assert_eq!(request.url(), "https://app.example.com:9443/x?y=1");
    let request = parse(
        Endpoint::ForwardAuth,
        &with(Endpoint::ForwardAuth, "x-forwarded-proto", Some("HTTP")),
    )
    .unwrap();
    assert_eq!((request.scheme, request.port), (Scheme::Http, 80));
}

#[test]
fn class_a_malformed_calls_are_refused_with_400() {
    use Endpoint::*;
    use ForwardAuthError as E;
    let cases: Vec<(Endpoint, Pairs<'_>, ForwardAuthError)> = vec![
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-uri", Some("/%zz")),
            E::InvalidPath,
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-uri", Some("/x?q=%g1")),
            E::InvalidPath,
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-uri", Some("/x#frag")),
            E::InvalidPath,
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-uri", Some("x")),
            E::InvalidPath,
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-uri", Some("https://evil/x")),
            E::InvalidPath,
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-uri", None),
            E::MissingHeader("x-forwarded-uri"),
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-host", None),
            E::MissingHeader("x-forwarded-host"),
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-proto", None),
            E::MissingHeader("x-forwarded-proto"),
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-method", None),
            E::MissingHeader("x-forwarded-method"),
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-proto", Some("ftp")),
            E::InvalidScheme("x-forwarded-proto"),
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-proto", Some("https, http")),
            E::InvalidScheme("x-forwarded-proto"),
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-port", Some("99999")),
            E::InvalidPort,
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-port", Some("0")),
            E::InvalidPort,
        ),
        (
            ForwardAuth,
            with(ForwardAuth, "x-forwarded-uri", Some("/x\ty")),
            E::InvalidHeader("x-forwarded-uri"),
        ),
        (
            AuthRequest,
            with(
                AuthRequest,
                "x-original-url",
                Some("https://app.example.com/%zz"),
            ),
            E::InvalidPath,
        ),
        (
            AuthRequest,
            with(
                AuthRequest,
                "x-original-url",
                Some("https://app.example.com/a b"),
            ),
            E::InvalidPath,
        ),
        (
            AuthRequest,
            with(AuthRequest, "x-original-url", Some("/relative")),
            E::InvalidUrl,
        ),
        (
            AuthRequest,
            with(AuthRequest, "x-original-url", Some("app.example.com/x")),
            E::InvalidUrl,
        ),
        (
            AuthRequest,
            with(
                AuthRequest,
                "x-original-url",
                Some("javascript://app.example.com/"),
            ),
            E::InvalidScheme("x-original-url"),
        ),
        (
            AuthRequest,
            with(AuthRequest, "x-original-url", Some("https:///x")),
            E::InvalidHost,
        ),
        (
            AuthRequest,
            with(
                AuthRequest,
                "x-original-url",
                Some("https://app.example.com/#x"),
            ),
            E::InvalidPath,
        ),
        (
            AuthRequest,
            with(AuthRequest, "x-original-url", None),
            E::MissingHeader("x-original-url"),
        ),
        (
            AuthRequest,
            with(AuthRequest, "x-original-method", None),
            E::MissingHeader("x-original-method"),
        ),
        (
            ExtAuthz,
            with(ExtAuthz, "x-forwarded-proto", None),
            E::MissingHeader("x-forwarded-proto"),
        ),
        (
            ExtAuthz,
            with(ExtAuthz, "host", None),
            E::MissingHeader("Host"),
        ),
        (
            Verify,
            vec![("x-forwarded-method", "GET")],
            E::MissingHeader("x-forwarded-proto"),
        ),
    ];
    for (endpoint, pairs, expected) in cases {
        let err = parse(endpoint, &pairs).unwrap_err();
        assert_eq!(err, expected, "{endpoint:?} {pairs:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response(endpoint, None, &err.outcome()).status(),
            StatusCode::BAD_REQUEST
        );
    }
}

#[test]
fn class_a_duplicate_and_non_ascii_headers_are_refused() {
    for (endpoint, name) in [
        (Endpoint::ForwardAuth, "x-forwarded-host"),
        (Endpoint::ForwardAuth, "x-forwarded-uri"),
        (Endpoint::ForwardAuth, "x-forwarded-method"),
        (Endpoint::ForwardAuth, "x-forwarded-proto"),
        (Endpoint::AuthRequest, "x-original-url"),
        (Endpoint::AuthRequest, "x-original-method"),
        (Endpoint::ExtAuthz, "host"),
    ] {
        let mut pairs = valid(endpoint);
        let value = pairs.iter().find(|(n, _)| *n == name).unwrap().1;
        pairs.push((name, value));
        assert_eq!(
            parse(endpoint, &pairs),
            Err(ForwardAuthError::DuplicateHeader(name)),
            "{name}"
        );
    }
    let mut map = headers(&with(Endpoint::ForwardAuth, "x-forwarded-uri", None));
    map.insert(
        "x-forwarded-uri",
        HeaderValue::from_bytes(b"/caf\xc3\xa9").unwrap(),
    );
    let err = ForwardAuthRequest::parse(
        Endpoint::ForwardAuth,
        &Method::GET,
        &uri(Endpoint::ForwardAuth),
        &map,
        PROXY.parse().unwrap(),
        &trusted(),
    )
    .unwrap_err();
    assert_eq!(err, ForwardAuthError::InvalidHeader("x-forwarded-uri"));
}

#[test]
fn class_b_hosts_are_canonical_or_refused() {
    let canonical = [
        ("ADMIN.Example.COM.", "admin.example.com", 443),
        ("admin.example.com:443", "admin.example.com", 443),
        ("Admin.Example.Com.:8443", "admin.example.com", 8443),
    ];
    for (host, expected, port) in canonical {
        let request = parse(
            Endpoint::ForwardAuth,
            &with(Endpoint::ForwardAuth, "x-forwarded-host", Some(host)),
        )
        .unwrap();
        assert_eq!(
            (request.host.as_str(), request.port),
            (expected, port),
            "{host}"
        );
    }
    let refused = [
        ("user@admin.example.com", ForwardAuthError::Userinfo),
        (
            "app.example.com@admin.example.com",
            ForwardAuthError::Userinfo,
        ),
        ("admin.example.com:", ForwardAuthError::InvalidHost),
        ("admin.example.com:99999", ForwardAuthError::InvalidPort),
        (
            "app.example.com, admin.example.com",
            ForwardAuthError::InvalidHost,
        ),
        ("admin..example.com", ForwardAuthError::InvalidHost),
        ("admin.example.com/x", ForwardAuthError::InvalidHost),
        ("admin%2eexample.com", ForwardAuthError::InvalidHost),
        ("admin.example.com\\@x", ForwardAuthError::Userinfo),
        ("", ForwardAuthError::InvalidHost),
    ];
    for (host, expected) in refused {
        assert_eq!(
            parse(
                Endpoint::ForwardAuth,
                &with(Endpoint::ForwardAuth, "x-forwarded-host", Some(host))
            ),
            Err(expected),
            "{host:?}"
        );
    }
    for (url, expected) in [
        (
            "https://app.example.com@admin.example.com/",
            ForwardAuthError::Userinfo,
        ),
        (
            "https://user:pw@admin.example.com/",
            ForwardAuthError::Userinfo,
        ),
        (
            "https://admin.example.com%2F@app.example.com/",
            ForwardAuthError::Userinfo,
        ),
        (
            "https://admin.example.com:99999/",
            ForwardAuthError::InvalidPort,
        ),
        (
            "https://admin.example.com\\.app.example.com/",
            ForwardAuthError::InvalidHost,
        ),
    ] {
        assert_eq!(
            parse(
                Endpoint::AuthRequest,
                &with(Endpoint::AuthRequest, "x-original-url", Some(url))
            ),
            Err(expected),
            "{url}"
        );
    }
    let request = parse(
        Endpoint::AuthRequest,
        &with(
            Endpoint::AuthRequest,
            "x-original-url",
            Some("HTTPS://ADMIN.Example.COM.:443"),
        ),
    )
    .unwrap();
    assert_eq!(
        (request.host.as_str(), request.path.as_str()),
        ("admin.example.com", "/")
    );
    // Envoy over HTTP/2: the authority, and a Host header that disagrees with it.
    let h2: Uri = "https://app.example.com/api/authz/ext-authz/x"
        .parse()
        .unwrap();
    let request = parse_with(
        Endpoint::ExtAuthz,
        Method::GET,
        h2.clone(),
        &with(Endpoint::ExtAuthz, "host", None),
    )
    .unwrap();
    assert_eq!(request.host, "app.example.com");
    let request = parse_with(
        Endpoint::ExtAuthz,
        Method::GET,
        h2.clone(),
        &with(Endpoint::ExtAuthz, "host", Some("APP.example.com.")),
    )
    .unwrap();
    assert_eq!(request.host, "app.example.com");
    assert_eq!(
        parse_with(
            Endpoint::ExtAuthz,
            Method::GET,
            h2,
            &with(Endpoint::ExtAuthz, "host", Some("admin.example.com"))
        ),
        Err(ForwardAuthError::ConflictingHost)
    );
}

#[test]
fn class_c_paths_are_canonical_or_refused() {
    let canonical = [
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/../admin", "/admin"),
        ("//admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/public/./x/", "/public/x/"),
        ("/a%2fb", "/a%2Fb"),
        ("/a%00b", "/a%00b"),
    ];
    for (uri, expected) in canonical {
        let request = parse(
            Endpoint::ForwardAuth,
            &with(Endpoint::ForwardAuth, "x-forwarded-uri", Some(uri)),
        )
        .unwrap();
        assert_eq!(request.path, expected, "{uri}");
        let ext: Uri = format!("/api/authz/ext-authz{uri}").parse().unwrap();
        let request = parse_with(
            Endpoint::ExtAuthz,
            Method::GET,
            ext,
            &valid(Endpoint::ExtAuthz),
        )
        .unwrap();
        assert_eq!(request.path, expected, "ext-authz {uri}");
    }
    let refused = [
        ("/public/..;/admin", ForwardAuthError::AmbiguousPath),
        ("/public/%2e%2e;/admin", ForwardAuthError::AmbiguousPath),
        ("/public%2F..%2Fadmin", ForwardAuthError::AmbiguousPath),
        ("/public%2f%2e%2e%2fadmin", ForwardAuthError::AmbiguousPath),
        ("/public%5C..%5Cadmin", ForwardAuthError::AmbiguousPath),
        ("/public\\..\\admin", ForwardAuthError::AmbiguousPath),
        ("/public/%252e%252e/admin", ForwardAuthError::AmbiguousPath),
        ("/admin#/public", ForwardAuthError::InvalidPath),
        ("/%zz", ForwardAuthError::InvalidPath),
    ];
    for (uri, expected) in refused {
        assert_eq!(
            parse(
                Endpoint::ForwardAuth,
                &with(Endpoint::ForwardAuth, "x-forwarded-uri", Some(uri))
            ),
            Err(expected.clone()),
            "{uri}"
        );
        let url: &'static str = format!("https://app.example.com{uri}").leak();
        assert_eq!(
            parse(
                Endpoint::AuthRequest,
                &with(Endpoint::AuthRequest, "x-original-url", Some(url))
            ),
            Err(expected),
            "{url}"
        );
    }
    // The query is not part of the path (a policy on `/public` does not match `/admin?/public`).
    let request = parse(
        Endpoint::ForwardAuth,
        &with(
            Endpoint::ForwardAuth,
            "x-forwarded-uri",
            Some("/admin?x=/public/../"),
        ),
    )
    .unwrap();
    assert_eq!(
        (request.path.as_str(), request.query.as_deref()),
        ("/admin", Some("x=/public/../"))
    );
}

#[test]
fn class_d_the_method_comes_only_from_the_documented_source() {
    let overrides = [
        ("x-http-method-override", "GET"),
        ("x-http-method", "GET"),
        ("x-method-override", "GET"),
        ("x-original-method", "GET"),
    ];
    let mut pairs = with(Endpoint::ForwardAuth, "x-forwarded-method", Some("DELETE"));
    pairs.extend(overrides);
    assert_eq!(
        parse(Endpoint::ForwardAuth, &pairs).unwrap().method,
        "DELETE"
    );

    let mut pairs = with(Endpoint::AuthRequest, "x-original-method", Some("delete"));
    pairs.push(("x-forwarded-method", "GET"));
    pairs.push(("x-http-method-override", "GET"));
    assert_eq!(
        parse(Endpoint::AuthRequest, &pairs).unwrap().method,
        "DELETE"
    );
    // auth-request does not fall back to another header.
    let pairs = vec![
        ("x-original-url", "https://app.example.com/"),
        ("x-forwarded-method", "GET"),
    ];
    assert_eq!(
        parse(Endpoint::AuthRequest, &pairs),
        Err(ForwardAuthError::MissingHeader("x-original-method"))
    );

    // ext-authz: the call's own method, whatever the headers say.
    let mut pairs = valid(Endpoint::ExtAuthz);
    pairs.extend([
        ("x-forwarded-method", "GET"),
        ("x-http-method-override", "GET"),
    ]);
    let request = parse_with(
        Endpoint::ExtAuthz,
        Method::DELETE,
        uri(Endpoint::ExtAuthz),
        &pairs,
    )
    .unwrap();
    assert_eq!(request.method, "DELETE");
    let propfind = Method::from_bytes(b"PROPFIND").unwrap();
    assert_eq!(
        parse_with(
            Endpoint::ExtAuthz,
            propfind,
            uri(Endpoint::ExtAuthz),
            &pairs
        )
        .unwrap()
        .method,
        "PROPFIND"
    );

    for garbage in ["", "G ET", "FOO", "GET,POST", "G\tET", "\"GET\""] {
        let result = parse(
            Endpoint::ForwardAuth,
            &with(Endpoint::ForwardAuth, "x-forwarded-method", Some(garbage)),
        );
        assert!(
            matches!(
                result,
                Err(ForwardAuthError::InvalidMethod(_) | ForwardAuthError::InvalidHeader(_))
            ),
            "{garbage:?}: {result:?}"
        );
    }
    // forward-auth and auth-request are GET/HEAD endpoints.
    for endpoint in [Endpoint::ForwardAuth, Endpoint::AuthRequest] {
        assert_eq!(
            parse_with(endpoint, Method::POST, uri(endpoint), &valid(endpoint)),
            Err(ForwardAuthError::EndpointMethod("POST".into()))
        );
        assert!(parse_with(endpoint, Method::HEAD, uri(endpoint), &valid(endpoint)).is_ok());
    }
}

#[test]
fn class_f_only_trusted_peers_may_call_and_xff_is_walked_from_the_right() {
    // An untrusted peer is refused before any header is read, valid or not.
    for endpoint in Endpoint::ALL {
        for peer in ["203.0.113.9", "::1", "192.168.1.1"] {
            let err = ForwardAuthRequest::parse(
                endpoint,
                &Method::GET,
                &uri(endpoint),
                &headers(&valid(endpoint)),
                peer.parse().unwrap(),
                &trusted(),
            )
            .unwrap_err();
            assert_eq!(err, ForwardAuthError::UntrustedPeer(peer.parse().unwrap()));
            assert_eq!(err.status(), StatusCode::FORBIDDEN);
            assert_eq!(
                response(endpoint, None, &err.outcome()).status(),
                StatusCode::FORBIDDEN
            );
        }
        // The default trusts nobody.
        let err = ForwardAuthRequest::parse(
            endpoint,
            &Method::GET,
            &uri(endpoint),
            &headers(&valid(endpoint)),
            "127.0.0.1".parse().unwrap(),
            &TrustedProxies::default(),
        )
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
    }
    // IPv4-mapped IPv6 peers count as their IPv4 address.
    let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
    let request = ForwardAuthRequest::parse(
        Endpoint::ForwardAuth,
        &Method::GET,
        &uri(Endpoint::ForwardAuth),
        &headers(&valid(Endpoint::ForwardAuth)),
        mapped,
        &trusted(),
    )
    .unwrap();
    assert_eq!(request.client_ip, "203.0.113.7".parse::<IpAddr>().unwrap());

    let proxies = trusted();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let cases: &[(&str, &[&str], Result<&str, ()>)] = &[
        // (peer, X-Forwarded-For lines, client)
        ("203.0.113.9", &["10.0.0.1"], Ok("203.0.113.9")), // untrusted peer: XFF ignored
        ("10.0.0.2", &[], Ok("10.0.0.2")),
        ("10.0.0.2", &["203.0.113.7"], Ok("203.0.113.7")),
        ("10.0.0.2", &["10.9.9.9, 203.0.113.7"], Ok("203.0.113.7")), // spoofed entry left of the real one
        ("10.0.0.2", &["10.9.9.9", "203.0.113.7"], Ok("203.0.113.7")),
        (
            "10.0.0.2",
            &["198.51.100.1, 203.0.113.7, 10.0.0.3"],
            Ok("203.0.113.7"),
        ),
        ("10.0.0.2", &["garbage, 203.0.113.7"], Ok("203.0.113.7")),
        ("10.0.0.2", &["10.0.0.5, 10.0.0.3"], Ok("10.0.0.5")),
        ("10.0.0.2", &["203.0.113.7:4711"], Ok("203.0.113.7")),
        ("10.0.0.2", &["[2001:db8::1]:4711"], Ok("2001:db8::1")),
        ("10.0.0.2", &["2001:db8::1"], Ok("2001:db8::1")),
        ("10.0.0.2", &["203.0.113.7, garbage"], Err(())),
        ("10.0.0.2", &["203.0.113.7,"], Err(())),
    ];
    for (peer, lines, expected) in cases {
        let pairs: Vec<(&str, &str)> = lines.iter().map(|l| ("x-forwarded-for", *l)).collect();
        let got = proxies.client_ip(ip(peer), &headers(&pairs));
        match expected {
            Ok(client) => assert_eq!(got, Ok(ip(client)), "{peer} {lines:?}"),
            Err(()) => assert_eq!(
                got,
                Err(ForwardAuthError::InvalidForwardedFor),
                "{peer} {lines:?}"
            ),
        }
    }
    assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
    assert!(TrustedProxies::parse(&["proxy.local"]).is_err());
}

// === responses ===

#[test]
fn allowed_answers_200_with_all_four_identity_headers() {
    let request = parse(Endpoint::ForwardAuth, &valid(Endpoint::ForwardAuth)).unwrap();
    for endpoint in Endpoint::ALL {
        let answer = response(
            endpoint,
            Some(&request),
            &ForwardAuthOutcome::Allowed(Some(alice())),
        );
        assert_eq!(answer.status(), StatusCode::OK);
        let h = answer.headers();
        assert_eq!(h["remote-user"], "alice");
        assert_eq!(h["remote-groups"], "admins,dev");
        assert_eq!(h["remote-name"], "Alice Doe");
        assert_eq!(h["remote-email"], "alice@example.com");
        assert_eq!(h["cache-control"], "no-store");

        let anonymous = response(endpoint, Some(&request), &ForwardAuthOutcome::Allowed(None));
        assert_eq!(anonymous.status(), StatusCode::OK);
        for name in [
            "remote-user",
            "remote-groups",
            "remote-name",
            "remote-email",
        ] {
            assert_eq!(anonymous.headers()[name], "", "{name}");
        }
    }
    let mut evil = alice();
    evil.display_name = "x\r\nRemote-User: root".into();
    let answer = response(
        Endpoint::ForwardAuth,
        Some(&request),
        &ForwardAuthOutcome::Allowed(Some(evil)),
    );
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.headers().get("remote-user").is_none());
}

#[test]
fn login_required_status_follows_endpoint_method_and_client() {
    let portal = ForwardAuthOutcome::LoginRequired {
        portal_login_url: "https://auth.example.com/".into(),
    };
    // (method, extra headers, status for forward-auth / ext-authz / verify)
    type Extra<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Extra<'_>, u16)] = &[
        ("GET", &[], 302),
        ("HEAD", &[], 302),
        ("OPTIONS", &[], 302),
        ("POST", &[], 303),
        ("DELETE", &[], 303),
        ("GET", &[("x-requested-with", "XMLHttpRequest")], 401),
        ("POST", &[("x-requested-with", "xmlhttprequest")], 401),
        ("GET", &[("accept", "application/json")], 401),
        ("GET", &[("accept", "*/*")], 401),
        ("GET", &[("accept", "-")], 401),
    ];
    for endpoint in Endpoint::ALL {
        for (method, extra, status) in cases {
            let mut pairs: Vec<(&str, &str)> = valid(endpoint)
                .into_iter()
                .filter(|(n, _)| !n.ends_with("-method") && (extra.is_empty() || *n != "accept"))
                .collect();
            pairs.extend(extra.iter().copied().filter(|(_, v)| *v != "-"));
            if let Some(name) = endpoint.method_header() {
                pairs.push((name, method));
            }
            let call_method = if endpoint == Endpoint::ExtAuthz {
                Method::from_bytes(method.as_bytes()).unwrap()
            } else {
                Method::GET
            };
            let request = parse_with(endpoint, call_method, uri(endpoint), &pairs).unwrap();
            let answer = response(endpoint, Some(&request), &portal);
            let expected = if endpoint == Endpoint::AuthRequest {
                401
            } else {
                *status
            };
            assert_eq!(
                answer.status().as_u16(),
                expected,
                "{endpoint:?} {method} {extra:?}"
            );
            assert_eq!(
                answer.headers()["location"],
                login_redirect_url(
                    "https://auth.example.com/",
                    "https://app.example.com/x?y=1",
                    method
                )
                .as_str(),
                "{endpoint:?} {method}"
            );
        }
    }
    let answer = response(Endpoint::ForwardAuth, None, &portal);
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(answer.headers().get("location").is_none());
}

#[test]
fn the_login_redirect_carries_target_and_method() {
    let request = parse(
        Endpoint::ForwardAuth,
        &with(
            Endpoint::ForwardAuth,
            "x-forwarded-uri",
            Some("/a/../b?next=/c&x=%20"),
        ),
    )
    .unwrap();
    let portal = ForwardAuthOutcome::LoginRequired {
        portal_login_url: "https://auth.example.com/login".into(),
    };
    let answer = response(Endpoint::ForwardAuth, Some(&request), &portal);
    assert_eq!(
        answer.headers()["location"],
        "https://auth.example.com/login?rd=https%3A%2F%2Fapp.example.com%2Fb%3Fnext%3D%2Fc%26x%3D%2520&rm=GET"
    );
}

#[test]
fn forbidden_and_malformed_answer_403_and_400() {
    let request = parse(Endpoint::AuthRequest, &valid(Endpoint::AuthRequest)).unwrap();
    for endpoint in Endpoint::ALL {
        let forbidden = response(endpoint, Some(&request), &ForwardAuthOutcome::Forbidden);
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        assert!(forbidden.headers().get("remote-user").is_none());
        assert_eq!(
            response(endpoint, None, &ForwardAuthOutcome::Malformed).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
