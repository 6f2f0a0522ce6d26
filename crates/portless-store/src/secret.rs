//! Tunnel secrets and the hashes the store keeps instead of them.
//!
//! The store never holds a secret: it keeps the hex SHA-256 of it. A tunnel secret is 32 random
//! bytes, so a fast hash is enough (there is nothing to brute-force, unlike a password), and the
//! comparison is constant-time so a connector cannot learn the hash byte by byte.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::{Choice, ConstantTimeEq};

use crate::StoreError;

/// The secret a connector presents to register for a tunnel: 32 random bytes.
///
/// Returned once, by [`Store::create_tunnel`](crate::Store::create_tunnel) and
/// [`Store::rotate_tunnel_secret`](crate::Store::rotate_tunnel_secret); the store cannot show it
/// again. `Debug` prints `TunnelSecret(..)`, never the bytes, and the bytes are overwritten on drop.
pub struct TunnelSecret([u8; TunnelSecret::LEN]);

// === impl TunnelSecret ===

impl TunnelSecret {
    /// Length of a secret in bytes.
    pub const LEN: usize = 32;

    /// Draws a new secret from the operating system's random generator.
    pub(crate) fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0u8; Self::LEN];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The raw secret bytes, for writing a credentials file or a token.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as standard base64 with padding, the form credentials files and tokens carry.
    ///
    /// The returned `String` is an ordinary heap string: hand it straight to the file or token
    /// writer rather than keeping it around.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The hash the store keeps for this secret.
    pub(crate) fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for TunnelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TunnelSecret(..)")
    }
}

impl Drop for TunnelSecret {
    fn drop(&mut self) {
        // Best effort without `unsafe` or a zeroize dependency: `black_box` keeps the compiler from
        // proving the zeroed bytes are never read and removing the store.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// Hex SHA-256 of a secret: what the `tunnels` table stores.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretHash(String);

// === impl SecretHash ===

impl SecretHash {
    /// A hash that no secret produces in practice, compared against when there is nothing to compare
    /// (unknown tunnel, no previous secret) so every verification does the same work.
    pub(crate) fn placeholder() -> Self {
        Self("0".repeat(64))
    }

    /// Hashes `secret`.
    pub(crate) fn of(secret: &[u8]) -> Self {
        Self(to_hex(digest(&SHA256, secret).as_ref()))
    }

    /// Wraps a hash read from the database.
    pub(crate) fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex form, for binding into SQL.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time equality (for equal lengths; lengths are not secret).
    pub(crate) fn ct_matches(&self, other: &Self) -> Choice {
        self.0.as_bytes().ct_eq(other.0.as_bytes())
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Fills `dest` from the operating system's random generator.
pub(crate) fn fill_random(dest: &mut [u8]) -> Result<(), StoreError> {
    SystemRandom::new()
        .fill(dest)
        .map_err(|_| StoreError::Random)
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = TunnelSecret::generate().unwrap();
        assert_eq!(format!("{secret:?}"), "TunnelSecret(..)");
        assert_eq!(format!("{:?}", secret.hash()), "SecretHash(..)");
    }

    #[test]
    fn base64_is_standard_with_padding() {
        let secret = TunnelSecret([0xfb; TunnelSecret::LEN]);
        let encoded = secret.to_base64();
        assert_eq!(encoded.len(), 44);
        assert!(encoded.ends_with('='));
        assert!(encoded.contains('+') || encoded.contains('/'));
        assert_eq!(STANDARD.decode(&encoded).unwrap(), secret.expose());
    }

    #[test]
    fn secrets_are_random() {
        let a = TunnelSecret::generate().unwrap();
        let b = TunnelSecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 32);
    }

    #[test]
    fn hash_is_hex_sha256() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(SecretHash::of(b"abc").as_str(), expected);
        assert!(bool::from(
            SecretHash::of(b"abc").ct_matches(&SecretHash::of(b"abc"))
        ));
        assert!(!bool::from(
            SecretHash::of(b"abc").ct_matches(&SecretHash::placeholder())
        ));
    }
}
