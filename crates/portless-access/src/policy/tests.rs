//! Unit tests of the policy engine: every criterion, the first-match and subject
//! semantics, service tokens, validation errors and warnings.

use std::net::IpAddr;

use super::*;
use crate::config::{AccessConfig, Warning};
use crate::identity::{Identity, Subject};

// === helpers ===

fn load(yaml: &str) -> (AccessControl, Vec<Warning>) {
    let loaded = AccessConfig::from_yaml(yaml, "access.yml").unwrap_or_else(|e| panic!("{e}"));
    (loaded.config.access_control, loaded.warnings)
}

fn policy(yaml: &str) -> AccessControl {
    load(yaml).0
}

fn errors(yaml: &str) -> String {
    match AccessConfig::from_yaml(yaml, "access.yml") {
        Ok(_) => panic!("loaded but should be refused:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

fn user(name: &str, level: AuthLevel, groups: &[&str]) -> Identity {
    Identity {
        subject: Subject::User {
            name: name.into(),
            level,
            source: crate::Source::UsersFile,
        },
        display_name: name.into(),
        email: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn token(name: &str) -> Identity {
    Identity {
        subject: Subject::ServiceToken {
            name: name.into(),
            client_id: format!("{name}.client"),
        },
        display_name: String::new(),
        email: None,
        groups: Vec::new(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn req<'a>(host: &'a str, path: &'a str) -> AccessRequest<'a> {
    AccessRequest {
        host,
        path,
        query: None,
        method: "GET",
        client_ip: ip("203.0.113.9"),
        identity: None,
    }
}

fn rule(i: usize) -> RuleRef {
    RuleRef::Rule(i)
}

const ONE: AuthLevel = AuthLevel::OneFactor;
const TWO: AuthLevel = AuthLevel::TwoFactor;

fn wrap(rules: &str) -> String {
    format!("access_control:\n  default_policy: deny\n  rules:\n{rules}")
}

// === domain ===

#[test]
fn domain_exact_wildcard_and_list() {
    let ac = policy(&wrap(
        "    - domain: [app.example.com, '*.dev.example.com']\n      policy: bypass\n",
    ));
    let bypass = Decision::Bypass { rule: rule(0) };
    let deny = Decision::Deny {
        rule: RuleRef::Default,
    };
    assert_eq!(ac.evaluate(&req("app.example.com", "/")), bypass);
    assert_eq!(ac.evaluate(&req("x.dev.example.com", "/")), bypass);
    assert_eq!(ac.evaluate(&req("a.b.dev.example.com", "/")), bypass);
    assert_eq!(
        ac.evaluate(&req("dev.example.com", "/")),
        deny,
        "apex is not *."
    );
    assert_eq!(ac.evaluate(&req("xdev.example.com", "/")), deny);
    assert_eq!(ac.evaluate(&req("app.example.com.evil.net", "/")), deny);
    assert_eq!(ac.evaluate(&req("other.example.com", "/")), deny);
}

#[test]
fn config_domains_are_canonicalized_class_b() {
    // The engine receives canonical hosts (lowercase, no trailing dot, punycode); the
    // config is brought to the same form, whatever its author typed.
    let ac = policy(&wrap(
        "    - domain: ADMIN.Example.COM.\n      policy: deny\n    - domain: '*.Example.Com.'\n      policy: bypass\n    - domain: bücher.example\n      policy: bypass\n",
    ));
    assert_eq!(
        ac.evaluate(&req("admin.example.com", "/")),
        Decision::Deny { rule: rule(0) }
    );
    assert_eq!(
        ac.evaluate(&req("www.example.com", "/")),
        Decision::Bypass { rule: rule(1) }
    );
    assert_eq!(
        ac.evaluate(&req("xn--bcher-kva.example", "/")),
        Decision::Bypass { rule: rule(2) }
    );
    assert_eq!(
        ac.domains_mentioned(),
        [
            "admin.example.com",
            "*.example.com",
            "xn--bcher-kva.example"
        ]
    );
}

#[test]
fn domain_regex_matches_canonical_host_case_insensitively() {
    let ac = policy(&wrap(
        "    - domain_regex: '^(app|API)\\.example\\.com$'\n      policy: bypass\n",
    ));
    assert!(ac.evaluate(&req("app.example.com", "/")).is_allowed());
    assert!(ac.evaluate(&req("api.example.com", "/")).is_allowed());
    assert!(!ac.evaluate(&req("web.example.com", "/")).is_allowed());
    assert!(
        !ac.evaluate(&req("app.example.com.evil.net", "/"))
            .is_allowed()
    );
}

#[test]
fn domain_and_domain_regex_are_alternatives() {
    // As in the incumbent, a rule with both matches a host that either matches.
    let ac = policy(&wrap(
        "    - domain: a.example.com\n      domain_regex: '^b\\.example\\.com$'\n      policy: bypass\n",
    ));
    assert!(ac.evaluate(&req("a.example.com", "/")).is_allowed());
    assert!(ac.evaluate(&req("b.example.com", "/")).is_allowed());
    assert!(!ac.evaluate(&req("c.example.com", "/")).is_allowed());
}

#[test]
fn domain_regex_user_and_group_groups_are_subjects() {
    let ac = policy(&wrap(
        "    - domain_regex: '^(?P<User>\\w+)\\.home\\.example\\.com$'\n      policy: one_factor\n    - domain_regex: '^(?P<Group>\\w+)\\.team\\.example\\.com$'\n      policy: one_factor\n",
    ));
    let alice = user("alice", ONE, &["dev"]);
    let bob = user("bob", ONE, &["Ops"]);
    let as_ = |host: &'static str, who: &'static Identity| AccessRequest {
        identity: Some(who),
        ..req(host, "/")
    };
    let alice: &'static Identity = Box::leak(Box::new(alice));
    let bob: &'static Identity = Box::leak(Box::new(bob));
    assert_eq!(
        ac.evaluate(&as_("alice.home.example.com", alice)),
        Decision::Allow { rule: rule(0) }
    );
    assert_eq!(
        ac.evaluate(&as_("ALICE.home.example.com", alice)),
        Decision::Allow { rule: rule(0) }
    );
    assert_eq!(
        ac.evaluate(&as_("alice.home.example.com", bob)),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
    assert_eq!(
        ac.evaluate(&as_("dev.team.example.com", alice)),
        Decision::Allow { rule: rule(1) }
    );
    // Group captures compare case-insensitively, as in the incumbent.
    assert_eq!(
        ac.evaluate(&as_("ops.team.example.com", bob)),
        Decision::Allow { rule: rule(1) }
    );
    assert_eq!(
        ac.evaluate(&as_("ops.team.example.com", alice)),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
    // Anonymous: sent to log in, as for any rule with subjects.
    assert_eq!(
        ac.evaluate(&req("alice.home.example.com", "/")),
        Decision::LoginRequired {
            level: ONE,
            rule: rule(0)
        }
    );
    // A token has no name or groups to compare.
    let ci: &'static Identity = Box::leak(Box::new(token("alice")));
    assert_eq!(
        ac.evaluate(&as_("alice.home.example.com", ci)),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
}

// === resources (class C: path only) ===

#[test]
fn resources_see_the_path_only() {
    let ac = policy(&wrap(
        "    - domain: app.example.com\n      resources: ['^/public/', '^/health$']\n      policy: bypass\n    - domain: app.example.com\n      policy: one_factor\n",
    ));
    let bypass = Decision::Bypass { rule: rule(0) };
    let login = Decision::LoginRequired {
        level: ONE,
        rule: rule(1),
    };
    assert_eq!(
        ac.evaluate(&req("app.example.com", "/public/a.css")),
        bypass
    );
    assert_eq!(ac.evaluate(&req("app.example.com", "/health")), bypass);
    assert_eq!(ac.evaluate(&req("app.example.com", "/health/x")), login);
    assert_eq!(ac.evaluate(&req("app.example.com", "/admin")), login);
    // `?x=/public/` cannot satisfy `^/public/`: the query is not part of what resources see.
    for query in [
        "x=/public/",
        "/public/",
        "a=1&next=/public/x",
        "%2Fpublic%2F",
    ] {
        let r = AccessRequest {
            query: Some(query),
            ..req("app.example.com", "/admin")
        };
        assert_eq!(ac.evaluate(&r), login, "query {query}");
    }
    // The canonical path is what the edge passes; a prefix trick is not one.
    assert_eq!(
        ac.evaluate(&req("app.example.com", "/admin/public/")),
        login
    );
}

// === query ===

#[test]
fn query_operators_or_of_ands() {
    let ac = policy(&wrap(
        "    - domain: app.example.com\n      query:\n        - - key: mode\n            value: public\n          - operator: absent\n            key: debug\n        - - operator: pattern\n            key: id\n            value: '^[0-9]+$'\n      policy: bypass\n",
    ));
    let check = |q: Option<&str>| {
        ac.evaluate(&AccessRequest {
            query: q,
            ..req("app.example.com", "/")
        })
        .is_allowed()
    };
    assert!(check(Some("mode=public")));
    assert!(check(Some("mode=public&x=1")));
    assert!(!check(Some("mode=public&debug")), "absent failed");
    assert!(!check(Some("mode=private")));
    assert!(check(Some("id=123")), "second group");
    assert!(!check(Some("id=12a")));
    assert!(check(Some("mode=pub%6Cic")), "values are decoded");
    assert!(!check(Some("mode=private&mode=public")));
    assert!(
        !check(Some("mode=public&mode=private")),
        "a repeated parameter the rule reads is never judged by one of its values"
    );
    assert!(!check(None));
    // ...and it denies outright, even where a later rule would have let it through.
    let ac = policy(&wrap(
        "    - domain: app.example.com\n      query:\n        - - key: share\n            value: 'no'\n      policy: deny\n    - domain: app.example.com\n      policy: bypass\n",
    ));
    let decide = |q: &'static str| {
        ac.evaluate(&AccessRequest {
            query: Some(q),
            ..req("app.example.com", "/")
        })
    };
    assert!(decide("share=yes").is_allowed());
    assert!(!decide("share=no").is_allowed());
    assert!(!decide("share=yes&share=no").is_allowed());
    assert!(!decide("share=no&share=yes").is_allowed());
    assert!(
        decide("other=1&other=2").is_allowed(),
        "parameters no rule reads may repeat"
    );
}

#[test]
fn query_equal_not_equal_present_not_pattern() {
    let ac = policy(&wrap(
        "    - domain: app.example.com\n      query:\n        - - operator: not equal\n            key: a\n            value: x\n          - operator: present\n            key: b\n          - operator: not pattern\n            key: c\n            value: '^evil'\n      policy: bypass\n",
    ));
    let check = |q: &'static str| {
        ac.evaluate(&AccessRequest {
            query: Some(q),
            ..req("app.example.com", "/")
        })
        .is_allowed()
    };
    assert!(check("b"));
    assert!(check("a=y&b=1&c=good"));
    assert!(!check("a=x&b=1"));
    assert!(!check("a=y"));
    assert!(!check("b=1&c=evilness"));
}

// === methods ===

#[test]
fn methods_restrict_and_are_uppercased() {
    let ac = policy(&wrap(
        "    - domain: app.example.com\n      methods: [get, HEAD]\n      policy: bypass\n",
    ));
    let with = |m: &'static str| AccessRequest {
        method: m,
        ..req("app.example.com", "/")
    };
    assert!(ac.evaluate(&with("GET")).is_allowed());
    assert!(ac.evaluate(&with("HEAD")).is_allowed());
    assert!(!ac.evaluate(&with("POST")).is_allowed());
    assert!(!ac.evaluate(&with("OPTIONS")).is_allowed());
    assert!(
        !ac.evaluate(&with("get")).is_allowed(),
        "requests arrive uppercase"
    );
    assert!(!ac.evaluate(&with("FOO")).is_allowed());
}

// === networks (class F) ===

#[test]
fn networks_compare_the_given_client_address() {
    let ac = policy(
        "access_control:\n  networks:\n    - name: internal\n      networks: [10.0.0.0/8, '192.168.1.0/24', 'fd00::/8']\n  rules:\n    - domain: app.example.com\n      networks: [internal, 203.0.113.7]\n      policy: bypass\n",
    );
    let from = |a: &str| {
        ac.evaluate(&AccessRequest {
            client_ip: ip(a),
            ..req("app.example.com", "/")
        })
        .is_allowed()
    };
    assert!(from("10.1.2.3"));
    assert!(from("192.168.1.200"));
    assert!(from("fd12::1"));
    assert!(from("203.0.113.7"));
    assert!(!from("203.0.113.8"));
    assert!(!from("192.168.2.1"));
    assert!(!from("11.0.0.1"));
    // IPv4-mapped IPv6 (a dual-stack socket's view of an IPv4 client) compares as IPv4.
    assert!(from("::ffff:10.0.0.1"));
    assert!(from("::ffff:203.0.113.7"));
    assert!(!from("::ffff:11.0.0.1"));
    // ... but an IPv4-compatible or NAT64 form is not the IPv4 address.
    assert!(!from("64:ff9b::a00:1"));
}

#[test]
fn mapped_ranges_in_the_config_are_ipv4_ranges() {
    let ac = policy(&wrap(
        "    - domain: app.example.com\n      networks: ['::ffff:10.0.0.0/104']\n      policy: bypass\n",
    ));
    let from = |a: &str| {
        ac.evaluate(&AccessRequest {
            client_ip: ip(a),
            ..req("app.example.com", "/")
        })
        .is_allowed()
    };
    assert!(from("10.9.9.9"));
    assert!(from("::ffff:10.9.9.9"));
    assert!(!from("11.0.0.1"));
}

// === subjects and levels ===

#[test]
fn subjects_or_of_ands_and_case() {
    let ac = policy(&wrap(
        "    - domain: app.example.com\n      subject:\n        - 'user:Carol'\n        - ['group:dev', 'group:oncall']\n      policy: one_factor\n",
    ));
    let check = |who: &Identity| {
        ac.evaluate(&AccessRequest {
            identity: Some(who),
            ..req("app.example.com", "/")
        })
    };
    let allow = Decision::Allow { rule: rule(0) };
    let deny = Decision::Deny {
        rule: RuleRef::Default,
    };
    assert_eq!(
        check(&user("carol", ONE, &[])),
        allow,
        "user names ignore case"
    );
    assert_eq!(check(&user("bob", ONE, &["dev", "oncall"])), allow);
    assert_eq!(
        check(&user("bob", ONE, &["dev"])),
        deny,
        "AND group needs both"
    );
    assert_eq!(
        check(&user("bob", ONE, &["Dev", "oncall"])),
        deny,
        "groups are exact"
    );
    assert_eq!(check(&user("carola", ONE, &[])), deny);
}

#[test]
fn anonymous_on_subject_rule_logs_in_then_subject_decides() {
    let ac = policy(&wrap(
        "    - domain: admin.example.com\n      subject: 'group:admins'\n      policy: two_factor\n    - domain: admin.example.com\n      policy: deny\n    - domain: wiki.example.com\n      subject: 'group:staff'\n      policy: one_factor\n    - domain: wiki.example.com\n      policy: one_factor\n",
    ));
    assert_eq!(
        ac.evaluate(&req("admin.example.com", "/")),
        Decision::LoginRequired {
            level: TWO,
            rule: rule(0)
        }
    );
    assert_eq!(
        ac.evaluate(&req("wiki.example.com", "/")),
        Decision::LoginRequired {
            level: ONE,
            rule: rule(2)
        }
    );
    let as_ = |host: &'static str, who: &Identity| {
        ac.evaluate(&AccessRequest {
            identity: Some(who),
            ..req(host, "/")
        })
    };
    let admin = user("alice", TWO, &["admins"]);
    let admin_one = user("alice", ONE, &["admins"]);
    let dev = user("bob", TWO, &["dev"]);
    assert_eq!(
        as_("admin.example.com", &admin),
        Decision::Allow { rule: rule(0) }
    );
    assert_eq!(
        as_("admin.example.com", &admin_one),
        Decision::SecondFactorRequired { rule: rule(0) }
    );
    assert_eq!(
        as_("admin.example.com", &dev),
        Decision::Deny { rule: rule(1) },
        "continues"
    );
    assert_eq!(
        as_("wiki.example.com", &dev),
        Decision::Allow { rule: rule(3) },
        "continues"
    );
}

#[test]
fn policies_and_levels() {
    let ac = policy(&wrap(
        "    - domain: by.example.com\n      policy: bypass\n    - domain: no.example.com\n      policy: deny\n    - domain: one.example.com\n      policy: one_factor\n    - domain: two.example.com\n      policy: two_factor\n",
    ));
    let one = user("u", ONE, &[]);
    let two = user("u", TWO, &[]);
    let cases: &[(&str, Option<&Identity>, Decision)] = &[
        ("by.example.com", None, Decision::Bypass { rule: rule(0) }),
        (
            "by.example.com",
            Some(&one),
            Decision::Bypass { rule: rule(0) },
        ),
        ("no.example.com", None, Decision::Deny { rule: rule(1) }),
        (
            "no.example.com",
            Some(&two),
            Decision::Deny { rule: rule(1) },
        ),
        (
            "one.example.com",
            None,
            Decision::LoginRequired {
                level: ONE,
                rule: rule(2),
            },
        ),
        (
            "one.example.com",
            Some(&one),
            Decision::Allow { rule: rule(2) },
        ),
        (
            "one.example.com",
            Some(&two),
            Decision::Allow { rule: rule(2) },
        ),
        (
            "two.example.com",
            None,
            Decision::LoginRequired {
                level: TWO,
                rule: rule(3),
            },
        ),
        (
            "two.example.com",
            Some(&one),
            Decision::SecondFactorRequired { rule: rule(3) },
        ),
        (
            "two.example.com",
            Some(&two),
            Decision::Allow { rule: rule(3) },
        ),
        (
            "else.example.com",
            Some(&two),
            Decision::Deny {
                rule: RuleRef::Default,
            },
        ),
    ];
    for (host, who, want) in cases {
        let got = ac.evaluate(&AccessRequest {
            identity: *who,
            ..req(host, "/")
        });
        assert_eq!(got, *want, "{host} as {who:?}");
    }
}

#[test]
fn default_policies() {
    for (default, anon, one_factor_user) in [
        (
            "bypass",
            Decision::Bypass {
                rule: RuleRef::Default,
            },
            Decision::Bypass {
                rule: RuleRef::Default,
            },
        ),
        (
            "one_factor",
            Decision::LoginRequired {
                level: ONE,
                rule: RuleRef::Default,
            },
            Decision::Allow {
                rule: RuleRef::Default,
            },
        ),
        (
            "two_factor",
            Decision::LoginRequired {
                level: TWO,
                rule: RuleRef::Default,
            },
            Decision::SecondFactorRequired {
                rule: RuleRef::Default,
            },
        ),
        (
            "deny",
            Decision::Deny {
                rule: RuleRef::Default,
            },
            Decision::Deny {
                rule: RuleRef::Default,
            },
        ),
    ] {
        let ac = policy(&format!("access_control:\n  default_policy: {default}\n"));
        assert_eq!(ac.default_policy().as_str(), default);
        assert_eq!(ac.evaluate(&req("x.example.com", "/")), anon);
        let u = user("u", ONE, &[]);
        let r = AccessRequest {
            identity: Some(&u),
            ..req("x.example.com", "/")
        };
        assert_eq!(ac.evaluate(&r), one_factor_user);
    }
    // No access_control at all: deny.
    assert_eq!(
        policy("").evaluate(&req("x", "/")),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
}

// === service tokens ===

#[test]
fn tokens_only_where_named() {
    let ac = policy(
        "access_control:\n  default_policy: one_factor\n  rules:\n    - domain: status.example.com\n      policy: bypass\n    - domain: api.example.com\n      resources: ['^/internal/']\n      policy: deny\n    - domain: api.example.com\n      policy: two_factor\n    - domain: api.example.com\n      subject: ['token:ci', 'service_token:deploy']\n      policy: two_factor\n    - domain: app.example.com\n      subject: [['token:ci', 'group:admins']]\n      policy: one_factor\n    - domain: app.example.com\n      subject: 'user:ci'\n      policy: one_factor\n",
    );
    let ci = token("ci");
    let deploy = token("deploy");
    let other = token("other");
    let as_ = |host: &'static str, path: &'static str, who: &Identity| {
        ac.evaluate(&AccessRequest {
            identity: Some(who),
            ..req(host, path)
        })
    };
    // bypass and deny rules without subjects apply to tokens as to anyone.
    assert_eq!(
        as_("status.example.com", "/", &other),
        Decision::Bypass { rule: rule(0) }
    );
    assert_eq!(
        as_("api.example.com", "/internal/x", &ci),
        Decision::Deny { rule: rule(1) }
    );
    // A two_factor rule that does not name the token does not apply; the naming one does.
    assert_eq!(
        as_("api.example.com", "/", &ci),
        Decision::Allow { rule: rule(3) }
    );
    assert_eq!(
        as_("api.example.com", "/", &deploy),
        Decision::Allow { rule: rule(3) }
    );
    // Not named anywhere: the default one_factor cannot be met by a token.
    assert_eq!(
        as_("api.example.com", "/", &other),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
    // A token never satisfies user: or group: subjects, even in an AND with its own name.
    assert_eq!(
        as_("app.example.com", "/", &ci),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
    // ... and a user named like the token is not the token.
    let ci_user = user("ci", ONE, &[]);
    assert_eq!(
        as_("api.example.com", "/", &ci_user),
        Decision::SecondFactorRequired { rule: rule(2) }
    );
    assert_eq!(
        as_("app.example.com", "/", &ci_user),
        Decision::Allow { rule: rule(5) }
    );
}

// === validation ===

#[test]
fn bypass_with_subject_is_refused() {
    let text = errors(&wrap(
        "    - domain: app.example.com\n      subject: 'group:admins'\n      policy: bypass\n",
    ));
    assert!(
        text.starts_with("access.yml:5:16: error: rule #1 has policy `bypass` and a `subject`"),
        "{text}"
    );
    assert!(text.contains("fix: remove `subject`"), "{text}");
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let text = errors(&wrap(
        "    - domain: app.example.com\n      resources: ['^/(a', '^/ok', '[']\n      methods: [GET, FETCH]\n      networks: [intranet]\n      policy: two-factor\n    - domain: '{user}.example.com'\n      subject: 'admin'\n      policy: one_factor\n    - policy: deny\n",
    ));
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert!(
        lines[0].contains("invalid `resources` regex `^/(a`"),
        "{text}"
    );
    assert!(lines[1].contains("invalid `resources` regex `[`"), "{text}");
    assert!(lines[2].contains("unknown method `FETCH`"), "{text}");
    assert!(lines[3].contains("names the network `intranet`"), "{text}");
    assert!(lines[4].contains("`policy` of rule #1 must be one of deny, bypass, one_factor, two_factor, got `two-factor`"), "{text}");
    assert!(text.contains("did you mean `two_factor`?"), "{text}");
    assert!(
        lines[5].contains("the `{user}` placeholder is not supported"),
        "{text}"
    );
    assert!(lines[6].contains("invalid subject `admin`"), "{text}");
    assert!(lines[7].contains("rule #3 has no `domain`"), "{text}");
}

#[test]
fn unknown_method_suggests_the_near_one() {
    let text = errors(&wrap(
        "    - domain: a.example.com\n      methods: [PSOT]\n      policy: deny\n",
    ));
    assert!(text.contains("did you mean `POST`?"), "{text}");
}

#[test]
fn query_operator_value_mismatches() {
    let text = errors(&wrap(
        "    - domain: a.example.com\n      query:\n        - - operator: present\n            key: a\n            value: x\n          - operator: equal\n            key: b\n          - operator: matches\n            key: c\n            value: x\n          - value: x\n      policy: deny\n",
    ));
    assert!(
        text.contains("the query criterion on `a` has operator `present` and a value"),
        "{text}"
    );
    assert!(
        text.contains("the query criterion on `b` has operator `equal` but no value"),
        "{text}"
    );
    assert!(
        text.contains("the query operator of rule #1 must be one of"),
        "{text}"
    );
    assert!(
        text.contains("a query criterion of rule #1 has no `key`"),
        "{text}"
    );
}

#[test]
fn regex_size_is_limited() {
    let text = errors(&wrap(
        "    - domain: a.example.com\n      resources: ['^(\\w{100}){100}$']\n      policy: deny\n",
    ));
    assert!(text.contains("size limit"), "{text}");
}

// === warnings ===

#[test]
fn unanchored_regexes_warn_with_what_they_also_match() {
    let (_, warnings) = load(&wrap(
        "    - domain_regex: 'app\\.example\\.com'\n      resources: ['/public', '^/ok/']\n      policy: bypass\n",
    ));
    let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(shown[0].contains("`evil-app.example.com`"), "{}", shown[0]);
    assert!(
        shown[0].contains("`app.example.com.evil.example`"),
        "{}",
        shown[0]
    );
    assert!(
        shown[0].contains("fix: anchor it: `^app\\.example\\.com$`"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].contains("`/anything/public` matches too"),
        "{}",
        shown[1]
    );
}

#[test]
fn rules_after_a_domain_only_rule_are_unreachable() {
    let (_, warnings) = load(&wrap(
        "    - domain: '*.example.com'\n      policy: one_factor\n    - domain: app.example.com\n      policy: two_factor\n    - domain: app.example.com\n      policy: bypass\n    - domain: api.example.com\n      subject: 'token:ci'\n      policy: one_factor\n    - domain: other.net\n      policy: deny\n    - domain: other.net\n      methods: [GET]\n      policy: bypass\n",
    ));
    let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    // Rules 3 and 4 stay reachable: service tokens pass rule 1 (a login rule that does not
    // name them) and are decided by a bypass rule, or one that names them.
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].starts_with("access.yml:6:7: warning: rule #2 can never match: rule #1"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].contains("rule #6 can never match: rule #5"),
        "{}",
        shown[1]
    );
}

#[test]
fn oauth2_client_subjects_warn_and_never_match() {
    let (ac, warnings) = load(&wrap(
        "    - domain: a.example.com\n      subject: 'oauth2:client:grafana'\n      policy: one_factor\n",
    ));
    assert_eq!(warnings.len(), 1);
    let u = user("grafana", TWO, &[]);
    let r = AccessRequest {
        identity: Some(&u),
        ..req("a.example.com", "/")
    };
    assert_eq!(
        ac.evaluate(&r),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
}

// === explain ===

#[test]
fn explain_agrees_with_evaluate() {
    let ac = policy(&wrap(
        "    - domain: www.example.com\n      policy: bypass\n    - domain: app.example.com\n      methods: [GET]\n      policy: one_factor\n    - domain: app.example.com\n      subject: 'group:admins'\n      policy: two_factor\n",
    ));
    let bob = user("bob", TWO, &["dev"]);
    for method in ["GET", "POST"] {
        for who in [None, Some(&bob)] {
            let r = AccessRequest {
                method,
                identity: who,
                ..req("app.example.com", "/")
            };
            assert_eq!(ac.explain(&r).decision, ac.evaluate(&r));
        }
    }
    let r = AccessRequest {
        method: "POST",
        identity: Some(&bob),
        ..req("app.example.com", "/")
    };
    let text = ac.explain(&r).to_string();
    assert!(
        text.contains("rule #1 (domain www.example.com): domain did not match app.example.com"),
        "{text}"
    );
    assert!(
        text.contains("rule #2 (domain app.example.com): methods [GET] do not include POST"),
        "{text}"
    );
    assert!(text.contains("rule #3 (domain app.example.com): subject group:admins not met by user bob (two factors, groups: dev)"), "{text}");
    assert!(
        text.contains("by:       default_policy deny (no rule applied) at access.yml:2:19"),
        "{text}"
    );
}

#[test]
fn explain_says_why_a_token_meets_the_default() {
    let ac = policy("access_control:\n  default_policy: one_factor\n");
    let ci = token("ci");
    let r = AccessRequest {
        identity: Some(&ci),
        ..req("app.example.com", "/")
    };
    let explanation = ac.explain(&r);
    assert_eq!(
        explanation.decision,
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
    assert_eq!(
        explanation.decided_by,
        "default_policy one_factor (there are no rules); service tokens cannot log in, so a \
         token is denied"
    );
    let open = policy("access_control:\n  default_policy: bypass\n");
    assert_eq!(
        open.explain(&r).decided_by,
        "default_policy bypass (there are no rules)"
    );
}

#[test]
fn compiled_policy_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<AccessControl>();
    shareable::<crate::config::AccessConfig>();
}

#[test]
fn rule_accessors() {
    let ac = policy(&wrap(
        "    - domain: a.example.com\n      policy: two_factor\n",
    ));
    assert_eq!(ac.rule_count(), 1);
    assert_eq!(ac.rule_policy(0), Some(Policy::TwoFactor));
    assert_eq!(ac.rule_policy(1), None);
    assert_eq!(
        ac.rule_position(0),
        Some(crate::config::Position { line: 4, column: 7 })
    );
    assert_eq!(Decision::Deny { rule: rule(0) }.rule(), rule(0));
    assert_eq!(rule(0).to_string(), "rule #1");
    assert_eq!(RuleRef::Default.to_string(), "default_policy");
}

#[test]
fn policy_names_suggest_the_intended_one() {
    for (written, meant) in [
        ("2fa", "two_factor"),
        ("one-factor", "one_factor"),
        ("Bypass", "bypass"),
        ("dney", "deny"),
    ] {
        let text = errors(&wrap(&format!(
            "    - domain: a.example.com\n      policy: {written}\n"
        )));
        assert!(
            text.contains(&format!("did you mean `{meant}`?")),
            "{written}: {text}"
        );
    }
}

// === identities from providers and the email PIN ===

fn external(email: &str, source: crate::Source, level: AuthLevel, groups: &[&str]) -> Identity {
    Identity {
        subject: Subject::User {
            name: email.into(),
            level,
            source,
        },
        display_name: email.into(),
        email: Some(email.into()),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn corp(email: &str, groups: &[&str]) -> Identity {
    external(email, crate::Source::Oidc("corp".into()), ONE, groups)
}

fn emailed(email: &str) -> Identity {
    external(email, crate::Source::EmailPin, ONE, &[])
}

fn as_who<'a>(host: &'a str, who: &'a Identity) -> AccessRequest<'a> {
    AccessRequest {
        identity: Some(who),
        ..req(host, "/")
    }
}

const SOURCES: &str = r#"    - domain: corp.example.com
      policy: one_factor
      subject: ["provider:corp"]
    - domain: team.example.com
      policy: one_factor
      subject: [["provider:corp", "group:admins"]]
    - domain: mail.example.com
      policy: one_factor
      subject: ["email_domain:example.com"]
    - domain: bob.example.com
      policy: one_factor
      subject: ["email:Bob@Partner.net"]
    - domain: users.example.com
      policy: one_factor
      subject: ["provider:users"]
    - domain: admin.example.com
      policy: one_factor
      subject: ["group:admins"]
    - domain: "*.example.com"
      policy: one_factor
"#;

#[test]
fn provider_and_pin_identities_meet_the_subjects_that_name_them() {
    let p = policy(&wrap(SOURCES));
    let alice = corp("alice@example.com", &["admins"]);
    let dave = corp("dave@example.com", &["dev"]);
    let carol = emailed("carol@example.com");
    let bob = emailed("bob@partner.net");
    let local = user("alice", ONE, &["admins"]);
    let allow = |i| Decision::Allow { rule: rule(i) };
    assert_eq!(p.evaluate(&as_who("corp.example.com", &alice)), allow(0));
    assert_eq!(p.evaluate(&as_who("team.example.com", &alice)), allow(1));
    assert_eq!(p.evaluate(&as_who("mail.example.com", &carol)), allow(2));
    assert_eq!(p.evaluate(&as_who("mail.example.com", &dave)), allow(2));
    assert_eq!(p.evaluate(&as_who("bob.example.com", &bob)), allow(3));
    assert_eq!(p.evaluate(&as_who("users.example.com", &local)), allow(4));
    // Group from the provider: yes; a PIN carries no groups.
    assert_eq!(p.evaluate(&as_who("admin.example.com", &alice)), allow(5));
    // Fail closed: rules that name nobody (the wildcard) and the default admit only the
    // users file, so a provider or PIN identity that no subject names is refused.
    let deny_default = Decision::Deny {
        rule: RuleRef::Default,
    };
    assert_eq!(
        p.evaluate(&as_who("corp.example.com", &carol)),
        deny_default
    );
    assert_eq!(p.evaluate(&as_who("team.example.com", &dave)), deny_default);
    assert_eq!(
        p.evaluate(&as_who("users.example.com", &alice)),
        deny_default
    );
    assert_eq!(p.evaluate(&as_who("app.example.com", &alice)), deny_default);
    assert_eq!(
        p.evaluate(&as_who("admin.example.com", &carol)),
        deny_default
    );
    // The users-file user still gets the wildcard rule.
    assert_eq!(p.evaluate(&as_who("corp.example.com", &local)), allow(6));
    let open = policy("access_control:\n  default_policy: one_factor\n");
    assert_eq!(
        open.evaluate(&as_who("any.example.com", &carol)),
        deny_default
    );
    assert_eq!(
        open.evaluate(&as_who("any.example.com", &local)),
        Decision::Allow {
            rule: RuleRef::Default
        }
    );
}

#[test]
fn user_subjects_and_domain_regex_captures_are_the_users_files() {
    let p = policy(&wrap(
        "    - domain: a.example.com\n      policy: one_factor\n      subject: [\"user:alice@example.com\"]\n    - domain_regex: '^(?P<User>\\w+)\\.example\\.com$'\n      policy: one_factor\n",
    ));
    // A provider that reports the name of a local user does not become that user.
    let alias = corp("alice@example.com", &[]);
    assert_eq!(
        p.evaluate(&as_who("a.example.com", &alias)),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
    let alice = corp("alice", &[]);
    assert_eq!(
        p.evaluate(&as_who("alice.example.com", &alice)),
        Decision::Deny {
            rule: RuleRef::Default
        }
    );
}

#[test]
fn a_provider_that_counts_two_factors_meets_two_factor_rules() {
    let p = policy(&wrap(
        "    - domain: git.example.com\n      policy: two_factor\n      subject: [\"provider:corp\"]\n",
    ));
    let one = corp("a@example.com", &[]);
    let two = external(
        "a@example.com",
        crate::Source::Oidc("corp".into()),
        TWO,
        &[],
    );
    assert_eq!(
        p.evaluate(&as_who("git.example.com", &one)),
        Decision::SecondFactorRequired { rule: rule(0) }
    );
    assert_eq!(
        p.evaluate(&as_who("git.example.com", &two)),
        Decision::Allow { rule: rule(0) }
    );
}

#[test]
fn malformed_provider_subjects_are_refused_with_the_grammar() {
    for bad in [
        "email:alice",
        "email:@example.com",
        "email:alice@",
        "email_domain:*.example.com",
        "email_domain:a@b",
        "provider:Corp SSO",
    ] {
        let e = errors(&wrap(&format!(
            "    - domain: a.example.com\n      policy: one_factor\n      subject: [\"{bad}\"]\n"
        )));
        assert!(
            e.contains("invalid subject") && e.contains("email_domain:"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn explain_names_the_source_and_the_fail_closed_rule() {
    let p = policy(&wrap(SOURCES));
    let carol = emailed("carol@example.com");
    let text = p.explain(&as_who("app.example.com", &carol)).to_string();
    assert!(
        text.contains("user carol@example.com from an email PIN"),
        "{text}"
    );
    assert!(text.contains("admits users-file users only"), "{text}");
}
