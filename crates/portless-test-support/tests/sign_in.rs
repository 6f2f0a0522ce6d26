//! Signing in without a users-file password, end to end through the real edge and portal:
//! an upstream OpenID provider (the certified `oidc-provider` from npm) and the email PIN
//! (mail read back from a real `aiosmtpd` server), with the policy subjects that name such
//! identities (`provider:`, `group:`, `email_domain:`) and the fail-closed rule for rules
//! that name nobody.
//!
//! Needs node with tests-oidc/node_modules and python3 with aiosmtpd; without them the tests
//! print why and pass, unless PORTLESS_REQUIRE_OIDC=1 / PORTLESS_REQUIRE_SMTP=1 (.ci/run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::StatusCode;
use portless_test_support::access::{ALICE_PASSWORD, AccessEdge, AccessFixture, PORTAL};
use portless_test_support::peers::{OidcPeer, SmtpSink, mail_header, pin_in};
use portless_test_support::{Browser, Page};
use serde_json::json;

/// Only accounts from the provider (the policy forces it).
const CORP: &str = "corp.example.test";
/// Provider accounts in the provider's `admins` group.
const TEAM: &str = "team.example.test";
/// Anyone with an address at example.com, from any source.
const MAIL: &str = "mail.example.test";
/// A rule that names nobody: users-file users only.
const APP: &str = "app.example.test";

const RULES: &str = r#"access_control:
  default_policy: deny
  rules:
    - domain: corp.example.test
      policy: one_factor
      subject: ["provider:testidp"]
    - domain: team.example.test
      policy: one_factor
      subject: [["provider:testidp", "group:admins"]]
    - domain: mail.example.test
      policy: one_factor
      subject: ["email_domain:example.com"]
    - domain: app.example.test
      policy: one_factor
"#;

const CLIENT: (&str, &str) = ("portal", "portal-secret-0123456789");

fn provider() -> Option<OidcPeer> {
    let config = json!({
        "clients": [{
            "client_id": CLIENT.0, "client_secret": CLIENT.1,
            "redirect_uris": [format!("https://{PORTAL}/oidc/testidp/callback")],
        }],
        "accounts": {
            "alice": {"email": "Alice@Example.com", "email_verified": true,
                      "name": "Alice Example", "groups": ["admins", "dev"]},
            "dave": {"email": "dave@example.com", "email_verified": true,
                     "name": "Dave", "groups": ["dev"]},
            "bob": {"email": "bob@example.com", "email_verified": false,
                    "name": "Bob Unverified", "groups": []},
        },
        "redirect_any_port": true,
    });
    OidcPeer::start(&config.to_string())
}

fn oidc_section(peer: &OidcPeer) -> String {
    format!(
        "  oidc:\n    - name: testidp\n      display_name: Test IdP\n      issuer: {}\n      client_id: {}\n      client_secret: {}\n      scopes: [openid, email, profile, groups]\n      allow_insecure_loopback: true\n",
        peer.issuer, CLIENT.0, CLIENT.1
    )
}

async fn start(fixture: AccessFixture) -> AccessEdge {
    AccessEdge::start(fixture, &[CORP, TEAM, MAIL, APP], &[]).await
}

/// Opens `host` anonymously and returns the portal's sign-in page.
async fn login_page(edge: &AccessEdge, browser: &Browser, host: &str) -> Page {
    let url = edge.edge.client(false).url(host, "/");
    let first = browser.get(&url).await;
    assert_eq!(first.status, StatusCode::FOUND, "{first:?}");
    let page = browser.get(first.location().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    page
}

fn portal(edge: &AccessEdge, path: &str) -> String {
    edge.edge.client(false).url(PORTAL, path)
}

/// Starts the provider login from `page` and plays the person at the provider; returns the
/// callback URL the provider sent the browser to.
async fn at_provider(
    edge: &AccessEdge,
    browser: &Browser,
    peer: &OidcPeer,
    page: &Page,
    account: &str,
) -> String {
    let csrf = page.input("csrf").expect("csrf");
    let rd = page.input("rd").unwrap_or_default();
    let started = browser
        .post_form(
            &portal(edge, "/oidc/testidp/start"),
            &[("csrf", &csrf), ("rd", &rd)],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{started:?}");
    let auth_url = started.location().unwrap().to_owned();
    assert!(auth_url.starts_with(&peer.issuer), "{auth_url}");
    for part in ["code_challenge_method=S256", "state=", "nonce="] {
        assert!(auth_url.contains(part), "{part} in {auth_url}");
    }
    let callback = peer.authorize(&auth_url, account).await;
    assert!(
        callback.starts_with(&portal(edge, "/oidc/testidp/callback?")),
        "{callback}"
    );
    callback
}

#[tokio::test]
async fn a_provider_login_reaches_the_apps_its_rules_name_and_no_other() {
    let Some(peer) = provider() else { return };
    let edge = start(AccessFixture::with_rules(RULES).with_sign_in(&oidc_section(&peer), "")).await;
    let browser = Browser::new(edge.edge.client(false));

    // The rule names only the provider: the portal offers only it.
    let page = login_page(&edge, &browser, CORP).await;
    assert!(page.body.contains("/oidc/testidp/start"), "{}", page.body);
    assert!(page.body.contains("Test IdP"), "{}", page.body);
    assert!(
        !page.body.contains("name=\"password\""),
        "no password form where no users-file user could be admitted: {}",
        page.body
    );

    let callback = at_provider(&edge, &browser, &peer, &page, "alice").await;
    let pages = browser.follow(browser.get(&callback).await, 6).await;
    let last = pages.last().unwrap();
    assert_eq!(last.status, StatusCode::OK, "{pages:?}");
    let seen = edge.origin.seen();
    let request = seen.last().unwrap();
    assert_eq!(
        request
            .headers
            .get("remote-user")
            .and_then(|v| v.to_str().ok()),
        Some("alice@example.com")
    );
    assert_eq!(
        request
            .headers
            .get("remote-email")
            .and_then(|v| v.to_str().ok()),
        Some("alice@example.com")
    );
    assert_eq!(
        request
            .headers
            .get("remote-name")
            .and_then(|v| v.to_str().ok()),
        Some("Alice Example")
    );
    assert_eq!(
        request
            .headers
            .get("remote-groups")
            .and_then(|v| v.to_str().ok()),
        Some("admins,dev")
    );
    assert!(
        request
            .headers
            .get("cf-access-jwt-assertion")
            .and_then(|v| v.to_str().ok())
            .is_some()
    );

    // Same browser, another app: provider + group admins → in, without a new login.
    let team = browser
        .follow(
            browser.get(&edge.edge.client(false).url(TEAM, "/t")).await,
            6,
        )
        .await;
    assert_eq!(team.last().unwrap().status, StatusCode::OK, "{team:?}");
    // A rule that names nobody admits users-file users only: a provider login is refused.
    let app = browser
        .follow(browser.get(&edge.edge.client(false).url(APP, "/")).await, 6)
        .await;
    let denied = app.last().unwrap();
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{app:?}");
    assert!(denied.body.contains("alice@example.com"), "{}", denied.body);

    // Dave (not in admins) gets corp but not team.
    let dave = Browser::new(edge.edge.client(false));
    let page = login_page(&edge, &dave, TEAM).await;
    let callback = at_provider(&edge, &dave, &peer, &page, "dave").await;
    let pages = dave.follow(dave.get(&callback).await, 6).await;
    assert_eq!(
        pages.last().unwrap().status,
        StatusCode::FORBIDDEN,
        "{pages:?}"
    );

    // And the users file still works where the rule admits it.
    let local = Browser::new(edge.edge.client(false));
    let page = login_page(&edge, &local, APP).await;
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    let posted = local
        .post_form(
            &portal(&edge, "/login"),
            &[
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
                ("csrf", &page.input("csrf").unwrap()),
                ("rd", &page.input("rd").unwrap()),
            ],
        )
        .await;
    let pages = local.follow(posted, 6).await;
    assert_eq!(pages.last().unwrap().status, StatusCode::OK, "{pages:?}");
    assert_eq!(
        edge.origin
            .last()
            .headers
            .get("remote-user")
            .and_then(|v| v.to_str().ok()),
        Some("alice")
    );
}

#[tokio::test]
async fn tampered_reused_or_unverified_provider_answers_are_refused() {
    let Some(peer) = provider() else { return };
    let edge = start(AccessFixture::with_rules(RULES).with_sign_in(&oidc_section(&peer), "")).await;
    let before = edge.origin.seen().len();

    // A tampered state: refused, and the login is spent (the right state fails after it).
    let browser = Browser::new(edge.edge.client(false));
    let page = login_page(&edge, &browser, CORP).await;
    let callback = at_provider(&edge, &browser, &peer, &page, "alice").await;
    let tampered = callback.replace("state=", "state=x");
    let refused = browser.get(&tampered).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert!(
        refused.body.contains("Sign-in not completed"),
        "{}",
        refused.body
    );
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, StatusCode::FORBIDDEN, "{replay:?}");

    // A callback opened in another browser (a stolen code): no login there.
    let browser = Browser::new(edge.edge.client(false));
    let page = login_page(&edge, &browser, CORP).await;
    let callback = at_provider(&edge, &browser, &peer, &page, "alice").await;
    let thief = Browser::new(edge.edge.client(false));
    let stolen = thief.get(&callback).await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN, "{stolen:?}");

    // An unverified email is not an identity.
    let browser = Browser::new(edge.edge.client(false));
    let page = login_page(&edge, &browser, CORP).await;
    let callback = at_provider(&edge, &browser, &peer, &page, "bob").await;
    let unverified = browser.get(&callback).await;
    assert_eq!(unverified.status, StatusCode::FORBIDDEN, "{unverified:?}");
    assert!(unverified.body.contains("verified"), "{}", unverified.body);
    assert_eq!(edge.origin.seen().len(), before, "the origin saw nothing");
}

fn pin_sections(sink: &SmtpSink) -> (String, String) {
    let ca = sink.dir().join("ca.pem");
    let tls = format!("    ca_file: {}\n", ca.display());
    let notifier = sink.notifier_yaml(&tls, sink.dir());
    let indented: String = notifier.lines().map(|l| format!("  {l}\n")).collect();
    (
        "  email_pin:\n    enabled: true\n".to_owned(),
        format!("notifier:\n{indented}"),
    )
}

/// Asks for a PIN for `address` from the sign-in page of `host`; returns the answer page.
async fn ask_pin(edge: &AccessEdge, browser: &Browser, host: &str, address: &str) -> Page {
    let page = login_page(edge, browser, host).await;
    assert!(page.body.contains("/login/email"), "{}", page.body);
    let asked = browser
        .post_form(
            &portal(edge, "/login/email"),
            &[
                ("email", address),
                ("csrf", &page.input("csrf").unwrap()),
                ("rd", &page.input("rd").unwrap_or_default()),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{asked:?}");
    asked
}

async fn type_pin(edge: &AccessEdge, browser: &Browser, page: &Page, pin: &str) -> Vec<Page> {
    type_pin_for(
        edge,
        browser,
        page,
        &page.input("email").expect("email field"),
        pin,
    )
    .await
}

/// Posts the code form of `page` with `address` instead of the one the page holds.
async fn type_pin_for(
    edge: &AccessEdge,
    browser: &Browser,
    page: &Page,
    address: &str,
    pin: &str,
) -> Vec<Page> {
    let posted = browser
        .post_form(
            &portal(edge, "/login/email/verify"),
            &[
                ("email", address),
                ("code", pin),
                ("csrf", &page.input("csrf").unwrap()),
                ("rd", &page.input("rd").unwrap_or_default()),
            ],
        )
        .await;
    browser.follow(posted, 6).await
}

// Multi-threaded: the test waits for the mail with blocking sleeps while the edge sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emailed_pin_signs_in_only_an_address_a_rule_allows_in_the_browser_that_asked() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let (backend, top) = pin_sections(&sink);
    let edge = start(AccessFixture::with_rules(RULES).with_sign_in(&backend, &top)).await;

    // An address no rule could allow: the same page, and no mail.
    let stranger = Browser::new(edge.edge.client(false));
    let refused = ask_pin(&edge, &stranger, MAIL, "mallory@evil.test").await;
    let browser = Browser::new(edge.edge.client(false));
    let asked = ask_pin(&edge, &browser, MAIL, "Carol@Example.com").await;
    let same = |page: &Page, address: &str| {
        page.body
            .replace(address, "ADDRESS")
            .replace(&page.input("csrf").unwrap(), "CSRF")
    };
    assert_eq!(
        same(&refused, "mallory@evil.test"),
        same(&asked, "carol@example.com"),
        "the page must not tell which addresses may sign in"
    );
    let mail = sink.wait_for_mail(1);
    assert_eq!(mail_header(&mail, "X-Test-Rcpt"), "carol@example.com");
    assert_eq!(mail_header(&mail, "X-Test-Tls"), "yes");
    let pin = pin_in(&mail);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sink.mails().len(), 1, "no mail for the stranger");

    // The PIN typed in another browser is refused, and burned: it no longer works anywhere.
    let thief = Browser::new(edge.edge.client(false));
    let thief_page = ask_pin(&edge, &thief, MAIL, "eve@example.com").await;
    let stolen = type_pin_for(&edge, &thief, &thief_page, "carol@example.com", &pin).await;
    assert_eq!(stolen.last().unwrap().status, StatusCode::UNAUTHORIZED);
    assert!(stolen.last().unwrap().body.contains("not valid"));
    let burned = type_pin(&edge, &browser, &asked, &pin).await;
    assert_eq!(burned.last().unwrap().status, StatusCode::UNAUTHORIZED);
    // The pages say the same; the audit log says why each try failed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = edge.edge.store.recent_audit_events(100).await.unwrap();
        let details: Vec<&str> = events
            .iter()
            .filter(|e| e.event.what == "login:email_pin")
            .filter_map(|e| e.event.detail.as_deref())
            .collect();
        if details.contains(&"other_browser") && details.contains(&"none_pending") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{details:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A new code, in the browser that asked (two failures so far for this address: one
    // more and regulation would ban it, silently).
    let asked = ask_pin(&edge, &browser, MAIL, "carol@example.com").await;
    sink.wait_for_mail(3);
    // Mail goes out in the background: eve's and carol's second may arrive in any order.
    let to_carol: Vec<String> = sink
        .mails()
        .iter()
        .map(|m| std::fs::read_to_string(m).unwrap())
        .filter(|m| mail_header(m, "X-Test-Rcpt") == "carol@example.com")
        .collect();
    assert_eq!(to_carol.len(), 2);
    let pin = pin_in(&to_carol[1]);
    let pages = type_pin(&edge, &browser, &asked, &pin).await;
    assert_eq!(pages.last().unwrap().status, StatusCode::OK, "{pages:?}");
    let seen = edge.origin.seen();
    let request = seen.last().unwrap();
    assert_eq!(
        request
            .headers
            .get("remote-user")
            .and_then(|v| v.to_str().ok()),
        Some("carol@example.com")
    );
    assert_eq!(
        request
            .headers
            .get("remote-groups")
            .and_then(|v| v.to_str().ok()),
        Some("")
    );

    // Used once: the same PIN does not sign in again.
    let again = Browser::new(edge.edge.client(false));
    let again_page = ask_pin(&edge, &again, MAIL, "carol@example.com").await;
    let replay = type_pin(&edge, &again, &again_page, &pin).await;
    assert!(
        replay.last().unwrap().body.contains("not valid"),
        "{replay:?}"
    );
}
