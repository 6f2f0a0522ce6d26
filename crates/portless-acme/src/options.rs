//! What an edge's ACME client is told: which directory, who to contact, how to prove control
//! of a name, when to renew.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::AcmeError;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous rate limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The ACME directory to order from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directory {
    /// Let's Encrypt production.
    Production,
    /// Let's Encrypt staging.
    Staging,
    /// Any other directory URL (`https://...`).
    Url(String),
}

impl Directory {
    /// The directory URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Production => LETS_ENCRYPT_PRODUCTION,
            Self::Staging => LETS_ENCRYPT_STAGING,
            Self::Url(url) => url,
        }
    }
}

impl FromStr for Directory {
    type Err = AcmeError;

    fn from_str(s: &str) -> Result<Self, AcmeError> {
        match s {
            "production" => Ok(Self::Production),
            "staging" => Ok(Self::Staging),
            url if url.starts_with("https://") => Ok(Self::Url(url.to_owned())),
            other => Err(AcmeError::Config(format!(
                "unknown ACME directory `{other}`: use `production`, `staging` or an https:// directory URL"
            ))),
        }
    }
}

/// A challenge type the edge can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// TLS-ALPN-01, on the public HTTPS listener (port 443).
    TlsAlpn01,
    /// HTTP-01, on the port-80 listener.
    Http01,
}

impl FromStr for ChallengeKind {
    type Err = AcmeError;

    fn from_str(s: &str) -> Result<Self, AcmeError> {
        match s {
            "tls-alpn-01" => Ok(Self::TlsAlpn01),
            "http-01" => Ok(Self::Http01),
            other => Err(AcmeError::Config(format!(
                "unknown ACME challenge `{other}`: use `tls-alpn-01` or `http-01`"
            ))),
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::Http01 => "http-01",
        })
    }
}

/// External account binding, for CAs that require an existing customer account.
#[derive(Clone)]
pub struct Eab {
    /// The key id the CA gave.
    pub kid: String,
    /// The HMAC key the CA gave, decoded from its base64url form.
    pub hmac_key: Vec<u8>,
}

impl fmt::Debug for Eab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Eab")
            .field("kid", &self.kid)
            .field("hmac_key", &"<redacted>")
            .finish()
    }
}

impl Eab {
    /// An EAB from the CA's key id and base64url (or standard base64) HMAC key.
    pub fn new(kid: String, hmac_key_b64: &str) -> Result<Self, AcmeError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let trimmed = hmac_key_b64.trim().trim_end_matches('=');
        let hmac_key = URL_SAFE_NO_PAD
            .decode(trimmed)
            .or_else(|_| STANDARD.decode(hmac_key_b64.trim()))
            .map_err(|_| {
                AcmeError::Config(
                    "the EAB hmac_key is not base64: paste the key exactly as the CA shows it"
                        .to_owned(),
                )
            })?;
        Ok(Self { kid, hmac_key })
    }
}

/// Settings of the edge's ACME client.
#[derive(Debug, Clone)]
pub struct AcmeOptions {
    /// Where to order.
    pub directory: Directory,
    /// Contact email for the account (expiry notices, CA announcements).
    pub email: Option<String>,
    /// A PEM CA file trusted (besides the system roots) for the directory's HTTPS, for private
    /// CAs and test servers such as pebble.
    pub ca_file: Option<PathBuf>,
    /// External account binding.
    pub eab: Option<Eab>,
    /// Challenge types to use, most preferred first. HTTP-01 needs the port-80 listener.
    pub challenges: Vec<ChallengeKind>,
    /// Renew when this much validity remains; `None`: when a third of the lifetime remains.
    /// The CA's renewal window (ARI) takes precedence when the directory offers one.
    pub renew_before: Option<Duration>,
    /// First delay after a failed order; doubled per further failure, with jitter.
    pub retry_base: Duration,
    /// Longest delay between attempts for a failing name.
    pub retry_cap: Duration,
    /// How often certificates are checked for renewal and the store for certificates other
    /// edges obtained.
    pub check_interval: Duration,
    /// How long one order may take (validation, issuance) before it counts as failed.
    pub order_timeout: Duration,
}

impl AcmeOptions {
    /// Options for `directory` with the defaults below.
    pub fn new(directory: Directory) -> Self {
        Self {
            directory,
            email: None,
            ca_file: None,
            eab: None,
            challenges: vec![ChallengeKind::TlsAlpn01, ChallengeKind::Http01],
            renew_before: None,
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(6 * 3600),
            check_interval: Duration::from_secs(3600),
            order_timeout: Duration::from_secs(120),
        }
    }
}
