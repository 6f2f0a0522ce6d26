//! The attack classes A–J of `attacks.md`, as tables run against the edge end to end: each
//! row once through the integrated path (a request to the application host) and once through
//! each forward-auth endpoint (the same request described in forwarded headers). Expected:
//! malformed → 400; otherwise denied (401/302/303/403); never the origin. Control rows (`Pass`)
//! show that each target really is reachable, so the refusals around them mean something.
//!
//! Layout: `attacks/wire.rs` (raw TLS exchanges and a cookie-keeping agent), `attacks/setup.rs`
//! (the edge, rules and users), `attacks/table.rs` (rows, renderings, checks). Cases that need
//! sessions (G, H, I) are written as tests with their own small tables.
//!
//! Covered elsewhere, not repeated here:
//! * JWT `alg:none`, HS256 keyed with the public key, other algorithms and curves, tampered
//!   payloads, `exp` as a string, missing claims, `kid`/`crit` tricks, wrong `aud`/`iss`/`type`,
//!   tokens from the future: `crates/portless-access/src/assertion/tests.rs`
//!   (`alg_none_is_refused`, `hs256_keyed_with_the_public_key_is_refused`,
//!   `time_claims_must_be_integers`, ...), and the connector refusing a forged or expired
//!   assertion end to end: `tests/access_assertion.rs`;
//! * TOTP replay of the enrolment code, the policy's own B/C/F tables and property tests:
//!   `tests/access.rs`, `crates/portless-access/src/policy/tests.rs`;
//! * forward-auth header parsing in isolation: `crates/portless-access/tests/forward_auth_contract.rs`.
//!
//! Not applicable: an unreachable session store (sessions live in the edge's memory), email
//! one-time PINs and WebAuthn (not implemented by the portal yet).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "attacks/http2.rs"]
mod http2;
#[path = "attacks/sessions.rs"]
mod sessions;
#[path = "attacks/setup.rs"]
mod setup;
#[path = "attacks/table.rs"]
mod table;
#[path = "attacks/wire.rs"]
mod wire;

use setup::{ADMIN, APP, OTHER, Setup, WWW};
use table::{FORWARD, ORIGINAL_URL, Table, Via, Want, get, req, row};
use wire::fresh_ip;

use Want::{Bad, Deny, NoRoute, Pass, Refused};
use portless_test_support::access::PORTAL;

const INTEGRATED: &[Via] = &[Via::Integrated];
const FORWARD_AUTH: &[Via] = &[Via::ForwardAuth];
const AUTH_REQUEST: &[Via] = &[Via::AuthRequest];
const FORWARDED_METHOD: &[Via] = &[Via::ForwardAuth, Via::Verify];
const FORWARDED_PROTO: &[Via] = &[Via::ForwardAuth, Via::ExtAuthz];
const NOT_EXT_AUTHZ: &[Via] = &[
    Via::Integrated,
    Via::ForwardAuth,
    Via::AuthRequest,
    Via::Verify,
];

/// Percent-encodes a query value.
fn enc(text: &str) -> String {
    portless_test_support::form_body(&[("x", text)])
        .trim_start_matches("x=")
        .to_owned()
}

#[tokio::test]
async fn class_a_fail_open_parsing() {
    let setup = Setup::start().await;
    let long_cookie = format!("Cookie: __Host-portless-app={}", "A".repeat(6000));
    #[rustfmt::skip]
    let rows = vec![
        row('A', "control: public path", get(APP, "/public/a"), Pass),
        row('A', "bad escape in the path", get(APP, "/%zz"), Bad),
        row('A', "truncated escape on the public path", get(APP, "/public/%2"), Bad),
        row('A', "bad escape in the query", get(APP, "/public/a?x=%zz"), Bad),
        row('A', "garbage session cookie", get(APP, "/private").h("Cookie: __Host-portless-app=%%%garbage"), Deny),
        row('A', "cookie header of separators", get(APP, "/private").h("Cookie: ;;;=;__Host-portless-app;="), Deny),
        row('A', "non-UTF-8 cookie value", get(APP, "/private").h("Cookie: __Host-portless-app=\u{e9}\u{ff}"), Deny),
        row('A', "overlong session cookie", get(APP, "/private").h(&long_cookie), Deny),
        row('A', "half a service token", get(APP, "/private").h("CF-Access-Client-Id: x.access"), Bad),
        row('A', "service token id sent twice", get(APP, "/private").h("CF-Access-Client-Id: a.access").h("CF-Access-Client-Id: b.access").h("CF-Access-Client-Secret: s"), Bad),
        row('A', "empty host", get("", "/private").sni(APP), Bad),
        row('A', "target without a leading slash", get(APP, "private"), Bad).only(&[Via::Integrated, Via::ForwardAuth]),
        row('A', "X-Original-URL without a scheme", get(APP, "/private").fwd("X-Original-URL", "app.example.test/private"), Bad).only(ORIGINAL_URL),
        row('A', "X-Original-URL with another scheme", get(APP, "/private").fwd("X-Original-URL", "ftp://app.example.test/public/a"), Bad).only(ORIGINAL_URL),
        row('A', "X-Original-URL with a fragment", get(APP, "/private").fwd("X-Original-URL", "https://app.example.test/public/#/../private"), Bad).only(ORIGINAL_URL),
        row('A', "X-Original-URL sent twice", get(APP, "/private").h("X-Original-URL: https://www.example.test/"), Bad).only(ORIGINAL_URL),
        row('A', "X-Forwarded-Proto not http(s)", get(APP, "/public/a").fwd("X-Forwarded-Proto", "javascript"), Bad).only(FORWARDED_PROTO),
        row('A', "X-Forwarded-Uri missing", get(APP, "/public/a").fwd_without("X-Forwarded-Uri"), Bad).only(FORWARD_AUTH),
        row('A', "X-Forwarded-Host missing", get(APP, "/public/a").fwd_without("X-Forwarded-Host"), Bad).only(FORWARD_AUTH),
        row('A', "X-Original-URL missing", get(APP, "/public/a").fwd_without("X-Original-URL"), Bad).only(AUTH_REQUEST),
        row('A', "method header is garbage", get(APP, "/public/a").fwd("X-Forwarded-Method", "G ET"), Bad).only(FORWARDED_METHOD),
        row('A', "X-Original-Method is garbage", get(APP, "/public/a").fwd("X-Original-Method", "\"GET\""), Bad).only(AUTH_REQUEST),
        row('A', "X-Forwarded-For is garbage", get(APP, "/private").h("X-Forwarded-For: not-an-address"), Deny).fwd(Bad),
        row('A', "control character in a forwarded header", get(APP, "/public/a").fwd("X-Forwarded-Host", "app.example.test\u{7f}"), Bad).only(FORWARD_AUTH),
    ];
    Table::new("A: fail-open parsing", &setup).run(rows).await;
}

#[tokio::test]
async fn class_b_host_and_authority_confusion() {
    let setup = Setup::start().await;
    #[rustfmt::skip]
    let rows = vec![
        row('B', "control: public host", get(WWW, "/public/b"), Pass),
        row('B', "upper case and trailing dot", get("ADMIN.Example.TEST.:{port}", "/"), Deny),
        row('B', "app host in upper case", get("APP.EXAMPLE.TEST", "/private"), Deny),
        row('B', "explicit default port", get("admin.example.test:443", "/"), Deny),
        row('B', "userinfo before the host", get("www.example.test@admin.example.test", "/").sni(ADMIN), Bad),
        row('B', "userinfo before the app host", get("x@app.example.test", "/private"), Bad),
        row('B', "port out of range", get("admin.example.test:99999", "/").sni(ADMIN), Bad),
        row('B', "port with a sign", get("admin.example.test:+443", "/").sni(ADMIN), Bad),
        row('B', "double trailing dot", get("admin.example.test..", "/"), Bad),
        row('B', "a list of hosts", get("www.example.test, admin.example.test", "/").sni(WWW), Bad),
        row('B', "backslash before @", get("www.example.test\\@admin.example.test", "/").sni(WWW), Bad),
        row('B', "IDN look-alike (Cyrillic a)", get("\u{430}dmin.example.test", "/").sni(ADMIN), Bad),
        row('B', "punycode look-alike", get("xn--dmin-7cd.example.test", "/"), NoRoute).fwd(Deny),
        row('B', "look-alike suffix", get("admin.example.test.evil.test", "/"), NoRoute).fwd(Deny),
        row('B', "duplicate Host, public one first", get(WWW, "/").no_host().h("Host: www.example.test").h("Host: admin.example.test"), Bad).only(INTEGRATED),
        row('B', "absolute-form target naming another host", get(WWW, "https://admin.example.test/"), Bad).only(INTEGRATED),
        row('B', "absolute-form target with userinfo", get(ADMIN, "https://x@admin.example.test/"), Bad).only(INTEGRATED),
        row('B', "server name of one host, Host of another", get(ADMIN, "/").sni(WWW), Bad).only(INTEGRATED),
        row('B', "ext-authz call with an app Host under the portal's name", get(APP, "/api/authz/ext-authz/public/b").sni(PORTAL), Bad).only(INTEGRATED),
        row('B', "X-Forwarded-Host from a client", get(ADMIN, "/").h("X-Forwarded-Host: www.example.test"), Deny).fwd(Refused).only(&[Via::Integrated, Via::ForwardAuth, Via::AuthRequest, Via::Verify]),
        row('B', "absolute URL in X-Forwarded-Uri", get(WWW, "/public/b").fwd("X-Forwarded-Uri", "https://admin.example.test/"), Bad).only(FORWARD_AUTH),
        row('B', "X-Forwarded-Port out of range", get(WWW, "/public/b").fwd("X-Forwarded-Port", "99999"), Bad).only(FORWARD_AUTH),
        row('B', "X-Original-URL with userinfo", get(WWW, "/public/b").fwd("X-Original-URL", "https://www.example.test@admin.example.test/"), Bad).only(ORIGINAL_URL),
        row('B', "X-Original-URL with a backslash authority", get(WWW, "/public/b").fwd("X-Original-URL", "https://admin.example.test\\@www.example.test/"), Bad).only(ORIGINAL_URL),
    ];
    Table::new("B: host / authority confusion", &setup)
        .run(rows)
        .await;
}

#[tokio::test]
async fn class_c_path_normalization() {
    let setup = Setup::start().await;
    #[rustfmt::skip]
    let rows = vec![
        row('C', "control: public path", get(APP, "/public/ok"), Pass),
        row('C', "double slash", get(APP, "//admin"), Deny),
        row('C', "encoded letter", get(APP, "/%61dmin"), Deny),
        row('C', "dot-dot out of the public path", get(APP, "/public/../admin"), Deny),
        row('C', "encoded dot-dot", get(APP, "/public/%2e%2e/admin"), Deny),
        row('C', "upper-case encoded dot-dot", get(APP, "/public/%2E%2E/admin"), Deny),
        row('C', "dot segment, then dot-dot", get(APP, "/public/./../admin"), Deny),
        row('C', "encoded slashes around dot-dot", get(APP, "/public%2F..%2Fadmin"), Refused),
        row('C', "dot-dot, then an encoded slash", get(APP, "/public/..%2Fadmin"), Refused),
        row('C', "encoded backslash", get(APP, "/public/..%5Cadmin"), Refused),
        row('C', "raw backslash", get(APP, "/public/..\\admin"), Refused),
        row('C', "Tomcat path parameter", get(APP, "/public/..;/admin"), Refused),
        row('C', "path parameter on dot-dot", get(APP, "/public/..;x=y/admin"), Refused),
        row('C', "double-encoded dot-dot", get(APP, "/public/%252e%252e/admin"), Refused),
        row('C', "overlong UTF-8 dots", get(APP, "/public/%c0%ae%c0%ae/admin"), Refused),
        // hyper's URI parser drops the fragment (the origin gets `/public/x`, no bypass), so
        // only a check of the raw head can answer the 400 a fragment in a request-target deserves.
        row('C', "fragment in the target", get(APP, "/public/x#/../../admin"), Bad),
        row('C', "raw NUL in the path", get(APP, "/public/\0/../admin"), Bad),
        row('C', "space in the path", get(APP, "/public/ /../admin"), Bad),
        row('C', "encoded NUL", get(APP, "/admin%00.css"), Deny),
        row('C', "query names the public path", get(APP, "/admin?next=/public/"), Deny),
        row('C', "public path only in the query", get(APP, "/?/public/"), Deny),
    ];
    Table::new("C: path normalization", &setup).run(rows).await;
}

#[tokio::test]
async fn class_d_method_tricks() {
    let setup = Setup::start().await;
    #[rustfmt::skip]
    let rows = vec![
        row('D', "control: GET of the read-only API", get(APP, "/api/items"), Pass),
        row('D', "control: OPTIONS of the preflight path", req("OPTIONS", APP, "/cors/items"), Pass),
        row('D', "GET overridden to DELETE", get(APP, "/api/items").h("X-HTTP-Method-Override: DELETE"), Bad),
        row('D', "GET overridden by X-HTTP-Method", get(APP, "/api/items").h("X-HTTP-Method: PUT"), Bad),
        row('D', "GET overridden by X-Method-Override", get(APP, "/api/items").h("X-Method-Override: POST"), Bad),
        row('D', "override with underscores", get(APP, "/api/items").h("X_HTTP_Method_Override: DELETE"), Bad),
        row('D', "override in another case with underscores", get(APP, "/api/items").h("x_method_override: PUT"), Bad),
        row('D', "override repeated, the second differs", get(APP, "/api/items").h("X-HTTP-Method-Override: GET").h("X-HTTP-Method-Override: DELETE"), Bad),
        row('D', "OPTIONS overridden to GET on an OPTIONS-only rule", req("OPTIONS", APP, "/cors/items").h("X-HTTP-Method-Override: GET"), Bad),
        row('D', "HEAD overridden to POST", req("HEAD", APP, "/api/items").h("X-HTTP-Method-Override: POST"), Bad),
        row('D', "POST to the read-only API", req("POST", APP, "/api/items").body("x=1"), Deny),
        row('D', "DELETE to the read-only API", req("DELETE", APP, "/api/items"), Deny),
        row('D', "lower-case method name", req("delete", APP, "/api/items"), Deny),
        row('D', "GET of the OPTIONS-only path", get(APP, "/cors/items"), Deny),
        row('D', "preflight-looking OPTIONS to a protected path", req("OPTIONS", APP, "/private").h("Origin: https://evil.test").h("Access-Control-Request-Method: DELETE"), Deny),
        row('D', "HEAD of a protected path", req("HEAD", APP, "/private"), Deny),
        row('D', "TRACE", req("TRACE", APP, "/private"), Refused),
        row('D', "unknown method", req("FOO", APP, "/api/items"), Deny).fwd(Bad),
        row('D', "X-Forwarded-Method twice", get(APP, "/api/items").h("X-Forwarded-Method: DELETE"), Bad).only(FORWARDED_METHOD),
        row('D', "X-Original-Method twice", get(APP, "/api/items").h("X-Original-Method: DELETE"), Bad).only(AUTH_REQUEST),
    ];
    Table::new("D: method tricks", &setup).run(rows).await;
}

#[tokio::test]
async fn class_e_open_redirects() {
    let setup = Setup::start().await;
    let port = setup.port();
    let callback = |rd: &str| format!("/cdn-cgi/access/callback?code=not-a-code&rd={rd}");
    let portal = |rd: String| format!("/?rd={}", enc(&rd));
    #[rustfmt::skip]
    let rows = vec![
        row('E', "callback back to a scheme-relative URL", get(APP, &callback("//evil.test/")), Deny),
        row('E', "callback back to /\\host", get(APP, &callback("/%5Cevil.test")), Deny),
        row('E', "callback back to another site", get(APP, &callback(&enc("https://evil.test/"))), Deny),
        row('E', "callback back to encoded slashes", get(APP, &callback("%2F%2Fevil.test")), Deny),
        row('E', "callback back through a tab", get(APP, &callback("/%09/evil.test")), Deny),
        row('E', "callback back to javascript:", get(APP, &callback("javascript:alert(1)")), Deny),
        row('E', "callback back through userinfo", get(APP, &callback(&enc("https://app.example.test@evil.test/"))), Deny),
        row('E', "login redirect for a scheme-relative path", get(APP, "//evil.test/x"), Deny),
        row('E', "forwarded host off the domain", get("evil.test", "/"), Deny).only(&[Via::ForwardAuth, Via::AuthRequest, Via::Verify]),
        row('E', "forwarded scheme downgraded", get(APP, "/private").fwd("X-Forwarded-Proto", "http"), Deny).only(FORWARD_AUTH),
        row('E', "X-Original-URL over http", get(APP, "/private").fwd("X-Original-URL", "http://app.example.test/private"), Deny).only(ORIGINAL_URL),
        row('E', "portal rd to another site", get(PORTAL, &portal("https://evil.test/".into())), Bad).only(INTEGRATED),
        row('E', "portal rd through userinfo", get(PORTAL, &portal(format!("https://{APP}:{port}@evil.test/"))), Bad).only(INTEGRATED),
        row('E', "portal rd scheme-relative", get(PORTAL, &portal("//evil.test/".into())), Bad).only(INTEGRATED),
        row('E', "portal rd /\\host", get(PORTAL, &portal("/\\evil.test".into())), Bad).only(INTEGRATED),
        row('E', "portal rd downgraded to http", get(PORTAL, &portal(format!("http://{APP}:{port}/"))), Bad).only(INTEGRATED),
        row('E', "portal rd javascript:", get(PORTAL, &portal("javascript:alert(1)".into())), Bad).only(INTEGRATED),
        row('E', "portal rd look-alike suffix", get(PORTAL, &portal(format!("https://{APP}.evil.test:{port}/"))), Bad).only(INTEGRATED),
        row('E', "portal rd backslash authority", get(PORTAL, &portal(format!("https://{APP}\\@evil.test/"))), Bad).only(INTEGRATED),
        row('E', "portal rd with a NUL in the host", get(PORTAL, &portal(format!("https://{APP}\0.evil.test/"))), Bad).only(INTEGRATED),
        row('E', "portal rd to an address", get(PORTAL, &portal("https://127.0.0.1/".into())), Bad).only(INTEGRATED),
        row('E', "portal rd hiding the host in a fragment", get(PORTAL, &portal(format!("https://evil.test#@{APP}/"))), Bad).only(INTEGRATED),
        row('E', "portal rd tab in the scheme", get(PORTAL, &portal("https:\t//evil.test/".into())), Bad).only(INTEGRATED),
    ];
    Table::new("E: open redirect", &setup).run(rows).await;
}

#[tokio::test]
async fn class_f_forwarded_headers_and_client_ip() {
    let setup = Setup::start().await;
    let untrusted = fresh_ip();
    #[rustfmt::skip]
    let rows = vec![
        row('F', "control: the network rule admits what the trusted proxy reports", get(APP, "/intranet/x").h("X-Forwarded-For: 10.0.0.1"), Pass).only(FORWARD),
        row('F', "X-Forwarded-For from an internet client", get(APP, "/intranet/x").h("X-Forwarded-For: 10.0.0.1"), Deny).only(INTEGRATED),
        row('F', "X-Forwarded-For from an untrusted peer", get(APP, "/intranet/x").h("X-Forwarded-For: 10.0.0.1").from(untrusted), Deny),
        row('F', "spoofed entry left of the real client", get(APP, "/intranet/x").h("X-Forwarded-For: 10.0.0.1, 203.0.113.9"), Deny),
        row('F', "entries split over two headers", get(APP, "/intranet/x").h("X-Forwarded-For: 10.0.0.1").h("X-Forwarded-For: 203.0.113.9"), Deny),
        row('F', "X-Real-IP", get(APP, "/intranet/x").h("X-Real-IP: 10.0.0.1"), Deny),
        row('F', "Forwarded: for=", get(APP, "/intranet/x").h("Forwarded: for=10.0.0.1;proto=https"), Deny),
        row('F', "True-Client-IP and CF-Connecting-IP", get(APP, "/intranet/x").h("True-Client-IP: 10.0.0.1").h("CF-Connecting-IP: 10.0.0.1"), Deny),
        row('F', "X_Forwarded_For with underscores", get(APP, "/intranet/x").h("X_Forwarded_For: 10.0.0.1"), Refused),
        row('F', "Connection names X-Forwarded-For", get(APP, "/intranet/x").h("Connection: close, X-Forwarded-For").h("X-Forwarded-For: 10.0.0.1, 203.0.113.9"), Deny),
        row('F', "IPv4-mapped spoof", get(APP, "/intranet/x").h("X-Forwarded-For: ::ffff:10.0.0.1, 203.0.113.9"), Deny),
        row('F', "spoof with a port", get(APP, "/intranet/x").h("X-Forwarded-For: 10.0.0.1:443, 203.0.113.9"), Deny),
    ];
    Table::new("F: forwarded headers and client IP", &setup)
        .run(rows)
        .await;
}

#[tokio::test]
async fn class_j_smuggling_and_upgrades() {
    let setup = Setup::start().await;
    // Every row names the public host (and `/public/`): without the framing check, each would
    // be admitted, so a refusal here is the framing check's, not the policy's.
    let ws = |r: table::Req| {
        r.h("Connection: Upgrade")
            .h("Upgrade: websocket")
            .h("Sec-WebSocket-Version: 13")
            .h("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
    };
    #[rustfmt::skip]
    let rows = vec![
        row('J', "control: public GET", get(WWW, "/public/j"), Pass),
        row('J', "control: public POST with a body", req("POST", WWW, "/public/j").body("abc"), Pass),
        // Accepted by hyper today; refused once the edge checks the raw HTTP/1 head.
        row('J', "Content-Length and Transfer-Encoding", req("POST", WWW, "/public/j").framing().h("Content-Length: 5").h("Transfer-Encoding: chunked").body("0\r\n\r\nX"), Bad),
        // Accepted by hyper today; refused once the edge checks the raw HTTP/1 head.
        row('J', "Transfer-Encoding, then Content-Length", req("POST", WWW, "/public/j").framing().h("Transfer-Encoding: chunked").h("Content-Length: 5").body("0\r\n\r\nX"), Bad),
        // Accepted by hyper today; refused once the edge checks the raw HTTP/1 head.
        row('J', "duplicate Content-Length, same value", req("POST", WWW, "/public/j").framing().h("Content-Length: 3").h("Content-Length: 3").body("abc"), Bad),
        row('J', "duplicate Content-Length, different values", req("POST", WWW, "/public/j").framing().h("Content-Length: 3").h("Content-Length: 5").body("abc"), Bad),
        row('J', "Content-Length as a list", req("POST", WWW, "/public/j").framing().h("Content-Length: 3, 3").body("abc"), Bad),
        row('J', "Transfer-Encoding not ending in chunked", req("POST", WWW, "/public/j").framing().h("Transfer-Encoding: chunked, identity").body("0\r\n\r\n"), Bad),
        row('J', "obs-fold continuation line", get(WWW, "/public/j").h("X-Fold: a").h(" b"), Bad),
        row('J', "obs-fold hiding Transfer-Encoding", req("POST", WWW, "/public/j").framing().h("X-Fold: a").h(" Transfer-Encoding: chunked").h("Content-Length: 3").body("abc"), Bad),
        // Accepted by hyper today; refused once the edge checks the raw HTTP/1 head.
        row('J', "bare LF line endings", get(WWW, "/public/j").eol("\n"), Bad),
        // Accepted by hyper today; refused once the edge checks the raw HTTP/1 head.
        row('J', "bare LF inside one header line", get(WWW, "/public/j").h("X-A: 1\nTransfer-Encoding: chunked"), Bad),
        row('J', "bare CR in a value", get(WWW, "/public/j").h("X-A: 1\r2"), Bad),
        row('J', "NUL in a value", get(WWW, "/public/j").h("X-A: 1\u{0}2"), Bad),
        row('J', "whitespace before the colon", req("POST", WWW, "/public/j").framing().h("Transfer-Encoding : chunked").h("Content-Length: 3").body("abc"), Bad),
        row('J', "CRLF in the request target", get(WWW, "/public/j\r\nX-Injected: 1"), Bad).only(&[Via::Integrated, Via::ExtAuthz]),
        row('J', "Upgrade: h2c", get(WWW, "/public/j").h("Connection: Upgrade, HTTP2-Settings").h("Upgrade: h2c").h("HTTP2-Settings: AAMAAABkAAQAAP__"), Bad),
        row('J', "HTTP2-Settings without Upgrade", get(WWW, "/public/j").h("HTTP2-Settings: AAMAAABkAAQAAP__"), Bad),
        row('J', "WebSocket upgrade to a protected app, no session", ws(get(APP, "/ws")), Deny),
        row('J', "WebSocket upgrade to the admin app, no session", ws(get(ADMIN, "/ws")), Deny).only(NOT_EXT_AUTHZ),
        row('J', "WebSocket upgrade on an unnamed host", ws(get(OTHER, "/ws")), Deny).only(NOT_EXT_AUTHZ),
        row('J', "TCP upgrade to a protected app, no session", get(APP, "/").h("Connection: Upgrade").h("Upgrade: portless-tcp"), Deny),
    ];
    Table::new("J: smuggling and upgrades", &setup)
        .run(rows)
        .await;
}

/// Several requests on one connection: each is judged on its own, whatever came before it
/// (a public request first must not carry a protected one past the policy).
#[tokio::test]
async fn class_j_pipelined_requests_are_judged_one_by_one() {
    let setup = Setup::start().await;
    let port = setup.port();
    let cases: &[(&str, String, &[u16])] = &[
        (
            "a protected GET pipelined after a public one",
            format!(
                "GET /public/p HTTP/1.1\r\nHost: {APP}:{port}\r\nAccept: text/html\r\n\r\n\
                 GET /private HTTP/1.1\r\nHost: {APP}:{port}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
            ),
            &[200, 302],
        ),
        (
            "a protected GET hidden after a public POST's empty body",
            format!(
                "POST /public/p HTTP/1.1\r\nHost: {APP}:{port}\r\nContent-Length: 0\r\n\r\n\
                 GET /private HTTP/1.1\r\nHost: {APP}:{port}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
            ),
            &[200, 302],
        ),
        (
            "a second request naming another host than the connection's",
            format!(
                "GET /public/p HTTP/1.1\r\nHost: {APP}:{port}\r\n\r\n\
                 GET / HTTP/1.1\r\nHost: {ADMIN}:{port}\r\nConnection: close\r\n\r\n"
            ),
            &[200, 400],
        ),
    ];
    for (name, bytes, want) in cases {
        let before = setup.origin.seen().len();
        let statuses = setup.wire.exchange_all(APP, bytes.as_bytes()).await;
        assert_eq!(&statuses, want, "J {name}");
        assert_eq!(
            setup.origin.seen().len() - before,
            1,
            "J {name}: only the public request reached the origin"
        );
    }
}

/// The access files broken on disk: the edge keeps what it had, it never opens up.
#[tokio::test]
async fn class_a_broken_access_files_fail_closed() {
    let setup = Setup::start().await;
    let alice = setup::signed_in(&setup, "alice").await;
    std::fs::write(&setup.fixture.users, "users: [this is: not, a users file").unwrap();
    std::fs::write(
        &setup.fixture.config,
        "access_control:\n  default_policy: bypass\n  rules: {{{ broken",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let anonymous = wire::Agent::new(&setup.wire, Some(fresh_ip()));
    let before = setup.origin.seen().len();
    for (host, path) in [(APP, "/private"), (ADMIN, "/"), (OTHER, "/")] {
        let reply = anonymous.get(host, path).await;
        assert!(
            matches!(reply.status, 302 | 403),
            "A: {host}{path} anonymous after broken files: {}",
            reply.summary()
        );
    }
    assert_eq!(
        setup.origin.seen().len(),
        before,
        "nothing reached the origin"
    );
    // The users last read still hold: a wrong password fails, a disabled user stays out.
    let carol = setup::sign_in(&setup.agent(), APP, "/private", "carol", "carol-password").await;
    assert_eq!(carol.status, 401, "{}", carol.summary());
    let wrong = setup::sign_in(&setup.agent(), APP, "/private", "alice", "wrong").await;
    assert_eq!(wrong.status, 401, "{}", wrong.summary());
    // ...and so does the policy last read: alice's session still opens only what it did.
    assert_eq!(alice.get(APP, "/private").await.status, 200);
    assert_eq!(alice.get(OTHER, "/").await.status, 403);
}
