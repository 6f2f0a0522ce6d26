//! Canonical email addresses: the one spelling every PIN, counter and rule check uses.
//!
//! `Alice@Example.com` and `alice@example.com` must share one PIN slot and one rate-limit
//! counter, or an attacker gets a fresh budget per spelling (attacks.md, class H). An
//! address with two `@` is refused outright: different mail systems split it differently,
//! so the address checked against the rules might not be the mailbox the PIN is sent to.

use std::fmt;

/// Longest address accepted (RFC 5321's path limit).
const MAX_LEN: usize = 254;

/// A canonical email address: trimmed, lowercase, exactly one `@` with text on both sides,
/// no whitespace or control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

/// Why an address typed on the PIN page is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// Nothing was typed.
    #[error("no email address given: type the address you want the code sent to")]
    Empty,
    /// Longer than an SMTP path allows.
    #[error("the email address is longer than {MAX_LEN} characters: check what was pasted")]
    TooLong,
    /// Not exactly one `@`.
    #[error("an email address needs exactly one `@` (like alice@example.com)")]
    At,
    /// Nothing before or after the `@`.
    #[error("an email address needs a name before the `@` and a domain after it")]
    EmptyPart,
    /// Whitespace or a control character inside the address.
    #[error("the email address contains a space or a control character: remove it")]
    Control,
    /// A domain without a dot, or with an empty label.
    #[error("the domain after the `@` is not a valid domain name (like example.com)")]
    Domain,
}

impl EmailAddress {
    /// Canonicalizes `input`: trims surrounding whitespace, lowercases, and checks the
    /// shape.
    pub fn parse(input: &str) -> Result<EmailAddress, AddressError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        if trimmed.len() > MAX_LEN {
            return Err(AddressError::TooLong);
        }
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(AddressError::Control);
        }
        let lower = trimmed.to_lowercase();
        let mut parts = lower.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AddressError::At);
        };
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::EmptyPart);
        }
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(AddressError::Domain);
        }
        Ok(EmailAddress(format!("{local}@{domain}")))
    }

    /// The canonical address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or("", |(local, _)| local)
    }

    /// The domain after the `@`, lowercase.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_are_one_address() {
        let a = EmailAddress::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "alice@example.com");
        assert_eq!(a, EmailAddress::parse("alice@example.com.").unwrap());
        assert_eq!(a.local_part(), "alice");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        let cases = [
            ("", AddressError::Empty),
            ("   ", AddressError::Empty),
            ("alice", AddressError::At),
            ("alice@evil.com@example.com", AddressError::At),
            ("@example.com", AddressError::EmptyPart),
            ("alice@", AddressError::EmptyPart),
            ("ali ce@example.com", AddressError::Control),
            ("alice@example.com\r\nBcc: x@y.z", AddressError::Control),
            ("alice\u{0}@example.com", AddressError::Control),
            ("alice@localhost", AddressError::Domain),
            ("alice@example..com", AddressError::Domain),
        ];
        for (input, want) in cases {
            assert_eq!(EmailAddress::parse(input), Err(want), "{input:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(AddressError::TooLong));
    }
}
