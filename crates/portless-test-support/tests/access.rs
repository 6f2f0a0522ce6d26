//! Access at the edge, end to end with a cookie-keeping client: anonymous → portal →
//! password → TOTP → back at the application with identity headers and an assertion that
//! verifies against the JWKS; logout; expiry; cookies replayed on another application; service
//! tokens; bans; and the connector refusing requests without the edge's assertion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use portless_access::assertion::{AssertionVerifier, KeyRing};
use portless_access::service_token::ServiceTokens;
use portless_connector::ConnectorHandle;
use portless_test_support::access::{
    ALICE_PASSWORD, AccessEdge, AccessFixture, BOB_PASSWORD, PORTAL, now_step, totp_code,
};
use portless_test_support::{Browser, Page, ProbeOrigin, TestEdge};

const APP: &str = "app.example.test";
const GIT: &str = "git.example.test";
const ADMIN: &str = "admin.example.test";
const WWW: &str = "www.example.test";
const API: &str = "api.example.test";
/// Not named by any rule: the default policy (deny) applies.
const OTHER: &str = "other.example.test";

struct Setup {
    edge: TestEdge,
    origin: ProbeOrigin,
    _connector: ConnectorHandle,
    fixture: Arc<AccessFixture>,
}

impl Setup {
    async fn start(fixture: AccessFixture) -> Self {
        let started =
            AccessEdge::start(fixture, &[APP, GIT, ADMIN, WWW, API, OTHER], &[ADMIN, API]).await;
        Self {
            edge: started.edge,
            origin: started.origin,
            _connector: started.connector,
            fixture: started.fixture,
        }
    }

    fn browser(&self) -> Browser {
        Browser::new(self.edge.client(false))
    }

    fn url(&self, host: &str, path: &str) -> String {
        self.edge.client(false).url(host, path)
    }

    fn portal(&self, path: &str) -> String {
        self.url(PORTAL, path)
    }
}

/// The key shown on the enrolment page.
fn shown_key(page: &Page) -> String {
    let start = page.body.find("Key: <code>").expect("key on the page") + "Key: <code>".len();
    let end = page.body[start..].find("</code>").unwrap() + start;
    page.body[start..end].to_owned()
}

/// Opens `url` anonymously and signs in with a password, following the portal's redirects.
/// Returns the last page (the application's answer, or the portal's next step).
async fn sign_in(setup: &Setup, browser: &Browser, url: &str, user: &str, password: &str) -> Page {
    let first = browser.get(url).await;
    assert_eq!(first.status, StatusCode::FOUND, "{first:?}");
    let location = first.location().unwrap().to_owned();
    assert!(
        location.starts_with(&setup.portal("/?rd=")),
        "sent to the portal: {location}"
    );
    let login = browser.get(&location).await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    let csrf = login.input("csrf").expect("csrf field");
    let rd = login.input("rd").expect("rd field");
    let posted = browser
        .post_form(
            &setup.portal("/login"),
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("rd", &rd),
            ],
        )
        .await;
    let pages = browser.follow(posted, 6).await;
    pages.last().unwrap().clone()
}

#[tokio::test]
async fn password_login_reaches_the_app_with_identity_headers_and_a_verifiable_assertion() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let before = setup.origin.seen().len();
    let page = sign_in(
        &setup,
        &browser,
        &setup.url(APP, "/hello?x=1"),
        "Alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(
        page.url.ends_with("/hello?x=1"),
        "back where the user started: {}",
        page.url
    );
    let seen = setup.origin.seen();
    assert_eq!(
        seen.len(),
        before + 1,
        "the origin saw only the admitted request"
    );
    let headers = &seen.last().unwrap().headers;
    assert_eq!(headers["remote-user"], "alice");
    assert_eq!(headers["remote-groups"], "admins,dev");
    assert_eq!(headers["remote-name"], "Alice Doe");
    assert_eq!(headers["remote-email"], "alice@example.test");
    assert!(
        headers
            .get_all("cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().contains("portless")),
        "the edge's cookies never reach the origin: {headers:?}"
    );
    let token = headers["cf-access-jwt-assertion"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(headers["portless-jwt-assertion"], token.as_str());

    // The assertion verifies against the JWKS the edge publishes, for this application only.
    let jwks = browser.get(&setup.url(APP, "/cdn-cgi/access/certs")).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let verifier = AssertionVerifier::from_jwks_json(&jwks.body).unwrap();
    let issuer = format!(
        "https://{PORTAL}:{}",
        setup.edge.handle.public_addr().port()
    );
    let claims = verifier
        .verify(&token, &issuer, &[APP.to_owned()], SystemTime::now())
        .unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.test"));
    assert!(claims.exp - claims.iat <= 300);
    assert!(
        verifier
            .verify(&token, &issuer, &[GIT.to_owned()], SystemTime::now())
            .is_err(),
        "an assertion for one application is refused by another"
    );
    let well_known = browser.get(&setup.portal("/.well-known/jwks.json")).await;
    assert_eq!(well_known.body, jwks.body);

    // A second request rides the application session: no portal.
    let again = browser.get(&setup.url(APP, "/again")).await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_the_portal_and_scripts_get_401() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let before = setup.origin.seen().len();
    let page = browser.get(&setup.url(APP, "/private")).await;
    assert_eq!(page.status, StatusCode::FOUND);
    let xhr = browser
        .send(
            "GET",
            &setup.url(APP, "/api"),
            None,
            &[("x-requested-with", "XMLHttpRequest")],
        )
        .await;
    assert_eq!(xhr.status, StatusCode::UNAUTHORIZED);
    let post = browser
        .send("POST", &setup.url(APP, "/form"), Some(String::new()), &[])
        .await;
    assert_eq!(post.status, StatusCode::SEE_OTHER, "303 after a POST");
    let ws = browser
        .send(
            "GET",
            &setup.url(APP, "/ws"),
            None,
            &[("connection", "upgrade"), ("upgrade", "websocket")],
        )
        .await;
    assert_ne!(
        ws.status,
        StatusCode::SWITCHING_PROTOCOLS,
        "no upgrade without a session"
    );
    // The bypass host is public; the unnamed host falls to the default policy.
    assert_eq!(
        browser.get(&setup.url(WWW, "/")).await.status,
        StatusCode::OK
    );
    let other = browser.get(&setup.url(OTHER, "/")).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(other.headers["portless-error"], "access_denied");
    assert!(other.body.contains("request id") || other.body.contains("Request id"));
    assert_eq!(
        setup.origin.seen().len(),
        before + 1,
        "only the bypass request reached the origin"
    );
}

#[tokio::test]
async fn two_factor_apps_need_totp_and_a_code_is_accepted_once() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let page = sign_in(
        &setup,
        &browser,
        &setup.url(GIT, "/repo"),
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "no second factor yet: {page:?}"
    );
    assert!(page.body.contains("Two-step verification needed"));

    // Enrolment needs the password again.
    let reauth = browser.get(&setup.portal("/settings/totp")).await;
    assert!(reauth.body.contains("Confirm it is you"), "{reauth:?}");
    let csrf = reauth.input("csrf").unwrap();
    let wrong = browser
        .post_form(
            &setup.portal("/settings/reauth"),
            &[("password", "nope"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let posted = browser
        .post_form(
            &setup.portal("/settings/reauth"),
            &[("password", ALICE_PASSWORD), ("csrf", &csrf)],
        )
        .await;
    let enrol = browser.follow(posted, 2).await.pop().unwrap();
    assert!(
        enrol.body.contains("Set up two-step verification"),
        "{enrol:?}"
    );
    let key = shown_key(&enrol);
    let step = now_step();
    let done = browser
        .post_form(
            &setup.portal("/settings/totp"),
            &[
                ("code", &totp_code(&key, step)),
                ("pending", &enrol.input("pending").unwrap()),
                ("csrf", &enrol.input("csrf").unwrap()),
            ],
        )
        .await;
    assert!(
        done.body.contains("Two-step verification is on"),
        "{done:?}"
    );
    // Confirming proved the factor: this session is two-factor now.
    let git = browser.get(&setup.url(GIT, "/repo")).await;
    let pages = browser.follow(git, 4).await;
    assert_eq!(pages.last().unwrap().status, StatusCode::OK, "{pages:?}");

    // A new browser: password, then the TOTP page; the enrolment's code is spent already.
    let fresh = setup.browser();
    let totp = sign_in(
        &setup,
        &fresh,
        &setup.url(GIT, "/repo"),
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert!(totp.body.contains("Two-step verification"), "{totp:?}");
    let csrf = totp.input("csrf").unwrap();
    let rd = totp.input("rd").unwrap();
    let replay = fresh
        .post_form(
            &setup.portal("/2fa/totp"),
            &[
                ("code", &totp_code(&key, step)),
                ("csrf", &csrf),
                ("rd", &rd),
            ],
        )
        .await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "a code is accepted once"
    );
    let next = totp_code(&key, step + 1);
    let ok = fresh
        .post_form(
            &setup.portal("/2fa/totp"),
            &[("code", &next), ("csrf", &csrf), ("rd", &rd)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    let pages = fresh.follow(ok, 5).await;
    assert_eq!(pages.last().unwrap().status, StatusCode::OK, "{pages:?}");
    assert_eq!(setup.origin.last().headers["remote-user"], "alice");

    // admin: two factors AND group admins. Bob (dev) is refused even before a factor.
    let bob = setup.browser();
    let denied = sign_in(&setup, &bob, &setup.url(ADMIN, "/"), "bob", BOB_PASSWORD).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");
    assert!(denied.body.contains("Access denied"));
    // Alice's two-factor session opens admin; the connector verified the edge's assertion.
    let admin = fresh.get(&setup.url(ADMIN, "/")).await;
    let pages = fresh.follow(admin, 4).await;
    assert_eq!(pages.last().unwrap().status, StatusCode::OK, "{pages:?}");
}

#[tokio::test]
async fn a_cookie_for_one_app_is_useless_on_another_and_logout_revokes_it() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let page = sign_in(
        &setup,
        &browser,
        &setup.url(APP, "/"),
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let cookie = browser.cookies(APP)["__Host-portless-app"].clone();

    // Replayed on another application host: not a session there.
    let thief = setup.browser();
    thief.set_cookie(WWW, "__Host-portless-app", &cookie);
    thief.set_cookie(GIT, "__Host-portless-app", &cookie);
    let before = setup.origin.seen().len();
    assert_eq!(
        thief.get(&setup.url(GIT, "/")).await.status,
        StatusCode::FOUND
    );
    // The same cookie on its own host works from any client (it is a bearer secret)...
    thief.set_cookie(APP, "__Host-portless-app", &cookie);
    assert_eq!(thief.get(&setup.url(APP, "/")).await.status, StatusCode::OK);
    assert_eq!(setup.origin.seen().len(), before + 1);

    // ...until the user signs out: logout is a form with a CSRF token, and revokes server-side.
    let confirm = browser.get(&setup.portal("/logout")).await;
    let csrf = confirm.input("csrf").unwrap();
    let forged = browser
        .post_form(&setup.portal("/logout"), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "CSRF token checked");
    assert!(
        forged.headers.get("set-cookie").is_none(),
        "and the session left alone"
    );
    let out = browser
        .post_form(&setup.portal("/logout"), &[("csrf", &csrf)])
        .await;
    assert!(out.body.contains("signed out"), "{out:?}");
    assert_eq!(
        thief.get(&setup.url(APP, "/")).await.status,
        StatusCode::FOUND
    );
    assert_eq!(
        browser.get(&setup.url(APP, "/")).await.status,
        StatusCode::FOUND
    );
}

#[tokio::test]
async fn a_session_ends_after_its_inactivity_limit() {
    let mut fixture = AccessFixture::seed();
    fixture.session_times = ("2s".to_owned(), "1h".to_owned());
    let setup = Setup::start(fixture).await;
    let browser = setup.browser();
    let page = sign_in(
        &setup,
        &browser,
        &setup.url(APP, "/"),
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        browser.get(&setup.url(APP, "/")).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        browser.get(&setup.url(APP, "/")).await.status,
        StatusCode::FOUND
    );
}

#[tokio::test]
async fn service_tokens_are_admitted_only_where_a_rule_names_them() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let tokens = ServiceTokens::new(setup.edge.store.clone());
    let (info, secret) = tokens
        .create("ci-bot", None, SystemTime::now())
        .await
        .unwrap();
    let (_, other_secret) = tokens
        .create("other-bot", None, SystemTime::now())
        .await
        .unwrap();
    let client = setup.browser();
    let headers = [
        ("cf-access-client-id", info.client_id.as_str()),
        ("cf-access-client-secret", secret.expose()),
    ];
    let ok = client
        .send("GET", &setup.url(API, "/v1"), None, &headers)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    let seen = setup.origin.last();
    assert_eq!(seen.headers["remote-user"], info.client_id.as_str());
    assert!(
        seen.headers.get("cf-access-client-secret").is_none(),
        "the secret stays at the edge"
    );
    // The same token where no rule names it, a wrong secret, only half of the pair.
    let elsewhere = client
        .send("GET", &setup.url(APP, "/"), None, &headers)
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let wrong = client
        .send(
            "GET",
            &setup.url(API, "/v1"),
            None,
            &[
                ("cf-access-client-id", info.client_id.as_str()),
                ("cf-access-client-secret", other_secret.expose()),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let half = client
        .send(
            "GET",
            &setup.url(API, "/v1"),
            None,
            &[("cf-access-client-id", info.client_id.as_str())],
        )
        .await;
    assert_eq!(half.status, StatusCode::BAD_REQUEST);
    // No token at all: a person would be sent to log in.
    assert_eq!(
        client.get(&setup.url(API, "/v1")).await.status,
        StatusCode::FOUND
    );
}

#[tokio::test]
async fn a_banned_user_is_refused_silently_even_with_the_right_password() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let first = browser.get(&setup.url(APP, "/")).await;
    let login = browser.get(first.location().unwrap()).await;
    let csrf = login.input("csrf").unwrap();
    let rd = login.input("rd").unwrap();
    // Three failures under three spellings of one person: one counter.
    for name in ["bob", "BOB", "bob@example.test"] {
        let page = browser
            .post_form(
                &setup.portal("/login"),
                &[
                    ("username", name),
                    ("password", "wrong"),
                    ("csrf", &csrf),
                    ("rd", &rd),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.body.contains("Incorrect username or password."));
    }
    let banned = browser
        .post_form(
            &setup.portal("/login"),
            &[
                ("username", "bob"),
                ("password", BOB_PASSWORD),
                ("csrf", &csrf),
                ("rd", &rd),
            ],
        )
        .await;
    assert_eq!(banned.status, StatusCode::UNAUTHORIZED, "{banned:?}");
    assert!(
        banned.body.contains("Incorrect username or password."),
        "the ban is silent"
    );
    // A disabled user is refused the same way.
    let carol = setup.browser();
    let page = sign_in(
        &setup,
        &carol,
        &setup.url(APP, "/"),
        "carol",
        "carol-password",
    )
    .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let _ = &setup.fixture;
}

#[tokio::test]
async fn redirect_targets_outside_the_configured_domains_are_refused() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let port = setup.edge.handle.public_addr().port();
    for rd in [
        "https://evil.test/".to_owned(),
        format!("https://{APP}:{port}@evil.test/"),
        format!("http://{APP}:{port}/"),
        "//evil.test/".to_owned(),
        "/\\evil.test".to_owned(),
        "javascript:alert(1)".to_owned(),
        format!("https://{APP}.evil.test:{port}/"),
    ] {
        let url = format!(
            "{}?rd={}",
            setup.portal("/"),
            portless_test_support::form_body(&[("x", &rd)]).trim_start_matches("x=")
        );
        let page = browser.get(&url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "rd={rd}: {page:?}");
    }
}

#[tokio::test]
async fn assertion_keys_rotate_without_a_refused_request() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let tokens = ServiceTokens::new(setup.edge.store.clone());
    let (info, secret) = tokens
        .create("ci-bot", None, SystemTime::now())
        .await
        .unwrap();
    let client = setup.browser();
    let headers = [
        ("cf-access-client-id", info.client_id.as_str()),
        ("cf-access-client-secret", secret.expose()),
    ];
    // The connector verifies the edge's assertion on this host (originRequest.access).
    assert_eq!(
        client
            .send("GET", &setup.url(API, "/"), None, &headers)
            .await
            .status,
        StatusCode::OK
    );
    let certs = |client: Browser| {
        let url = setup.url(API, "/cdn-cgi/access/certs");
        async move {
            AssertionVerifier::from_jwks_json(&client.get(&url).await.body)
                .unwrap()
                .kids()
        }
    };
    let before = certs(client.clone()).await;
    assert_eq!(before.len(), 1);

    // Another edge sharing the store rotates (a day later on its clock); this edge adopts
    // the new key from the store and publishes it to its connectors, while requests go on.
    let day = Duration::from_secs(24 * 3600);
    let other = KeyRing::load_or_create(
        &setup.edge.store,
        SystemTime::now(),
        day,
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    assert!(
        other
            .rotate_if_due(&setup.edge.store, SystemTime::now() + day)
            .await
            .unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = client
            .send("GET", &setup.url(API, "/"), None, &headers)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "no request refused during a rotation: {answer:?}"
        );
        let kids = certs(client.clone()).await;
        if kids.len() == 2 {
            assert!(
                kids.contains(&before[0]),
                "the previous key stays published: {kids:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not adopted: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        let answer = client
            .send("GET", &setup.url(API, "/"), None, &headers)
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn decisions_and_login_steps_are_audited_to_the_store_and_counted() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let page = sign_in(
        &setup,
        &browser,
        &setup.url(APP, "/x"),
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        browser.get(&setup.url(OTHER, "/")).await.status,
        StatusCode::FORBIDDEN
    );
    // The writer flushes in batches: wait for the last event to land.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = setup.edge.store.recent_audit_events(100).await.unwrap();
        if events.iter().any(|e| e.event.what.contains(OTHER)) {
            break events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit events not written: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let find = |what: &str, result: &str| {
        events
            .iter()
            .find(|e| e.event.what.contains(what) && e.event.result == result)
            .unwrap_or_else(|| panic!("no {what} {result} in {events:?}"))
            .event
            .clone()
    };
    let anonymous = find(&format!("GET https://{APP}/x"), "login_required");
    assert_eq!(anonymous.who, None);
    assert_eq!(anonymous.client, "127.0.0.1");
    assert!(!anonymous.request_id.is_empty());
    let login = find("login:password", "success");
    assert_eq!(login.who.as_deref(), Some("alice"));
    let allowed = find(&format!("GET https://{APP}/x"), "allow");
    assert_eq!(allowed.who.as_deref(), Some("alice"));
    assert_eq!(allowed.rule.as_deref(), Some("rule #4"));
    let denied = find(OTHER, "deny");
    assert_eq!(denied.rule.as_deref(), Some("default_policy"));
    let metrics = setup.edge.metrics();
    assert!(
        metrics.contains("portless_access_decisions_total{result=\"allow\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portless_login_attempts_total{"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_policy_change_applies_to_the_next_request_and_a_broken_file_keeps_the_old_policy() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let port = setup.edge.handle.public_addr().port();
    let browser = setup.browser();
    assert_eq!(
        browser.get(&setup.url(OTHER, "/")).await.status,
        StatusCode::FORBIDDEN
    );
    let open_other = format!(
        "{}    - domain: {OTHER}\n      policy: bypass\n",
        portless_test_support::access::SEED_RULES
    );
    setup.fixture.write_config(port, &open_other);
    wait_for_status(&browser, &setup.url(OTHER, "/"), StatusCode::OK).await;
    // A broken file (a misspelt key in a rule) is refused; the last good policy stays.
    setup.fixture.write_config(
        port,
        &format!("{open_other}    - domain: x.example.test\n      polcy: bypass\n"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        browser.get(&setup.url(OTHER, "/")).await.status,
        StatusCode::OK
    );
    // Back to the seed rules: denied again, without a restart or a dropped connection.
    setup
        .fixture
        .write_config(port, portless_test_support::access::SEED_RULES);
    wait_for_status(&browser, &setup.url(OTHER, "/"), StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn a_user_disabled_in_the_users_file_loses_access_at_the_next_request() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let page = sign_in(&setup, &browser, &setup.url(APP, "/"), "bob", BOB_PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK);
    let users = std::fs::read_to_string(&setup.fixture.users).unwrap();
    let disabled = users.replace(
        "    groups: [dev]\n  carol:",
        "    groups: [dev]\n    disabled: true\n  carol:",
    );
    assert_ne!(users, disabled);
    std::fs::write(&setup.fixture.users, disabled).unwrap();
    wait_for_status(&browser, &setup.url(APP, "/"), StatusCode::FOUND).await;
    // Re-enabling the account does not bring the old session back (disable, change the
    // password, enable is how a compromised account is recovered).
    std::fs::write(&setup.fixture.users, &users).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        browser.get(&setup.url(APP, "/")).await.status,
        StatusCode::FOUND
    );
    // A password change ends sessions too.
    let fresh = setup.browser();
    let page = sign_in(&setup, &fresh, &setup.url(APP, "/"), "bob", BOB_PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK);
    let alice_hash = users
        .lines()
        .find(|l| l.contains("password:"))
        .unwrap()
        .to_owned();
    let mut lines: Vec<String> = users.lines().map(str::to_owned).collect();
    let bob_password = lines
        .iter()
        .position(|l| l.contains("password:") && *l != alice_hash)
        .unwrap();
    lines[bob_password] = alice_hash;
    std::fs::write(&setup.fixture.users, lines.join("\n") + "\n").unwrap();
    wait_for_status(&fresh, &setup.url(APP, "/"), StatusCode::FOUND).await;
}

/// Repeats a GET until it answers `want` (files are re-read every 100 ms in tests).
async fn wait_for_status(browser: &Browser, url: &str, want: StatusCode) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = browser.get(url).await;
        if page.status == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {} (not {want}): {page:?}",
            page.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cross_site_form_posts_are_refused_and_keep_me_signed_in_keeps_the_cookie() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let browser = setup.browser();
    let first = browser.get(&setup.url(APP, "/")).await;
    let login = browser.get(first.location().unwrap()).await;
    let csrf = login.input("csrf").unwrap();
    let rd = login.input("rd").unwrap();
    let form = portless_test_support::form_body(&[
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
        ("csrf", &csrf),
        ("rd", &rd),
        ("remember_me", "1"),
    ]);
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("referer", "https://evil.test/login"),
        ("origin", "https://evil.test"),
    ] {
        let page = browser
            .send(
                "POST",
                &setup.portal("/login"),
                Some(form.clone()),
                &[(name, value)],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(page.headers.get("set-cookie").is_none());
    }
    let same = browser
        .send(
            "POST",
            &setup.portal("/login"),
            Some(form),
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(same.status, StatusCode::SEE_OTHER, "{same:?}");
    let cookie = same.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("Max-Age=2592000"),
        "kept for remember_me (30 days): {cookie}"
    );
    // A login naming nobody is audited without the typed name (it is often a password).
    let stray = setup.browser();
    let first = stray.get(&setup.url(APP, "/")).await;
    let login = stray.get(first.location().unwrap()).await;
    let typed = stray
        .post_form(
            &setup.portal("/login"),
            &[
                ("username", "hunter2-my-password"),
                ("password", "x"),
                ("csrf", &login.input("csrf").unwrap()),
            ],
        )
        .await;
    assert_eq!(typed.status, StatusCode::UNAUTHORIZED);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = setup.edge.store.recent_audit_events(100).await.unwrap();
        let failures: Vec<_> = events
            .iter()
            .filter(|e| e.event.what == "login:password" && e.event.result == "failure")
            .collect();
        if let Some(failure) = failures.first() {
            assert_eq!(failure.event.who, None);
            assert!(
                events
                    .iter()
                    .all(|e| e.event.who.as_deref() != Some("hunter2-my-password"))
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no failure audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn signing_out_to_switch_account_returns_only_to_an_application_of_this_portal() {
    let setup = Setup::start(AccessFixture::seed()).await;
    let port = setup.edge.handle.public_addr().port();
    for (rd, want) in [
        (format!("https://{ADMIN}:{port}/"), true),
        ("https://evil.test/".to_owned(), false),
        (format!("http://{ADMIN}:{port}/"), false),
    ] {
        let browser = setup.browser();
        let denied = sign_in(
            &setup,
            &browser,
            &setup.url(ADMIN, "/"),
            "bob",
            BOB_PASSWORD,
        )
        .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");
        assert!(
            denied.body.contains("Sign in with another account"),
            "{denied:?}"
        );
        let csrf = denied.input("csrf").unwrap();
        // The sign-out page that an application host's "Access denied" links to carries a
        // valid rd along, and drops any other.
        let confirm = browser
            .get(&setup.portal(&format!(
                "/logout?rd={}",
                portless_test_support::form_body(&[("x", &rd)]).trim_start_matches("x=")
            )))
            .await;
        assert_eq!(confirm.input("rd").is_some(), want, "{rd}: {confirm:?}");
        let out = browser
            .post_form(&setup.portal("/logout"), &[("csrf", &csrf), ("rd", &rd)])
            .await;
        if want {
            assert_eq!(out.status, StatusCode::SEE_OTHER, "{out:?}");
            let location = out.location().unwrap().to_owned();
            assert!(location.starts_with("/?rd=https%3A%2F%2F"), "{location}");
            let login = browser.get(&setup.portal(&location)).await;
            assert!(login.body.contains("name=\"password\""), "{login:?}");
        } else {
            assert_eq!(out.status, StatusCode::OK, "{rd}: {out:?}");
            assert!(out.body.contains("signed out"), "{out:?}");
        }
        // Signed out either way.
        assert_eq!(
            browser.get(&setup.url(ADMIN, "/")).await.status,
            StatusCode::FOUND
        );
    }
}
