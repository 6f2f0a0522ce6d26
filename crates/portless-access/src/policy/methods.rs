//! What the portal may offer: which sign-in methods could lead to access for a target, and
//! whether an address could be allowed at all (before a PIN is mailed to it).
//!
//! Both are upper bounds computed from the rules alone, without an identity: offering a
//! method that then ends in "access denied" is harmless, hiding one that would work is not
//! (and the page the email PIN answers with is the same either way).

use crate::identity::{AccessRequest, Identity};

use super::rule::{Outcome, Rule, SubjectMatcher};
use super::{AccessControl, Policy};

/// The sign-in methods that could be accepted for one target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginMethods {
    /// A users-file user (password, passkey).
    pub users_file: bool,
    /// An address proven by an emailed PIN.
    pub email_pin: bool,
    /// These upstream providers, in the order they were given.
    pub oidc: Vec<String>,
}

impl LoginMethods {
    /// Whether no method could be accepted.
    pub fn is_empty(&self) -> bool {
        !self.users_file && !self.email_pin && self.oidc.is_empty()
    }
}

/// One source of identities, for the satisfiability check of a subject.
#[derive(Clone, Copy)]
enum Source<'a> {
    UsersFile,
    EmailPin,
    Oidc(&'a str),
}

impl AccessControl {
    /// Which sources could be accepted for an anonymous `request` (its `identity` is
    /// ignored), given the configured OIDC `providers`.
    ///
    /// Walks the rules in order as evaluation would: a rule the request meets on everything
    /// but its subject adds the sources one of its subject branches could be met by, and
    /// evaluation goes on (a subject mismatch moves on to later rules); a subject-less
    /// login rule adds the users file and ends the walk, as do `deny` and `bypass` (nothing
    /// to sign in for). The default policy, if reached and not `deny`/`bypass`, adds the
    /// users file. A rule whose subjects all name `provider:corp` therefore offers only corp.
    pub fn login_methods(&self, request: &AccessRequest<'_>, providers: &[&str]) -> LoginMethods {
        let anonymous = AccessRequest {
            identity: None,
            ..*request
        };
        let mut methods = LoginMethods::default();
        for (index, rule) in self.rules.iter().enumerate() {
            if let Outcome::Skip(_) = rule.check(index, &anonymous) {
                continue;
            }
            match rule.policy {
                Policy::Deny | Policy::Bypass if rule.subjects.is_empty() => return methods,
                Policy::Deny | Policy::Bypass => continue,
                Policy::OneFactor | Policy::TwoFactor if rule.subjects.is_empty() => {
                    methods.users_file = true;
                    return methods;
                }
                Policy::OneFactor | Policy::TwoFactor => add_sources(rule, providers, &mut methods),
            }
        }
        if matches!(self.default_policy, Policy::OneFactor | Policy::TwoFactor) {
            methods.users_file = true;
        }
        methods
    }

    /// Whether some rule that is not `deny` has a subject branch `identity` meets, whatever
    /// the host, path or network: the test a PIN request must pass before a mail goes out.
    pub fn could_allow(&self, identity: &Identity) -> bool {
        self.rules.iter().any(|rule| {
            rule.policy != Policy::Deny
                && !rule.subjects.is_empty()
                && rule.matches_subjects(identity)
        })
    }
}

/// Adds the sources that could meet one of `rule`'s subject branches.
fn add_sources(rule: &Rule, providers: &[&str], methods: &mut LoginMethods) {
    let possible = |source: Source<'_>| {
        rule.subjects
            .iter()
            .any(|branch| branch.iter().all(|subject| could_meet(subject, source)))
    };
    methods.users_file |= possible(Source::UsersFile);
    methods.email_pin |= possible(Source::EmailPin);
    for provider in providers {
        if possible(Source::Oidc(provider)) && !methods.oidc.iter().any(|p| p == provider) {
            methods.oidc.push((*provider).to_owned());
        }
    }
}

/// Whether an identity from `source` could meet `subject` (for some user of that source).
fn could_meet(subject: &SubjectMatcher, source: Source<'_>) -> bool {
    match (subject, source) {
        (SubjectMatcher::User(_), Source::UsersFile) => true,
        (SubjectMatcher::User(_), _) => false,
        (SubjectMatcher::Group(_), Source::EmailPin) => false,
        (SubjectMatcher::Group(_), _) => true,
        (SubjectMatcher::Email(_) | SubjectMatcher::EmailDomain(_), _) => true,
        (SubjectMatcher::Provider(want), Source::UsersFile) => want == "users",
        (SubjectMatcher::Provider(want), Source::EmailPin) => want == "email",
        (SubjectMatcher::Provider(want), Source::Oidc(name)) => want == name,
        (SubjectMatcher::Token(_) | SubjectMatcher::Never(_), _) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::AuthLevel;
    use crate::config::AccessConfig;
    use crate::identity::{Source as IdSource, Subject};

    const RULES: &str = r#"
access_control:
  default_policy: deny
  rules:
    - domain: www.example.com
      policy: bypass
    - domain: corp.example.com
      policy: one_factor
      subject: ["provider:corp"]
    - domain: team.example.com
      policy: two_factor
      subject: [["provider:corp", "group:admins"], "user:alice"]
    - domain: mail.example.com
      policy: one_factor
      subject: ["email_domain:example.com"]
    - domain: mixed.example.com
      policy: one_factor
      subject: ["group:staff"]
    - domain: mixed.example.com
      policy: one_factor
      subject: ["email:bob@partner.net"]
    - domain: app.example.com
      policy: one_factor
    - domain: bots.example.com
      policy: one_factor
      subject: ["token:ci"]
"#;

    fn policy(yaml: &str) -> AccessControl {
        AccessConfig::from_yaml(yaml, "access.yml")
            .unwrap()
            .config
            .access_control
    }

    fn methods(p: &AccessControl, host: &str) -> LoginMethods {
        p.login_methods(
            &AccessRequest {
                host,
                path: "/",
                query: None,
                method: "GET",
                client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                identity: None,
            },
            &["corp", "google"],
        )
    }

    fn m(users_file: bool, email_pin: bool, oidc: &[&str]) -> LoginMethods {
        LoginMethods {
            users_file,
            email_pin,
            oidc: oidc.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn the_portal_offers_what_the_targets_rules_could_accept() {
        let p = policy(RULES);
        assert_eq!(methods(&p, "www.example.com"), m(false, false, &[]));
        // A policy can force one provider.
        assert_eq!(methods(&p, "corp.example.com"), m(false, false, &["corp"]));
        assert_eq!(methods(&p, "team.example.com"), m(true, false, &["corp"]));
        assert_eq!(
            methods(&p, "mail.example.com"),
            m(true, true, &["corp", "google"])
        );
        // Evaluation goes past a subject mismatch: both rules for the host count.
        assert_eq!(
            methods(&p, "mixed.example.com"),
            m(true, true, &["corp", "google"])
        );
        assert_eq!(methods(&p, "app.example.com"), m(true, false, &[]));
        assert!(methods(&p, "bots.example.com").is_empty());
        assert!(methods(&p, "unknown.example.com").is_empty());
        let open = policy("access_control:\n  default_policy: one_factor\n");
        assert_eq!(methods(&open, "any.example.com"), m(true, false, &[]));
    }

    fn pin(email: &str) -> Identity {
        Identity {
            subject: Subject::User {
                name: email.to_owned(),
                level: AuthLevel::OneFactor,
                source: IdSource::EmailPin,
            },
            display_name: email.to_owned(),
            email: Some(email.to_owned()),
            groups: Vec::new(),
        }
    }

    #[test]
    fn a_pin_goes_only_to_addresses_some_rule_could_allow() {
        let p = policy(RULES);
        assert!(p.could_allow(&pin("carol@example.com")));
        assert!(p.could_allow(&pin("Bob@Partner.net")));
        assert!(!p.could_allow(&pin("bob@other.net")));
        // Subdomains are not the domain; a look-alike is not the address.
        assert!(!p.could_allow(&pin("eve@evil.example.com")));
        assert!(!p.could_allow(&pin("bob@partner.net.evil")));
        // Subject-less rules and the default policy never count for a PIN.
        let open = policy(
            "access_control:\n  default_policy: one_factor\n  rules:\n    - domain: a.example.com\n      policy: one_factor\n",
        );
        assert!(!open.could_allow(&pin("anyone@example.com")));
        // A deny rule naming the address does not make it allowed.
        let denied = policy(
            "access_control:\n  rules:\n    - domain: a.example.com\n      policy: deny\n      subject: [\"email:x@example.com\"]\n",
        );
        assert!(!denied.could_allow(&pin("x@example.com")));
    }
}
