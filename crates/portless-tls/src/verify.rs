//! How a client decides to trust a server: the connector's [`EdgeTrust`], and the permissive
//! verifier behind an origin's `no_verify`.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::{CaPin, TlsError};

/// How the connector authenticates the edge.
#[derive(Clone, Debug)]
pub enum EdgeTrust {
    /// Trust the CA whose certificate has this SHA-256, when the edge presents it in its chain.
    /// The leaf is still fully verified against it: signature, validity dates and server name.
    Pinned(CaPin),
    /// Trust this CA certificate (for example the edge's `ca.pem` copied to the connector).
    CaCertificate(CertificateDer<'static>),
    /// Trust the operating system's root store (an edge with a public ACME certificate).
    SystemRoots,
}

// === impl EdgeTrust ===

impl EdgeTrust {
    /// The rustls verifier implementing this trust, using `provider`'s signature algorithms.
    pub fn verifier(
        self,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        match self {
            Self::Pinned(pin) => Ok(Arc::new(PinnedCaVerifier::new(pin, provider))),
            Self::CaCertificate(cert) => {
                let mut roots = RootCertStore::empty();
                roots.add(cert).map_err(|source| TlsError::BadTrustAnchor {
                    what: "the edge CA certificate".to_owned(),
                    source,
                })?;
                webpki_verifier(roots, provider)
            }
            Self::SystemRoots => webpki_verifier(system_roots(true)?, provider),
        }
    }
}

pub(crate) fn webpki_verifier(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
    Ok(verifier)
}

/// The system's root certificates. Unreadable entries are logged and skipped; an empty result
/// is an error only if `required` (callers that add their own CAs can do without).
pub(crate) fn system_roots(required: bool) -> Result<RootCertStore, TlsError> {
    let loaded = rustls_native_certs::load_native_certs();
    for err in &loaded.errors {
        tracing::debug!(error = %err, "skipping unreadable system root certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "skipped unparsable system root certificates");
    }
    if added == 0 && required {
        let detail = match loaded.errors.first() {
            Some(err) => format!("the system store could not be read ({err})"),
            None => "the system store is empty".to_owned(),
        };
        return Err(TlsError::NoTrustRoots { detail });
    }
    Ok(roots)
}

/// Verifies a server against a pinned CA found in the chain the server presents.
///
/// The pin only selects the trust anchor; webpki then checks the end-entity certificate against
/// that anchor alone, exactly as it would against a configured CA. Presenting the (public) CA
/// certificate next to a leaf from another CA therefore does not pass.
struct PinnedCaVerifier {
    pin: CaPin,
    provider: Arc<CryptoProvider>,
    /// A certificate matching the pin is, by SHA-256 collision resistance, always the same
    /// certificate, so the webpki verifier built from it the first time serves every later
    /// handshake.
    anchored: OnceLock<Arc<dyn ServerCertVerifier>>,
}

// === impl PinnedCaVerifier ===

impl PinnedCaVerifier {
    fn new(pin: CaPin, provider: Arc<CryptoProvider>) -> Self {
        Self {
            pin,
            provider,
            anchored: OnceLock::new(),
        }
    }

    fn anchored_verifier(
        &self,
        pinned: &CertificateDer<'_>,
    ) -> Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
        if let Some(verifier) = self.anchored.get() {
            return Ok(verifier.clone());
        }
        let mut roots = RootCertStore::empty();
        roots.add(pinned.clone().into_owned())?;
        let verifier = webpki_verifier(roots, self.provider.clone())
            .map_err(|err| rustls::Error::General(err.to_string()))?;
        // Losing a race here only means another thread built the same verifier.
        Ok(self.anchored.get_or_init(|| verifier).clone())
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pinned = std::iter::once(end_entity)
            .chain(intermediates)
            .find(|cert| self.pin.matches(cert))
            .ok_or_else(|| {
                tracing::warn!(pin = %self.pin, "edge certificate chain does not contain the pinned CA");
                let err = TlsError::PinMismatch {
                    expected: self.pin.to_string(),
                };
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(err))))
            })?;
        self.anchored_verifier(pinned)?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl fmt::Debug for PinnedCaVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedCaVerifier")
            .field("pin", &self.pin)
            .finish()
    }
}

/// Accepts any server certificate, for origins configured with `no_verify` (self-signed test
/// servers on the connector's own network).
///
/// The handshake signatures are still checked with the provider's algorithms: the peer must
/// hold the key of the certificate it shows, so the session is at least bound to that key.
#[derive(Debug)]
pub(crate) struct AcceptAnyServerCert {
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalCa, provider};

    fn verify(
        trust: EdgeTrust,
        chain: &[CertificateDer<'static>],
        name: &str,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifier = trust.verifier(provider()).unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
    }

    #[test]
    fn a_pinned_self_signed_end_entity_is_accepted() {
        let rcgen::CertifiedKey { cert, .. } =
            rcgen::generate_simple_self_signed(vec!["edge.example.com".to_owned()]).unwrap();
        let der = cert.der().clone();
        let pin = CaPin::of_der(&der);
        verify(
            EdgeTrust::Pinned(pin),
            std::slice::from_ref(&der),
            "edge.example.com",
        )
        .unwrap();
        // Pinning still checks the name.
        assert!(verify(EdgeTrust::Pinned(pin), &[der], "other.example.com").is_err());
    }

    #[test]
    fn the_pinned_verifier_is_reused_across_handshakes() {
        let ca = LocalCa::generate("t").unwrap();
        let leaf = ca.issue(&["edge.example.com".to_owned()]).unwrap();
        let verifier = PinnedCaVerifier::new(ca.pin(), provider());
        let first = verifier.anchored_verifier(ca.cert_der()).unwrap();
        let second = verifier.anchored_verifier(ca.cert_der()).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let name = ServerName::try_from("edge.example.com").unwrap();
        verifier
            .verify_server_cert(&leaf.cert[0], &leaf.cert[1..], &name, &[], UnixTime::now())
            .unwrap();
    }

    #[test]
    fn pin_mismatch_is_reported_as_our_error() {
        let ca = LocalCa::generate("t").unwrap();
        let other = LocalCa::generate("t").unwrap();
        let leaf = other.issue(&["edge.example.com".to_owned()]).unwrap();
        let err = verify(EdgeTrust::Pinned(ca.pin()), &leaf.cert, "edge.example.com").unwrap_err();
        let ours = TlsError::in_rustls_error(&err).unwrap();
        assert!(matches!(ours, TlsError::PinMismatch { .. }), "{ours}");
    }
}
