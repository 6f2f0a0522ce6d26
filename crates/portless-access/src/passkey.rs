//! WebAuthn passkeys: registration, second-factor login and passwordless login.
//!
//! The ceremonies themselves (challenge, signature, origin, rpId, flags and counter checks)
//! are webauthn-rs's (see `docs/adr/0008-webauthn.md`); this module owns the rules around them:
//! * one relying party per portal: rpId is the portal's host, the only accepted origin its
//!   base URL (`https://auth.example.com[:port]`), so a response made for another site or port
//!   is refused;
//! * challenge state stays server-side, in memory, keyed by the portal session: each start
//!   replaces that session's pending ceremony, a finish consumes it whatever the outcome
//!   (single use), it expires after the configured timeout, and at most [`MAX_PENDING`] are
//!   kept (the oldest goes first);
//! * a credential id is registered once, for one user ([`Store::put_passkey`]);
//! * user verification (PIN or biometrics) is always required, so a passwordless login proves
//!   two factors; the result still says whether verification was performed;
//! * counter regressions are refused: webauthn-rs refuses a counter that does not move past the
//!   credential's, and the store advances the counter with a conditional write so two edges
//!   cannot both accept one value ([`PasskeyError::CounterRegression`], to report).
//!
//! *Who* may register is the caller's decision (a logged-in session, re-authenticated within
//! [`REAUTH_WINDOW`](crate::session::REAUTH_WINDOW), two-factor if the user has a second
//! factor): [`PasskeyRegistry::start_registration`] registers for whoever it is told.

mod challenges;
#[cfg(test)]
mod soft_authenticator;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portless_store::{NewPasskey, PasskeyUse, Store, StoreError, StoredPasskey};
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::session::SessionId;
use challenges::{Ceremony, Challenges};

/// Ceremonies pending at once, across all sessions, at most.
pub const MAX_PENDING: usize = 10_000;
/// Passkeys one user may register.
pub const MAX_PASSKEYS_PER_USER: usize = 20;
/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The relying party a registry serves: one portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The portal's base URL, `https://host[:port]`, no path: the only origin accepted.
    pub origin: String,
    /// The name authenticators show (`webauthn.display_name`).
    pub display_name: String,
    /// How long the browser may take, and how long a challenge is kept (`webauthn.timeout`).
    pub timeout: Duration,
}

/// A registered passkey, as shown to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// The credential id (base64url): what [`PasskeyRegistry::remove`] takes.
    pub id: String,
    /// The name the user gave it.
    pub name: String,
    /// When it was registered.
    pub created_at: SystemTime,
    /// When it last logged in, if ever.
    pub last_used_at: Option<SystemTime>,
}

/// A passkey login that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyLogin {
    /// The canonical username the passkey belongs to.
    pub user: String,
    /// Which passkey.
    pub passkey: PasskeyInfo,
    /// Whether the authenticator verified the user (PIN, biometrics): with it, a passwordless
    /// login counts as two factors.
    pub user_verified: bool,
}

/// Why a registry cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeySetupError {
    /// The origin is not an `https://host[:port]` URL with a DNS name.
    #[error(
        "passkeys need the portal at an https URL with a host name, not `{origin}`: set the \
         session cookie's `authelia_url` to e.g. https://auth.example.com"
    )]
    Origin {
        /// The origin as given.
        origin: String,
    },
    /// webauthn-rs refused the settings.
    #[error("passkey settings for {origin} refused: {source}; check `webauthn` and the portal URL")]
    Webauthn {
        /// The origin.
        origin: String,
        /// What webauthn-rs said.
        #[source]
        source: WebauthnError,
    },
}

/// Why a passkey operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// No ceremony of this kind is pending for the session (never started, already used,
    /// replaced by a newer one, or expired).
    #[error(
        "no passkey request is pending for this session (it was used, replaced or expired): \
         start again"
    )]
    NoChallenge,
    /// The response is not the JSON a browser sends.
    #[error("the passkey response is not valid JSON from a browser: {reason}; start again")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// webauthn-rs refused the response (signature, challenge, origin, rpId, flags...).
    #[error("the passkey response was refused: {source}; start again")]
    Refused {
        /// What webauthn-rs said.
        #[source]
        source: WebauthnError,
    },
    /// The user has no passkey.
    #[error("this account has no passkey: register one in the settings first")]
    NotEnrolled,
    /// The credential is not registered (or not to this user).
    #[error("this passkey is not registered here: use another one or register it first")]
    UnknownCredential,
    /// The authenticator's counter did not move forward: it may have been cloned.
    #[error(
        "the passkey \"{name}\" of {user} reported a signature counter that did not move \
         forward, so it may have been copied; it was refused: the user should remove it and \
         register a new one"
    )]
    CounterRegression {
        /// Whose passkey.
        user: String,
        /// Its name.
        name: String,
    },
    /// The credential is already registered (to this user or another).
    #[error("this passkey is already registered: use it to sign in, or remove it first")]
    AlreadyRegistered,
    /// The user has the most passkeys allowed.
    #[error("an account can have at most {max} passkeys: remove one first")]
    TooMany {
        /// [`MAX_PASSKEYS_PER_USER`].
        max: usize,
    },
    /// The name given is unusable.
    #[error("the passkey name {reason}: give a short name such as \"Laptop\"")]
    InvalidName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A stored passkey could not be read back.
    #[error("the stored passkey {id} is unreadable ({reason}); remove it and register it again")]
    Corrupt {
        /// The credential id.
        id: String,
        /// What failed.
        reason: String,
    },
    /// webauthn-rs could not make a challenge.
    #[error("a passkey challenge could not be made: {source}; try again")]
    Challenge {
        /// What webauthn-rs said.
        #[source]
        source: WebauthnError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Users' passkeys for one portal: ceremonies, listing, removal.
///
/// Cheap to clone (clones share the pending challenges).
#[derive(Clone)]
pub struct PasskeyRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    webauthn: Webauthn,
    store: Store,
    challenges: Mutex<Challenges>,
    relying_party: RelyingParty,
}

impl fmt::Debug for PasskeyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyRegistry")
            .field("relying_party", &self.inner.relying_party)
            .finish_non_exhaustive()
    }
}

// === impl PasskeyRegistry ===

impl PasskeyRegistry {
    /// A registry for the portal at `relying_party.origin` (its host is the rpId), keeping
    /// passkeys in `store`.
    pub fn new(
        store: Store,
        relying_party: RelyingParty,
    ) -> Result<PasskeyRegistry, PasskeySetupError> {
        Self::with_capacity(store, relying_party, MAX_PENDING)
    }

    /// Like [`PasskeyRegistry::new`], keeping at most `max_pending` ceremonies.
    pub fn with_capacity(
        store: Store,
        relying_party: RelyingParty,
        max_pending: usize,
    ) -> Result<PasskeyRegistry, PasskeySetupError> {
        let origin_error = || PasskeySetupError::Origin {
            origin: relying_party.origin.clone(),
        };
        let url = Url::parse(&relying_party.origin).map_err(|_| origin_error())?;
        if url.scheme() != "https" || url.path() != "/" || url.query().is_some() {
            return Err(origin_error());
        }
        let rp_id = url.domain().ok_or_else(origin_error)?.to_owned();
        let webauthn = WebauthnBuilder::new(&rp_id, &url)
            .and_then(|b| {
                b.rp_name(&relying_party.display_name)
                    .timeout(relying_party.timeout)
                    .build()
            })
            .map_err(|source| PasskeySetupError::Webauthn {
                origin: relying_party.origin.clone(),
                source,
            })?;
        Ok(PasskeyRegistry {
            inner: Arc::new(Inner {
                webauthn,
                store,
                challenges: Mutex::new(Challenges::new(max_pending, relying_party.timeout)),
                relying_party,
            }),
        })
    }

    /// The relying party served.
    pub fn relying_party(&self) -> &RelyingParty {
        &self.inner.relying_party
    }

    /// Ceremonies pending now (expired ones included until swept or replaced).
    pub fn pending(&self) -> usize {
        self.challenges().len()
    }

    /// Forgets expired ceremonies; returns how many.
    pub fn sweep(&self, now: SystemTime) -> usize {
        self.challenges().sweep(now)
    }

    /// Starts registering a passkey named `name` for `user` (shown as `display_name` by the
    /// authenticator), for the browser of `session`. Returns the options to pass to
    /// `navigator.credentials.create()` (as JSON, binary fields in base64url).
    ///
    /// The caller must have decided that this session may add credentials for `user`.
    pub async fn start_registration(
        &self,
        session: &SessionId,
        user: &str,
        display_name: &str,
        name: &str,
        now: SystemTime,
    ) -> Result<serde_json::Value, PasskeyError> {
        let name = check_name(name)?;
        let existing = self.inner.store.passkeys_of(user).await?;
        if existing.len() >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::TooMany {
                max: MAX_PASSKEYS_PER_USER,
            });
        }
        let handle = match existing.first() {
            Some(row) => Uuid::parse_str(&row.user_handle).map_err(|e| PasskeyError::Corrupt {
                id: row.credential_id.clone(),
                reason: format!("user handle: {e}"),
            })?,
            None => Uuid::new_v4(),
        };
        let exclude = existing
            .iter()
            .filter_map(|row| URL_SAFE_NO_PAD.decode(&row.credential_id).ok())
            .collect();
        let (options, state) = self
            .inner
            .webauthn
            .start_passkey_registration(handle, user, display_name, Some(exclude))
            .map_err(|source| PasskeyError::Challenge { source })?;
        let mut options = to_json(&options)?;
        // A discoverable credential (resident key), so the passkey can also sign in without a
        // username. webauthn-rs does not check this at finish; it is what browsers are asked.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let ceremony = Ceremony::Register {
            user: user.to_owned(),
            name,
            handle,
            state,
        };
        self.challenges().insert(session, ceremony, now);
        Ok(options)
    }

    /// Finishes the registration started for `session`, with the browser's `response`
    /// (the JSON of the `PublicKeyCredential`), and stores the passkey.
    pub async fn finish_registration(
        &self,
        session: &SessionId,
        user: &str,
        response: &str,
        now: SystemTime,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let Some(Ceremony::Register {
            user: owner,
            name,
            handle,
            state,
        }) = self.challenges().take(session, now)
        else {
            return Err(PasskeyError::NoChallenge);
        };
        if owner != user {
            return Err(PasskeyError::NoChallenge);
        }
        let credential: RegisterPublicKeyCredential = parse(response)?;
        let passkey = self
            .inner
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|source| PasskeyError::Refused { source })?;
        let id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        let serialized = to_json_text(&passkey)?;
        let created_at = unix(now);
        let handle = handle.hyphenated().to_string();
        let added = self
            .inner
            .store
            .put_passkey(&NewPasskey {
                credential_id: &id,
                username: user,
                user_handle: &handle,
                name: &name,
                passkey: &serialized,
                counter: 0,
                created_at,
            })
            .await?;
        if !added {
            return Err(PasskeyError::AlreadyRegistered);
        }
        Ok(PasskeyInfo {
            id,
            name,
            created_at: from_unix(created_at),
            last_used_at: None,
        })
    }

    /// Starts a second-factor login with one of `user`'s passkeys, for `session`. Returns the
    /// options for `navigator.credentials.get()`.
    pub async fn start_authentication(
        &self,
        session: &SessionId,
        user: &str,
        now: SystemTime,
    ) -> Result<serde_json::Value, PasskeyError> {
        let rows = self.inner.store.passkeys_of(user).await?;
        if rows.is_empty() {
            return Err(PasskeyError::NotEnrolled);
        }
        let passkeys = rows
            .iter()
            .map(decode_passkey)
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self
            .inner
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|source| PasskeyError::Challenge { source })?;
        let options = to_json(&options)?;
        let ceremony = Ceremony::Authenticate {
            user: user.to_owned(),
            state,
        };
        self.challenges().insert(session, ceremony, now);
        Ok(options)
    }

    /// Finishes the second-factor login started for `session` by `user`.
    pub async fn finish_authentication(
        &self,
        session: &SessionId,
        user: &str,
        response: &str,
        now: SystemTime,
    ) -> Result<PasskeyLogin, PasskeyError> {
        let Some(Ceremony::Authenticate { user: owner, state }) =
            self.challenges().take(session, now)
        else {
            return Err(PasskeyError::NoChallenge);
        };
        if owner != user {
            return Err(PasskeyError::NoChallenge);
        }
        let credential: PublicKeyCredential = parse(response)?;
        let row = self.row_of(&credential).await?;
        if row.username != user {
            return Err(PasskeyError::UnknownCredential);
        }
        let result = self
            .inner
            .webauthn
            .finish_passkey_authentication(&credential, &state)
            .map_err(|source| refused(source, &row))?;
        self.record_use(row, result, now).await
    }

    /// Starts a passwordless login for `session`: the authenticator picks the account.
    pub fn start_discoverable(
        &self,
        session: &SessionId,
        now: SystemTime,
    ) -> Result<serde_json::Value, PasskeyError> {
        let (options, state) = self
            .inner
            .webauthn
            .start_discoverable_authentication()
            .map_err(|source| PasskeyError::Challenge { source })?;
        let mut options = to_json(&options)?;
        // webauthn-rs asks for conditional mediation (autofill); the portal asks from a
        // button, so the browser's ordinary account chooser is wanted.
        if let Some(object) = options.as_object_mut() {
            object.remove("mediation");
        }
        self.challenges()
            .insert(session, Ceremony::Discover { state }, now);
        Ok(options)
    }

    /// Finishes the passwordless login started for `session`: which user, with which passkey,
    /// and whether the user was verified.
    pub async fn finish_discoverable(
        &self,
        session: &SessionId,
        response: &str,
        now: SystemTime,
    ) -> Result<PasskeyLogin, PasskeyError> {
        let Some(Ceremony::Discover { state }) = self.challenges().take(session, now) else {
            return Err(PasskeyError::NoChallenge);
        };
        let credential: PublicKeyCredential = parse(response)?;
        let (handle, _) = self
            .inner
            .webauthn
            .identify_discoverable_authentication(&credential)
            .map_err(|source| PasskeyError::Refused { source })?;
        let row = self.row_of(&credential).await?;
        if Uuid::parse_str(&row.user_handle).ok() != Some(handle) {
            // The authenticator names another account than the one this credential is
            // registered to.
            return Err(PasskeyError::UnknownCredential);
        }
        let passkey = decode_passkey(&row)?;
        let result = self
            .inner
            .webauthn
            .finish_discoverable_authentication_v2(&credential, state, &passkey)
            .map_err(|source| refused(source, &row))?;
        self.record_use(row, result, now).await
    }

    /// `user`'s passkeys, oldest first.
    pub async fn list(&self, user: &str) -> Result<Vec<PasskeyInfo>, PasskeyError> {
        let rows = self.inner.store.passkeys_of(user).await?;
        Ok(rows.iter().map(info).collect())
    }

    /// Whether `user` has a passkey.
    pub async fn is_enrolled(&self, user: &str) -> Result<bool, PasskeyError> {
        Ok(self.inner.store.passkey_user_handle(user).await?.is_some())
    }

    /// Removes `user`'s passkey `id` (never another user's). Returns whether there was one.
    pub async fn remove(&self, user: &str, id: &str) -> Result<bool, PasskeyError> {
        let removed = self.inner.store.delete_passkey(user, id).await?;
        if removed {
            tracing::info!(user, "passkey removed by its owner");
        }
        Ok(removed)
    }
}

impl PasskeyRegistry {
    fn challenges(&self) -> std::sync::MutexGuard<'_, Challenges> {
        match self.inner.challenges.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The stored row of the credential a response names.
    async fn row_of(
        &self,
        credential: &PublicKeyCredential,
    ) -> Result<StoredPasskey, PasskeyError> {
        let id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
        self.inner
            .store
            .passkey(&id)
            .await?
            .ok_or(PasskeyError::UnknownCredential)
    }

    /// Records an accepted login: the new counter must move forward in the store too.
    async fn record_use(
        &self,
        row: StoredPasskey,
        result: AuthenticationResult,
        now: SystemTime,
    ) -> Result<PasskeyLogin, PasskeyError> {
        let mut passkey = decode_passkey(&row)?;
        passkey.update_credential(&result);
        let serialized = to_json_text(&passkey)?;
        let at = unix(now);
        let accepted = self
            .inner
            .store
            .record_passkey_use(&PasskeyUse {
                credential_id: &row.credential_id,
                counter: i64::from(result.counter()),
                passkey: &serialized,
                now: at,
            })
            .await?;
        if !accepted {
            // Another edge (or a concurrent request) accepted this counter value first.
            return Err(counter_regression(&row));
        }
        let mut shown = info(&row);
        shown.last_used_at = Some(from_unix(at));
        Ok(PasskeyLogin {
            user: row.username,
            passkey: shown,
            user_verified: result.user_verified(),
        })
    }
}

/// Maps webauthn-rs's refusal, reporting a counter regression.
fn refused(source: WebauthnError, row: &StoredPasskey) -> PasskeyError {
    match source {
        WebauthnError::CredentialPossibleCompromise => counter_regression(row),
        source => PasskeyError::Refused { source },
    }
}

fn counter_regression(row: &StoredPasskey) -> PasskeyError {
    tracing::warn!(
        user = row.username,
        name = row.name,
        "passkey refused: its signature counter did not move forward (possibly cloned)"
    );
    PasskeyError::CounterRegression {
        user: row.username.clone(),
        name: row.name.clone(),
    }
}

/// A passkey name, trimmed: 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub fn check_name(name: &str) -> Result<String, PasskeyError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(PasskeyError::InvalidName { reason: "is empty" });
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(PasskeyError::InvalidName {
            reason: "is longer than 64 characters",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(PasskeyError::InvalidName {
            reason: "contains control characters",
        });
    }
    Ok(name.to_owned())
}

fn info(row: &StoredPasskey) -> PasskeyInfo {
    PasskeyInfo {
        id: row.credential_id.clone(),
        name: row.name.clone(),
        created_at: from_unix(row.created_at),
        last_used_at: row.last_used_at.map(from_unix),
    }
}

fn decode_passkey(row: &StoredPasskey) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(&row.passkey).map_err(|e| PasskeyError::Corrupt {
        id: row.credential_id.clone(),
        reason: e.to_string(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(response: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(response).map_err(|e| PasskeyError::Malformed {
        reason: e.to_string(),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, PasskeyError> {
    serde_json::to_value(value).map_err(|e| PasskeyError::Malformed {
        reason: e.to_string(),
    })
}

fn to_json_text<T: serde::Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|e| PasskeyError::Malformed {
        reason: e.to_string(),
    })
}

fn unix(now: SystemTime) -> i64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn from_unix(seconds: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}
