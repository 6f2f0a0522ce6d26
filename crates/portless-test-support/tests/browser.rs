//! The portal in a real browser: Debian's chromium, driven headless by Playwright
//! (`tests-browser/*.mjs`, `playwright-core` only), against an in-process edge with access
//! and an origin that shows the identity it received.
//!
//! Each test starts the edge, runs one flow script with `node`, and asserts on both what the
//! user saw (the script's JSON: page titles, headings, texts) and what the origin received
//! (identity headers, the edge's assertion). Screenshots are kept under
//! `<target>/test-artifacts/browser/<flow>/`.
//!
//! The browser trusts the edge's CA through a fresh NSS database (`certutil`), so TLS is
//! verified as for a person who trusted the local CA; nothing is ignored.
//!
//! Needs `/usr/bin/chromium` (or `PORTLESS_CHROMIUM`), `node`, `certutil` and
//! `tests-browser/node_modules` (`npm ci --prefix tests-browser`). Without them the tests
//! print why and pass, unless `PORTLESS_REQUIRE_BROWSER=1` (CI), where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portless_access::assertion::AssertionVerifier;
use portless_connector::{ConnectorHandle, ProtocolChoice};
use portless_test_support::access::{ALICE_PASSWORD, AccessFixture, BOB_PASSWORD, PORTAL};
use portless_test_support::{EdgeSetup, TestEdge, init_test_logging};
use serde_json::Value;
use tokio::net::TcpListener;

const APP: &str = "app.example.test";
const GIT: &str = "git.example.test";
const ADMIN: &str = "admin.example.test";

/// An origin that answers every request with a page showing the identity headers it got,
/// and records those headers.
struct IdentityOrigin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl IdentityOrigin {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let record = record.clone();
                        async move { Ok::<_, Infallible>(identity_page(&request, &record)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen }
    }

    /// The page loads (`Sec-Fetch-Dest: document`, not the favicon) seen for `host`.
    fn navigations_to(&self, host: &str) -> Vec<HeaderMap> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, headers)| {
                h == host
                    && headers
                        .get("sec-fetch-dest")
                        .is_some_and(|d| d == "document")
            })
            .map(|(_, headers)| headers.clone())
            .collect()
    }
}

fn identity_page(
    request: &Request<Incoming>,
    record: &Mutex<Vec<(String, HeaderMap)>>,
) -> Response<Full<Bytes>> {
    let headers = request.headers();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_owned();
    record.lock().unwrap().push((host.clone(), headers.clone()));
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)")
            .replace('&', "&amp;")
            .replace('<', "&lt;")
    };
    let jwt = if headers.contains_key("cf-access-jwt-assertion") {
        "present"
    } else {
        "absent"
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo app {host}</title></head>\
<body><h1>Hello from {host}</h1><dl>\
<dt>Remote-User</dt><dd id=\"remote-user\">{user}</dd>\
<dt>Remote-Name</dt><dd id=\"remote-name\">{name}</dd>\
<dt>Remote-Email</dt><dd id=\"remote-email\">{email}</dd>\
<dt>Remote-Groups</dt><dd id=\"remote-groups\">{groups}</dd>\
<dt>Assertion (Cf-Access-Jwt-Assertion)</dt><dd id=\"jwt\">{jwt}</dd>\
<dt>Path</dt><dd>{path}</dd></dl></body></html>",
        user = get("remote-user"),
        name = get("remote-name"),
        email = get("remote-email"),
        groups = get("remote-groups"),
        path = request.uri().path().replace('<', "&lt;"),
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The edge with the seed access rules, every test host routed to an [`IdentityOrigin`].
struct Setup {
    edge: TestEdge,
    origin: IdentityOrigin,
    _connector: ConnectorHandle,
    _fixture: Arc<AccessFixture>,
    /// The CA certificate, as PEM, for the browser's NSS database.
    ca_pem: tempfile::NamedTempFile,
}

impl Setup {
    async fn start() -> Self {
        Self::start_with(AccessFixture::seed(), &[APP, GIT, ADMIN]).await
    }

    /// The edge with `fixture`'s configuration, `hosts` routed to the identity origin.
    async fn start_with(fixture: AccessFixture, hosts: &[&str]) -> Self {
        init_test_logging();
        let fixture = Arc::new(fixture);
        let edge = TestEdge::start_with(EdgeSetup {
            access: Some(fixture.clone()),
            ..EdgeSetup::default()
        })
        .await;
        let origin = IdentityOrigin::start().await;
        let tunnel = edge.add_tunnel("apps", hosts).await;
        let connector = edge
            .connect(
                edge.connector_options(&tunnel, ProtocolChoice::Quic),
                &format!("ingress:\n  - service: http://{}\n", origin.addr),
            )
            .await;
        let ca_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_pem.path(), edge.ca.cert_pem()).unwrap();
        Self {
            edge,
            origin,
            _connector: connector,
            _fixture: fixture,
            ca_pem,
        }
    }

    fn url(&self, host: &str, path: &str) -> String {
        self.edge.client(false).url(host, path)
    }

    /// Runs `tests-browser/<flow>.mjs` with the common variables plus `vars`; its JSON.
    async fn run_flow(&self, browser: &BrowserTools, flow: &str, vars: &[(&str, String)]) -> Value {
        let screenshots = artifacts_dir().join(flow);
        let _ = std::fs::remove_dir_all(&screenshots);
        let mut command = Command::new(&browser.node);
        command
            .current_dir(repo_root())
            .arg(format!("tests-browser/{flow}.mjs"))
            .env("PORTLESS_CHROMIUM", &browser.chromium)
            .env("PORTLESS_CA_PEM", self.ca_pem.path())
            .env("PORTLESS_SCREENSHOTS", &screenshots)
            .env("PORTLESS_PORTAL_URL", self.url(PORTAL, ""));
        for (name, value) in vars {
            command.env(name, value);
        }
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("{flow}: {:.1} s\n{stderr}", started.elapsed().as_secs_f64());
        let result: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{flow} printed no JSON ({e}): {stdout}\n{stderr}"));
        assert!(
            output.status.success() && result.get("error").is_none(),
            "{flow} failed: {}\nsteps so far: {:#}",
            result["error"].as_str().unwrap_or("(no error text)"),
            result["steps"]
        );
        result
    }
}

/// What the flows need on this machine.
struct BrowserTools {
    node: PathBuf,
    chromium: PathBuf,
}

/// The tools, or `None` (after printing why) when one is missing and CI does not require them.
fn browser_tools() -> Option<BrowserTools> {
    let chromium = std::env::var_os("PORTLESS_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let node = find_in_path("node");
    let certutil = find_in_path("certutil");
    let modules = repo_root().join("tests-browser/node_modules/playwright-core");
    let missing = if !chromium.exists() {
        Some(format!(
            "no chromium at {} (apt-get install -y chromium)",
            chromium.display()
        ))
    } else if node.is_none() {
        Some("no node on PATH".to_owned())
    } else if certutil.is_none() {
        Some("no certutil on PATH (apt-get install -y libnss3-tools)".to_owned())
    } else if !modules.exists() {
        Some(format!(
            "no {} (npm ci --prefix tests-browser)",
            modules.display()
        ))
    } else {
        None
    };
    match missing {
        None => Some(BrowserTools {
            node: node.unwrap(),
            chromium,
        }),
        Some(reason) if std::env::var("PORTLESS_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("browser tests required (PORTLESS_REQUIRE_BROWSER=1) but {reason}")
        }
        Some(reason) => {
            eprintln!("skipping browser test: {reason}");
            None
        }
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/test-artifacts/browser`.
fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts/browser")
}

/// The headings the user saw, in order.
fn headings(result: &Value) -> Vec<&str> {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["heading"].as_str().unwrap())
        .collect()
}

fn step<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {result:#}"))
}

/// Prints the screenshots (for people and CI logs) and checks they were written.
fn report_screenshots(result: &Value) {
    for s in result["steps"].as_array().unwrap() {
        let path = s["screenshot"].as_str().unwrap();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {path} written");
        println!("screenshot: {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_totp_in_a_browser_reach_a_two_factor_app_with_the_identity() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let setup = Setup::start().await;
    let result = setup
        .run_flow(
            &tools,
            "login-totp",
            &[
                ("PORTLESS_APP_URL", setup.url(GIT, "/repo?tab=code")),
                ("PORTLESS_USER", "alice".to_owned()),
                ("PORTLESS_PASSWORD", ALICE_PASSWORD.to_owned()),
            ],
        )
        .await;
    report_screenshots(&result);
    assert_eq!(
        headings(&result),
        [
            "Sign in",
            "Two-step verification needed",
            "Confirm it is you",
            "Set up two-step verification",
            "Two-step verification is on",
            "Two-step verification",
            "Hello from git.example.test",
        ],
        "{result:#}"
    );
    assert_eq!(step(&result, "sign-in")["title"], "Sign in · Portless");
    assert!(
        step(&result, "totp")["text"]
            .as_str()
            .unwrap()
            .contains("Signed in as alice"),
        "{result:#}"
    );
    let app = step(&result, "app");
    assert_eq!(
        app["url"],
        setup.url(GIT, "/repo?tab=code"),
        "back where the user started"
    );
    let text = app["text"].as_str().unwrap();
    assert!(text.contains("Remote-User\nalice"), "{text}");
    assert!(text.contains("Remote-Name\nAlice Doe"), "{text}");
    assert!(text.contains("Cf-Access-Jwt-Assertion)\npresent"), "{text}");
    // The edge's cookies are host-only, Secure and HttpOnly in the real browser too.
    for cookie in result["cookies"].as_array().unwrap() {
        assert_eq!(cookie["secure"], true, "{cookie}");
        assert_eq!(cookie["httpOnly"], true, "{cookie}");
    }

    // What the origin received: only admitted requests, with the identity and an assertion
    // that verifies for this application.
    let seen = setup.origin.navigations_to(GIT);
    assert_eq!(
        seen.len(),
        1,
        "only the two-factor request reached git: {seen:?}"
    );
    let headers = &seen[0];
    assert_eq!(headers["remote-user"], "alice");
    assert_eq!(headers["remote-groups"], "admins,dev");
    assert!(
        headers
            .get_all("cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().contains("portless")),
        "the edge's cookies never reach the origin: {headers:?}"
    );
    let token = headers["cf-access-jwt-assertion"].to_str().unwrap();
    let (status, _, jwks) = setup
        .edge
        .client(false)
        .get(GIT, "/cdn-cgi/access/certs")
        .await;
    assert_eq!(status, StatusCode::OK);
    let verifier = AssertionVerifier::from_jwks_json(std::str::from_utf8(&jwks).unwrap()).unwrap();
    let issuer = format!(
        "https://{PORTAL}:{}",
        setup.edge.handle.public_addr().port()
    );
    let claims = verifier
        .verify(token, &issuer, &[GIT.to_owned()], SystemTime::now())
        .unwrap();
    assert_eq!(claims.sub, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_in_a_browser_ends_the_session_on_the_app() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let setup = Setup::start().await;
    let result = setup
        .run_flow(
            &tools,
            "logout",
            &[
                ("PORTLESS_APP_URL", setup.url(APP, "/")),
                ("PORTLESS_USER", "alice".to_owned()),
                ("PORTLESS_PASSWORD", ALICE_PASSWORD.to_owned()),
            ],
        )
        .await;
    report_screenshots(&result);
    assert_eq!(
        headings(&result),
        [
            "Hello from app.example.test",
            "Sign out",
            "Signed out",
            "Sign in"
        ],
        "{result:#}"
    );
    assert!(
        step(&result, "sign-in-again")["url"]
            .as_str()
            .unwrap()
            .contains(&format!("{PORTAL}:")),
        "the app sends the user to the portal again: {result:#}"
    );
    let seen = setup.origin.navigations_to(APP);
    assert_eq!(seen.len(), 1, "the origin saw only the signed-in visit");
    assert_eq!(seen[0]["remote-user"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_outside_the_group_sees_access_denied_with_a_request_id() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let setup = Setup::start().await;
    let result = setup
        .run_flow(
            &tools,
            "denied",
            &[
                ("PORTLESS_APP_URL", setup.url(ADMIN, "/")),
                ("PORTLESS_USER", "bob".to_owned()),
                ("PORTLESS_PASSWORD", BOB_PASSWORD.to_owned()),
            ],
        )
        .await;
    report_screenshots(&result);
    assert_eq!(
        headings(&result),
        ["Access denied", "Sign in"],
        "{result:#}"
    );
    let denied = step(&result, "denied");
    assert_eq!(denied["title"], "Access denied · Portless");
    let text = denied["text"].as_str().unwrap();
    assert!(text.contains("signed in as bob"), "{text}");
    let request_id = result["requestId"].as_str().unwrap();
    assert!(
        request_id.len() >= 8 && text.contains(request_id),
        "a request id is shown: {text}"
    );
    assert!(
        setup.origin.navigations_to(ADMIN).is_empty(),
        "nothing reached the admin origin"
    );
    // "Sign in with another account" signed out and asks again for the same application.
    let again = step(&result, "switch-account");
    assert!(
        again["text"]
            .as_str()
            .unwrap()
            .contains("to continue to admin.example.test"),
        "{again:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_fit_a_phone_and_a_desktop_without_inline_code() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let setup = Setup::start().await;
    let result = setup
        .run_flow(
            &tools,
            "pages",
            &[
                ("PORTLESS_APP_URL", setup.url(ADMIN, "/")),
                ("PORTLESS_USER", "bob".to_owned()),
                ("PORTLESS_PASSWORD", BOB_PASSWORD.to_owned()),
            ],
        )
        .await;
    report_screenshots(&result);
    assert_eq!(
        headings(&result),
        [
            "Sign in",
            "Sign in",
            "Sign in",
            "Access denied",
            "Access denied",
            "Sign in"
        ],
        "{result:#}"
    );
    // Chromium reports every CSP violation (an inline script or style) on the console.
    assert_eq!(
        result["consoleErrors"],
        serde_json::json!([]),
        "console errors"
    );
    for s in result["steps"].as_array().unwrap() {
        assert_eq!(s["problems"], serde_json::json!([]), "{}: {s:#}", s["name"]);
        assert!(
            s["text"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Portless\n{PORTAL}")),
            "the header names the portal: {s:#}"
        );
    }
    let sign_in = step(&result, "sign-in-phone");
    assert_eq!(sign_in["title"], "Sign in · Portless");
    assert!(
        sign_in["text"]
            .as_str()
            .unwrap()
            .contains("to continue to admin.example.test"),
        "{sign_in:#}"
    );
    assert_eq!(
        result["buttonBackground"], "rgb(35, 80, 196)",
        "the stylesheet applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_register_sign_in_without_a_password_and_stop_working_once_removed() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let setup = Setup::start().await;
    let result = setup
        .run_flow(
            &tools,
            "passkey",
            &[
                ("PORTLESS_APP_URL", setup.url(GIT, "/repo")),
                ("PORTLESS_USER", "alice".to_owned()),
                ("PORTLESS_PASSWORD", ALICE_PASSWORD.to_owned()),
            ],
        )
        .await;
    report_screenshots(&result);
    assert_eq!(
        headings(&result),
        [
            "Sign in",
            "Confirm it is you",
            "Sign-in methods",
            "Sign-in methods",
            "Signed out",
            "Two-step verification",
            "Hello from git.example.test",
            "Signed out",
            "Sign in",
            "Hello from git.example.test",
            "Signed out",
            "Sign in",
            "Hello from git.example.test",
            "Confirm it is you",
            "Sign-in methods",
            "Signed out",
            "Sign in",
        ],
        "{result:#}"
    );
    let settings = step(&result, "settings")["text"].as_str().unwrap();
    assert!(settings.contains("No passkeys yet."), "{settings}");
    let registered = step(&result, "registered")["text"].as_str().unwrap();
    assert!(registered.contains("Laptop"), "{registered}");
    assert!(registered.contains("last used never"), "{registered}");
    // The authenticator holds a discoverable credential for the portal's host.
    assert_eq!(
        result["credentials"].as_array().unwrap().len(),
        1,
        "{result:#}"
    );
    assert_eq!(result["credentials"][0]["rpId"], PORTAL);
    assert_eq!(result["credentials"][0]["resident"], true);

    // Password + passkey: the passkey is offered where the code would be.
    let second = step(&result, "second-factor")["text"].as_str().unwrap();
    assert!(second.contains("Use your passkey"), "{second}");
    assert!(
        step(&result, "app-second-factor")["text"]
            .as_str()
            .unwrap()
            .contains("Remote-User\nalice")
    );

    // Passwordless, user-verified: two factors, so the two-factor app opens at once.
    let app = step(&result, "app");
    assert_eq!(app["url"], setup.url(GIT, "/repo"));
    let text = app["text"].as_str().unwrap();
    assert!(text.contains("Remote-User\nalice"), "{text}");
    assert!(text.contains("Cf-Access-Jwt-Assertion)\npresent"), "{text}");
    let seen = setup.origin.navigations_to(GIT);
    assert_eq!(
        seen.len(),
        3,
        "second factor, passwordless, after the clone: {seen:?}"
    );
    assert!(seen.iter().all(|h| h["remote-user"] == "alice"));
    let token = seen[1]["cf-access-jwt-assertion"].to_str().unwrap();
    let (_, _, jwks) = setup
        .edge
        .client(false)
        .get(GIT, "/cdn-cgi/access/certs")
        .await;
    let verifier = AssertionVerifier::from_jwks_json(std::str::from_utf8(&jwks).unwrap()).unwrap();
    let issuer = format!(
        "https://{PORTAL}:{}",
        setup.edge.handle.public_addr().port()
    );
    let claims = verifier
        .verify(token, &issuer, &[GIT.to_owned()], SystemTime::now())
        .unwrap();
    assert_eq!(claims.sub, "alice");

    // Removed: listed no more, and the authenticator's copy is refused.
    let removed = step(&result, "removed")["text"].as_str().unwrap();
    assert!(removed.contains("No passkeys yet."), "{removed}");
    assert!(
        result["refusal"]
            .as_str()
            .unwrap()
            .contains("not registered here"),
        "{result:#}"
    );
    // A counter that went back (a cloned authenticator) is refused and reported.
    assert!(
        result["cloneRefusal"]
            .as_str()
            .unwrap()
            .contains("may have been copied"),
        "{result:#}"
    );
    assert!(
        result["counterBeforeClone"].as_u64().unwrap() > 0,
        "{result:#}"
    );
    assert_eq!(
        setup.origin.navigations_to(GIT).len(),
        3,
        "nothing more reached the app"
    );
    // Every step was audited.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = setup.edge.store.recent_audit_events(200).await.unwrap();
        let has = |what: &str, outcome: &str| {
            events
                .iter()
                .any(|e| e.event.what == what && e.event.result == outcome)
        };
        if has("login:passkey_registration", "success")
            && has("login:passkey_login", "success")
            && has("login:passkey_removal", "success")
            && has("login:passkey_login", "failure")
            && has("login:passkey", "success")
            && events.iter().any(|e| {
                e.event.what == "login:passkey_login"
                    && e.event.detail.as_deref() == Some("counter_regression")
                    && e.event.who.as_deref() == Some("alice")
            })
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "passkey steps audited: {events:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Rules for the sign-in methods beside the password: one app only the provider's accounts
/// may open, one for addresses at example.com (an emailed PIN).
const SIGN_IN_RULES: &str = r#"access_control:
  default_policy: deny
  rules:
    - domain: corp.example.test
      policy: one_factor
      subject: ["provider:testidp"]
    - domain: mail.example.test
      policy: one_factor
      subject: ["email_domain:example.com"]
"#;
const CORP: &str = "corp.example.test";
const MAIL: &str = "mail.example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_provider_login_in_a_browser_reaches_the_app_with_the_identity() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let config = serde_json::json!({
        "clients": [{
            "client_id": "portal", "client_secret": "portal-secret-0123456789",
            "redirect_uris": [format!("https://{PORTAL}/oidc/testidp/callback")],
        }],
        "accounts": {
            "alice": {"email": "alice@example.com", "email_verified": true,
                      "name": "Alice from the IdP", "groups": ["staff"]},
        },
        "redirect_any_port": true,
    });
    let Some(idp) = portless_test_support::peers::OidcPeer::start_https(&config.to_string()) else {
        return;
    };
    let idp_ca = idp.ca_file.clone().unwrap();
    let backend = format!(
        "  oidc:\n    - name: testidp\n      display_name: Test IdP\n      issuer: {}\n      client_id: portal\n      client_secret: portal-secret-0123456789\n      scopes: [openid, email, profile, groups]\n      ca_file: {}\n",
        idp.issuer,
        idp_ca.display()
    );
    let fixture = AccessFixture::with_rules(SIGN_IN_RULES).with_sign_in(&backend, "");
    let setup = Setup::start_with(fixture, &[CORP, MAIL]).await;
    let result = setup
        .run_flow(
            &tools,
            "oidc",
            &[
                ("PORTLESS_APP_URL", setup.url(CORP, "/docs")),
                ("PORTLESS_PROVIDER", "testidp".to_owned()),
                ("PORTLESS_ACCOUNT", "alice".to_owned()),
                ("PORTLESS_EXTRA_CA_PEM", idp_ca.display().to_string()),
            ],
        )
        .await;
    report_screenshots(&result);
    assert_eq!(
        headings(&result),
        ["Sign in", "Test IdP", "Hello from corp.example.test"],
        "{result:#}"
    );
    assert_eq!(
        result["passwordField"], false,
        "only the provider is offered"
    );
    assert_eq!(result["providerButton"], "Continue with Test IdP");
    let app = step(&result, "app");
    assert_eq!(
        app["url"],
        setup.url(CORP, "/docs"),
        "back where the user started"
    );
    let text = app["text"].as_str().unwrap();
    assert!(text.contains("Remote-User\nalice@example.com"), "{text}");
    assert!(text.contains("Remote-Name\nAlice from the IdP"), "{text}");
    let seen = setup.origin.navigations_to(CORP);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["remote-groups"], "staff");
    assert!(seen[0].contains_key("cf-access-jwt-assertion"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emailed_pin_in_a_browser_reaches_the_app_with_the_address() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let Some(sink) = portless_test_support::peers::SmtpSink::start() else {
        return;
    };
    let tls = format!("    ca_file: {}\n", sink.dir().join("ca.pem").display());
    let notifier: String = sink
        .notifier_yaml(&tls, sink.dir())
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    let fixture = AccessFixture::with_rules(SIGN_IN_RULES).with_sign_in(
        "  email_pin:\n    enabled: true\n",
        &format!("notifier:\n{notifier}"),
    );
    let setup = Setup::start_with(fixture, &[CORP, MAIL]).await;
    let result = setup
        .run_flow(
            &tools,
            "pin",
            &[
                ("PORTLESS_APP_URL", setup.url(MAIL, "/inbox")),
                ("PORTLESS_EMAIL", "Carol@Example.com".to_owned()),
                ("PORTLESS_MAIL_DIR", sink.mail_dir().display().to_string()),
            ],
        )
        .await;
    report_screenshots(&result);
    let headings = headings(&result);
    assert_eq!(headings.len(), 3, "{result:#}");
    assert_eq!(headings[2], "Hello from mail.example.test", "{result:#}");
    let sent = step(&result, "code-sent")["text"].as_str().unwrap();
    assert!(
        sent.contains("carol@example.com") && sent.contains("10 minutes"),
        "{sent}"
    );
    let text = step(&result, "app")["text"].as_str().unwrap();
    assert!(text.contains("Remote-User\ncarol@example.com"), "{text}");
    assert_eq!(sink.mails().len(), 1);
}
