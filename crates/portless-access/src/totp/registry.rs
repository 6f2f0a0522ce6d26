//! [`TotpRegistry`]: enrolled TOTP seeds in the store, sealed, with replay refusal across edges.

use std::fmt;
use std::sync::Arc;

use portless_store::Store;

use super::{TotpError, TotpParams, TotpParamsError, TotpSecret, check_issuer};
use crate::secretbox::SecretBox;

/// Users' TOTP second factors: enrolment, confirmation, verification, removal.
///
/// Cheap to clone. Seeds are sealed with the [`SecretBox`], bound to the canonical username (a
/// sealed seed moved to another user's row does not open). The caller decides *who* may enrol:
/// enrolment (and replacing a seed) should follow a recent re-authentication, see
/// [`PortalSession::may_change_credentials`](crate::session::PortalSession::may_change_credentials).
#[derive(Clone)]
pub struct TotpRegistry {
    store: Store,
    secretbox: Arc<SecretBox>,
    params: TotpParams,
    issuer: Arc<str>,
}

/// A seed offered to a user, not active until [`TotpRegistry::confirm`] sees a code from it.
///
/// The caller keeps it server-side (never in a form field) between the two steps. Its `Debug`
/// output shows neither the seed nor the URI (which contains the seed).
pub struct PendingEnrolment {
    /// The new seed.
    pub secret: TotpSecret,
    /// The `otpauth://` URI to show as a QR code.
    pub uri: String,
}

impl fmt::Debug for PendingEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingEnrolment")
            .field("secret", &self.secret)
            .field("uri", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for TotpRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRegistry")
            .field("params", &self.params)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

// === impl TotpRegistry ===

impl TotpRegistry {
    /// A registry over `store`, sealing seeds with `secretbox`, with `issuer` as the name apps
    /// show next to the account (e.g. the portal's hostname).
    pub fn new(
        store: Store,
        secretbox: Arc<SecretBox>,
        params: TotpParams,
        issuer: &str,
    ) -> Result<TotpRegistry, TotpParamsError> {
        params.validate()?;
        check_issuer(issuer)?;
        Ok(TotpRegistry {
            store,
            secretbox,
            params,
            issuer: issuer.into(),
        })
    }

    /// The settings codes are checked with.
    pub fn params(&self) -> &TotpParams {
        &self.params
    }

    /// A new random seed for `user` and its provisioning URI. Nothing is stored: the user's
    /// current second factor (if any) stays in force until [`TotpRegistry::confirm`].
    pub fn enrol(&self, user: &str) -> Result<PendingEnrolment, TotpError> {
        let secret = TotpSecret::generate()?;
        let uri = super::provisioning_uri(&self.params, &secret, &self.issuer, user)?;
        Ok(PendingEnrolment { secret, uri })
    }

    /// Activates `secret` for `user` if `code` is a current code from it, replacing any earlier
    /// seed. The confirming code's step is recorded as used, so it cannot log in again.
    pub async fn confirm(
        &self,
        user: &str,
        secret: &TotpSecret,
        code: &str,
        now_unix: u64,
    ) -> Result<(), TotpError> {
        let step = super::verify(&self.params, secret, code, now_unix, None)?;
        let sealed = self.secretbox.seal(secret.as_bytes(), user.as_bytes())?;
        let step = i64::try_from(step).map_err(|_| TotpError::Clock)?;
        let now = i64::try_from(now_unix).map_err(|_| TotpError::Clock)?;
        self.store.put_totp(user, &sealed, Some(step), now).await?;
        tracing::info!(user, "totp second factor enrolled");
        Ok(())
    }

    /// Checks `code` for `user` and, if right, records its step as used, atomically in the
    /// store: of two edges checking the same code at once, one gets [`TotpError::Replayed`].
    pub async fn verify(&self, user: &str, code: &str, now_unix: u64) -> Result<(), TotpError> {
        let stored = self.store.totp(user).await?.ok_or(TotpError::NotEnrolled)?;
        let secret = TotpSecret::from_bytes(self.secretbox.open(&stored.sealed, user.as_bytes())?)?;
        // A negative step cannot be written by this code; treat it as "none used".
        let last_used = stored.last_step.and_then(|s| u64::try_from(s).ok());
        let step = super::verify(&self.params, &secret, code, now_unix, last_used)?;
        let step = i64::try_from(step).map_err(|_| TotpError::Clock)?;
        if self.store.advance_totp_step(user, step).await? {
            Ok(())
        } else {
            // Another verification (maybe on another edge) took this step or a later one
            // between our read and our write.
            Err(TotpError::Replayed)
        }
    }

    /// Whether `user` has a confirmed second factor.
    pub async fn is_enrolled(&self, user: &str) -> Result<bool, TotpError> {
        Ok(self.store.totp(user).await?.is_some())
    }

    /// Removes `user`'s second factor. Returns whether there was one.
    pub async fn remove(&self, user: &str) -> Result<bool, TotpError> {
        Ok(self.store.delete_totp(user).await?)
    }
}
