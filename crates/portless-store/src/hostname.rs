//! Canonical route hostnames.
//!
//! A route maps one hostname to one tunnel. The edge looks routes up by the hostname of each request
//! (SNI or `Host`, already canonicalized by the edge), so a stored hostname must be in exactly the form
//! the edge compares against: lowercase ASCII, no trailing dot, no port. Parsing is strict and every
//! rejection says how to write the hostname instead, because a route that silently never matches is
//! worse than an error at `portless route`.

use std::fmt;
use std::net::Ipv4Addr;

/// Longest hostname DNS can carry, without the trailing dot (RFC 1035 section 2.3.4).
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035 section 2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// A route hostname in canonical form: `app.example.com` or the wildcard `*.example.com`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteHostname(String);

/// Why a route hostname was rejected; the message says how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    /// The hostname is empty (or only a dot).
    #[error("the route hostname is empty: give a hostname such as app.example.com")]
    Empty,
    /// The input starts with a URL scheme such as `https://`.
    #[error("route hostname \"{input}\" includes a scheme: use \"{suggestion}\" instead")]
    Scheme {
        /// The rejected input.
        input: String,
        /// The input without the scheme (and without any port or path).
        suggestion: String,
    },
    /// The input has a path, query or fragment after the hostname.
    #[error(
        "route hostname \"{input}\" includes a path: routes match whole hostnames, use \"{suggestion}\""
    )]
    Path {
        /// The rejected input.
        input: String,
        /// The input up to the first '/', '?' or '#'.
        suggestion: String,
    },
    /// The input ends with `:port` (or is a bracketed IPv6 literal).
    #[error(
        "route hostname \"{input}\" includes a port: routes match a hostname on every port, use \"{suggestion}\""
    )]
    Port {
        /// The rejected input.
        input: String,
        /// The input without the port.
        suggestion: String,
    },
    /// The hostname is an IP address; routes need a DNS name (TLS SNI never carries an IP address).
    #[error(
        "route hostname \"{input}\" is an IP address: route a DNS hostname that resolves to the edge instead"
    )]
    IpAddress {
        /// The rejected input.
        input: String,
    },
    /// The hostname is longer than DNS allows.
    #[error("route hostname \"{input}\" is {len} characters long: DNS allows at most 253")]
    TooLong {
        /// The rejected input.
        input: String,
        /// Its length without the trailing dot.
        len: usize,
    },
    /// Two dots in a row, or a leading dot.
    #[error(
        "route hostname \"{input}\" has an empty label: remove the doubled or leading '.' (as in app.example.com)"
    )]
    EmptyLabel {
        /// The rejected input.
        input: String,
    },
    /// A label is longer than 63 characters.
    #[error("route hostname \"{input}\" has a label longer than 63 characters: \"{label}\"")]
    LabelTooLong {
        /// The rejected input.
        input: String,
        /// The offending label.
        label: String,
    },
    /// A label starts or ends with '-'.
    #[error(
        "route hostname \"{input}\" has the label \"{label}\" that starts or ends with '-': labels must start and end with a letter or digit"
    )]
    LabelHyphen {
        /// The rejected input.
        input: String,
        /// The offending label.
        label: String,
    },
    /// A '*' anywhere but as the whole first label.
    #[error(
        "route hostname \"{input}\" has a '*' in the wrong place: a wildcard must be the whole first label, as in *.example.com"
    )]
    MisplacedWildcard {
        /// The rejected input.
        input: String,
    },
    /// Non-ASCII characters (an internationalized name not yet in punycode).
    #[error(
        "route hostname \"{input}\" contains non-ASCII characters: use its punycode form (xn--...)"
    )]
    NonAscii {
        /// The rejected input.
        input: String,
    },
    /// Any other character outside letters, digits, '-' and '.'.
    #[error(
        "route hostname \"{input}\" contains {found:?}: use only letters, digits, '-' and '.' (and a leading \"*.\" for a wildcard)"
    )]
    InvalidCharacter {
        /// The rejected input.
        input: String,
        /// The first character that is not allowed.
        found: char,
    },
}

// === impl RouteHostname ===

impl RouteHostname {
    /// Parses `input` into canonical form: ASCII lowercase, one trailing dot removed.
    ///
    /// Rejects schemes, ports, paths, IP addresses, empty or over-long labels and any `*` other than
    /// a leading `*.` label.
    pub fn parse(input: &str) -> Result<Self, HostnameError> {
        reject_url_parts(input)?;
        let name = input.strip_suffix('.').unwrap_or(input);
        if name.is_empty() {
            return Err(HostnameError::Empty);
        }
        reject_bad_characters(input, name)?;
        if name.len() > MAX_HOSTNAME_LEN {
            return Err(HostnameError::TooLong {
                input: input.to_owned(),
                len: name.len(),
            });
        }
        if name.parse::<Ipv4Addr>().is_ok() {
            return Err(HostnameError::IpAddress {
                input: input.to_owned(),
            });
        }
        let lower = name.to_ascii_lowercase();
        check_labels(input, &lower)?;
        Ok(Self(lower))
    }

    /// The canonical hostname.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a wildcard route (`*.example.com`).
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The canonical hostname as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RouteHostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RouteHostname {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Rejects the parts of a URL people paste by habit (scheme, path, port), suggesting the bare
/// hostname. Checked first so that `https://app.example.com/` gets the scheme hint, not a complaint
/// about ':'.
fn reject_url_parts(input: &str) -> Result<(), HostnameError> {
    if let Some((_, rest)) = input.split_once("://") {
        return Err(HostnameError::Scheme {
            input: input.to_owned(),
            suggestion: bare_host(rest).to_owned(),
        });
    }
    if let Some(cut) = input.find(['/', '?', '#']) {
        return Err(HostnameError::Path {
            input: input.to_owned(),
            suggestion: input[..cut].to_owned(),
        });
    }
    if input.starts_with('[') {
        return Err(HostnameError::IpAddress {
            input: input.to_owned(),
        });
    }
    if let Some((host, _port)) = input.rsplit_once(':') {
        // More than one ':' is an unbracketed IPv6 address, not a host with a port.
        if host.contains(':') {
            return Err(HostnameError::IpAddress {
                input: input.to_owned(),
            });
        }
        return Err(HostnameError::Port {
            input: input.to_owned(),
            suggestion: host.to_owned(),
        });
    }
    Ok(())
}

/// The host part of `host[:port][/path]`, for error suggestions only.
fn bare_host(rest: &str) -> &str {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    authority.split(':').next().unwrap_or(authority)
}

fn reject_bad_characters(input: &str, name: &str) -> Result<(), HostnameError> {
    if !name.is_ascii() {
        return Err(HostnameError::NonAscii {
            input: input.to_owned(),
        });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*');
    match name.chars().find(|&c| !allowed(c)) {
        Some(found) => Err(HostnameError::InvalidCharacter {
            input: input.to_owned(),
            found,
        }),
        None => Ok(()),
    }
}

fn check_labels(input: &str, name: &str) -> Result<(), HostnameError> {
    let mut labels = name.split('.').peekable();
    if labels.peek() == Some(&"*") {
        labels.next();
        // A bare "*" would route every hostname the edge sees to one tunnel.
        if labels.peek().is_none() {
            return Err(HostnameError::MisplacedWildcard {
                input: input.to_owned(),
            });
        }
    }
    labels.try_for_each(|label| check_label(input, label))
}

fn check_label(input: &str, label: &str) -> Result<(), HostnameError> {
    let owned = || (input.to_owned(), label.to_owned());
    if label.is_empty() {
        return Err(HostnameError::EmptyLabel {
            input: input.to_owned(),
        });
    }
    if label.contains('*') {
        return Err(HostnameError::MisplacedWildcard {
            input: input.to_owned(),
        });
    }
    if label.len() > MAX_LABEL_LEN {
        let (input, label) = owned();
        return Err(HostnameError::LabelTooLong { input, label });
    }
    if label.starts_with('-') || label.ends_with('-') {
        let (input, label) = owned();
        return Err(HostnameError::LabelHyphen { input, label });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(input: &str) -> String {
        match RouteHostname::parse(input) {
            Ok(h) => h.into_string(),
            Err(e) => panic!("{input:?} rejected: {e}"),
        }
    }

    fn rejected(input: &str) -> HostnameError {
        match RouteHostname::parse(input) {
            Ok(h) => panic!("{input:?} accepted as {h}"),
            Err(e) => e,
        }
    }

    #[test]
    fn lowercases_and_strips_one_trailing_dot() {
        assert_eq!(canonical("App.Example.COM"), "app.example.com");
        assert_eq!(canonical("app.example.com."), "app.example.com");
        assert_eq!(canonical("localhost"), "localhost");
        assert_eq!(canonical("a-1.b2.example"), "a-1.b2.example");
    }

    #[test]
    fn accepts_a_leading_wildcard_label_only() {
        let h = RouteHostname::parse("*.Example.com").unwrap();
        assert_eq!(h.as_str(), "*.example.com");
        assert!(h.is_wildcard());
        assert!(!RouteHostname::parse("example.com").unwrap().is_wildcard());
        for bad in [
            "*",
            "*.",
            "a.*.example.com",
            "*.*.example.com",
            "a*.example.com",
            "*a.example.com",
        ] {
            assert!(
                matches!(
                    rejected(bad),
                    HostnameError::MisplacedWildcard { .. } | HostnameError::Empty
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_schemes_with_the_bare_hostname_as_the_fix() {
        let err = rejected("https://user@App.example.com:8443/x?y");
        assert_eq!(
            err,
            HostnameError::Scheme {
                input: "https://user@App.example.com:8443/x?y".into(),
                suggestion: "App.example.com".into(),
            }
        );
        assert!(err.to_string().contains("use \"App.example.com\" instead"));
    }

    #[test]
    fn rejects_ports_and_paths_with_the_fix() {
        let port = rejected("app.example.com:8080");
        assert!(
            port.to_string().contains("use \"app.example.com\""),
            "{port}"
        );
        let path = rejected("app.example.com/admin");
        assert!(
            path.to_string().contains("use \"app.example.com\""),
            "{path}"
        );
        assert!(matches!(
            rejected("app.example.com?q"),
            HostnameError::Path { .. }
        ));
    }

    #[test]
    fn rejects_empty_labels() {
        assert_eq!(rejected(""), HostnameError::Empty);
        assert_eq!(rejected("."), HostnameError::Empty);
        for bad in ["app..example.com", ".app.example.com", "app.example.com.."] {
            assert!(
                matches!(rejected(bad), HostnameError::EmptyLabel { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_ip_addresses() {
        for bad in ["192.0.2.1", "[::1]", "[::1]:443", "::1", "2001:db8::1"] {
            assert!(
                matches!(rejected(bad), HostnameError::IpAddress { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_bad_characters_and_lengths() {
        assert!(matches!(
            rejected("app_x.example.com"),
            HostnameError::InvalidCharacter { found: '_', .. }
        ));
        assert!(matches!(
            rejected("app example.com"),
            HostnameError::InvalidCharacter { found: ' ', .. }
        ));
        assert!(matches!(
            rejected("bücher.example"),
            HostnameError::NonAscii { .. }
        ));
        assert!(matches!(
            rejected("-app.example.com"),
            HostnameError::LabelHyphen { .. }
        ));
        assert!(matches!(
            rejected("app-.example.com"),
            HostnameError::LabelHyphen { .. }
        ));
        let long_label = format!("{}.example.com", "a".repeat(64));
        assert!(matches!(
            rejected(&long_label),
            HostnameError::LabelTooLong { .. }
        ));
        assert_eq!(
            canonical(&format!("{}.example.com", "a".repeat(63))).len(),
            75
        );
        let long_name = vec!["a".repeat(63); 4].join(".");
        assert!(matches!(
            rejected(&long_name),
            HostnameError::TooLong { len: 255, .. }
        ));
    }
}
