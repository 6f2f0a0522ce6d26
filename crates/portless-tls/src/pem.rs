//! Loading certificates and keys from PEM files (static certificates, CA bundles).

use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{TlsError, files, provider};

/// Loads every certificate of a PEM file (a chain, or a CA bundle). At least one is required.
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(path, &files::read(path)?)
}

/// Loads a certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1) and
/// checks that the key belongs to the leaf.
pub fn load_pem_chain_and_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_pem_certs(cert)?;
    let key_der = key_from_pem(key, &files::read(key)?)?;
    certified_key(chain, key_der, cert, key).map(Arc::new)
}

/// Parses all `CERTIFICATE` blocks of `pem`; `path` only names the source in errors.
pub(crate) fn certs_from_pem(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| corrupt(path, format!("bad PEM ({err})")))?;
    if certs.is_empty() {
        return Err(corrupt(
            path,
            "it holds no `BEGIN CERTIFICATE` block; give a PEM certificate file".to_owned(),
        ));
    }
    Ok(certs)
}

/// Parses the first private key of `pem`; `path` only names the source in errors.
pub(crate) fn key_from_pem(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|err| {
        corrupt(
            path,
            format!("no PEM private key found ({err}); give a PKCS#8, RSA or EC private key file"),
        )
    })
}

/// Pairs a chain and a key through the provider, naming both files if they do not match.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key_der: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        },
        other => corrupt(
            key_path,
            format!("the key cannot be used for TLS ({other}); use an ECDSA, Ed25519 or RSA key"),
        ),
    })
}

fn corrupt(path: &Path, reason: String) -> TlsError {
    TlsError::CorruptFile {
        path: path.to_owned(),
        reason,
    }
}

/// PEM-encodes one DER object (`label` is e.g. `CERTIFICATE`), 64 characters per line.
pub(crate) fn der_to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 output is ASCII, so splitting its bytes into chunks never splits a character.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
