//! [`CaPin`]: how a connector names the edge CA it trusts, in one copy-pasteable string.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::TlsError;
use crate::provider::sha256;

const PREFIX: &str = "sha256:";

/// SHA-256 of a CA certificate's DER encoding, written `sha256:<base64url, no padding>`.
///
/// Equality is constant-time: a pin is not secret, but comparing in constant time everywhere
/// means nobody has to decide case by case.
#[derive(Clone, Copy)]
pub struct CaPin([u8; 32]);

// === impl CaPin ===

impl CaPin {
    /// The pin of a certificate, from its DER encoding.
    pub fn of_der(cert_der: &[u8]) -> Self {
        Self(sha256(cert_der))
    }

    /// The raw 32-byte digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `cert_der` is the certificate this pin names.
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        *self == Self::of_der(cert_der)
    }
}

impl PartialEq for CaPin {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for CaPin {}

// Written by hand because `PartialEq` is; hashing the same bytes keeps the two consistent.
impl std::hash::Hash for CaPin {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Display for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaPin({self})")
    }
}

impl FromStr for CaPin {
    type Err = TlsError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| TlsError::InvalidPin {
            input: input.to_owned(),
            reason,
        };
        let encoded = input
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| invalid("it does not start with `sha256:`"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| invalid("the part after `sha256:` is not base64url without padding"))?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid("the digest is not 32 bytes long"))?;
        Ok(Self(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let pin = CaPin::of_der(b"any certificate bytes");
        let text = pin.to_string();
        assert!(text.starts_with("sha256:"));
        assert_eq!(text.len(), "sha256:".len() + 43);
        let parsed: CaPin = text.parse().unwrap();
        assert_eq!(parsed, pin);
        assert!(parsed.matches(b"any certificate bytes"));
        assert!(!parsed.matches(b"other bytes"));
    }

    #[test]
    fn bad_strings_say_what_is_wrong() {
        let err = "md5:abc".parse::<CaPin>().unwrap_err().to_string();
        assert!(err.contains("does not start with `sha256:`"), "{err}");
        assert!(err.contains("md5:abc"), "{err}");

        let err = "sha256:not*base64"
            .parse::<CaPin>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not base64url"), "{err}");

        let err = "sha256:AAAA".parse::<CaPin>().unwrap_err().to_string();
        assert!(err.contains("not 32 bytes"), "{err}");
    }

    #[test]
    fn different_digests_are_not_equal() {
        assert_ne!(CaPin::of_der(b"a"), CaPin::of_der(b"b"));
    }
}
