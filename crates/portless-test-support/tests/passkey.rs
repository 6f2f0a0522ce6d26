//! Passkeys at the edge without an authenticator (the ceremonies end to end run in Chromium,
//! tests/browser.rs): the script and the login page's section, registration refused without
//! a fresh password or without a second factor already enrolled, the JSON endpoints refused
//! without the CSRF header, from another origin or with a form body, unknown or spent
//! challenges refused, and the options the browser is given.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http::StatusCode;
use portless_connector::ConnectorHandle;
use portless_test_support::access::{ALICE_PASSWORD, AccessEdge, AccessFixture, PORTAL};
use portless_test_support::{Browser, Page, ProbeOrigin, TestEdge};

const APP: &str = "app.example.test";

struct Setup {
    edge: TestEdge,
    _origin: ProbeOrigin,
    _connector: ConnectorHandle,
    _fixture: Arc<AccessFixture>,
}

impl Setup {
    async fn start() -> Self {
        let started = AccessEdge::start(AccessFixture::seed(), &[APP], &[]).await;
        Self {
            edge: started.edge,
            _origin: started.origin,
            _connector: started.connector,
            _fixture: started.fixture,
        }
    }

    fn browser(&self) -> Browser {
        Browser::new(self.edge.client(false))
    }

    fn portal(&self, path: &str) -> String {
        self.edge.client(false).url(PORTAL, path)
    }

    /// `https://auth.example.test:PORT`, as the browser sends it in `Origin`.
    fn portal_origin(&self) -> String {
        self.portal("/").trim_end_matches('/').to_owned()
    }

    /// A browser signed in to the portal with a password (one factor); returns the page's
    /// CSRF token.
    async fn signed_in(&self) -> (Browser, String) {
        let browser = self.browser();
        let login = browser.get(&self.portal("/")).await;
        let csrf = login.input("csrf").unwrap();
        let posted = browser
            .post_form(
                &self.portal("/login"),
                &[
                    ("username", "alice"),
                    ("password", ALICE_PASSWORD),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER, "{posted:?}");
        let settings = browser.get(&self.portal("/settings")).await;
        assert!(settings.body.contains("Confirm it is you"), "{settings:?}");
        let csrf = settings.input("csrf").unwrap();
        (browser, csrf)
    }

    /// [`Setup::signed_in`], then the password again: passkeys may change now.
    async fn reauthenticated(&self) -> (Browser, String) {
        let (browser, csrf) = self.signed_in().await;
        let posted = browser
            .post_form(
                &self.portal("/settings/reauth"),
                &[
                    ("password", ALICE_PASSWORD),
                    ("csrf", &csrf),
                    ("next", "/settings"),
                ],
            )
            .await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER, "{posted:?}");
        assert_eq!(posted.location(), Some("/settings"));
        let settings = browser.get(&self.portal("/settings")).await;
        assert!(settings.body.contains("Sign-in methods"), "{settings:?}");
        assert!(settings.body.contains("No passkeys yet."));
        let csrf = settings.input("csrf").unwrap();
        (browser, csrf)
    }

    async fn call(&self, browser: &Browser, path: &str, json: &str, csrf: &str) -> Page {
        let origin = self.portal_origin();
        browser
            .post_json(
                &self.portal(path),
                json,
                &[("portless-csrf", csrf), ("origin", &origin)],
            )
            .await
    }
}

fn json(page: &Page) -> serde_json::Value {
    serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("{e}: {page:?}"))
}

#[tokio::test]
async fn the_login_page_offers_passkeys_through_a_script_the_csp_allows() {
    let setup = Setup::start().await;
    let browser = setup.browser();
    let login = browser.get(&setup.portal("/")).await;
    assert!(login.body.contains("id=\"passkey-signin\""), "{login:?}");
    assert!(
        login
            .body
            .contains("<script src=\"/.portless/passkey.js\" defer></script>")
    );
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let script = browser.get(&setup.portal("/.portless/passkey.js")).await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.body.contains("navigator.credentials.create"));
}

#[tokio::test]
async fn registration_needs_a_fresh_password() {
    let setup = Setup::start().await;
    let (browser, csrf) = setup.signed_in().await;
    let start = setup
        .call(
            &browser,
            "/passkey/register/start",
            r#"{"name":"Laptop"}"#,
            &csrf,
        )
        .await;
    assert_eq!(start.status, StatusCode::FORBIDDEN, "{start:?}");
    assert!(
        json(&start)["error"]
            .as_str()
            .unwrap()
            .contains("Confirm your password")
    );
    let finish = setup
        .call(
            &browser,
            "/passkey/register/finish",
            r#"{"credential":{}}"#,
            &csrf,
        )
        .await;
    assert_eq!(finish.status, StatusCode::FORBIDDEN, "{finish:?}");
    // Nor can an anonymous browser register anything.
    let anonymous = setup.browser();
    let login = anonymous.get(&setup.portal("/")).await;
    let start = setup
        .call(
            &anonymous,
            "/passkey/register/start",
            r#"{"name":"Laptop"}"#,
            &login.input("csrf").unwrap(),
        )
        .await;
    assert_eq!(start.status, StatusCode::UNAUTHORIZED, "{start:?}");
}

#[tokio::test]
async fn after_a_fresh_password_registration_offers_a_discoverable_verified_credential() {
    let setup = Setup::start().await;
    let (browser, csrf) = setup.reauthenticated().await;
    let start = setup
        .call(
            &browser,
            "/passkey/register/start",
            r#"{"name":"Laptop"}"#,
            &csrf,
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{start:?}");
    let options = json(&start);
    assert_eq!(options["publicKey"]["rp"]["id"], PORTAL);
    assert_eq!(options["publicKey"]["user"]["name"], "alice");
    assert_eq!(options["publicKey"]["user"]["displayName"], "Alice Doe");
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["userVerification"], "required");
    // A forged answer is refused, and spends the challenge.
    let forged = setup
        .call(
            &browser,
            "/passkey/register/finish",
            r#"{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"attestationObject":"AAAA","clientDataJSON":"AAAA"}}}"#,
            &csrf,
        )
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{forged:?}");
    let again = setup
        .call(
            &browser,
            "/passkey/register/finish",
            r#"{"credential":{}}"#,
            &csrf,
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{again:?}");
    assert!(
        json(&again)["error"]
            .as_str()
            .unwrap()
            .contains("No passkey request is pending"),
        "{again:?}"
    );
    // Nothing was registered.
    let settings = browser.get(&setup.portal("/settings")).await;
    assert!(settings.body.contains("No passkeys yet."), "{settings:?}");
}

#[tokio::test]
async fn json_endpoints_need_the_csrf_header_the_portals_origin_and_a_json_body() {
    let setup = Setup::start().await;
    let (browser, csrf) = setup.reauthenticated().await;
    let url = setup.portal("/passkey/register/start");
    let body = r#"{"name":"Laptop"}"#;
    let origin = setup.portal_origin();
    let no_csrf = browser.post_json(&url, body, &[("origin", &origin)]).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{no_csrf:?}");
    let wrong_csrf = browser
        .post_json(&url, body, &[("origin", &origin), ("portless-csrf", "x")])
        .await;
    assert_eq!(wrong_csrf.status, StatusCode::FORBIDDEN);
    for (name, value) in [
        ("origin", "https://evil.test"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let page = browser
            .post_json(&url, body, &[("portless-csrf", &csrf), (name, value)])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(
            json(&page)["error"]
                .as_str()
                .unwrap()
                .contains("another site")
        );
    }
    // A form (what a cross-site page can send without a preflight) is not JSON.
    let form = browser
        .send(
            "POST",
            &url,
            Some("name=Laptop".into()),
            &[("portless-csrf", &csrf), ("origin", &origin)],
        )
        .await;
    assert_eq!(form.status, StatusCode::BAD_REQUEST, "{form:?}");
    // With everything right, the same request passes.
    let ok = setup
        .call(&browser, "/passkey/register/start", body, &csrf)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
}

#[tokio::test]
async fn passwordless_login_refuses_unknown_and_spent_challenges() {
    let setup = Setup::start().await;
    let browser = setup.browser();
    let login = browser.get(&setup.portal("/")).await;
    let csrf = login.input("csrf").unwrap();
    let assertion = r#"{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"authenticatorData":"AAAA","clientDataJSON":"AAAA","signature":"AAAA","userHandle":null}}}"#;
    let never_started = setup
        .call(&browser, "/passkey/login/finish", assertion, &csrf)
        .await;
    assert_eq!(never_started.status, StatusCode::UNAUTHORIZED);
    assert!(
        json(&never_started)["error"]
            .as_str()
            .unwrap()
            .contains("No passkey request is pending")
    );
    let start = setup
        .call(&browser, "/passkey/login/start", "{}", &csrf)
        .await;
    assert_eq!(start.status, StatusCode::OK, "{start:?}");
    let options = json(&start);
    assert_eq!(options["publicKey"]["rpId"], PORTAL);
    assert!(options.get("mediation").is_none());
    let unknown = setup
        .call(&browser, "/passkey/login/finish", assertion, &csrf)
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{unknown:?}");
    assert!(unknown.headers.get("set-cookie").is_none(), "no session");
    let spent = setup
        .call(&browser, "/passkey/login/finish", assertion, &csrf)
        .await;
    assert!(
        json(&spent)["error"]
            .as_str()
            .unwrap()
            .contains("No passkey request is pending"),
        "{spent:?}"
    );
    // A challenge is bound to its browser's session: another browser cannot answer it.
    let other = setup.browser();
    let other_login = other.get(&setup.portal("/")).await;
    setup
        .call(&browser, "/passkey/login/start", "{}", &csrf)
        .await;
    let elsewhere = setup
        .call(
            &other,
            "/passkey/login/finish",
            assertion,
            &other_login.input("csrf").unwrap(),
        )
        .await;
    assert!(
        json(&elsewhere)["error"]
            .as_str()
            .unwrap()
            .contains("No passkey request is pending"),
        "{elsewhere:?}"
    );
    // The second-factor ceremony needs a signed-in user with a passkey.
    let second = setup
        .call(&browser, "/2fa/passkey/start", "{}", &csrf)
        .await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED, "{second:?}");
}

#[tokio::test]
async fn removing_a_passkey_needs_a_fresh_password_too() {
    let setup = Setup::start().await;
    let (browser, csrf) = setup.signed_in().await;
    let page = browser
        .post_form(
            &setup.portal("/settings/passkey/remove"),
            &[("id", "AAAA"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(page.body.contains("Confirm it is you"), "{page:?}");
    // Without the CSRF token the form is refused outright.
    let forged = browser
        .post_form(&setup.portal("/settings/passkey/remove"), &[("id", "AAAA")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{forged:?}");
}

#[tokio::test]
async fn a_user_with_totp_registers_passkeys_only_from_a_two_factor_session() {
    use portless_test_support::access::{now_step, totp_code};
    let setup = Setup::start().await;
    // Enrol TOTP (password again, then a code from the new key).
    let (browser, csrf) = setup.signed_in().await;
    let posted = browser
        .post_form(
            &setup.portal("/settings/reauth"),
            &[("password", ALICE_PASSWORD), ("csrf", &csrf)],
        )
        .await;
    let enrol = browser.follow(posted, 2).await.pop().unwrap();
    let start = enrol.body.find("Key: <code>").unwrap() + "Key: <code>".len();
    let end = enrol.body[start..].find("</code>").unwrap() + start;
    let key = enrol.body[start..end].to_owned();
    let done = browser
        .post_form(
            &setup.portal("/settings/totp"),
            &[
                ("code", &totp_code(&key, now_step())),
                ("pending", &enrol.input("pending").unwrap()),
                ("csrf", &enrol.input("csrf").unwrap()),
            ],
        )
        .await;
    assert!(
        done.body.contains("Two-step verification is on"),
        "{done:?}"
    );

    // Another browser: password only, then the password again — still one factor.
    let other = setup.browser();
    let login = other.get(&setup.portal("/")).await;
    other
        .post_form(
            &setup.portal("/login"),
            &[
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
                ("csrf", &login.input("csrf").unwrap()),
            ],
        )
        .await;
    let settings = other.get(&setup.portal("/settings")).await;
    assert!(
        settings.body.contains("Two-step verification"),
        "the second factor is asked first: {settings:?}"
    );
    let csrf = settings.input("csrf").unwrap();
    let reauth = other
        .post_form(
            &setup.portal("/settings/reauth"),
            &[
                ("password", ALICE_PASSWORD),
                ("csrf", &csrf),
                ("next", "/settings"),
            ],
        )
        .await;
    assert_eq!(reauth.status, StatusCode::SEE_OTHER, "{reauth:?}");
    let csrf = other
        .get(&setup.portal("/settings"))
        .await
        .input("csrf")
        .unwrap();
    let start = setup
        .call(
            &other,
            "/passkey/register/start",
            r#"{"name":"Laptop"}"#,
            &csrf,
        )
        .await;
    assert_eq!(start.status, StatusCode::FORBIDDEN, "{start:?}");
    assert!(
        json(&start)["error"]
            .as_str()
            .unwrap()
            .contains("second factor first"),
        "{start:?}"
    );
}
