//! Rule hostnames (`app.example.com`, `*.example.com`, `*`) and the request-host
//! normalization both sides of a comparison go through.
//!
//! Hostnames are compared in one canonical form: ASCII lowercase, internationalized labels
//! in punycode (`xn--...`), one trailing dot removed. Doing this once at load time for rules,
//! and once per request for the Host header, makes matching a plain string comparison and
//! lets `bücher.example` in the file match a browser's `xn--bcher-kva.example`.

use std::borrow::Cow;
use std::fmt;

/// The hostname filter of an ingress rule, in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPattern(Repr);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Repr {
    /// No hostname, or `*`.
    Any,
    /// One exact host.
    Exact(String),
    /// `*.suffix`: any host below `suffix`, at any depth, but not `suffix` itself.
    Subdomains(String),
}

/// Why a rule's `hostname` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostnameError {
    /// `hostname: https://app.example.com`.
    #[error("Hostname cannot contain a scheme (\"{scheme}://\")")]
    Scheme {
        /// The hostname as written.
        hostname: String,
        /// The scheme, e.g. `https`.
        scheme: String,
    },
    /// `hostname: app.example.com:8080`.
    #[error("Hostname cannot contain a port")]
    Port {
        /// The hostname as written.
        hostname: String,
        /// The port part as written.
        port: String,
    },
    /// `hostname: example.com/api`.
    #[error("Hostname cannot contain a path")]
    Path {
        /// The hostname as written.
        hostname: String,
    },
    /// A `*` anywhere but a leading `*.`.
    #[error(
        "Hostname patterns can have at most one wildcard character (\"*\") and it can only be used for subdomains, e.g. \"*.example.com\""
    )]
    BadWildcard {
        /// The hostname as written.
        hostname: String,
    },
    /// Not a valid (internationalized) domain name.
    #[error("'{hostname}' is not a valid hostname")]
    Invalid {
        /// The hostname as written.
        hostname: String,
    },
}

impl HostnameError {
    /// A suggested fix.
    pub fn fix(&self) -> String {
        match self {
            HostnameError::Scheme { hostname, scheme } => {
                let bare = hostname.split_once("://").map_or("", |(_, rest)| rest);
                let bare = bare.trim_end_matches('/');
                format!(
                    "remove the scheme: write `hostname: {bare}`; `{scheme}://` belongs in the \
                     service URL"
                )
            }
            HostnameError::Port { port, .. } => {
                format!("remove \":{port}\" from the hostname; ports belong in the service URL")
            }
            HostnameError::Path { .. } => {
                "keep only the host in `hostname`; match paths with the rule's `path` key".into()
            }
            HostnameError::BadWildcard { .. } => {
                "use `*.example.com` for subdomains, or `*` (or no hostname) for every host".into()
            }
            HostnameError::Invalid { .. } => {
                "use letters, digits, `-` and `.` only (or a valid internationalized name)".into()
            }
        }
    }
}

// === impl HostPattern ===

impl HostPattern {
    /// The pattern that matches every host.
    pub const ANY: HostPattern = HostPattern(Repr::Any);

    /// Parses a rule's `hostname` value.
    pub fn parse(written: &str) -> Result<HostPattern, HostnameError> {
        let hostname = written.trim();
        if hostname.is_empty() || hostname == "*" {
            return Ok(HostPattern::ANY);
        }
        let owned = || hostname.to_owned();
        // Checked before the port: `https://x` contains a ':' too, and "remove the port"
        // would be the wrong advice.
        if let Some((scheme, _)) = hostname.split_once("://") {
            return Err(HostnameError::Scheme {
                hostname: owned(),
                scheme: scheme.to_owned(),
            });
        }
        if hostname.contains('/') {
            return Err(HostnameError::Path { hostname: owned() });
        }
        if let Some((_, port)) = hostname.rsplit_once(':') {
            return Err(HostnameError::Port {
                hostname: owned(),
                port: port.to_owned(),
            });
        }
        let (wildcard, rest) = match hostname.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, hostname),
        };
        if rest.contains('*') {
            return Err(HostnameError::BadWildcard { hostname: owned() });
        }
        let canonical =
            canonical_name(rest).ok_or_else(|| HostnameError::Invalid { hostname: owned() })?;
        Ok(HostPattern(if wildcard {
            Repr::Subdomains(canonical)
        } else {
            Repr::Exact(canonical)
        }))
    }

    /// Whether this pattern matches every host.
    pub fn is_any(&self) -> bool {
        matches!(self.0, Repr::Any)
    }

    /// The host, if this pattern is one exact host.
    pub fn exact(&self) -> Option<&str> {
        match &self.0 {
            Repr::Exact(host) => Some(host),
            _ => None,
        }
    }

    /// The suffix (without `*.`), if this pattern is a subdomain wildcard.
    pub fn wildcard_suffix(&self) -> Option<&str> {
        match &self.0 {
            Repr::Subdomains(suffix) => Some(suffix),
            _ => None,
        }
    }

    /// Whether `host`, already normalized with [`normalize_host`], matches.
    pub fn matches(&self, host: &str) -> bool {
        match &self.0 {
            Repr::Any => true,
            Repr::Exact(exact) => exact == host,
            Repr::Subdomains(suffix) => is_strict_subdomain(host, suffix),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Any => f.write_str("*"),
            Repr::Exact(host) => f.write_str(host),
            Repr::Subdomains(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// `a.b.example.com` is below `example.com`; `example.com` and `badexample.com` are not.
fn is_strict_subdomain(host: &str, suffix: &str) -> bool {
    host.len() > suffix.len() + 1
        && host.ends_with(suffix)
        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
}

/// Canonical form of a request's Host: `:port` stripped, one trailing dot removed, ASCII
/// lowercase, internationalized labels in punycode.
///
/// A name that is not a valid internationalized domain is only lowercased, so it can still
/// match `*` rules but no named rule.
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = strip_port(host.trim());
    let host = host.strip_suffix('.').unwrap_or(host);
    canonical_name(host).map_or_else(|| Cow::Owned(host.to_lowercase()), Cow::Owned)
}

/// Removes `:port` from `host:port` and `[v6]:port`, leaving a bare IPv6 address alone.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(v6, _)| v6);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Lowercase ASCII with punycode labels; `None` if the name is not a valid domain.
fn canonical_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    if name.is_ascii() && !name.contains("xn--") {
        // The common case; skip the Unicode tables. IDNA would also refuse `_`, which real
        // internal hostnames use, so ASCII names are checked by hand.
        let valid_label = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        return name
            .split('.')
            .all(valid_label)
            .then(|| name.to_ascii_lowercase());
    }
    idna::domain_to_ascii_cow(name.as_bytes(), idna::AsciiDenyList::URL)
        .ok()
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn empty_and_star_match_everything() {
        assert!(pattern("").is_any());
        assert!(pattern("*").is_any());
        assert!(pattern("*").matches("anything.example"));
    }

    #[test]
    fn exact_hosts_are_canonical() {
        assert_eq!(pattern("App.Example.COM.").exact(), Some("app.example.com"));
        assert_eq!(
            pattern("bücher.example").exact(),
            Some("xn--bcher-kva.example")
        );
    }

    #[test]
    fn wildcard_matches_any_depth_but_not_the_apex() {
        let p = pattern("*.example.com");
        assert!(p.matches("a.example.com"));
        assert!(p.matches("a.b.example.com"));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("badexample.com"));
        assert!(!p.matches(".example.com"));
    }

    #[test]
    fn request_hosts_are_normalized() {
        assert_eq!(normalize_host("App.Example.com:8443"), "app.example.com");
        assert_eq!(normalize_host("app.example.com."), "app.example.com");
        assert_eq!(normalize_host("BÜCHER.example"), "xn--bcher-kva.example");
        assert_eq!(normalize_host("[::1]:8080"), "::1");
        assert_eq!(normalize_host("::1"), "::1");
    }

    #[test]
    fn scheme_port_path_and_wildcards_are_refused() {
        assert!(matches!(
            HostPattern::parse("https://app.example.com"),
            Err(HostnameError::Scheme { .. })
        ));
        assert!(matches!(
            HostPattern::parse("app.example.com:8080"),
            Err(HostnameError::Port { .. })
        ));
        assert!(matches!(
            HostPattern::parse("example.com/api"),
            Err(HostnameError::Path { .. })
        ));
        for bad in [
            "app example.com",
            "app..example.com",
            "app.example.com,",
            "*.a b",
        ] {
            assert!(
                matches!(HostPattern::parse(bad), Err(HostnameError::Invalid { .. })),
                "{bad}"
            );
        }
        for bad in ["*example.com", "a.*.example.com", "*.*.example.com", "app*"] {
            assert!(
                matches!(
                    HostPattern::parse(bad),
                    Err(HostnameError::BadWildcard { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn scheme_fix_says_remove_the_scheme() {
        let err = HostnameError::Scheme {
            hostname: "https://app.example.com/".into(),
            scheme: "https".into(),
        };
        assert!(
            err.fix()
                .starts_with("remove the scheme: write `hostname: app.example.com`")
        );
    }
}
