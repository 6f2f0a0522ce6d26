//! The seed example of the issue, as written (`tests/policy/seed.yml`): `www` bypass,
//! `git`/`metrics`/`ci` two-factor, `admin` two-factor for group `admins`, default deny.
//! A table of requests and the decision each must get, and snapshots of `policy test`
//! explanations.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::IpAddr;
use std::path::Path;

use portless_access::config::AccessConfig;
use portless_access::policy::{AccessControl, Decision, RuleRef};
use portless_access::{AccessRequest, AuthLevel, Identity, Subject};

fn seed() -> AccessControl {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy/seed.yml");
    let loaded = AccessConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    loaded.config.access_control
}

fn user(name: &str, level: AuthLevel, groups: &[&str]) -> Identity {
    Identity {
        subject: Subject::User {
            name: name.into(),
            level,
            source: portless_access::Source::UsersFile,
        },
        display_name: name.into(),
        email: Some(format!("{name}@example.com")),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn token(name: &str) -> Identity {
    Identity {
        subject: Subject::ServiceToken {
            name: name.into(),
            client_id: format!("{name}-id"),
        },
        display_name: String::new(),
        email: None,
        groups: Vec::new(),
    }
}

#[derive(Clone, Copy)]
enum Who {
    Anonymous,
    AliceOne,
    AliceTwo,
    BobTwo,
    Token,
}

fn identity(who: Who) -> Option<Identity> {
    use AuthLevel::{OneFactor, TwoFactor};
    match who {
        Who::Anonymous => None,
        Who::AliceOne => Some(user("alice", OneFactor, &["admins", "dev"])),
        Who::AliceTwo => Some(user("alice", TwoFactor, &["admins", "dev"])),
        Who::BobTwo => Some(user("bob", TwoFactor, &["dev"])),
        Who::Token => Some(token("ci")),
    }
}

fn request<'a>(host: &'a str, identity: Option<&'a Identity>) -> AccessRequest<'a> {
    AccessRequest {
        host,
        path: "/",
        query: None,
        method: "GET",
        client_ip: IpAddr::from([198, 51, 100, 4]),
        identity,
    }
}

#[test]
fn seed_table() {
    use AuthLevel::TwoFactor;
    use Who::*;
    let r = RuleRef::Rule;
    let deny = Decision::Deny {
        rule: RuleRef::Default,
    };
    let table: &[(&str, Who, Decision)] = &[
        (
            "www.example.com",
            Anonymous,
            Decision::Bypass { rule: r(0) },
        ),
        ("www.example.com", BobTwo, Decision::Bypass { rule: r(0) }),
        ("www.example.com", Token, Decision::Bypass { rule: r(0) }),
        (
            "git.example.com",
            Anonymous,
            Decision::LoginRequired {
                level: TwoFactor,
                rule: r(1),
            },
        ),
        (
            "metrics.example.com",
            Anonymous,
            Decision::LoginRequired {
                level: TwoFactor,
                rule: r(1),
            },
        ),
        (
            "ci.example.com",
            Anonymous,
            Decision::LoginRequired {
                level: TwoFactor,
                rule: r(1),
            },
        ),
        (
            "git.example.com",
            AliceOne,
            Decision::SecondFactorRequired { rule: r(1) },
        ),
        ("git.example.com", BobTwo, Decision::Allow { rule: r(1) }),
        ("ci.example.com", AliceTwo, Decision::Allow { rule: r(1) }),
        ("ci.example.com", Token, deny),
        (
            "admin.example.com",
            Anonymous,
            Decision::LoginRequired {
                level: TwoFactor,
                rule: r(2),
            },
        ),
        (
            "admin.example.com",
            AliceOne,
            Decision::SecondFactorRequired { rule: r(2) },
        ),
        (
            "admin.example.com",
            AliceTwo,
            Decision::Allow { rule: r(2) },
        ),
        ("admin.example.com", BobTwo, deny),
        ("admin.example.com", Token, deny),
        ("example.com", Anonymous, deny),
        ("example.com", AliceTwo, deny),
        ("new.example.com", AliceTwo, deny),
        ("www.example.com.evil.net", Anonymous, deny),
    ];
    let policy = seed();
    assert_eq!(policy.rule_count(), 3);
    for (host, who, want) in table {
        let id = identity(*who);
        let got = policy.evaluate(&request(host, id.as_ref()));
        assert_eq!(
            got,
            *want,
            "{host} as {:?}",
            id.as_ref().map(|i| &i.subject)
        );
        assert_eq!(
            got.is_allowed(),
            matches!(want, Decision::Bypass { .. } | Decision::Allow { .. })
        );
    }
}

fn explain(host: &str, who: Who, method: &str) -> String {
    let id = identity(who);
    let req = AccessRequest {
        method,
        ..request(host, id.as_ref())
    };
    seed()
        .explain(&req)
        .to_string()
        .replace(&format!("{}/", env!("CARGO_MANIFEST_DIR")), "")
}

#[test]
fn policy_test_output() {
    let mut settings = insta::Settings::clone_current();
    settings
        .set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(
            "explain_admin_as_bob",
            explain("admin.example.com", Who::BobTwo, "GET")
        );
        insta::assert_snapshot!(
            "explain_admin_anonymous",
            explain("admin.example.com", Who::Anonymous, "GET")
        );
        insta::assert_snapshot!(
            "explain_git_one_factor",
            explain("git.example.com", Who::AliceOne, "POST")
        );
        insta::assert_snapshot!(
            "explain_www_token",
            explain("www.example.com", Who::Token, "GET")
        );
        insta::assert_snapshot!(
            "explain_ci_token",
            explain("ci.example.com", Who::Token, "GET")
        );
    });
}
