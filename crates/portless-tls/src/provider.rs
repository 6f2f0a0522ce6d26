//! The one crypto provider Portless uses: aws-lc-rs with the post-quantum hybrid group first.

use std::sync::{Arc, LazyLock};

use ::aws_lc_rs::digest;
use rustls::crypto::{CryptoProvider, aws_lc_rs};

/// Built once: every config shares the same provider (and so the same static tables).
static PROVIDER: LazyLock<Arc<CryptoProvider>> = LazyLock::new(|| Arc::new(build_provider()));

fn build_provider() -> CryptoProvider {
    let mut provider = aws_lc_rs::default_provider();
    // X25519MLKEM768 first so both ends negotiate a post-quantum key exchange whenever the
    // peer can; X25519 and P-256 remain as the classical fallback for older peers (browsers,
    // origins). P-384 and the pure ML-KEM groups are left out: nothing we talk to needs them,
    // and a shorter list means a smaller ClientHello.
    provider.kx_groups = vec![
        aws_lc_rs::kx_group::X25519MLKEM768,
        aws_lc_rs::kx_group::X25519,
        aws_lc_rs::kx_group::SECP256R1,
    ];
    provider
}

/// The aws-lc-rs provider with key-exchange groups X25519MLKEM768, X25519, secp256r1 (in that
/// order of preference) and rustls' default cipher suites.
pub fn provider() -> Arc<CryptoProvider> {
    PROVIDER.clone()
}

/// Installs [`provider()`] as the process-wide default rustls provider.
///
/// Idempotent, and safe to race: if a default is already installed (by us or by a dependency)
/// it is left in place, because replacing it is not possible and failing would gain nothing;
/// every config built by this crate names its provider explicitly anyway.
pub fn install_default_provider() {
    if CryptoProvider::get_default().is_some() {
        return;
    }
    if CryptoProvider::install_default(build_provider()).is_err() {
        tracing::debug!("another rustls crypto provider was installed first; keeping it");
    }
}

/// SHA-256 of `bytes` (aws-lc-rs).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::NamedGroup;

    #[test]
    fn groups_prefer_post_quantum_then_classical() {
        let names: Vec<NamedGroup> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            names,
            [
                NamedGroup::X25519MLKEM768,
                NamedGroup::X25519,
                NamedGroup::secp256r1
            ]
        );
    }

    #[test]
    fn install_is_idempotent() {
        install_default_provider();
        install_default_provider();
        assert!(CryptoProvider::get_default().is_some());
    }

    #[test]
    fn sha256_matches_known_vector() {
        // FIPS 180-2 test vector for "abc".
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let hex: String = sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}
