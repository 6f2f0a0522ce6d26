//! A compiled rule and how it matches a request.
//!
//! Every criterion is stored in the form the request is compared in: domains canonical,
//! methods as a bit set, networks parsed (IPv4-mapped IPv6 ranges as IPv4), user names
//! lowercase. Matching a request is then comparisons and regex searches on borrowed data.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;

use super::{Decision, Policy, RuleRef};
use crate::config::Position;
use crate::identity::{AccessRequest, AuthLevel, Identity, Source, Subject};

// === Rule ===

/// One compiled entry of `access_control.rules`.
#[derive(Debug)]
pub(crate) struct Rule {
    /// Where the rule starts in the file.
    pub position: Option<Position>,
    /// `domain` entries (any of them, or any `domain_regex`, matches).
    pub domains: Vec<DomainPattern>,
    /// `domain_regex` entries.
    pub domain_regexes: Vec<DomainRegex>,
    /// `resources`: any of them, searched in the canonical path.
    pub resources: Vec<Regex>,
    /// `query`: any of the groups, each group all of its criteria.
    pub query: Vec<Vec<QueryCriterion>>,
    /// `methods`, if given.
    pub methods: Option<MethodSet>,
    /// `networks`, if given.
    pub networks: Option<Networks>,
    /// `subject`: any of the groups, each group all of its subjects.
    pub subjects: Vec<Vec<SubjectMatcher>>,
    /// What the rule does.
    pub policy: Policy,
}

/// What checking one rule against a request gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The rule applies and decides.
    Decide(Decision),
    /// The rule does not apply; evaluation goes on. Says which criterion failed first.
    Skip(Miss),
}

/// The first criterion of a rule that a request did not meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Miss {
    /// Neither `domain` nor `domain_regex` matched the host.
    Domain,
    /// A `domain_regex` with `User`/`Group` groups matched the host, but what it captured
    /// is not this identity's name or one of its groups.
    DomainSubject,
    /// No `resources` regex matched the path.
    Resources,
    /// No `query` group was met.
    Query,
    /// The method is not in `methods`.
    Method,
    /// The client address is not in `networks`.
    Network,
    /// The identity does not meet `subject`.
    Subject,
    /// A service token on a `one_factor`/`two_factor` rule that does not name it.
    TokenNotNamed,
    /// A person from a provider or an email PIN on a `one_factor`/`two_factor` rule without
    /// a subject (such rules admit users-file users only).
    ExternalNotNamed,
}

/// How the host criteria matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostMatch {
    No,
    /// Matched by a `domain_regex` whose groups need an identity, and there is none.
    NeedsSubject,
    /// Matched by such a regex, but the identity is not what it captured.
    SubjectNotMet,
    Yes,
}

impl Rule {
    /// Checks the rule against a request; `index` is the rule's 0-based number.
    pub fn check(&self, index: usize, request: &AccessRequest<'_>) -> Outcome {
        let host = self.match_host(request.host, request.identity);
        if host != HostMatch::No
            && self.matches_resources(request.path)
            && self.repeats_a_query_key(request.query)
        {
            // A parameter this rule judges appears twice: one application reads the first
            // value, another the last, so neither reading can be trusted. Deny.
            return Outcome::Decide(Decision::Deny {
                rule: RuleRef::Rule(index),
            });
        }
        let miss = match host {
            HostMatch::No => Some(Miss::Domain),
            _ if !self.matches_resources(request.path) => Some(Miss::Resources),
            _ if !self.matches_query(request.query) => Some(Miss::Query),
            _ if !self.matches_method(request.method) => Some(Miss::Method),
            _ if !self.matches_network(request.client_ip) => Some(Miss::Network),
            _ => None,
        };
        if let Some(miss) = miss {
            return Outcome::Skip(miss);
        }
        let rule = RuleRef::Rule(index);
        let Some(identity) = request.identity else {
            // The incumbent's rule: an anonymous request meeting a rule with subjects is
            // sent to log in; after login the subject decides.
            if host == HostMatch::NeedsSubject || !self.subjects.is_empty() {
                let level = self.policy.login_level();
                return Outcome::Decide(Decision::LoginRequired { level, rule });
            }
            return Outcome::Decide(apply_policy(self.policy, rule, None, false));
        };
        if host == HostMatch::SubjectNotMet {
            return Outcome::Skip(Miss::DomainSubject);
        }
        if !self.subjects.is_empty() && !self.matches_subjects(identity) {
            return Outcome::Skip(Miss::Subject);
        }
        // Fail closed for people from other sources: a rule that names nobody was written
        // for the users file, so only a subject they meet admits them.
        if identity.is_external()
            && self.subjects.is_empty()
            && matches!(self.policy, Policy::OneFactor | Policy::TwoFactor)
        {
            return Outcome::Skip(Miss::ExternalNotNamed);
        }
        let is_token = matches!(identity.subject, Subject::ServiceToken { .. });
        // Only `token:` subjects can be met by a token, so a rule with subjects that a
        // token got past names it.
        let names_token = is_token && !self.subjects.is_empty();
        if is_token && !names_token && matches!(self.policy, Policy::OneFactor | Policy::TwoFactor)
        {
            return Outcome::Skip(Miss::TokenNotNamed);
        }
        Outcome::Decide(apply_policy(self.policy, rule, Some(identity), names_token))
    }

    fn match_host(&self, host: &str, identity: Option<&Identity>) -> HostMatch {
        if self.domains.iter().any(|d| d.matches(host)) {
            return HostMatch::Yes;
        }
        let mut best = HostMatch::No;
        for regex in &self.domain_regexes {
            match regex.matches(host, identity) {
                HostMatch::Yes => return HostMatch::Yes,
                HostMatch::NeedsSubject => best = HostMatch::NeedsSubject,
                HostMatch::SubjectNotMet if best == HostMatch::No => {
                    best = HostMatch::SubjectNotMet
                }
                _ => {}
            }
        }
        best
    }

    pub fn matches_resources(&self, path: &str) -> bool {
        self.resources.is_empty() || self.resources.iter().any(|r| r.is_match(path))
    }

    pub fn matches_query(&self, query: Option<&str>) -> bool {
        self.query.is_empty()
            || self
                .query
                .iter()
                .any(|group| group.iter().all(|c| c.matches(query)))
    }

    /// Whether the request repeats a parameter one of this rule's `query` criteria reads.
    pub fn repeats_a_query_key(&self, query: Option<&str>) -> bool {
        self.query
            .iter()
            .flatten()
            .any(|criterion| value_count(query, &criterion.key) > 1)
    }

    pub fn matches_method(&self, method: &str) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(method))
    }

    pub fn matches_network(&self, ip: IpAddr) -> bool {
        self.networks.as_ref().is_none_or(|n| n.contains(ip))
    }

    pub fn matches_subjects(&self, identity: &Identity) -> bool {
        self.subjects
            .iter()
            .any(|group| group.iter().all(|s| s.is_met_by(identity)))
    }

    /// Whether the rule has no criterion but its domains (and no `domain_regex`): it takes
    /// every request for those domains.
    pub fn is_domain_only(&self) -> bool {
        self.domain_regexes.is_empty()
            && self.resources.is_empty()
            && self.query.is_empty()
            && self.methods.is_none()
            && self.networks.is_none()
            && self.subjects.is_empty()
    }

    /// Whether a service token can ever be decided by this rule.
    pub fn can_decide_for_tokens(&self) -> bool {
        if self.subjects.is_empty() {
            matches!(self.policy, Policy::Bypass | Policy::Deny)
        } else {
            self.subjects
                .iter()
                .any(|g| g.iter().all(|s| matches!(s, SubjectMatcher::Token(_))))
        }
    }
}

/// What `policy` decides once a rule applies to `identity` (or for the default policy).
/// `names_token`: the rule named the service token presenting the request.
pub(crate) fn apply_policy(
    policy: Policy,
    rule: RuleRef,
    identity: Option<&Identity>,
    names_token: bool,
) -> Decision {
    match policy {
        Policy::Bypass => return Decision::Bypass { rule },
        Policy::Deny => return Decision::Deny { rule },
        Policy::OneFactor | Policy::TwoFactor => {}
    }
    let Some(identity) = identity else {
        let level = policy.login_level();
        return Decision::LoginRequired { level, rule };
    };
    if identity.is_external() && rule == RuleRef::Default {
        // The default policy names nobody: it admits users-file users only.
        return Decision::Deny { rule };
    }
    match identity.subject {
        Subject::ServiceToken { .. } if names_token => Decision::Allow { rule },
        // A token reaching a login policy that does not name it (the default policy):
        // tokens cannot log in, so it is refused.
        Subject::ServiceToken { .. } => Decision::Deny { rule },
        Subject::User {
            level: AuthLevel::OneFactor,
            ..
        } if policy == Policy::TwoFactor => Decision::SecondFactorRequired { rule },
        Subject::User { .. } => Decision::Allow { rule },
    }
}

// === DomainPattern ===

/// A canonical `domain` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DomainPattern {
    /// One host.
    Exact(String),
    /// `*.suffix`: any host below `suffix`, at any depth, not `suffix` itself.
    Below(String),
}

impl DomainPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            DomainPattern::Exact(exact) => exact == host,
            DomainPattern::Below(suffix) => is_strictly_below(host, suffix),
        }
    }

    /// Whether every host this pattern matches is also matched by `other`.
    pub fn is_covered_by(&self, other: &DomainPattern) -> bool {
        match (self, other) {
            (DomainPattern::Exact(a), DomainPattern::Exact(b)) => a == b,
            (DomainPattern::Exact(a), DomainPattern::Below(s)) => is_strictly_below(a, s),
            (DomainPattern::Below(_), DomainPattern::Exact(_)) => false,
            (DomainPattern::Below(t), DomainPattern::Below(s)) => t == s || is_strictly_below(t, s),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(host) => f.write_str(host),
            DomainPattern::Below(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// `a.b.example.com` is below `example.com`; `example.com` and `badexample.com` are not.
fn is_strictly_below(host: &str, suffix: &str) -> bool {
    host.len() > suffix.len() + 1
        && host.ends_with(suffix)
        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
}

// === DomainRegex ===

/// A `domain_regex` entry, with the indexes of its `User` and `Group` groups, if any.
#[derive(Debug)]
pub(crate) struct DomainRegex {
    pub regex: Regex,
    pub user: Option<usize>,
    pub group: Option<usize>,
}

impl DomainRegex {
    fn matches(&self, host: &str, identity: Option<&Identity>) -> HostMatch {
        if self.user.is_none() && self.group.is_none() {
            return if self.regex.is_match(host) {
                HostMatch::Yes
            } else {
                HostMatch::No
            };
        }
        let Some(captures) = self.regex.captures(host) else {
            return HostMatch::No;
        };
        let Some(identity) = identity else {
            return HostMatch::NeedsSubject;
        };
        let Subject::User {
            name,
            source: Source::UsersFile,
            ..
        } = &identity.subject
        else {
            // A token has no user name or groups to compare; the names and groups these
            // regexes capture are the users file's.
            return HostMatch::SubjectNotMet;
        };
        let captured = |i: Option<usize>| i.map(|i| captures.get(i).map_or("", |m| m.as_str()));
        let user_ok = captured(self.user).is_none_or(|u| eq_ignore_case(u, name));
        let group_ok = captured(self.group)
            .is_none_or(|g| identity.groups.iter().any(|mine| eq_ignore_case(g, mine)));
        if user_ok && group_ok {
            HostMatch::Yes
        } else {
            HostMatch::SubjectNotMet
        }
    }
}

/// Case-insensitive comparison (Unicode simple lowercase) without allocating.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

// === QueryCriterion ===

/// One criterion of `query`, on the first value of one parameter (as the incumbent reads
/// a query: an absent parameter has the empty value).
#[derive(Debug)]
pub(crate) struct QueryCriterion {
    pub key: String,
    pub test: QueryTest,
}

/// The test a query criterion applies.
#[derive(Debug)]
pub(crate) enum QueryTest {
    Equal(String),
    NotEqual(String),
    Present,
    Absent,
    Pattern(Regex),
    NotPattern(Regex),
}

impl QueryCriterion {
    pub fn matches(&self, query: Option<&str>) -> bool {
        let value = first_value(query, &self.key);
        let text = value.as_deref().unwrap_or("");
        match &self.test {
            QueryTest::Present => value.is_some(),
            QueryTest::Absent => value.is_none(),
            QueryTest::Equal(expected) => text == expected,
            QueryTest::NotEqual(expected) => text != expected,
            QueryTest::Pattern(regex) => regex.is_match(text),
            QueryTest::NotPattern(regex) => !regex.is_match(text),
        }
    }
}

impl fmt::Display for QueryCriterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match &self.test {
            QueryTest::Equal(v) => write!(f, "{key} equal {v}"),
            QueryTest::NotEqual(v) => write!(f, "{key} not equal {v}"),
            QueryTest::Present => write!(f, "{key} present"),
            QueryTest::Absent => write!(f, "{key} absent"),
            QueryTest::Pattern(r) => write!(f, "{key} pattern {}", r.as_str()),
            QueryTest::NotPattern(r) => write!(f, "{key} not pattern {}", r.as_str()),
        }
    }
}

/// The decoded first value of parameter `key` in a form-encoded query (`+` is a space,
/// `%XX` a byte; an invalid escape is kept as written). `Some("")` for `?key` or `?key=`.
fn first_value<'q>(query: Option<&'q str>, key: &str) -> Option<Cow<'q, str>> {
    for pair in query?.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(k) == key {
            return Some(form_decode(v));
        }
    }
    None
}

/// How many times parameter `key` appears in `query`.
fn value_count(query: Option<&str>, key: &str) -> usize {
    query.map_or(0, |query| {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|pair| form_decode(pair.split_once('=').map_or(pair, |(k, _)| k)) == key)
            .count()
    })
}

/// `application/x-www-form-urlencoded` decoding, borrowing when nothing is encoded.
fn form_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && hex_pair(bytes[i + 1], bytes[i + 2]).is_some() => {
                out.extend(hex_pair(bytes[i + 1], bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some(u8::try_from(digit(hi)? * 16 + digit(lo)?).unwrap_or(0))
}

// === MethodSet ===

/// The methods a rule names, as a bit set over the known methods.
#[derive(Clone, Debug)]
pub(crate) struct MethodSet {
    bits: u32,
}

impl MethodSet {
    pub fn new() -> MethodSet {
        MethodSet { bits: 0 }
    }

    /// Adds a known method (uppercase); `false` if it is not one.
    pub fn insert(&mut self, method: &str) -> bool {
        match method_bit(method) {
            Some(bit) => {
                self.bits |= bit;
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, method: &str) -> bool {
        method_bit(method).is_some_and(|bit| self.bits & bit != 0)
    }

    /// The methods, in the order of the known-methods list.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        crate::config::KNOWN_METHODS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.bits & (1 << i) != 0)
            .map(|(_, m)| *m)
    }
}

fn method_bit(method: &str) -> Option<u32> {
    crate::config::KNOWN_METHODS
        .iter()
        .position(|m| *m == method)
        .map(|i| 1 << i)
}

// === Networks ===

/// A rule's `networks`, flattened (named networks expanded), with the entries as written
/// for explanations.
#[derive(Clone, Debug)]
pub(crate) struct Networks {
    pub nets: Vec<IpNet>,
    pub written: Vec<String>,
}

impl Networks {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // `::ffff:10.0.0.1` is the IPv4 client 10.0.0.1 seen through a dual-stack socket.
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

// === SubjectMatcher ===

/// One subject of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SubjectMatcher {
    /// `user:NAME`, lowercase; compared case-insensitively.
    User(String),
    /// `group:NAME`; compared exactly, as groups are written in the users file.
    Group(String),
    /// `token:NAME` (or `service_token:NAME`).
    Token(String),
    /// `email:ADDRESS`, lowercase; any source's address, compared case-insensitively.
    Email(String),
    /// `email_domain:DOMAIN`, lowercase: the address's domain, exactly (no subdomains).
    EmailDomain(String),
    /// `provider:NAME`: where the identity comes from (`users`, `email`, or an OIDC
    /// provider's name).
    Provider(String),
    /// A subject kind of the incumbent Portless does not have (`oauth2:client:...`): never
    /// met.
    Never(String),
}

impl SubjectMatcher {
    pub fn is_met_by(&self, identity: &Identity) -> bool {
        match (self, &identity.subject) {
            (
                SubjectMatcher::User(want),
                Subject::User {
                    name,
                    source: Source::UsersFile,
                    ..
                },
            ) => eq_ignore_case(want, name),
            (SubjectMatcher::Group(want), Subject::User { source, .. }) => {
                *source != Source::EmailPin && identity.groups.iter().any(|g| g == want)
            }
            (SubjectMatcher::Token(want), Subject::ServiceToken { name, .. }) => want == name,
            (SubjectMatcher::Email(want), Subject::User { .. }) => identity
                .email
                .as_deref()
                .is_some_and(|email| eq_ignore_case(want, email)),
            (SubjectMatcher::EmailDomain(want), Subject::User { .. }) => identity
                .email
                .as_deref()
                .and_then(|email| email.rsplit_once('@'))
                .is_some_and(|(local, domain)| !local.is_empty() && eq_ignore_case(want, domain)),
            (SubjectMatcher::Provider(want), Subject::User { source, .. }) => {
                source.provider_name() == want
            }
            _ => false,
        }
    }
}

impl fmt::Display for SubjectMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectMatcher::User(name) => write!(f, "user:{name}"),
            SubjectMatcher::Group(name) => write!(f, "group:{name}"),
            SubjectMatcher::Token(name) => write!(f, "token:{name}"),
            SubjectMatcher::Email(address) => write!(f, "email:{address}"),
            SubjectMatcher::EmailDomain(domain) => write!(f, "email_domain:{domain}"),
            SubjectMatcher::Provider(name) => write!(f, "provider:{name}"),
            SubjectMatcher::Never(written) => f.write_str(written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_any_depth_but_not_the_apex() {
        let below = DomainPattern::Below("example.com".into());
        assert!(below.matches("a.example.com"));
        assert!(below.matches("a.b.example.com"));
        assert!(!below.matches("example.com"));
        assert!(!below.matches("badexample.com"));
        assert!(!below.matches(".example.com"));
    }

    #[test]
    fn coverage_between_patterns() {
        let exact = |s: &str| DomainPattern::Exact(s.into());
        let below = |s: &str| DomainPattern::Below(s.into());
        assert!(exact("a.example.com").is_covered_by(&below("example.com")));
        assert!(!exact("example.com").is_covered_by(&below("example.com")));
        assert!(below("a.example.com").is_covered_by(&below("example.com")));
        assert!(below("example.com").is_covered_by(&below("example.com")));
        assert!(!below("example.com").is_covered_by(&exact("example.com")));
    }

    #[test]
    fn query_values_are_form_decoded_first_value_wins() {
        assert_eq!(first_value(Some("a=1&a=2"), "a").as_deref(), Some("1"));
        assert_eq!(
            first_value(Some("a%20b=x+y"), "a b").as_deref(),
            Some("x y")
        );
        assert_eq!(first_value(Some("flag"), "flag").as_deref(), Some(""));
        assert_eq!(first_value(Some("x=%zz"), "x").as_deref(), Some("%zz"));
        assert_eq!(first_value(Some("x=%4"), "x").as_deref(), Some("%4"));
        assert_eq!(first_value(Some("&&b=1"), "b").as_deref(), Some("1"));
        assert_eq!(first_value(None, "a"), None);
        assert_eq!(first_value(Some("ab=1"), "a"), None);
    }

    #[test]
    fn case_insensitive_names() {
        assert!(eq_ignore_case("Alice", "alice"));
        assert!(eq_ignore_case("ÉMILE", "émile"));
        assert!(!eq_ignore_case("alice", "alicia"));
    }
}
