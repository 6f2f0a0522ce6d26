//! Attack classes of the threat list that reach the policy engine, several cases each:
//!
//! * B (host confusion): the engine gets canonical hosts; whatever form a domain has in the
//!   config, it is canonicalized so an admin rule is not skipped, and look-alike hosts do
//!   not match;
//! * C (path vs query): `resources` see the canonical path only, so nothing in the query
//!   can satisfy a public-path rule;
//! * F (client address): `networks` compare the address the edge gives, IPv4-mapped IPv6
//!   as IPv4, and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::IpAddr;

use portless_access::config::AccessConfig;
use portless_access::policy::{AccessControl, Decision, RuleRef};
use portless_access::{AccessRequest, AuthLevel, Identity, Subject};

fn policy(yaml: &str) -> AccessControl {
    AccessConfig::from_yaml(yaml, "attacks.yml")
        .unwrap_or_else(|e| panic!("{e}"))
        .config
        .access_control
}

fn anon<'a>(host: &'a str, path: &'a str, query: Option<&'a str>, ip: &str) -> AccessRequest<'a> {
    AccessRequest {
        host,
        path,
        query,
        method: "GET",
        client_ip: ip.parse::<IpAddr>().unwrap(),
        identity: None,
    }
}

#[test]
fn class_b_config_domains_in_any_form_protect_the_canonical_host() {
    // Each spelling of the admin domain, in the config, must still catch the canonical host.
    for written in [
        "admin.example.com",
        "ADMIN.Example.COM",
        "admin.example.com.",
        "Admin.Example.Com.",
        " admin.example.com ",
    ] {
        let ac = policy(&format!(
            "access_control:\n  default_policy: bypass\n  rules:\n    - domain: '{written}'\n      policy: deny\n"
        ));
        assert_eq!(
            ac.evaluate(&anon("admin.example.com", "/", None, "198.51.100.1")),
            Decision::Deny {
                rule: RuleRef::Rule(0)
            },
            "config domain {written:?}"
        );
    }
}

#[test]
fn class_b_look_alike_hosts_do_not_match() {
    let ac = policy(
        "access_control:\n  default_policy: deny\n  rules:\n    - domain: [www.example.com, '*.pub.example.com']\n      policy: bypass\n",
    );
    for host in [
        "www.example.com.evil.net",
        "wwwexample.com",
        "evil-www.example.com",
        "www.example.co",
        "pub.example.com",
        "xpub.example.com",
        "www.example.com:443",
        "xn--www-example-com",
    ] {
        assert_eq!(
            ac.evaluate(&anon(host, "/", None, "198.51.100.1")),
            Decision::Deny {
                rule: RuleRef::Default
            },
            "{host}"
        );
    }
    assert!(
        ac.evaluate(&anon("a.pub.example.com", "/", None, "198.51.100.1"))
            .is_allowed()
    );
}

#[test]
fn class_b_internationalized_config_domains_match_their_punycode() {
    let ac = policy(
        "access_control:\n  default_policy: bypass\n  rules:\n    - domain: 'ädmin.example.com'\n      policy: deny\n",
    );
    let deny = Decision::Deny {
        rule: RuleRef::Rule(0),
    };
    assert_eq!(
        ac.evaluate(&anon("xn--dmin-koa.example.com", "/", None, "198.51.100.1")),
        deny
    );
    // The ASCII look-alike is another host.
    assert!(
        ac.evaluate(&anon("admin.example.com", "/", None, "198.51.100.1"))
            .is_allowed()
    );
}

#[test]
fn class_c_resources_never_see_the_query() {
    let ac = policy(
        "access_control:\n  default_policy: deny\n  rules:\n    - domain: app.example.com\n      resources: ['^/public/', '^/favicon\\.ico$']\n      policy: bypass\n    - domain: app.example.com\n      policy: two_factor\n",
    );
    let login = Decision::LoginRequired {
        level: AuthLevel::TwoFactor,
        rule: RuleRef::Rule(1),
    };
    for (path, query) in [
        ("/admin", Some("x=/public/")),
        ("/admin", Some("/public/")),
        ("/admin", Some("redirect=%2Fpublic%2F")),
        ("/admin", Some("a=1&b=/favicon.ico")),
        ("/", Some("/public/../admin")),
        ("/admin/public/", None),
        ("/publicx", None),
        ("/favicon.ico.bak", None),
    ] {
        assert_eq!(
            ac.evaluate(&anon("app.example.com", path, query, "198.51.100.1")),
            login,
            "{path}?{query:?}"
        );
    }
    for (path, query) in [
        ("/public/app.js", None),
        ("/public/x", Some("v=2")),
        ("/favicon.ico", None),
    ] {
        assert!(
            ac.evaluate(&anon("app.example.com", path, query, "198.51.100.1"))
                .is_allowed(),
            "{path}"
        );
    }
}

#[test]
fn class_f_networks_use_the_given_client_address_only() {
    let ac = policy(
        "access_control:\n  default_policy: deny\n  networks:\n    - name: internal\n      networks: [10.0.0.0/8, 172.16.0.0/12, 'fd00::/8']\n  rules:\n    - domain: intranet.example.com\n      networks: [internal]\n      policy: bypass\n    - domain: intranet.example.com\n      policy: two_factor\n",
    );
    let bypass = Decision::Bypass {
        rule: RuleRef::Rule(0),
    };
    let login = Decision::LoginRequired {
        level: AuthLevel::TwoFactor,
        rule: RuleRef::Rule(1),
    };
    for (ip, want) in [
        ("10.0.0.1", bypass),
        ("172.31.255.255", bypass),
        ("fd00::1", bypass),
        ("::ffff:10.0.0.1", bypass),
        ("::ffff:172.16.0.9", bypass),
        ("203.0.113.5", login),
        ("172.32.0.1", login),
        ("::ffff:203.0.113.5", login),
        ("fe80::1", login),
        ("::1", login),
        ("127.0.0.1", login),
        // A spoofed `X-Forwarded-For: 10.0.0.1` never reaches the engine: the edge passes
        // the address it saw (or a trusted proxy's report), and that address is public.
        ("198.51.100.77", login),
    ] {
        assert_eq!(
            ac.evaluate(&anon("intranet.example.com", "/", None, ip)),
            want,
            "{ip}"
        );
    }
}

#[test]
fn class_f_network_rules_with_subjects_still_need_the_subject() {
    let ac = policy(
        "access_control:\n  default_policy: deny\n  rules:\n    - domain: ops.example.com\n      networks: [10.0.0.0/8]\n      subject: 'group:ops'\n      policy: one_factor\n",
    );
    let bob = Identity {
        subject: Subject::User {
            name: "bob".into(),
            level: AuthLevel::TwoFactor,
            source: portless_access::Source::UsersFile,
        },
        display_name: "Bob".into(),
        email: None,
        groups: vec!["dev".into()],
    };
    let req = AccessRequest {
        identity: Some(&bob),
        ..anon("ops.example.com", "/", None, "::ffff:10.1.1.1")
    };
    assert_eq!(
        ac.evaluate(&req),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
}
