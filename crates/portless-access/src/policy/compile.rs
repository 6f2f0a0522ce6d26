//! `access_control` as read → [`AccessControl`]: every check, collecting all problems
//! rather than stopping at the first, and the warnings that catch rules which do not mean
//! what they say (unanchored regexes, rules that can never match).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use regex::{Regex, RegexBuilder};
use serde_saphyr::Spanned;

use super::raw::{
    OneOrMany, RawAccessControl, RawNetwork, RawQuery, RawRule, RawSubjects, Text, items,
};
use super::rule::{
    DomainPattern, DomainRegex, MethodSet, Networks, QueryCriterion, QueryTest, Rule,
    SubjectMatcher,
};
use super::{AccessControl, Policy};
use crate::config::diagnostic::{DomainProblem, KNOWN_METHODS, Position, ProblemKind, WarningKind};
use crate::config::keys::closest;
use crate::config::validate::Checker;

/// Largest compiled program a rule's regex may have: generous for real rules, small enough
/// that a pathological pattern cannot make loading (or matching) expensive.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles `access_control` (absent: deny everything). Problems go to `ck`; the result is
/// meaningful only if `ck` has none.
pub(crate) fn compile(
    raw: Option<&Spanned<RawAccessControl>>,
    ck: &mut Checker<'_>,
) -> AccessControl {
    let empty = RawAccessControl::default();
    let raw_ac = raw.map_or(&empty, |r| &r.value);
    let (default_policy, default_position) = match &raw_ac.default_policy {
        Some(text) => (
            policy_choice(ck, "`access_control.default_policy`", text).unwrap_or(Policy::Deny),
            Position::from_location(text.referenced),
        ),
        None => (Policy::Deny, None),
    };
    let named = named_networks(&raw_ac.networks, ck);
    let rules: Vec<Rule> = raw_ac
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            RuleCompiler {
                ck,
                number: i + 1,
                named: &named,
            }
            .rule(rule)
        })
        .collect();
    warn_unreachable(&rules, ck);
    AccessControl {
        default_policy,
        default_position,
        rules,
        file: ck.file().to_path_buf(),
    }
}

/// A policy name; `None` (reported) when it is not one.
fn policy_choice(ck: &mut Checker<'_>, key: &str, text: &Text) -> Option<Policy> {
    let written = text.value.trim();
    let policy = Policy::from_name(written);
    if policy.is_none() {
        let kind = ProblemKind::InvalidChoice {
            key: key.to_owned(),
            value: written.to_owned(),
            choices: Policy::NAMES,
            suggestion: match written.to_ascii_lowercase().as_str() {
                "2fa" | "mfa" => Some("two_factor"),
                "1fa" => Some("one_factor"),
                other => closest(other, Policy::NAMES),
            },
        };
        ck.error(text.referenced, kind);
    }
    policy
}

// === named networks ===

/// `access_control.networks`: name → networks, in definition order.
fn named_networks(
    raw: &[Spanned<RawNetwork>],
    ck: &mut Checker<'_>,
) -> HashMap<String, Vec<IpNet>> {
    let mut named: HashMap<String, Vec<IpNet>> = HashMap::new();
    for (i, entry) in raw.iter().enumerate() {
        let section = format!("named network #{}", i + 1);
        let Some(name) = &entry.value.name else {
            let kind = ProblemKind::Missing {
                key: "name",
                section,
                example: "name: internal",
            };
            ck.error(entry.referenced, kind);
            continue;
        };
        let key = format!("`networks` of the named network `{}`", name.value);
        let mut nets = Vec::new();
        match &entry.value.networks {
            None => {
                let kind = ProblemKind::Missing {
                    key: "networks",
                    section,
                    example: "networks: [10.0.0.0/8]",
                };
                ck.error(entry.referenced, kind);
            }
            Some(list) => {
                for item in items(list) {
                    match parse_network(&item.value) {
                        Some(net) => nets.push(net),
                        None => {
                            let kind = ProblemKind::InvalidNetwork {
                                key: key.clone(),
                                value: item.value.clone(),
                            };
                            ck.error(item.referenced, kind);
                        }
                    }
                }
            }
        }
        if named.insert(name.value.trim().to_owned(), nets).is_some() {
            let kind = ProblemKind::DuplicateNetwork {
                name: name.value.clone(),
            };
            ck.error(name.referenced, kind);
        }
    }
    named
}

/// A CIDR or a single address. IPv4-mapped IPv6 ranges become IPv4 ranges, since client
/// addresses are compared in that form.
pub(crate) fn parse_network(written: &str) -> Option<IpNet> {
    let written = written.trim();
    let net = match written.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => IpNet::from(written.parse::<IpAddr>().ok()?),
    };
    Some(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).ok()?.trunc()),
            None => IpNet::V6(v6.trunc()),
        },
        other => other.trunc(),
    })
}

// === rules ===

struct RuleCompiler<'c, 'f> {
    ck: &'c mut Checker<'f>,
    /// 1-based.
    number: usize,
    named: &'c HashMap<String, Vec<IpNet>>,
}

impl RuleCompiler<'_, '_> {
    fn rule(mut self, spanned: &Spanned<RawRule>) -> Rule {
        let raw = &spanned.value;
        let policy = self.policy(spanned);
        let domains = raw
            .domain
            .as_ref()
            .map(|d| self.domains(d))
            .unwrap_or_default();
        let domain_regexes = raw
            .domain_regex
            .as_ref()
            .map(|d| self.domain_regexes(d))
            .unwrap_or_default();
        if raw.domain.is_none() && raw.domain_regex.is_none() {
            let kind = ProblemKind::Missing {
                key: "domain",
                section: format!("rule #{}", self.number),
                example: "domain: app.example.com",
            };
            self.ck.error(spanned.referenced, kind);
        }
        let resources = raw
            .resources
            .as_ref()
            .map(|r| self.resources(r))
            .unwrap_or_default();
        let query = raw
            .query
            .as_ref()
            .map(|q| self.query(q))
            .unwrap_or_default();
        let methods = raw.methods.as_ref().map(|m| self.methods(m));
        let networks = raw.networks.as_ref().map(|n| self.networks(n));
        let subjects = raw
            .subject
            .as_ref()
            .map(|s| self.subjects(s))
            .unwrap_or_default();
        if policy == Some(Policy::Bypass) {
            self.check_bypass(raw, &subjects, &domain_regexes);
        }
        Rule {
            position: Position::from_location(spanned.referenced),
            domains,
            domain_regexes,
            resources,
            query,
            methods,
            networks,
            subjects,
            // Reported if missing or invalid; the value does not matter then.
            policy: policy.unwrap_or(Policy::Deny),
        }
    }

    fn policy(&mut self, spanned: &Spanned<RawRule>) -> Option<Policy> {
        let Some(text) = &spanned.value.policy else {
            let kind = ProblemKind::Missing {
                key: "policy",
                section: format!("rule #{}", self.number),
                example: "policy: two_factor",
            };
            self.ck.error(spanned.referenced, kind);
            return None;
        };
        policy_choice(self.ck, &format!("`policy` of rule #{}", self.number), text)
    }

    fn check_bypass(
        &mut self,
        raw: &RawRule,
        subjects: &[Vec<SubjectMatcher>],
        regexes: &[DomainRegex],
    ) {
        let rule = self.number;
        if let (Some(subject), false) = (&raw.subject, subjects.is_empty()) {
            self.ck
                .error(subject.referenced, ProblemKind::BypassWithSubject { rule });
        }
        let captures_subject = regexes
            .iter()
            .any(|r| r.user.is_some() || r.group.is_some());
        if captures_subject && let Some(at) = &raw.domain_regex {
            self.ck
                .error(at.referenced, ProblemKind::BypassWithRegexSubject { rule });
        }
    }

    fn domains(&mut self, list: &Spanned<OneOrMany>) -> Vec<DomainPattern> {
        let mut out = Vec::new();
        for item in items(list) {
            match parse_domain(&item.value) {
                Ok(pattern) => out.push(pattern),
                Err(reason) => {
                    let kind = ProblemKind::InvalidDomain {
                        rule: self.number,
                        value: item.value.clone(),
                        reason,
                    };
                    self.ck.error(item.referenced, kind);
                }
            }
        }
        out
    }

    fn domain_regexes(&mut self, list: &Spanned<OneOrMany>) -> Vec<DomainRegex> {
        let mut out = Vec::new();
        for item in items(list) {
            // Hosts are canonical lowercase: a pattern written `^App\.` must still match.
            let Some(regex) = self.regex("domain_regex", &item, true) else {
                continue;
            };
            self.warn_unanchored_domain(&item);
            let index_of = |name: &str| regex.capture_names().position(|n| n == Some(name));
            let (user, group) = (index_of("User"), index_of("Group"));
            out.push(DomainRegex { regex, user, group });
        }
        out
    }

    fn resources(&mut self, list: &Spanned<OneOrMany>) -> Vec<Regex> {
        let mut out = Vec::new();
        for item in items(list) {
            if let Some(regex) = self.regex("resources", &item, false) {
                self.warn_unanchored_path(&item);
                out.push(regex);
            }
        }
        out
    }

    fn regex(&mut self, key: &'static str, item: &Text, case_insensitive: bool) -> Option<Regex> {
        let built = RegexBuilder::new(&item.value)
            .case_insensitive(case_insensitive)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build();
        match built {
            Ok(regex) => Some(regex),
            Err(error) => {
                let kind = ProblemKind::BadRegex {
                    rule: self.number,
                    key,
                    pattern: item.value.clone(),
                    message: error.to_string(),
                };
                self.ck.error(item.referenced, kind);
                None
            }
        }
    }

    fn warn_unanchored_domain(&mut self, item: &Text) {
        let pattern = item.value.as_str();
        let (start, end) = (starts_anchored(pattern), ends_anchored(pattern));
        if start && end {
            return;
        }
        let literal = literal_text(pattern);
        let mut problems = Vec::new();
        if !start {
            problems.push(match &literal {
                Some(lit) => {
                    format!("it also matches hosts that only end with it, such as `evil-{lit}`")
                }
                None => "it also matches hosts with anything before the match".to_owned(),
            });
        }
        if !end {
            problems.push(match &literal {
                Some(lit) => format!(
                    "it also matches hosts that only start with it, such as `{lit}.evil.example`"
                ),
                None => "it also matches hosts with anything after the match".to_owned(),
            });
        }
        let anchored = format!(
            "{}{}{}",
            if start { "" } else { "^" },
            pattern,
            if end { "" } else { "$" }
        );
        let kind = WarningKind::UnanchoredRegex {
            rule: self.number,
            key: "domain_regex",
            pattern: pattern.to_owned(),
            problem: problems.join("; "),
            anchored,
        };
        self.ck.warn(item.referenced, kind);
    }

    /// A `resources` regex without `^` matches anywhere in the path. A missing `$` is
    /// usually meant (`^/api/` for everything below `/api/`), so it is not warned about.
    fn warn_unanchored_path(&mut self, item: &Text) {
        let pattern = item.value.as_str();
        if starts_anchored(pattern) {
            return;
        }
        let problem = match literal_text(pattern) {
            Some(lit) if lit.starts_with('/') => {
                format!("it matches anywhere in the path, so `/anything{lit}` matches too")
            }
            Some(lit) => {
                format!("it matches anywhere in the path, so `/anything/{lit}` matches too")
            }
            None => "it matches anywhere in the path, not only at its start".to_owned(),
        };
        let kind = WarningKind::UnanchoredRegex {
            rule: self.number,
            key: "resources",
            pattern: pattern.to_owned(),
            problem,
            anchored: format!("^{pattern}"),
        };
        self.ck.warn(item.referenced, kind);
    }

    fn query(&mut self, raw: &Spanned<Vec<Vec<Spanned<RawQuery>>>>) -> Vec<Vec<QueryCriterion>> {
        raw.value
            .iter()
            .map(|group| {
                group
                    .iter()
                    .filter_map(|c| self.query_criterion(c))
                    .collect()
            })
            .filter(|group: &Vec<QueryCriterion>| !group.is_empty())
            .collect()
    }

    fn query_criterion(&mut self, raw: &Spanned<RawQuery>) -> Option<QueryCriterion> {
        let Some(key) = &raw.value.key else {
            let kind = ProblemKind::Missing {
                key: "key",
                section: format!("a query criterion of rule #{}", self.number),
                example: "key: debug",
            };
            self.ck.error(raw.referenced, kind);
            return None;
        };
        let test = self.query_test(raw, &key.value)?;
        Some(QueryCriterion {
            key: key.value.clone(),
            test,
        })
    }

    /// The operator and value of a query criterion on `key`, checked together.
    fn query_test(&mut self, raw: &Spanned<RawQuery>, key: &str) -> Option<QueryTest> {
        const OPERATORS: &[&str] = &[
            "equal",
            "not equal",
            "present",
            "absent",
            "pattern",
            "not pattern",
        ];
        let value = raw.value.value.as_ref();
        // The incumbent's defaults: `equal` with a value, `present` without.
        let operator = raw
            .value
            .operator
            .as_ref()
            .map_or(if value.is_some() { "equal" } else { "present" }, |o| {
                o.value.trim()
            });
        let invalid = |reason: String, fix: &'static str| ProblemKind::InvalidQuery {
            rule: self.number,
            key: key.to_owned(),
            reason,
            fix,
        };
        let needs_value = matches!(operator, "equal" | "not equal" | "pattern" | "not pattern");
        let (at, kind) = match (operator, value) {
            ("present", None) => return Some(QueryTest::Present),
            ("absent", None) => return Some(QueryTest::Absent),
            ("equal", Some(v)) => return Some(QueryTest::Equal(v.value.clone())),
            ("not equal", Some(v)) => return Some(QueryTest::NotEqual(v.value.clone())),
            ("pattern", Some(v)) => return self.regex("query", v, false).map(QueryTest::Pattern),
            ("not pattern", Some(v)) => {
                return self.regex("query", v, false).map(QueryTest::NotPattern);
            }
            ("present" | "absent", Some(v)) => {
                let reason = format!("has operator `{operator}` and a value");
                let fix = "remove `value`, or use `equal`";
                (v.referenced, invalid(reason, fix))
            }
            (_, None) if needs_value => {
                let reason = format!("has operator `{operator}` but no value");
                (
                    raw.referenced,
                    invalid(reason, "add `value:`, or use `present`"),
                )
            }
            (other, _) => {
                let kind = ProblemKind::InvalidChoice {
                    key: format!("the query operator of rule #{}", self.number),
                    value: other.to_owned(),
                    choices: OPERATORS,
                    suggestion: closest(other, OPERATORS),
                };
                let at = raw
                    .value
                    .operator
                    .as_ref()
                    .map_or(raw.referenced, |o| o.referenced);
                (at, kind)
            }
        };
        self.ck.error(at, kind);
        None
    }

    fn methods(&mut self, list: &Spanned<OneOrMany>) -> MethodSet {
        let mut set = MethodSet::new();
        for item in items(list) {
            // The incumbent uppercases methods; requests arrive uppercase.
            let method = item.value.trim().to_ascii_uppercase();
            if !set.insert(&method) {
                let kind = ProblemKind::UnknownMethod {
                    rule: self.number,
                    value: item.value.clone(),
                    suggestion: closest(&method, KNOWN_METHODS),
                };
                self.ck.error(item.referenced, kind);
            }
        }
        set
    }

    fn networks(&mut self, list: &Spanned<OneOrMany>) -> Networks {
        let mut networks = Networks {
            nets: Vec::new(),
            written: Vec::new(),
        };
        for item in items(list) {
            let written = item.value.trim();
            // A name first, as the incumbent does, then a CIDR or an address.
            if let Some(nets) = self.named.get(written) {
                networks.nets.extend(nets.iter().copied());
            } else if let Some(net) = parse_network(written) {
                networks.nets.push(net);
            } else {
                let mut defined: Vec<String> = self.named.keys().cloned().collect();
                defined.sort();
                let kind = ProblemKind::UnknownNetwork {
                    rule: self.number,
                    value: written.to_owned(),
                    defined,
                };
                self.ck.error(item.referenced, kind);
                continue;
            }
            networks.written.push(written.to_owned());
        }
        networks
    }

    fn subjects(&mut self, raw: &Spanned<RawSubjects>) -> Vec<Vec<SubjectMatcher>> {
        let mut groups = Vec::new();
        for group in &raw.value.0 {
            let mut all = Vec::new();
            for item in &group.value.0 {
                // A lone subject string has no position of its own: use the key's.
                let at = if Position::from_location(item.referenced).is_some() {
                    item.referenced
                } else {
                    raw.referenced
                };
                match parse_subject(&item.value) {
                    Some(subject) => {
                        if let SubjectMatcher::Never(value) = &subject {
                            let kind = WarningKind::UnsupportedSubject {
                                rule: self.number,
                                value: value.clone(),
                            };
                            self.ck.warn(at, kind);
                        }
                        all.push(subject);
                    }
                    None => {
                        let kind = ProblemKind::InvalidSubject {
                            rule: self.number,
                            value: item.value.clone(),
                        };
                        self.ck.error(at, kind);
                    }
                }
            }
            // The incumbent drops empty groups rather than letting them match everyone.
            if !all.is_empty() {
                groups.push(all);
            }
        }
        groups
    }
}

/// `user:NAME`, `group:NAME`, `token:NAME` / `service_token:NAME`, `email:ADDRESS`,
/// `email_domain:DOMAIN`, `provider:NAME`; `oauth2:client:ID` is kept as a subject that
/// never matches. `None` for anything else (or a malformed address, domain or name).
fn parse_subject(written: &str) -> Option<SubjectMatcher> {
    let written = written.trim();
    let named = |prefix: &str| {
        written
            .strip_prefix(prefix)
            .map(str::trim)
            .filter(|name| !name.is_empty())
    };
    if let Some(name) = named("user:") {
        Some(SubjectMatcher::User(name.to_lowercase()))
    } else if let Some(name) = named("group:") {
        Some(SubjectMatcher::Group(name.to_owned()))
    } else if let Some(name) = named("token:").or_else(|| named("service_token:")) {
        Some(SubjectMatcher::Token(name.to_owned()))
    } else if let Some(address) = named("email:") {
        let (local, domain) = address.rsplit_once('@')?;
        let plain = |part: &str| !part.is_empty() && !part.contains(char::is_whitespace);
        (plain(local) && plain(domain) && !local.contains('@'))
            .then(|| SubjectMatcher::Email(address.to_lowercase()))
    } else if let Some(domain) = named("email_domain:") {
        let ok = !domain.contains(['@', '*', '/', ':']) && !domain.contains(char::is_whitespace);
        ok.then(|| SubjectMatcher::EmailDomain(domain.trim_end_matches('.').to_lowercase()))
    } else if let Some(name) = named("provider:") {
        let ok = name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        ok.then(|| SubjectMatcher::Provider(name.to_owned()))
    } else if named("oauth2:client:").is_some() {
        Some(SubjectMatcher::Never(written.to_owned()))
    } else {
        None
    }
}

// === domains ===

/// A `domain` entry in canonical form: ASCII lowercase, punycode, no trailing dot.
pub(crate) fn parse_domain(written: &str) -> Result<DomainPattern, DomainProblem> {
    let domain = written.trim();
    for placeholder in ["{user}", "{group}"] {
        if domain.contains(placeholder) {
            return Err(DomainProblem::Placeholder(if placeholder == "{user}" {
                "{user}"
            } else {
                "{group}"
            }));
        }
    }
    let (wildcard, rest) = match domain.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, domain),
    };
    let host = canonical_host(rest)?;
    Ok(if wildcard {
        DomainPattern::Below(host)
    } else {
        DomainPattern::Exact(host)
    })
}

/// A plain hostname (no wildcard) in canonical form.
pub(crate) fn canonical_host(written: &str) -> Result<String, DomainProblem> {
    let host = written.trim();
    if host.contains("://") {
        return Err(DomainProblem::Scheme);
    }
    if host.contains('/') {
        return Err(DomainProblem::Path);
    }
    if host.contains(':') {
        return Err(DomainProblem::Port);
    }
    if host.contains('*') {
        return Err(DomainProblem::Wildcard);
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(DomainProblem::Invalid);
    }
    if host.is_ascii() && !host.contains("xn--") {
        // IDNA would refuse `_`, which internal hostnames use; ASCII is checked by hand,
        // with the rules the edge's request canonicalization applies.
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        return if host.len() <= 253 && host.split('.').all(valid_label) {
            Ok(host.to_ascii_lowercase())
        } else {
            Err(DomainProblem::Invalid)
        };
    }
    idna::domain_to_ascii_cow(host.as_bytes(), idna::AsciiDenyList::URL)
        .map(|c| c.into_owned())
        .map_err(|_| DomainProblem::Invalid)
}

// === anchoring ===

/// The pattern without leading inline flags such as `(?i)`.
fn without_flags(pattern: &str) -> &str {
    let mut rest = pattern;
    while let Some(after) = rest.strip_prefix("(?") {
        match after.find(')') {
            Some(end)
                if after[..end]
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || c == '-') =>
            {
                rest = &after[end + 1..];
            }
            _ => break,
        }
    }
    rest
}

fn starts_anchored(pattern: &str) -> bool {
    let p = without_flags(pattern);
    p.starts_with('^') || p.starts_with("\\A")
}

fn ends_anchored(pattern: &str) -> bool {
    (pattern.ends_with('$') && !pattern.ends_with("\\$")) || pattern.ends_with("\\z")
}

/// What the pattern matches if it is a plain literal (`\.` being a dot), without anchors;
/// `None` if it has regex syntax, so no concrete example can be given.
fn literal_text(pattern: &str) -> Option<String> {
    let p = without_flags(pattern);
    let p = p.strip_prefix('^').unwrap_or(p);
    let p = if ends_anchored(p) {
        &p[..p.len() - 1]
    } else {
        p
    };
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => out.push(e),
                _ => return None,
            },
            '.' | '[' | ']' | '(' | ')' | '{' | '}' | '*' | '+' | '?' | '|' | '^' | '$' => {
                return None;
            }
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

// === unreachable rules ===

/// Warns about each rule that an earlier rule with no criterion but its domains takes
/// every request from (for users, anonymous requests and service tokens alike).
fn warn_unreachable(rules: &[Rule], ck: &mut Checker<'_>) {
    for (j, later) in rules.iter().enumerate() {
        if later.domains.is_empty() || !later.domain_regexes.is_empty() {
            continue;
        }
        let by = rules[..j].iter().position(|earlier| {
            earlier.is_domain_only()
                && later
                    .domains
                    .iter()
                    .all(|d| earlier.domains.iter().any(|e| d.is_covered_by(e)))
                // Tokens pass a login rule that does not name them and go on.
                && (matches!(earlier.policy, Policy::Bypass | Policy::Deny)
                    || !later.can_decide_for_tokens())
        });
        if let Some(by) = by {
            let kind = WarningKind::UnreachableRule {
                rule: j + 1,
                by: by + 1,
            };
            ck.warn_at(later.position, kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_canonical() {
        assert_eq!(
            parse_domain("App.Example.COM."),
            Ok(DomainPattern::Exact("app.example.com".into()))
        );
        assert_eq!(
            parse_domain("*.Example.com"),
            Ok(DomainPattern::Below("example.com".into()))
        );
        assert_eq!(
            parse_domain(" bücher.example "),
            Ok(DomainPattern::Exact("xn--bcher-kva.example".into()))
        );
        assert_eq!(
            parse_domain("{user}.example.com"),
            Err(DomainProblem::Placeholder("{user}"))
        );
        assert_eq!(
            parse_domain("{group}.example.com"),
            Err(DomainProblem::Placeholder("{group}"))
        );
        assert_eq!(
            parse_domain("https://a.example.com"),
            Err(DomainProblem::Scheme)
        );
        assert_eq!(parse_domain("a.example.com:8443"), Err(DomainProblem::Port));
        assert_eq!(parse_domain("a.example.com/x"), Err(DomainProblem::Path));
        assert_eq!(parse_domain("*"), Err(DomainProblem::Wildcard));
        assert_eq!(parse_domain("a.*.com"), Err(DomainProblem::Wildcard));
        assert_eq!(parse_domain("a..com"), Err(DomainProblem::Invalid));
        assert_eq!(parse_domain(""), Err(DomainProblem::Invalid));
    }

    #[test]
    fn networks_parse_and_fold_mapped_ranges() {
        assert_eq!(parse_network("10.0.0.0/8"), "10.0.0.0/8".parse().ok());
        assert_eq!(parse_network("10.1.2.3/8"), "10.0.0.0/8".parse().ok());
        assert_eq!(parse_network("192.168.1.1"), "192.168.1.1/32".parse().ok());
        assert_eq!(
            parse_network("::ffff:10.0.0.0/104"),
            "10.0.0.0/8".parse().ok()
        );
        assert_eq!(parse_network("2001:db8::/32"), "2001:db8::/32".parse().ok());
        assert_eq!(parse_network("internal"), None);
        assert_eq!(parse_network("10.0.0.0/33"), None);
    }

    #[test]
    fn subjects_parse() {
        assert_eq!(
            parse_subject("user:Alice"),
            Some(SubjectMatcher::User("alice".into()))
        );
        assert_eq!(
            parse_subject("group:Admins"),
            Some(SubjectMatcher::Group("Admins".into()))
        );
        assert_eq!(
            parse_subject("token:ci"),
            Some(SubjectMatcher::Token("ci".into()))
        );
        assert_eq!(
            parse_subject("service_token:ci"),
            Some(SubjectMatcher::Token("ci".into()))
        );
        assert!(matches!(
            parse_subject("oauth2:client:x"),
            Some(SubjectMatcher::Never(_))
        ));
        assert_eq!(parse_subject("user:"), None);
        assert_eq!(parse_subject("alice"), None);
        assert_eq!(parse_subject("role:x"), None);
    }

    #[test]
    fn anchoring_and_literals() {
        assert!(starts_anchored("^/api"));
        assert!(starts_anchored("(?i)^/api"));
        assert!(!starts_anchored("/api"));
        assert!(ends_anchored("x$"));
        assert!(!ends_anchored("x\\$"));
        assert_eq!(
            literal_text("^app\\.example\\.com$").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(literal_text("/public").as_deref(), Some("/public"));
        assert_eq!(literal_text("^/api/.*"), None);
        assert_eq!(literal_text("\\w+"), None);
    }
}
