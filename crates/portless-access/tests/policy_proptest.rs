//! Evaluation never panics, whatever the host, path, query, method and address, and
//! `explain` always agrees with `evaluate`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::IpAddr;
use std::sync::OnceLock;

use portless_access::config::AccessConfig;
use portless_access::policy::AccessControl;
use portless_access::{AccessRequest, AuthLevel, Identity, Source, Subject};
use proptest::prelude::*;

fn policy() -> &'static AccessControl {
    static POLICY: OnceLock<AccessControl> = OnceLock::new();
    POLICY.get_or_init(|| {
        AccessConfig::from_yaml(
            r#"
access_control:
  default_policy: one_factor
  networks:
    - name: lan
      networks: [10.0.0.0/8, "fd00::/8"]
  rules:
    - domain: www.example.com
      policy: bypass
    - domain: ["*.example.com", Ünï.example]
      resources: ['^/api/', '^/(?P<x>[a-z]+)/\d+$']
      methods: [GET, POST]
      networks: [lan, 192.0.2.1]
      policy: two_factor
    - domain_regex: '^(?P<User>\w+)\.home\.example\.com$'
      policy: one_factor
    - domain_regex: '^(?P<Group>[^.]+)\.team\.example\.com$'
      query:
        - - {operator: present, key: a}
          - {operator: not pattern, key: 'b c', value: '^x'}
        - - {key: '%', value: '+'}
      policy: deny
    - domain: app.example.com
      subject: [["user:alice", "group:dev"], "token:ci"]
      policy: two_factor
    - domain: ["*.example.com", mail.x.org]
      subject: [["provider:corp", "group:dev"], "email_domain:example.com", "email:a@x.org", "provider:users"]
      methods: [GET]
      policy: one_factor
"#,
            "prop.yml",
        )
        .unwrap()
        .config
        .access_control
    })
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::UsersFile),
        Just(Source::EmailPin),
        "(corp|other)".prop_map(Source::Oidc),
    ]
}

fn identity() -> impl Strategy<Value = Option<Identity>> {
    prop_oneof![
        Just(None),
        (
            "\\PC{0,12}",
            any::<bool>(),
            proptest::collection::vec("\\PC{0,8}", 0..3),
            source(),
            proptest::option::of("[a-z]{0,5}@(example\\.com|x\\.org|)"),
        )
            .prop_map(|(name, two, groups, source, email)| Some(Identity {
                subject: Subject::User {
                    name,
                    level: if two {
                        AuthLevel::TwoFactor
                    } else {
                        AuthLevel::OneFactor
                    },
                    source,
                },
                display_name: String::new(),
                email,
                groups,
            })),
        "\\PC{0,8}".prop_map(|name| Some(Identity {
            subject: Subject::ServiceToken {
                name,
                client_id: "id".into()
            },
            display_name: String::new(),
            email: None,
            groups: Vec::new(),
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn evaluation_never_panics(
        host in prop_oneof!["\\PC{0,40}", "[a-z.]{0,20}\\.example\\.com", "[a-z]{1,8}\\.(home|team)\\.example\\.com"],
        path in prop_oneof!["\\PC{0,60}", "/[a-z/0-9]{0,30}"],
        query in proptest::option::of("[a-z%+=&0-9 ]{0,40}|\\PC{0,40}"),
        method in "[A-Z]{0,8}|\\PC{0,5}",
        ip in any::<IpAddr>(),
        who in identity(),
    ) {
        let request = AccessRequest {
            host: &host,
            path: &path,
            query: query.as_deref(),
            method: &method,
            client_ip: ip,
            identity: who.as_ref(),
        };
        let decision = policy().evaluate(&request);
        let explanation = policy().explain(&request);
        prop_assert_eq!(explanation.decision, decision);
        let _ = explanation.to_string();
    }
}
