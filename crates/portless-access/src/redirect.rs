//! Validation of `rd` redirect targets (attack class E, open redirect).
//!
//! After login the portal sends the browser back to the `rd` it was given. An attacker who
//! can put any URL there turns the portal into a phishing relay, so only absolute `https://`
//! URLs on the configured domains (or their subdomains) pass. The check is written against
//! how *browsers* parse URLs (WHATWG): every input on which a browser and this parser could
//! disagree about the host — backslashes, userinfo, encoded characters in the authority,
//! control characters and whitespace (which browsers silently drop), non-ASCII hosts — is
//! refused rather than interpreted, and the URL given back is rebuilt from the parsed parts,
//! never echoed.
//!
//! Hand-written rather than with the `url` crate: the rules are "refuse anything not plainly
//! `https://host[:port]/path?query`", which is shorter to state and to audit than a full
//! WHATWG parser followed by a list of the normalizations it performed.

use portless_proto::{canonical_host, canonical_path};

use crate::authority::{self, AuthorityError};

/// Longest `rd` accepted, in bytes.
pub const MAX_REDIRECT_LEN: usize = 2048;

/// The domains redirect targets may point into.
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    /// Canonical domains (lowercase, no port, no trailing dot).
    domains: Vec<String>,
}

/// A validated redirect target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget {
    url: String,
    host: String,
    port: Option<u16>,
}

/// Why a configured redirect domain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectDomainError {
    /// The domain is not a hostname (or holds a port or a path).
    #[error("the redirect domain {0:?} is not a hostname; give a bare domain such as example.com")]
    InvalidDomain(String),
}

/// Why an `rd` value is refused; the portal then ignores it and shows its own page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// The value is empty.
    #[error("the redirect target is empty")]
    Empty,
    /// The value is longer than [`MAX_REDIRECT_LEN`].
    #[error("the redirect target is {0} bytes long, more than the {MAX_REDIRECT_LEN} allowed")]
    TooLong(usize),
    /// A control character, whitespace or a non-ASCII character (browsers drop or rewrite
    /// these, so the host they see could differ).
    #[error("the redirect target holds whitespace, a control or a non-ASCII character")]
    InvalidCharacter,
    /// A backslash, which browsers read as `/`.
    #[error("the redirect target holds a backslash")]
    Backslash,
    /// Not an absolute `https://` URL (relative, scheme-relative `//host`, `http:`,
    /// `javascript:`, `data:`, ...).
    #[error("the redirect target must be an absolute https:// URL")]
    NotHttps,
    /// `https://` with no host after it.
    #[error("the redirect target has no host")]
    MissingHost,
    /// `user@` or `user:password@` before the host.
    #[error("the redirect target holds userinfo (user@host)")]
    Userinfo,
    /// A `%` escape in the host or port.
    #[error("the redirect target's host holds a percent-escape")]
    EncodedAuthority,
    /// The host is not a valid hostname.
    #[error("the redirect target's host is not a valid hostname")]
    InvalidHost,
    /// The port is not a number from 1 to 65535.
    #[error("the redirect target's port is not a number from 1 to 65535")]
    InvalidPort,
    /// A `#fragment` (the targets the edge builds never have one).
    #[error("the redirect target holds a #fragment")]
    Fragment,
    /// The path or query holds an invalid percent-encoding.
    #[error("the redirect target's path or query is malformed")]
    InvalidPath,
    /// The host is outside the configured domains.
    #[error("the redirect target's host {0:?} is not in the configured domains")]
    ForeignHost(String),
}

// === impl RedirectPolicy ===

impl RedirectPolicy {
    /// A policy for targets on `domains` (e.g. `example.com`) and their subdomains. Each
    /// domain is canonicalized (case, trailing dot); one that is not a hostname is refused.
    pub fn new(domains: Vec<String>) -> Result<Self, RedirectDomainError> {
        let domains = domains
            .into_iter()
            .map(|domain| match canonical_host(&domain) {
                Ok(host) if !domain.contains(':') && !domain.contains('[') => Ok(host),
                _ => Err(RedirectDomainError::InvalidDomain(domain)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { domains })
    }

    /// Whether `host` (canonical) is one of the domains or a subdomain of one.
    pub fn allows_host(&self, host: &str) -> bool {
        self.domains.iter().any(|domain| {
            host == domain
                || host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        })
    }

    /// Validates an `rd` value (already percent-decoded from the query once) and gives back
    /// the normalized target.
    pub fn validate(&self, rd: &str) -> Result<RedirectTarget, RedirectError> {
        check_characters(rd)?;
        let rest = strip_https(rd)?;
        let (authority, path_and_query) = split_authority(rest);
        let (host, port) = parse_authority(authority)?;
        if !self.allows_host(&host) {
            return Err(RedirectError::ForeignHost(host));
        }
        let path = normalized_path(path_and_query)?;
        let url = match port {
            Some(port) => format!("https://{host}:{port}{path}"),
            None => format!("https://{host}{path}"),
        };
        Ok(RedirectTarget { url, host, port })
    }
}

/// Length and the characters refused anywhere in the value.
fn check_characters(rd: &str) -> Result<(), RedirectError> {
    if rd.is_empty() {
        return Err(RedirectError::Empty);
    }
    if rd.len() > MAX_REDIRECT_LEN {
        return Err(RedirectError::TooLong(rd.len()));
    }
    // Browsers strip tabs and newlines anywhere and trim leading/trailing spaces and
    // controls, which is how `java\tscript:` and ` //evil` get through naive checks.
    if rd.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(RedirectError::InvalidCharacter);
    }
    if rd.contains('\\') {
        return Err(RedirectError::Backslash);
    }
    if rd.contains('#') {
        return Err(RedirectError::Fragment);
    }
    Ok(())
}

/// The part after `https://` (scheme compared case-insensitively).
fn strip_https(rd: &str) -> Result<&str, RedirectError> {
    const SCHEME: &str = "https://";
    match rd.get(..SCHEME.len()) {
        Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => Ok(&rd[SCHEME.len()..]),
        _ => Err(RedirectError::NotHttps),
    }
}

/// Splits `authority` from the path and query that follow it.
fn split_authority(rest: &str) -> (&str, &str) {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    rest.split_at(end)
}

/// Canonical host and explicit non-default port.
fn parse_authority(authority: &str) -> Result<(String, Option<u16>), RedirectError> {
    if authority.is_empty() {
        return Err(RedirectError::MissingHost);
    }
    let (host, port) = authority::host_and_port(authority).map_err(|e| match e {
        AuthorityError::Userinfo => RedirectError::Userinfo,
        AuthorityError::Encoded => RedirectError::EncodedAuthority,
        AuthorityError::InvalidHost => RedirectError::InvalidHost,
        AuthorityError::InvalidPort => RedirectError::InvalidPort,
    })?;
    Ok((host, port.filter(|&port| port != 443)))
}

/// The canonical path and query; `/` when there is no path.
fn normalized_path(path_and_query: &str) -> Result<String, RedirectError> {
    let owned;
    let input = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        owned = format!("/{path_and_query}");
        &owned
    };
    canonical_path(input).map_err(|_| RedirectError::InvalidPath)
}

// === impl RedirectTarget ===

impl RedirectTarget {
    /// The normalized URL: `https://host[:port]/path?query` (port only when not 443).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The canonical host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, when not 443.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_canonicalized_and_checked() {
        let policy = RedirectPolicy::new(vec!["Example.COM.".into()]).unwrap();
        assert!(policy.allows_host("example.com"));
        assert!(policy.allows_host("a.b.example.com"));
        assert!(!policy.allows_host("evilexample.com"));
        assert!(!policy.allows_host(".example.com"));
        for bad in [
            "",
            "example.com:443",
            "https://example.com",
            "ex ample.com",
            "[::1]",
        ] {
            assert!(RedirectPolicy::new(vec![bad.into()]).is_err(), "{bad:?}");
        }
    }
}
