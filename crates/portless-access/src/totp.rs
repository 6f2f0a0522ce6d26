//! RFC 6238 time-based one-time passwords: the portal's second factor.
//!
//! Codes are computed by totp-rs; this module owns the rules around them that attack class I
//! of the threat list is about:
//! * a code is accepted only for time steps `now - skew ..= now + skew` (skew 1 by default, at
//!   most [`MAX_SKEW`]), never wider;
//! * a code is accepted once: any step at or before the last accepted one is refused as a
//!   replay, and the store advances that step atomically so two edges cannot both accept it;
//! * anything but exactly `digits` ASCII digits is refused before any computation, and codes
//!   are compared in constant time.
//!
//! [`TotpRegistry`] ties this to the store: seeds are kept sealed by a
//! [`SecretBox`](crate::secretbox::SecretBox), bound to the username, and an enrolment becomes
//! active only once a code from the new seed is confirmed.

mod registry;

use std::fmt;

use secrecy::zeroize::Zeroize as _;
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub use registry::{PendingEnrolment, TotpRegistry};

/// Bytes in a generated seed: 160 bits, the size RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;
/// The shortest seed accepted (RFC 4226: at least 128 bits).
const MIN_SECRET_LEN: usize = 16;
/// The widest skew allowed: more lets an observed code be replayed for minutes.
pub const MAX_SKEW: u8 = 2;

/// The HMAC a TOTP code is computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TotpAlgorithm {
    /// HMAC-SHA1: what nearly every authenticator app supports. The default.
    #[default]
    Sha1,
    /// HMAC-SHA256 (many apps silently fall back to SHA1: use only with apps known to work).
    Sha256,
    /// HMAC-SHA512 (same caveat as SHA256).
    Sha512,
}

/// How codes are computed and how much clock drift is tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    /// The HMAC algorithm.
    pub algorithm: TotpAlgorithm,
    /// Digits per code: 6 or 8.
    pub digits: u8,
    /// Seconds per time step (30 in every common app).
    pub period: u64,
    /// Steps accepted before and after the current one (0..=[`MAX_SKEW`]).
    pub skew: u8,
}

impl Default for TotpParams {
    /// SHA1, 6 digits, 30 seconds, skew 1: what authenticator apps expect.
    fn default() -> Self {
        TotpParams {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

/// Why TOTP settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpParamsError {
    /// Digits other than 6 or 8.
    #[error("totp digits must be 6 or 8, not {digits}: set `digits: 6` (what apps expect)")]
    Digits {
        /// The configured value.
        digits: u8,
    },
    /// A zero period.
    #[error("the totp period must be at least 1 second: set `period: 30`")]
    Period,
    /// A skew wider than [`MAX_SKEW`].
    #[error(
        "a totp skew of {skew} steps lets an observed code be replayed for minutes: use at most 2 (1 is the default) and keep the server's clock synchronized"
    )]
    Skew {
        /// The configured value.
        skew: u8,
    },
    /// An issuer that cannot appear in a provisioning URI.
    #[error("the totp issuer \"{issuer}\" is invalid: it must be non-empty and contain no ':'")]
    Issuer {
        /// The configured issuer.
        issuer: String,
    },
}

impl TotpParams {
    /// Checks the settings; every TOTP operation refuses invalid ones.
    pub fn validate(&self) -> Result<(), TotpParamsError> {
        if self.digits != 6 && self.digits != 8 {
            return Err(TotpParamsError::Digits {
                digits: self.digits,
            });
        }
        if self.period == 0 {
            return Err(TotpParamsError::Period);
        }
        if self.skew > MAX_SKEW {
            return Err(TotpParamsError::Skew { skew: self.skew });
        }
        Ok(())
    }

    /// The time step `now_unix` falls in.
    pub fn step_at(&self, now_unix: u64) -> u64 {
        now_unix / self.period.max(1)
    }
}

/// Why a code was refused, or a TOTP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// Not exactly `digits` ASCII digits.
    #[error("the code must be exactly {digits} digits: type the code your authenticator app shows")]
    Malformed {
        /// How many digits a code has.
        digits: u8,
    },
    /// No step in the accepted window gives this code.
    #[error(
        "the code is wrong or has expired: type the current code, and check that the device's clock is right"
    )]
    Wrong,
    /// The code is right but its step was already used (by this edge or another).
    #[error("this code was already used: wait for the next code and type that one")]
    Replayed,
    /// The user has no confirmed TOTP.
    #[error("no second factor is enrolled for this user: enrol one first")]
    NotEnrolled,
    /// The settings are invalid.
    #[error(transparent)]
    Params(#[from] TotpParamsError),
    /// The seed is shorter than 128 bits.
    #[error("a totp secret must be at least 16 bytes, got {len}: generate a new one")]
    SecretTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// The account name cannot appear in a provisioning URI.
    #[error(
        "the account name \"{account}\" cannot be used in a totp URI: it must be non-empty and contain no ':'"
    )]
    Account {
        /// The account name.
        account: String,
    },
    /// The clock is so far in the future that its step does not fit the store.
    #[error("the clock is out of range: check the server's time")]
    Clock,
    /// The random generator failed.
    #[error(
        "the random generator failed while creating a totp secret: check the host's entropy source"
    )]
    Random,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] portless_store::StoreError),
    /// The seed could not be sealed.
    #[error(transparent)]
    Seal(#[from] crate::secretbox::SealError),
    /// The stored seed could not be opened.
    #[error(transparent)]
    Unseal(#[from] crate::secretbox::OpenError),
}

/// A TOTP seed. Zeroized on drop; its `Debug` output never shows it.
#[derive(Clone)]
pub struct TotpSecret {
    bytes: Vec<u8>,
}

// === impl TotpSecret ===

impl TotpSecret {
    /// A new random seed of [`SECRET_LEN`] bytes.
    pub fn generate() -> Result<TotpSecret, TotpError> {
        let mut bytes = vec![0u8; SECRET_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| TotpError::Random)?;
        Ok(TotpSecret { bytes })
    }

    /// A seed from raw bytes (at least 16).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<TotpSecret, TotpError> {
        if bytes.len() < MIN_SECRET_LEN {
            let len = bytes.len();
            let mut bytes = bytes;
            bytes.zeroize();
            return Err(TotpError::SecretTooShort { len });
        }
        Ok(TotpSecret { bytes })
    }

    /// The raw seed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The seed in unpadded RFC 4648 base32, as users type it into an app by hand.
    pub fn to_base32(&self) -> String {
        Secret::from(self.bytes.clone()).to_base32()
    }
}

impl Drop for TotpSecret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// The `otpauth://totp/...` URI an authenticator app scans (as a QR code) to enrol `secret`,
/// labelled `issuer:account`.
pub fn provisioning_uri(
    params: &TotpParams,
    secret: &TotpSecret,
    issuer: &str,
    account: &str,
) -> Result<String, TotpError> {
    check_issuer(issuer)?;
    if account.is_empty() || account.contains(':') {
        return Err(TotpError::Account {
            account: account.to_owned(),
        });
    }
    let totp = builder(params, secret)?
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|_| TotpError::SecretTooShort {
            len: secret.as_bytes().len(),
        })?;
    totp.to_url().map_err(|_| TotpError::Account {
        account: account.to_owned(),
    })
}

/// Checks `code` against `secret` at `now_unix` and returns the time step it belongs to.
///
/// Accepts only steps `now - skew ..= now + skew` that are later than `last_used_step` (a code
/// at or before it is a replay). The caller must record the returned step as the new last
/// used step (the [`TotpRegistry`] does, atomically).
pub fn verify(
    params: &TotpParams,
    secret: &TotpSecret,
    code: &str,
    now_unix: u64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    params.validate()?;
    if code.len() != usize::from(params.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed {
            digits: params.digits,
        });
    }
    let totp = build(params, secret)?;
    let current = params.step_at(now_unix);
    let first = current.saturating_sub(u64::from(params.skew));
    let last = current.saturating_add(u64::from(params.skew));
    let mut accepted = None;
    let mut replayed = false;
    // Every step of the window is computed and compared, whatever matched, so the time taken
    // does not tell which step (if any) a code belongs to.
    for step in first..=last {
        let Some(at) = step.checked_mul(params.period) else {
            continue;
        };
        let expected = totp.generate(at).to_string();
        let matches: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if !matches {
            continue;
        }
        if last_used_step.is_some_and(|used| step <= used) {
            replayed = true;
        } else if accepted.is_none() {
            accepted = Some(step);
        }
    }
    match (accepted, replayed) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(TotpError::Replayed),
        (None, false) => Err(TotpError::Wrong),
    }
}

/// Refuses an issuer a provisioning URI cannot carry.
fn check_issuer(issuer: &str) -> Result<(), TotpParamsError> {
    if issuer.is_empty() || issuer.contains(':') {
        return Err(TotpParamsError::Issuer {
            issuer: issuer.to_owned(),
        });
    }
    Ok(())
}

/// The totp-rs generator for `params` and `secret` (which it zeroizes when dropped).
fn build(params: &TotpParams, secret: &TotpSecret) -> Result<Totp, TotpError> {
    builder(params, secret)?
        .build()
        .map_err(|_| TotpError::SecretTooShort {
            len: secret.as_bytes().len(),
        })
}

/// A totp-rs builder for `params` (checked) and `secret`.
fn builder(params: &TotpParams, secret: &TotpSecret) -> Result<Builder, TotpError> {
    params.validate()?;
    let algorithm = match params.algorithm {
        TotpAlgorithm::Sha1 => Algorithm::SHA1,
        TotpAlgorithm::Sha256 => Algorithm::SHA256,
        TotpAlgorithm::Sha512 => Algorithm::SHA512,
    };
    Ok(Builder::new()
        .with_algorithm(algorithm)
        .with_digits(params.digits)
        .with_step_duration(params.period)
        .with_skew(u16::from(params.skew))
        .with_secret(secret.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests;
