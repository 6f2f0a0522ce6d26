//! First-match rule lookup for a request's host and canonical path.
//!
//! The file order decides: the first rule whose hostname and path both match wins. A config
//! with thousands of exact hostnames must not cost a scan of every rule per request, so
//! rules are indexed by exact host and by wildcard suffix. Each index keeps rule numbers in
//! ascending order; the answer is the smallest rule number, among the candidate lists, whose
//! path also matches, which is exactly what a top-to-bottom scan would return.

use std::collections::HashMap;

use crate::hostname::normalize_host;
use crate::rule::IngressRule;

/// The validated ingress rules of a config file, ready to match requests.
///
/// Invariant (checked when built): there is at least one rule and the last is a catch-all,
/// so every request matches some rule.
#[derive(Clone, Debug)]
pub struct Ingress {
    rules: Vec<IngressRule>,
    /// Exact hostname → rule indices, ascending.
    by_host: HashMap<String, Vec<usize>>,
    /// Wildcard suffix (`example.com` for `*.example.com`) → rule indices, ascending.
    by_suffix: HashMap<String, Vec<usize>>,
    /// Rules matching every host (with or without a path), ascending; ends with the catch-all.
    any_host: Vec<usize>,
}

/// The rule a request matched.
#[derive(Clone, Copy, Debug)]
pub struct RuleMatch<'a> {
    /// 0-based position in the `ingress` list (rule #1 in messages is index 0).
    pub index: usize,
    /// The rule.
    pub rule: &'a IngressRule,
}

/// Why a rule before the matching one did not take the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// The rule's hostname does not match the request's host.
    Hostname,
    /// The hostname matches but the path regex is not found in the path.
    Path,
}

/// A rule that was tried and skipped.
#[derive(Clone, Copy, Debug)]
pub struct SkippedRule<'a> {
    /// 0-based position in the `ingress` list.
    pub index: usize,
    /// The rule.
    pub rule: &'a IngressRule,
    /// What did not match.
    pub reason: Miss,
}

/// The full story of a match, for `portless tunnel ingress rule URL`.
#[derive(Clone, Debug)]
pub struct Explanation<'a> {
    /// Every rule before the match, in order, and why it did not match.
    pub skipped: Vec<SkippedRule<'a>>,
    /// The rule that took the request.
    pub matched: RuleMatch<'a>,
}

// === impl Ingress ===

impl Ingress {
    /// Builds the indexes; `None` if `rules` is empty or does not end with a catch-all.
    pub(crate) fn new(rules: Vec<IngressRule>) -> Option<Ingress> {
        if !rules.last()?.is_catch_all() {
            return None;
        }
        let mut by_host: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_suffix: HashMap<String, Vec<usize>> = HashMap::new();
        let mut any_host = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            let pattern = rule.hostname();
            if let Some(host) = pattern.exact() {
                by_host.entry(host.to_owned()).or_default().push(index);
            } else if let Some(suffix) = pattern.wildcard_suffix() {
                by_suffix.entry(suffix.to_owned()).or_default().push(index);
            } else {
                any_host.push(index);
            }
        }
        Some(Ingress {
            rules,
            by_host,
            by_suffix,
            any_host,
        })
    }

    /// The rules in file order (never empty; the last is the catch-all).
    pub fn rules(&self) -> &[IngressRule] {
        &self.rules
    }

    /// The first rule, in file order, that matches `host` and `path`.
    ///
    /// `host` is the request's Host as received: case, a trailing dot and a `:port` are
    /// ignored, and Unicode names match their punycode form. `path` must already be the
    /// canonical path (without the query); the rules' regexes are searched in it unanchored.
    pub fn find(&self, host: &str, path: &str) -> RuleMatch<'_> {
        let host = normalize_host(host);
        let mut best = self.catch_all_index();
        for candidates in self.candidate_lists(&host) {
            // Lists are ascending, so the first path match in a list is that list's best,
            // and anything at or past the current best cannot improve it.
            for &index in candidates.iter().take_while(|&&i| i < best) {
                if self.rules[index].matches_path(path) {
                    best = index;
                    break;
                }
            }
        }
        self.rule_match(best)
    }

    /// Like [`Ingress::find`], and also says for every earlier rule why it did not match.
    /// This walks the rules one by one: it is for people, not for the request path.
    pub fn explain(&self, host: &str, path: &str) -> Explanation<'_> {
        let host = normalize_host(host);
        let mut skipped = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let reason = if !rule.matches_host(&host) {
                Miss::Hostname
            } else if !rule.matches_path(path) {
                Miss::Path
            } else {
                return Explanation {
                    skipped,
                    matched: self.rule_match(index),
                };
            };
            skipped.push(SkippedRule {
                index,
                rule,
                reason,
            });
        }
        // Unreachable while the catch-all invariant holds; answer like `find` would.
        Explanation {
            skipped,
            matched: self.rule_match(self.catch_all_index()),
        }
    }

    fn catch_all_index(&self) -> usize {
        // `new` refuses an empty list, so this does not underflow.
        self.rules.len() - 1
    }

    fn rule_match(&self, index: usize) -> RuleMatch<'_> {
        RuleMatch {
            index,
            rule: &self.rules[index],
        }
    }

    /// The index lists that can hold a rule matching `host`: its exact entry, one entry per
    /// parent domain for wildcards (`a.b.example.com` → `b.example.com`, `example.com`,
    /// `com`), and the any-host rules.
    fn candidate_lists<'s>(&'s self, host: &'s str) -> impl Iterator<Item = &'s [usize]> + 's {
        let exact = self.by_host.get(host).map(Vec::as_slice);
        let wildcards = host
            .match_indices('.')
            // A leading dot would make an empty first label, which no wildcard matches.
            .filter(|&(dot, _)| dot > 0)
            .map(move |(dot, _)| &host[dot + 1..])
            .filter(|suffix| !suffix.is_empty())
            .filter_map(|suffix| self.by_suffix.get(suffix).map(Vec::as_slice));
        exact
            .into_iter()
            .chain(wildcards)
            .chain(std::iter::once(self.any_host.as_slice()))
    }
}

#[cfg(test)]
mod tests;
