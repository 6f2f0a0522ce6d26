//! The edge the attack tables run against: the access fixture with rules that give every
//! class something to bypass (a public path, a network rule, a read-only API, an
//! OPTIONS-only path, a group rule), one recording origin behind one tunnel, and helpers to
//! sign in and enrol TOTP over [`Agent`]s.

use std::sync::Arc;

use portless_connector::ConnectorHandle;
use portless_test_support::access::{
    ALICE_PASSWORD, AccessEdge, AccessFixture, BOB_PASSWORD, PORTAL, USERS,
};
use portless_test_support::{ProbeOrigin, TestEdge};

use super::wire::{Agent, Reply, Wire, portal_base};

/// One-factor application with public, network-only, read-only and group paths.
pub const APP: &str = "app.example.test";
/// Two-factor application.
pub const GIT: &str = "git.example.test";
/// Two-factor, group `admins`; the connector also verifies the edge's assertion.
pub const ADMIN: &str = "admin.example.test";
/// Public (bypass).
pub const WWW: &str = "www.example.test";
/// Routed, but named by no rule: the default policy (deny) applies.
pub const OTHER: &str = "other.example.test";

/// Rules of the attack suite. The portal host is named next to `app` so that ext-authz
/// (whose target host is the call's own `Host`, i.e. the portal) judges the same paths.
pub const RULES: &str = r#"access_control:
  default_policy: deny
  networks:
    - name: internal
      networks: [10.0.0.0/8]
  rules:
    - domain: www.example.test
      policy: bypass
    - domain: [app.example.test, auth.example.test]
      resources: ["^/public/"]
      policy: bypass
    - domain: [app.example.test, auth.example.test]
      resources: ["^/intranet/"]
      networks: [internal]
      policy: bypass
    - domain: [app.example.test, auth.example.test]
      resources: ["^/api/"]
      methods: [GET, HEAD]
      policy: bypass
    - domain: [app.example.test, auth.example.test]
      resources: ["^/cors/"]
      methods: [OPTIONS]
      policy: bypass
    - domain: app.example.test
      resources: ["^/team/"]
      subject: ["group:dev"]
      policy: one_factor
    - domain: app.example.test
      resources: ["^/team/"]
      policy: deny
    - domain: [app.example.test, auth.example.test]
      policy: one_factor
    - domain: git.example.test
      policy: two_factor
    - domain: admin.example.test
      policy: two_factor
      subject: ["group:admins"]
"#;

/// The fixture users plus `u1`…`u12` (alice's password, group dev), so cases that burn
/// login attempts each have a user of their own.
pub fn users_file(disable: &[&str], drop_groups: &[&str]) -> String {
    let alice_hash = USERS
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .unwrap()
        .trim()
        .to_owned();
    let mut text = USERS.to_owned();
    for n in 1..=12 {
        text.push_str(&format!(
            "  u{n}:\n    displayname: User {n}\n    {alice_hash}\n    email: u{n}@example.test\n    groups: [dev]\n"
        ));
    }
    // Edits by line, in the order the fixture writes each user.
    let mut out = String::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("  ")
            .and_then(|l| l.strip_suffix(':'))
            .filter(|l| !l.starts_with(' '))
        {
            current = name.to_owned();
        }
        if line.trim_start().starts_with("groups:") && drop_groups.contains(&current.as_str()) {
            out.push_str("    groups: []\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim_start().starts_with("email:") && disable.contains(&current.as_str()) {
            out.push_str("    disabled: true\n");
        }
    }
    out
}

/// A running edge with the attack rules, one tunnel and a recording origin.
pub struct Setup {
    pub edge: TestEdge,
    pub origin: ProbeOrigin,
    pub wire: Wire,
    _connector: ConnectorHandle,
    pub fixture: Arc<AccessFixture>,
}

impl Setup {
    pub async fn start() -> Self {
        let fixture = AccessFixture::with_rules(RULES);
        std::fs::write(&fixture.users, users_file(&[], &[])).unwrap();
        let started = AccessEdge::start(fixture, &[APP, GIT, ADMIN, WWW, OTHER], &[ADMIN]).await;
        let wire = Wire::new(&started.edge);
        Self {
            edge: started.edge,
            origin: started.origin,
            wire,
            _connector: started.connector,
            fixture: started.fixture,
        }
    }

    pub fn port(&self) -> u16 {
        self.wire.port()
    }

    pub fn portal_base(&self) -> String {
        portal_base(self.port())
    }

    /// A client from a fresh loopback address.
    pub fn agent(&self) -> Agent {
        Agent::new(&self.wire, Some(super::wire::fresh_ip()))
    }
}

/// The login page for `host`+`target` (anonymous visit → portal), as (page, csrf, rd).
pub async fn login_page(agent: &Agent, host: &str, target: &str) -> (Reply, String, String) {
    let first = agent.get(host, target).await;
    assert_eq!(first.status, 302, "sent to the portal: {}", first.summary());
    let location = first.location().unwrap().to_owned();
    let (portal, path) = super::wire::split_url(&location, host);
    assert_eq!(portal, PORTAL, "{location}");
    let page = agent.get(PORTAL, &path).await;
    assert_eq!(page.status, 200, "login page: {}", page.summary());
    let csrf = page.input("csrf").expect("csrf field");
    let rd = page.input("rd").expect("rd field");
    (page, csrf, rd)
}

/// Signs in with a password from an anonymous visit to `host`+`target`, following the
/// redirects; the last reply.
pub async fn sign_in(agent: &Agent, host: &str, target: &str, user: &str, password: &str) -> Reply {
    let (_, csrf, rd) = login_page(agent, host, target).await;
    let posted = agent
        .post_form(
            PORTAL,
            "/login",
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("rd", &rd),
            ],
        )
        .await;
    agent.follow(posted, 6).await.pop().unwrap()
}

/// Signs `user` in on `APP` and returns the agent (its jar holds both session cookies).
pub async fn signed_in(setup: &Setup, user: &str) -> Agent {
    let agent = setup.agent();
    let page = sign_in(&agent, APP, "/", user, password_of(user)).await;
    assert_eq!(
        page.status,
        200,
        "{user} signed in on {APP}: {}",
        page.summary()
    );
    agent
}

/// The fixture password of `user` (`u1`…`u12` share alice's).
pub fn password_of(user: &str) -> &'static str {
    if user == "bob" {
        BOB_PASSWORD
    } else {
        ALICE_PASSWORD
    }
}

/// Enrols TOTP for `user` (signed in with a password first, then re-authenticated); returns
/// the key and the agent, whose session is two-factor afterwards.
pub async fn enrol_totp(setup: &Setup, user: &str) -> (String, Agent) {
    let agent = signed_in(setup, user).await;
    let reauth = agent.get(PORTAL, "/settings/totp").await;
    assert!(reauth.body.contains("Confirm it is you"), "{}", reauth.body);
    let csrf = reauth.input("csrf").unwrap();
    let posted = agent
        .post_form(
            PORTAL,
            "/settings/reauth",
            &[("password", password_of(user)), ("csrf", &csrf)],
        )
        .await;
    let enrol = agent.follow(posted, 2).await.pop().unwrap();
    assert!(
        enrol.body.contains("Set up two-step verification"),
        "{}",
        enrol.body
    );
    let key = shown_key(&enrol);
    let done = agent
        .post_form(
            PORTAL,
            "/settings/totp",
            &[
                ("code", &totp_code(&key, now_step())),
                ("pending", &enrol.input("pending").unwrap()),
                ("csrf", &enrol.input("csrf").unwrap()),
            ],
        )
        .await;
    assert!(
        done.body.contains("Two-step verification is on"),
        "{}",
        done.body
    );
    (key, agent)
}

/// The key shown on the enrolment page.
pub fn shown_key(page: &Reply) -> String {
    let start = page.body.find("Key: <code>").expect("key on the page") + "Key: <code>".len();
    let end = page.body[start..].find("</code>").unwrap() + start;
    page.body[start..end].to_owned()
}

pub use portless_test_support::access::totp_code;

pub use portless_test_support::access::now_step;
