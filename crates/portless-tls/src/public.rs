//! Certificates of the public listener, chosen per SNI name in a fixed order:
//!
//! 1. a static certificate file whose hostname pattern matches the name;
//! 2. a certificate obtained by ACME ([`CertMap`], filled and renewed in the background);
//! 3. the local CA (demo and tests, when no ACME is configured);
//! 4. the default certificate.
//!
//! A handshake offering only the `acme-tls/1` ALPN protocol (RFC 8737) gets the TLS-ALPN-01
//! challenge certificate for its name instead, or no certificate at all (handshake refused).
//!
//! Every lookup is a read lock, a hash lookup by the borrowed SNI name and an `Arc` clone: a
//! handshake allocates nothing here, whatever the number of names.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{LocalCaResolver, TlsError, pem};

/// The ALPN protocol of TLS-ALPN-01 challenges (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Certificates by exact hostname, swapped one entry at a time: a renewal replaces the entry
/// in one write, so every handshake sees either the old or the new certificate, never none.
#[derive(Default)]
pub struct CertMap {
    entries: RwLock<HashMap<Box<str>, Arc<CertifiedKey>>>,
}

impl CertMap {
    /// An empty map.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The certificate for `name` (canonical: lowercase, no trailing dot).
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.read(|entries| entries.get(name).cloned())
    }

    /// Whether `name` has a certificate.
    pub fn contains(&self, name: &str) -> bool {
        self.read(|entries| entries.contains_key(name))
    }

    /// Puts (or replaces) the certificate of `name`.
    pub fn insert(&self, name: &str, key: Arc<CertifiedKey>) {
        self.write(|entries| {
            entries.insert(name.into(), key);
        });
    }

    /// Removes the certificate of `name`.
    pub fn remove(&self, name: &str) {
        self.write(|entries| {
            entries.remove(name);
        });
    }

    /// Number of names with a certificate.
    pub fn len(&self) -> usize {
        self.read(HashMap::len)
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read<T>(&self, f: impl FnOnce(&HashMap<Box<str>, Arc<CertifiedKey>>) -> T) -> T {
        match self.entries.read() {
            Ok(guard) => f(&guard),
            // Insert and remove cannot leave the map half-updated; keep serving it.
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write(&self, f: impl FnOnce(&mut HashMap<Box<str>, Arc<CertifiedKey>>)) {
        match self.entries.write() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl fmt::Debug for CertMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertMap")
            .field("names", &self.len())
            .finish()
    }
}

/// One static certificate: a chain and key from files, served for hostname patterns.
#[derive(Debug, Clone)]
pub struct StaticCertificate {
    /// Exact names (`app.example.com`) or one-label wildcards (`*.example.com`, which matches
    /// `x.example.com` but neither `example.com` nor `a.b.example.com`, as TLS clients do).
    pub hostnames: Vec<String>,
    /// The PEM chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// Loaded static certificates, by exact name and by wildcard suffix.
#[derive(Default)]
struct StaticSet {
    exact: HashMap<Box<str>, Arc<CertifiedKey>>,
    /// `*.example.com` → key `example.com`.
    wildcard: HashMap<Box<str>, Arc<CertifiedKey>>,
}

impl StaticSet {
    fn load(certificates: &[StaticCertificate]) -> Result<Self, TlsError> {
        let mut set = Self::default();
        for certificate in certificates {
            let key = pem::load_pem_chain_and_key(&certificate.cert, &certificate.key)?;
            for pattern in &certificate.hostnames {
                let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
                match pattern.strip_prefix("*.") {
                    Some(suffix) => set.wildcard.insert(suffix.into(), key.clone()),
                    None => set.exact.insert(pattern.into(), key.clone()),
                };
            }
        }
        Ok(set)
    }

    fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(key) = self.exact.get(name) {
            return Some(key.clone());
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).cloned()
    }
}

/// The static certificate files, reloadable as a whole (a changed file replaces the set in one
/// swap; a file that fails to load keeps the previous set).
pub struct StaticCertificates {
    certificates: Vec<StaticCertificate>,
    current: RwLock<Arc<StaticSet>>,
}

impl StaticCertificates {
    /// Loads every file; an unreadable or mismatched file is an error naming it.
    pub fn load(certificates: Vec<StaticCertificate>) -> Result<Arc<Self>, TlsError> {
        let set = StaticSet::load(&certificates)?;
        Ok(Arc::new(Self {
            certificates,
            current: RwLock::new(Arc::new(set)),
        }))
    }

    /// Reads the files again and swaps the new set in; on error the previous set stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let set = Arc::new(StaticSet::load(&self.certificates)?);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    /// The files to watch for changes.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.certificates
            .iter()
            .flat_map(|c| [c.cert.as_path(), c.key.as_path()])
    }

    /// Whether no static certificate is configured.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    /// The certificate for `name`, if a pattern matches it.
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let set = match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        set.get(name)
    }
}

impl fmt::Debug for StaticCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCertificates")
            .field("certificates", &self.certificates)
            .finish_non_exhaustive()
    }
}

/// The public listener's resolver; see the module documentation for the order.
pub struct PublicResolver {
    statics: Option<Arc<StaticCertificates>>,
    acme: Option<Arc<CertMap>>,
    challenges: Option<Arc<CertMap>>,
    local: Option<LocalCaResolver>,
    default: Arc<CertifiedKey>,
}

impl PublicResolver {
    /// A resolver serving `default` to every name until sources are added.
    pub fn new(default: Arc<CertifiedKey>) -> Self {
        Self {
            statics: None,
            acme: None,
            challenges: None,
            local: None,
            default,
        }
    }

    /// Static certificate files, tried first.
    pub fn with_static(mut self, statics: Arc<StaticCertificates>) -> Self {
        self.statics = Some(statics);
        self
    }

    /// ACME certificates (`certificates`) and TLS-ALPN-01 challenge certificates
    /// (`challenges`, served only to `acme-tls/1` handshakes).
    pub fn with_acme(mut self, certificates: Arc<CertMap>, challenges: Arc<CertMap>) -> Self {
        self.acme = Some(certificates);
        self.challenges = Some(challenges);
        self
    }

    /// The local CA, tried after ACME (certificates issued on demand for served names).
    pub fn with_local_ca(mut self, local: LocalCaResolver) -> Self {
        self.local = Some(local);
        self
    }

    /// The certificate for a handshake naming `server_name` and offering `alpn`.
    pub fn resolve_for<'a>(
        &self,
        server_name: Option<&str>,
        mut alpn: impl Iterator<Item = &'a [u8]>,
    ) -> Option<Arc<CertifiedKey>> {
        // A validation server offers acme-tls/1 and nothing else (RFC 8737, section 3). Only
        // the challenge certificate answers it; no challenge, no handshake. A client that
        // offers more gets the normal certificate (and, should it negotiate acme-tls/1, a
        // closed connection right after the handshake).
        if alpn.next() == Some(ACME_TLS_ALPN) && alpn.next().is_none() {
            return self.challenges.as_ref()?.get(server_name?);
        }
        let Some(name) = server_name else {
            return Some(self.default.clone());
        };
        if let Some(key) = self.statics.as_ref().and_then(|s| s.get(name)) {
            return Some(key);
        }
        if let Some(key) = self.acme.as_ref().and_then(|m| m.get(name)) {
            return Some(key);
        }
        if let Some(local) = &self.local {
            return Some(local.resolve_name(Some(name)));
        }
        Some(self.default.clone())
    }
}

impl ResolvesServerCert for PublicResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls has already lowercased the SNI name.
        let name = client_hello.server_name();
        let alpn = client_hello.alpn().into_iter().flatten();
        self.resolve_for(name, alpn)
    }
}

impl fmt::Debug for PublicResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicResolver")
            .field("statics", &self.statics)
            .field("acme", &self.acme)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// The self-signed TLS-ALPN-01 certificate for `name`: its only SAN is `name` and its critical
/// `acmeIdentifier` extension holds `digest`, the SHA-256 of the key authorization.
pub fn tls_alpn_challenge_cert(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    let generate_err = |source| TlsError::Generate {
        what: format!("TLS-ALPN-01 challenge certificate for {name}"),
        source,
    };
    let mut params = CertificateParams::new(vec![name.to_owned()]).map_err(generate_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let key = KeyPair::generate().map_err(generate_err)?;
    let cert = params.self_signed(&key).map_err(generate_err)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = crate::provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| TlsError::Config {
            what: "signing key of a TLS-ALPN-01 certificate",
            source,
        })?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

/// A chain and key given as PEM text (from the store), checked to belong together. `what`
/// names the source in errors (for example `certificate of app.example.com in the store`).
pub fn certified_key_from_pem(
    chain_pem: &str,
    key_pem: &str,
    what: &str,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let source = Path::new(what);
    let chain = pem::certs_from_pem(source, chain_pem.as_bytes())?;
    let key = pem::key_from_pem(source, key_pem.as_bytes())?;
    pem::certified_key(chain, key, source, source).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalCa;

    fn leaf(ca: &LocalCa, name: &str) -> Arc<CertifiedKey> {
        ca.issue(&[name.to_owned()]).unwrap()
    }

    fn resolver() -> (
        PublicResolver,
        Arc<CertMap>,
        Arc<CertMap>,
        Arc<CertifiedKey>,
    ) {
        let ca = LocalCa::generate("public resolver test").unwrap();
        let default = leaf(&ca, "default.invalid");
        let acme = CertMap::new();
        let challenges = CertMap::new();
        let resolver =
            PublicResolver::new(default.clone()).with_acme(acme.clone(), challenges.clone());
        (resolver, acme, challenges, default)
    }

    #[test]
    fn acme_certificates_then_default() {
        let (resolver, acme, _, default) = resolver();
        let ca = LocalCa::generate("x").unwrap();
        let app = leaf(&ca, "app.test");
        acme.insert("app.test", app.clone());
        let got = resolver.resolve_for(Some("app.test"), std::iter::empty());
        assert!(Arc::ptr_eq(&got.unwrap(), &app));
        let other = resolver.resolve_for(Some("other.test"), std::iter::empty());
        assert!(Arc::ptr_eq(&other.unwrap(), &default));
        let none = resolver.resolve_for(None, std::iter::empty());
        assert!(Arc::ptr_eq(&none.unwrap(), &default));
    }

    #[test]
    fn acme_tls_alpn_gets_only_the_challenge_certificate() {
        let (resolver, acme, challenges, _) = resolver();
        let ca = LocalCa::generate("x").unwrap();
        acme.insert("app.test", leaf(&ca, "app.test"));
        let offered = [ACME_TLS_ALPN];
        assert!(
            resolver
                .resolve_for(Some("app.test"), offered.iter().copied())
                .is_none()
        );
        let challenge = tls_alpn_challenge_cert("app.test", &[7u8; 32]).unwrap();
        challenges.insert("app.test", challenge.clone());
        let got = resolver.resolve_for(Some("app.test"), offered.iter().copied());
        assert!(Arc::ptr_eq(&got.unwrap(), &challenge));
        // A browser-like offer that also names acme-tls/1 gets the real certificate.
        for mixed in [
            [b"h2".as_slice(), ACME_TLS_ALPN],
            [ACME_TLS_ALPN, b"http/1.1".as_slice()],
        ] {
            let got = resolver.resolve_for(Some("app.test"), mixed.iter().copied());
            assert!(
                !Arc::ptr_eq(&got.unwrap(), &challenge),
                "{mixed:?} got the challenge certificate"
            );
        }
    }

    #[test]
    fn static_wildcards_match_one_label() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::generate("static").unwrap();
        let (chain, key) = ca.issue_pem(&["*.example.com".to_owned()]).unwrap();
        std::fs::write(dir.path().join("c.pem"), chain).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        let statics = StaticCertificates::load(vec![StaticCertificate {
            hostnames: vec!["*.Example.com".to_owned()],
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        }])
        .unwrap();
        assert!(statics.get("a.example.com").is_some());
        assert!(statics.get("example.com").is_none());
        assert!(statics.get("a.b.example.com").is_none());
        assert!(statics.reload().is_ok());
    }
}
