//! A certificate as the manager holds it: the rustls key served, its validity, and its ARI
//! identifier (authority key id + serial).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::CertificateIdentifier;
use portless_store::StoredCertificate;
use portless_tls::certified_key_from_pem;
use portless_tls::rustls::sign::CertifiedKey;

use crate::AcmeError;

/// One usable certificate.
#[derive(Clone)]
pub(crate) struct Held {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
    /// For ARI and `replaces`; `None` when the leaf has no authority key identifier.
    pub(crate) id: Option<CertificateIdentifier<'static>>,
}

impl Held {
    /// Parses a stored certificate.
    pub(crate) fn from_stored(stored: &StoredCertificate) -> Result<Self, AcmeError> {
        let name = &stored.hostname;
        let what = format!("certificate of {name} in the store");
        let key = certified_key_from_pem(&stored.chain_pem, &stored.key_pem, &what)?;
        let leaf = key
            .end_entity_cert()
            .map_err(|e| AcmeError::BadCertificate {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| {
            AcmeError::BadCertificate {
                name: name.clone(),
                reason: format!("cannot parse the leaf ({e})"),
            }
        })?;
        let validity = parsed.validity();
        let not_before = from_unix(validity.not_before.timestamp());
        let not_after = from_unix(validity.not_after.timestamp());
        let id = CertificateIdentifier::try_from(leaf)
            .ok()
            .map(CertificateIdentifier::into_owned);
        Ok(Self {
            key,
            not_before,
            not_after,
            id,
        })
    }

    /// When to renew without advice from the CA: `renew_before` ahead of expiry, or when a
    /// third of the lifetime remains.
    pub(crate) fn default_renewal(&self, renew_before: Option<Duration>) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        let ahead = renew_before.unwrap_or(lifetime / 3);
        self.not_after.checked_sub(ahead).unwrap_or(self.not_before)
    }
}

/// Seconds since the epoch as a `SystemTime` (negative: the epoch).
pub(crate) fn from_unix(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// A `SystemTime` as seconds since the epoch.
pub(crate) fn to_unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
