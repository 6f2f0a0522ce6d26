//! `passthrough:`: hostnames whose TLS the edge does not terminate. The edge reads the SNI of
//! the ClientHello and relays the raw bytes through the tunnel to an origin holding its own
//! key (docs/passthrough.md).

use std::collections::HashSet;

use super::check::{Checker, Text};

/// Hostnames served by TLS passthrough: exact names and `*.suffix` wildcards (any depth
/// below `suffix`, not `suffix` itself, as routes match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassthroughHosts {
    exact: HashSet<String>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashSet<String>,
}

impl PassthroughHosts {
    /// Builds the set from canonical patterns (`a.example.com`, `*.example.com`).
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Self {
        let mut hosts = Self::default();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            match pattern.strip_prefix("*.") {
                Some(suffix) => hosts.wildcard.insert(suffix.to_owned()),
                None => hosts.exact.insert(pattern.to_owned()),
            };
        }
        hosts
    }

    /// Whether no hostname is passed through (the listener then never peeks).
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// Whether `host` (canonical) is passed through.
    pub fn matches(&self, host: &str) -> bool {
        if self.exact.contains(host) {
            return true;
        }
        let mut rest = host;
        while let Some((_, suffix)) = rest.split_once('.') {
            if self.wildcard.contains(suffix) {
                return true;
            }
            rest = suffix;
        }
        false
    }
}

/// Validates the list; duplicates are harmless and kept once.
pub(crate) fn validate(raw: &[Text], ck: &mut Checker) -> PassthroughHosts {
    let patterns: Vec<String> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, text)| ck.host_pattern(text, &format!("`passthrough` item #{}", i + 1)))
        .collect();
    PassthroughHosts::new(patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcards_at_any_depth() {
        let hosts = PassthroughHosts::new(["secure.test", "*.e2e.test"]);
        assert!(hosts.matches("secure.test"));
        assert!(hosts.matches("a.e2e.test"));
        assert!(hosts.matches("a.b.c.e2e.test"));
        assert!(!hosts.matches("e2e.test"));
        assert!(!hosts.matches("x.secure.test"));
        assert!(!hosts.matches("other.test"));
        assert!(PassthroughHosts::default().is_empty());
    }
}
