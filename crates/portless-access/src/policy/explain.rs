//! Why the policy decided what it did: for `portless policy test URL --user U ...`.
//!
//! The explanation walks the rules one by one, like [`AccessControl::evaluate`], and keeps
//! for each rule that did not apply the first criterion that failed and why. It allocates
//! freely: it is for people, not for the request path.

use std::fmt;

use super::rule::{Miss, Outcome, Rule};
use super::{AccessControl, Decision, Policy, RuleRef};
use crate::config::Position;
use crate::identity::{AccessRequest, AuthLevel, Identity, Source, Subject};

/// The decision for one request, the rule that took it, and why every earlier rule did
/// not. Its `Display` is the output of `portless policy test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The decision, as [`AccessControl::evaluate`] gives it.
    pub decision: Decision,
    /// The request, in one line (`GET app.example.com/path?q from 10.0.0.1 as user bob`).
    pub request: String,
    /// The deciding rule's summary (`rule #3 (domain admin.example.com, ...)`), or the
    /// default policy's.
    pub decided_by: String,
    /// Where the deciding rule (or `default_policy`) is written, `file:line:col`.
    pub location: Option<String>,
    /// Every earlier rule, in order, with the reason it did not apply.
    pub skipped: Vec<SkippedRule>,
}

/// A rule that was tried and did not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRule {
    /// 0-based rule index.
    pub index: usize,
    /// What the rule is about, e.g. `domain admin.example.com`.
    pub summary: String,
    /// The first criterion that did not match, and why.
    pub reason: String,
}

impl AccessControl {
    /// Like [`AccessControl::evaluate`], and also says why each earlier rule did not apply.
    pub fn explain(&self, request: &AccessRequest<'_>) -> Explanation {
        let mut skipped = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            match rule.check(index, request) {
                Outcome::Decide(decision) => {
                    return Explanation {
                        decision,
                        request: describe_request(request),
                        decided_by: format!("rule #{} ({})", index + 1, full_summary(rule)),
                        location: self.location(rule.position),
                        skipped,
                    };
                }
                Outcome::Skip(miss) => skipped.push(SkippedRule {
                    index,
                    summary: short_summary(rule),
                    reason: reason(rule, miss, request),
                }),
            }
        }
        let decision = self.default_decision(request);
        debug_assert_eq!(decision.rule(), RuleRef::Default);
        let mut decided_by = format!("default_policy {}", self.default_policy);
        decided_by.push_str(if self.rules.is_empty() {
            " (there are no rules)"
        } else {
            " (no rule applied)"
        });
        if matches!(self.default_policy, Policy::OneFactor | Policy::TwoFactor)
            && matches!(
                request.identity.map(|i| &i.subject),
                Some(Subject::ServiceToken { .. })
            )
        {
            decided_by.push_str("; service tokens cannot log in, so a token is denied");
        }
        if matches!(self.default_policy, Policy::OneFactor | Policy::TwoFactor)
            && request.identity.is_some_and(Identity::is_external)
        {
            decided_by.push_str(
                "; it admits users-file users only, so an identity from a provider or an email PIN is denied",
            );
        }
        Explanation {
            decision,
            request: describe_request(request),
            decided_by,
            location: self.location(self.default_position),
            skipped,
        }
    }

    fn location(&self, position: Option<Position>) -> Option<String> {
        position.map(|p| format!("{}:{p}", self.file.display()))
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "request:  {}", self.request)?;
        writeln!(f, "decision: {}", self.decision)?;
        write!(f, "by:       {}", self.decided_by)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        writeln!(f)?;
        if self.skipped.is_empty() {
            return Ok(());
        }
        writeln!(f, "earlier rules that did not apply:")?;
        for skipped in &self.skipped {
            writeln!(
                f,
                "  rule #{} ({}): {}",
                skipped.index + 1,
                skipped.summary,
                skipped.reason
            )?;
        }
        Ok(())
    }
}

// === summaries ===

/// `GET app.example.com/path?q from 10.0.0.1 as user bob (one factor, groups: dev)`.
fn describe_request(request: &AccessRequest<'_>) -> String {
    let query = request.query.map(|q| format!("?{q}")).unwrap_or_default();
    let who = match request.identity {
        None => "anonymous".to_owned(),
        Some(identity) => describe_identity(identity),
    };
    format!(
        "{} {}{}{} from {} as {who}",
        request.method, request.host, request.path, query, request.client_ip
    )
}

fn describe_identity(identity: &Identity) -> String {
    match &identity.subject {
        Subject::User {
            name,
            level,
            source,
        } => {
            let level = match level {
                AuthLevel::OneFactor => "one factor",
                AuthLevel::TwoFactor => "two factors",
            };
            let from = match source {
                Source::UsersFile => String::new(),
                Source::Oidc(provider) => format!(" from provider {provider}"),
                Source::EmailPin => " from an email PIN".to_owned(),
            };
            format!("user {name}{from} ({level}, groups: {})", groups(identity))
        }
        Subject::ServiceToken { name, .. } => format!("service token {name}"),
    }
}

fn groups(identity: &Identity) -> String {
    if identity.groups.is_empty() {
        "none".to_owned()
    } else {
        identity.groups.join(", ")
    }
}

/// The rule's host criteria: `domain admin.example.com`, `domain [a, b]`,
/// `domain_regex ^x$`.
fn short_summary(rule: &Rule) -> String {
    let mut parts = Vec::new();
    if !rule.domains.is_empty() {
        let domains: Vec<String> = rule.domains.iter().map(ToString::to_string).collect();
        parts.push(format!("domain {}", list(&domains)));
    }
    if !rule.domain_regexes.is_empty() {
        let regexes: Vec<String> = rule
            .domain_regexes
            .iter()
            .map(|r| r.regex.as_str().to_owned())
            .collect();
        parts.push(format!("domain_regex {}", list(&regexes)));
    }
    parts.join(", ")
}

/// Every criterion the rule has, and its policy.
fn full_summary(rule: &Rule) -> String {
    let mut parts = vec![short_summary(rule)];
    if !rule.resources.is_empty() {
        parts.push(format!("resources {}", resources(rule)));
    }
    if !rule.query.is_empty() {
        parts.push(format!("query {}", query(rule)));
    }
    if let Some(methods) = &rule.methods {
        parts.push(format!(
            "methods [{}]",
            methods.names().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(networks) = &rule.networks {
        parts.push(format!("networks [{}]", networks.written.join(", ")));
    }
    if !rule.subjects.is_empty() {
        parts.push(format!("subject {}", subjects(rule)));
    }
    parts.push(format!("policy {}", rule.policy));
    parts.join(", ")
}

/// One item as is, several in brackets.
fn list(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn resources(rule: &Rule) -> String {
    let all: Vec<&str> = rule.resources.iter().map(|r| r.as_str()).collect();
    format!("[{}]", all.join(", "))
}

fn query(rule: &Rule) -> String {
    let groups: Vec<String> = rule
        .query
        .iter()
        .map(|group| {
            let all: Vec<String> = group.iter().map(ToString::to_string).collect();
            all.join(" and ")
        })
        .collect();
    groups.join(" or ")
}

/// `group:admins or user:carol`; an AND group in brackets: `[group:dev and user:bob]`.
fn subjects(rule: &Rule) -> String {
    let groups: Vec<String> = rule
        .subjects
        .iter()
        .map(|group| match group.as_slice() {
            [one] => one.to_string(),
            all => {
                let all: Vec<String> = all.iter().map(ToString::to_string).collect();
                format!("[{}]", all.join(" and "))
            }
        })
        .collect();
    groups.join(" or ")
}

// === reasons ===

fn reason(rule: &Rule, miss: Miss, request: &AccessRequest<'_>) -> String {
    match miss {
        Miss::Domain => match (rule.domains.is_empty(), rule.domain_regexes.is_empty()) {
            (false, true) => format!("domain did not match {}", request.host),
            (true, false) => format!("domain_regex did not match {}", request.host),
            _ => format!("neither domain nor domain_regex matched {}", request.host),
        },
        Miss::DomainSubject => format!(
            "domain_regex matched {}, but the user or group it captured is not {}",
            request.host,
            request.identity.map_or_else(String::new, describe_identity)
        ),
        Miss::Resources => format!(
            "resources {} do not match the path {}",
            resources(rule),
            request.path
        ),
        Miss::Query => match request.query {
            Some(q) => format!("query {} not met by ?{q}", query(rule)),
            None => format!("query {} not met by a request without a query", query(rule)),
        },
        Miss::Method => {
            let methods = rule
                .methods
                .as_ref()
                .map(|m| m.names().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            format!("methods [{methods}] do not include {}", request.method)
        }
        Miss::Network => {
            let written = rule
                .networks
                .as_ref()
                .map(|n| n.written.join(", "))
                .unwrap_or_default();
            format!(
                "networks [{written}] do not contain {}",
                request.client_ip.to_canonical()
            )
        }
        Miss::Subject => format!(
            "subject {} not met by {}",
            subjects(rule),
            request.identity.map_or_else(String::new, describe_identity)
        ),
        Miss::ExternalNotNamed => format!(
            "policy {} without a subject admits users-file users only; {} needs a rule whose \
             subject names it (email:, email_domain:, group: or provider:)",
            rule.policy,
            request.identity.map_or_else(String::new, describe_identity)
        ),
        Miss::TokenNotNamed => {
            let name = match request.identity.map(|i| &i.subject) {
                Some(Subject::ServiceToken { name, .. }) => name.as_str(),
                _ => "",
            };
            format!(
                "policy {} does not admit service tokens unless its subject names them \
                 (token:{name})",
                rule.policy
            )
        }
    }
}
