//! Matching requests the way the connector does: the edge canonicalizes the Host and the
//! path with `portless_proto::canonical_host` / `canonical_path`, the connector drops the
//! query and asks [`Ingress::find`]. A rule must see the same path the origin will receive,
//! so `/public/%2e%2e/admin` is a request for `/admin`, never one for `/public`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use portless_ingress::{Ingress, TunnelConfig};
use portless_proto::{CanonicalError, canonical_host, canonical_path};

fn ingress(yaml: &str) -> Ingress {
    match TunnelConfig::from_yaml_str(yaml, Path::new("config.yml")) {
        Ok(loaded) => {
            assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
            loaded.config.ingress
        }
        Err(errors) => panic!("{errors}"),
    }
}

/// The service that serves `host` + `target` (path and query as sent), with the canonical
/// path the rules saw. Also checks that the indexed lookup and the rule-by-rule explanation
/// agree, so `portless tunnel ingress rule` tells the truth about the request path.
fn route(ingress: &Ingress, host: &str, target: &str) -> (String, String) {
    let host = canonical_host(host).unwrap_or_else(|e| panic!("{host}: {e}"));
    let canonical = canonical_path(target).unwrap_or_else(|e| panic!("{target}: {e}"));
    // As the connector does: rules match the path, never the query.
    let path = canonical.split('?').next().unwrap_or("/");
    let found = ingress.find(&host, path);
    let explained = ingress.explain(&host, path);
    assert_eq!(
        found.index, explained.matched.index,
        "find and explain disagree for {host}{path}"
    );
    (found.rule.service().to_string(), path.to_owned())
}

fn service(ingress: &Ingress, host: &str, target: &str) -> String {
    route(ingress, host, target).0
}

// === hostnames ===

const WILDCARD: &str = "
ingress:
  - hostname: '*.example.com'
    service: http://wildcard:8000
  - hostname: example.com
    service: http://apex:8000
  - service: http_status:404
";

#[test]
fn wildcard_matches_subdomains_at_any_depth() {
    let rules = ingress(WILDCARD);
    for host in [
        "a.example.com",
        "a.b.example.com",
        "x.y.z.example.com",
        "a.example.com:443",
    ] {
        assert_eq!(service(&rules, host, "/"), "http://wildcard:8000", "{host}");
    }
}

#[test]
fn wildcard_does_not_match_the_apex_or_lookalikes() {
    let rules = ingress(WILDCARD);
    assert_eq!(service(&rules, "example.com", "/"), "http://apex:8000");
    for host in [
        "badexample.com",
        "a.badexample.com",
        "example.com.evil.net",
        "example.org",
        "com",
    ] {
        assert_eq!(service(&rules, host, "/"), "http_status:404", "{host}");
    }
}

#[test]
fn first_rule_in_file_order_wins_across_exact_and_wildcard_rules() {
    let rules = ingress(
        "
ingress:
  - hostname: '*.example.com'
    path: ^/static/
    service: http://static:8000
  - hostname: app.example.com
    service: http://app:8000
  - hostname: '*.example.com'
    service: http://wildcard:8000
  - service: http_status:404
",
    );
    assert_eq!(
        service(&rules, "app.example.com", "/static/app.css"),
        "http://static:8000"
    );
    assert_eq!(service(&rules, "app.example.com", "/"), "http://app:8000");
    assert_eq!(
        service(&rules, "other.example.com", "/"),
        "http://wildcard:8000"
    );
}

#[test]
fn hosts_match_regardless_of_case_trailing_dot_and_port() {
    let rules = ingress(
        "
ingress:
  - hostname: app.example.com
    service: http://app:8000
  - hostname: Admin.Example.COM.
    service: http://admin:8000
  - hostname: '*.LAB.example.com'
    service: http://lab:8000
  - service: http_status:404
",
    );
    for host in [
        "APP.Example.COM.",
        "app.example.com.",
        "App.Example.Com:8443",
        "APP.EXAMPLE.COM.:443",
    ] {
        assert_eq!(service(&rules, host, "/"), "http://app:8000", "{host}");
    }
    for host in ["admin.example.com", "ADMIN.EXAMPLE.COM."] {
        assert_eq!(service(&rules, host, "/"), "http://admin:8000", "{host}");
    }
    assert_eq!(
        service(&rules, "Grafana.Lab.Example.Com.", "/"),
        "http://lab:8000"
    );
}

#[test]
fn idn_rules_match_in_unicode_and_punycode_form() {
    let rules = ingress(
        "
ingress:
  - hostname: bücher.example
    service: http://books:8000
  - hostname: xn--caf-dma.example
    service: http://cafe:8000
  - hostname: '*.münchen.example'
    service: http://city:8000
  - service: http_status:404
",
    );
    // Browsers send the punycode form in the Host header, in any case.
    assert_eq!(
        service(&rules, "xn--bcher-kva.example", "/"),
        "http://books:8000"
    );
    assert_eq!(
        service(&rules, "XN--BCHER-KVA.Example.", "/"),
        "http://books:8000"
    );
    assert_eq!(
        service(&rules, "xn--caf-dma.example:443", "/"),
        "http://cafe:8000"
    );
    assert_eq!(
        service(&rules, "www.xn--mnchen-3ya.example", "/"),
        "http://city:8000"
    );
    // The edge refuses a raw Unicode Host (no browser sends one); `find` itself accepts
    // both forms, for callers that have a name rather than a header.
    assert!(matches!(
        canonical_host("café.example"),
        Err(CanonicalError::InvalidHost(_))
    ));
    assert_eq!(rules.find("café.example", "/").index, 1);
    assert_eq!(rules.find("BÜCHER.example", "/").index, 0);
    assert_eq!(rules.find("www.München.example", "/").index, 2);
    assert_eq!(rules.find("münchen.example", "/").index, 3, "apex");
}

// === paths ===

/// The rule guarding `/admin` comes *after* a broader `/public` rule: a router that
/// matched the raw path would send `/public/%2e%2e/admin` to the public origin, which then
/// resolves it to `/admin` without the admin rule's checks.
const PUBLIC_THEN_ADMIN: &str = "
ingress:
  - hostname: app.example.com
    path: ^/public
    service: http://public:8000
  - hostname: app.example.com
    path: ^/admin
    service: http://admin:8000
  - hostname: app.example.com
    service: http_status:404
  - service: http_status:404
";

const ADMIN_THEN_PUBLIC: &str = "
ingress:
  - hostname: app.example.com
    path: ^/admin
    service: http://admin:8000
  - hostname: app.example.com
    path: ^/public
    service: http://public:8000
  - service: http_status:404
";

const ADMIN_IN_DISGUISE: [&str; 10] = [
    "/admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/../admin",
    "/public/./../admin",
    "/public/x/../../admin",
    "//admin",
    "///admin/",
    "/%61dmin",
    "/../admin",
];

#[test]
fn dot_segments_and_escapes_cannot_reach_admin_through_public() {
    for yaml in [PUBLIC_THEN_ADMIN, ADMIN_THEN_PUBLIC] {
        let rules = ingress(yaml);
        for target in ADMIN_IN_DISGUISE {
            let (service, path) = route(&rules, "app.example.com", target);
            assert!(path.starts_with("/admin"), "{target} became {path}");
            assert_eq!(service, "http://admin:8000", "{target} as {path}");
        }
    }
}

#[test]
fn the_canonical_path_is_what_the_rules_see() {
    let rules = ingress(PUBLIC_THEN_ADMIN);
    let cases = [
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/../admin", "/admin"),
        ("//admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/public/%2e%2e/admin?next=/public", "/admin"),
        ("/admin/../public/page", "/public/page"),
        ("/public//file.txt", "/public/file.txt"),
    ];
    for (target, canonical) in cases {
        assert_eq!(route(&rules, "app.example.com", target).1, canonical);
    }
}

#[test]
fn public_paths_stay_public() {
    let rules = ingress(PUBLIC_THEN_ADMIN);
    for target in [
        "/public",
        "/public/index.html",
        "/admin/../public/page",
        "/%70ublic/x",
        "/public/admin",
    ] {
        assert_eq!(
            service(&rules, "app.example.com", target),
            "http://public:8000",
            "{target}"
        );
    }
    // An encoded slash is not a separator: `..%2Fadmin` is one segment under /public, and
    // the origin receives exactly that path.
    assert_eq!(
        route(&rules, "app.example.com", "/public/%2e%2e%2fadmin"),
        (
            "http://public:8000".to_owned(),
            "/public/..%2Fadmin".to_owned()
        )
    );
    // The query is not part of the path: `?x=/admin` does not make it an admin request.
    assert_eq!(
        service(&rules, "app.example.com", "/?x=/admin"),
        "http_status:404"
    );
}

#[test]
fn regexes_are_searched_unanchored_unless_anchored() {
    let rules = ingress(
        r"
ingress:
  - hostname: app.example.com
    path: ^/exact$
    service: http://exact:8000
  - hostname: app.example.com
    path: /api
    service: http://api:8000
  - hostname: app.example.com
    path: '\.(css|js)$'
    service: http://assets:8000
  - service: http_status:404
",
    );
    let cases = [
        ("/exact", "http://exact:8000"),
        ("/exact/", "http_status:404"),
        ("/exact/more", "http_status:404"),
        ("/x/./../exact", "http://exact:8000"),
        ("/x/exact", "http_status:404"),
        ("/api", "http://api:8000"),
        ("/v1/api/users", "http://api:8000"),
        ("/x/%61pi/y", "http://api:8000"),
        ("/static/app.js", "http://assets:8000"),
        ("/static/app.js?v=1", "http://assets:8000"),
        ("/static/app.js.map", "http_status:404"),
    ];
    for (target, want) in cases {
        assert_eq!(service(&rules, "app.example.com", target), want, "{target}");
    }
}

#[test]
fn host_and_path_tricks_combined() {
    let rules = ingress(
        "
ingress:
  - hostname: '*.example.com'
    path: ^/public
    service: http://public:8000
  - hostname: '*.example.com'
    path: ^/admin
    service: http://admin:8000
  - service: http_status:404
",
    );
    assert_eq!(
        service(&rules, "A.B.Example.COM.:443", "/public/%2e%2e//%61dmin"),
        "http://admin:8000"
    );
    assert_eq!(
        service(&rules, "EXAMPLE.COM.", "/admin"),
        "http_status:404",
        "the apex is not a subdomain"
    );
}
