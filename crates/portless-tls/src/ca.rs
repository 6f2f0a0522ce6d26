//! [`LocalCa`]: a small certificate authority for the tunnel, demos and tests.
//!
//! The edge keeps one in its state directory and issues its tunnel certificate from it; connectors
//! trust it through its [`CaPin`]. Tests use throwaway ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::files::{self, Created};
use crate::pem::{self, der_to_pem};
use crate::{CaPin, TlsError};

/// File name of the CA certificate inside the directory given to [`LocalCa::load_or_create`].
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside that directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// Common name of a CA created by [`LocalCa::load_or_create`].
const DEFAULT_CA_NAME: &str = "Portless local CA";

/// Certificates start one hour in the past so that peers whose clock is a little behind accept
/// them straight away.
const BACKDATE: Duration = Duration::from_secs(3600);
/// Long enough that nobody renews by hand, short enough that a leaked leaf ages out.
const LEAF_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// About ten years: replacing a CA means re-pinning every connector.
const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);

/// A certificate authority whose key lives in this process: it issues ECDSA P-256 leaves.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    pin: CaPin,
}

// === impl LocalCa ===

impl LocalCa {
    /// Generates a new CA (ECDSA P-256, about ten years of validity) named `common_name`.
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        let generate_err = |source| TlsError::Generate {
            what: format!("CA `{common_name}`"),
            source,
        };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        // Path length 0: this CA signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, SystemTime::now() - BACKDATE, CA_VALIDITY);
        let cert = params.self_signed(&key).map_err(generate_err)?;
        Ok(Self::from_parts(
            Issuer::new(params, key),
            cert.der().clone(),
        ))
    }

    /// Loads the CA from `dir/ca.pem` and `dir/ca-key.pem`, or creates both if neither exists.
    ///
    /// The key file is created with mode 0600 and both files appear atomically (see
    /// `files::create_new`). If only one of the two exists, or one is unreadable or corrupt, the
    /// error names the file: silently generating a new CA would break every pinned connector.
    pub fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => Self::load(&cert_path, &key_path),
            (true, false) => Err(incomplete(cert_path, key_path)),
            (false, true) => Err(incomplete(key_path, cert_path)),
            (false, false) => Self::create(dir, &cert_path, &key_path),
        }
    }

    /// Loads a CA from a PEM certificate and its PEM private key, checking that they match.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        // A file holding a chain is fine: the CA is its first certificate.
        let cert_der = pem::certs_from_pem(cert_path, &files::read(cert_path)?)?
            .into_iter()
            .next()
            .ok_or_else(|| TlsError::CorruptFile {
                path: cert_path.to_owned(),
                reason: "it holds no certificate".to_owned(),
            })?;
        let key_pem = files::read(key_path)?;
        files::warn_if_not_private(key_path);

        // Checked through rustls so a mismatched pair fails here, naming both files, rather
        // than later as an opaque handshake failure on every connector.
        let key_der = pem::key_from_pem(key_path, &key_pem)?;
        pem::certified_key(
            vec![cert_der.clone()],
            key_der.clone_key(),
            cert_path,
            key_path,
        )?;

        let key = KeyPair::try_from(&key_der).map_err(|err| TlsError::CorruptFile {
            path: key_path.to_owned(),
            reason: format!(
                "the key cannot sign certificates ({err}); use an ECDSA or Ed25519 key"
            ),
        })?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|err| TlsError::CorruptFile {
                path: cert_path.to_owned(),
                reason: format!("not a usable X.509 CA certificate ({err})"),
            })?;
        let usages = issuer.key_usages();
        if !usages.is_empty() && !usages.contains(&KeyUsagePurpose::KeyCertSign) {
            return Err(TlsError::CorruptFile {
                path: cert_path.to_owned(),
                reason: "this certificate may not sign certificates (no keyCertSign key usage); \
                         give a CA certificate"
                    .to_owned(),
            });
        }
        Ok(Self::from_parts(issuer, cert_der))
    }

    fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        files::create_private_dir(dir)?;
        let ca = Self::generate(DEFAULT_CA_NAME)?;
        let key_pem = ca.issuer.key().serialize_pem();
        // The key goes first: whoever links it first owns the directory; a process that loses
        // the race loads the winner's files instead of mixing its certificate with their key.
        if files::create_new(key_path, key_pem.as_bytes(), 0o600)? == Created::AlreadyExisted {
            return Self::load(cert_path, key_path);
        }
        if files::create_new(cert_path, ca.cert_pem.as_bytes(), 0o644)? == Created::AlreadyExisted {
            return Self::load(cert_path, key_path);
        }
        tracing::info!(dir = %dir.display(), pin = %ca.pin, "created local CA");
        Ok(ca)
    }

    fn from_parts(issuer: Issuer<'static, KeyPair>, cert_der: CertificateDer<'static>) -> Self {
        Self {
            issuer,
            cert_pem: der_to_pem("CERTIFICATE", &cert_der),
            pin: CaPin::of_der(&cert_der),
            cert_der,
        }
    }

    /// The CA certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The pin connectors configure to trust this CA.
    pub fn pin(&self) -> CaPin {
        self.pin
    }

    /// Issues a leaf for `names` (DNS names, and IP addresses which become IP SANs), valid from
    /// an hour ago for about 90 days, as a rustls key with chain `[leaf, CA]`.
    pub fn issue(&self, names: &[String]) -> Result<Arc<CertifiedKey>, TlsError> {
        let now = SystemTime::now();
        self.issue_valid_between(names, now - BACKDATE, now + LEAF_VALIDITY)
    }

    /// Like [`issue`](Self::issue) with an explicit validity window (tests use it to make
    /// expired or not-yet-valid certificates).
    pub fn issue_valid_between(
        &self,
        names: &[String],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Arc<CertifiedKey>, TlsError> {
        let (leaf_der, key) = self.issue_leaf(names, not_before, not_after)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = crate::provider()
            .key_provider
            .load_private_key(key_der)
            .map_err(|source| TlsError::Config {
                what: "signing key of an issued leaf",
                source,
            })?;
        let chain = vec![leaf_der, self.cert_der.clone()];
        Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
    }

    /// Issues a leaf like [`issue`](Self::issue) and returns `(chain_pem, key_pem)`: the leaf
    /// then the CA certificate, and the PKCS#8 private key, ready to be written to files.
    pub fn issue_pem(&self, names: &[String]) -> Result<(String, String), TlsError> {
        let now = SystemTime::now();
        let (leaf_der, key) = self.issue_leaf(names, now - BACKDATE, now + LEAF_VALIDITY)?;
        let chain_pem = der_to_pem("CERTIFICATE", &leaf_der) + &self.cert_pem;
        Ok((chain_pem, key.serialize_pem()))
    }

    fn issue_leaf(
        &self,
        names: &[String],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<(CertificateDer<'static>, KeyPair), TlsError> {
        let first = names.first().ok_or(TlsError::NoNames)?;
        let generate_err = |source| TlsError::Generate {
            what: format!("certificate for {}", names.join(", ")),
            source,
        };
        // `CertificateParams::new` turns strings that parse as IP addresses into IP SANs.
        let mut params = CertificateParams::new(names.to_vec()).map_err(generate_err)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(generate_err)?;
        Ok((cert.der().clone(), key))
    }
}

impl std::fmt::Debug for LocalCa {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

fn set_validity(params: &mut CertificateParams, not_before: SystemTime, validity: Duration) {
    // rcgen takes `time::OffsetDateTime`, which converts from `SystemTime`; going through
    // `SystemTime` keeps `time` out of our own dependency list.
    params.not_before = not_before.into();
    params.not_after = (not_before + validity).into();
}

fn exists(path: &Path) -> Result<bool, TlsError> {
    path.try_exists().map_err(|source| TlsError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

fn incomplete(present: PathBuf, missing: PathBuf) -> TlsError {
    TlsError::IncompleteCa { present, missing }
}

#[cfg(test)]
mod tests;
