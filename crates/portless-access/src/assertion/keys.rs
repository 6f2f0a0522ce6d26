//! Signing keys and the key ring: which key signs now, which retired keys still verify, and
//! rotation through the shared store.
//!
//! Every edge sharing a store must sign with the same key, and all of them must agree on it
//! without talking to each other. The store is the only shared state, so the current key is
//! chosen from it deterministically: the newest key not retired (ties broken by key id). Two
//! edges that create or rotate at the same moment both store a key; the next read picks the
//! same winner on both, and the loser is retired at once, still verifying during the overlap,
//! so nothing it signed meanwhile is refused.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portless_store::{Store, StoreError, StoredSigningKey};

use super::{AssertionClaims, AssertionVerifier, CliClaims, Jwk, Jwks, unix_seconds};

/// Bytes of the public key's SHA-256 that make up a key id (128 bits, 22 characters).
const KID_BYTES: usize = 16;

/// Why the key ring could not load, rotate or sign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// The store failed.
    #[error("assertion signing keys: {0}")]
    Store(#[from] StoreError),
    /// A new key could not be generated.
    #[error(
        "cannot generate an assertion signing key: the crypto library failed; check the host's entropy source"
    )]
    KeyGeneration,
    /// The store's current signing key cannot be used.
    #[error(
        "the store's assertion signing key {kid:?} is unreadable ({reason}): the store was edited by hand or is damaged; delete that row of `signing_keys` and a new key is generated"
    )]
    BadStoredKey {
        /// The key's id.
        kid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A time before 1970 or past 2262 cannot go into the store.
    #[error("the clock reads {0:?}, which the store cannot hold: fix the system clock")]
    Clock(SystemTime),
    /// Signing failed.
    #[error("cannot sign an assertion: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// How long a new key is published before it signs: enough for every edge sharing the store
/// to adopt it (they re-read the store every second) and for connectors to receive the new key
/// set over their control streams.
pub const PUBLISH_LEAD: Duration = Duration::from_secs(5);

/// One P-256 key: the private half for signing (current key only), the public half for the
/// JWKS.
#[derive(Clone)]
struct RingKey {
    kid: String,
    /// The private key; `EncodingKey` zeroizes it when dropped.
    encoding: EncodingKey,
    /// Base64url coordinates of the public key.
    x: String,
    y: String,
    created_at: u64,
    /// When it stopped signing; `None` for the current key.
    retired_at: Option<u64>,
}

impl std::fmt::Debug for RingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl RingKey {
    /// Parses a stored PKCS#8 key and checks its id.
    fn from_stored(stored: &StoredSigningKey) -> Result<RingKey, &'static str> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &stored.pkcs8)
            .map_err(|_| "not a P-256 PKCS#8 private key")?;
        let public = pair.public_key().as_ref();
        if kid_of(public) != stored.kid {
            return Err("its id does not match its public key");
        }
        let (x, y) = coordinates(public).ok_or("its public key is not an uncompressed point")?;
        let seconds = |at: i64| u64::try_from(at).map_err(|_| "a negative time");
        Ok(RingKey {
            kid: stored.kid.clone(),
            encoding: EncodingKey::from_ec_der(&stored.pkcs8),
            x,
            y,
            created_at: seconds(stored.created_at)?,
            retired_at: stored.retired_at.map(seconds).transpose()?,
        })
    }

    fn jwk(&self) -> Jwk {
        Jwk::p256(&self.kid, self.x.clone(), self.y.clone())
    }

    /// Whether this key is still published at `now`.
    fn published_at(&self, now: u64, overlap: Duration) -> bool {
        self.retired_at
            .is_none_or(|retired| retired.saturating_add(overlap.as_secs()) > now)
    }
}

/// The key id of an uncompressed P-256 public key: base64url of the first 16 bytes of its
/// SHA-256.
fn kid_of(public_key: &[u8]) -> String {
    let hash = digest(&SHA256, public_key);
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..KID_BYTES])
}

/// The base64url x and y of an uncompressed P-256 point (`04 || x || y`).
fn coordinates(public_key: &[u8]) -> Option<(String, String)> {
    match public_key {
        [4, rest @ ..] if rest.len() == 64 => {
            let (x, y) = rest.split_at(32);
            Some((URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)))
        }
        _ => None,
    }
}

/// A new P-256 key: its id and PKCS#8 DER.
fn generate_key() -> Result<(String, Vec<u8>), AssertionError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| AssertionError::KeyGeneration)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| AssertionError::KeyGeneration)?;
    Ok((kid_of(pair.public_key().as_ref()), pkcs8.as_ref().to_vec()))
}

/// The keys the ring holds at one moment.
#[derive(Debug)]
struct RingKeys {
    /// Signs new assertions.
    current: RingKey,
    /// Retired keys, newest first; published while within their overlap.
    retired: Vec<RingKey>,
}

/// What [`RingKeys::choose`] made of the stored keys.
struct Chosen {
    keys: RingKeys,
    /// Keys not retired in the store that lost to the current one: to retire there.
    losers: Vec<String>,
}

impl RingKeys {
    /// The current key (the newest not retired, ties by largest id) and the retired ones,
    /// from the stored keys; `None` when no stored key is unretired and usable.
    fn choose(stored: &[StoredSigningKey]) -> Result<Option<Chosen>, AssertionError> {
        let Some(winner) = stored
            .iter()
            .filter(|key| key.retired_at.is_none())
            .max_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)))
        else {
            return Ok(None);
        };
        let current =
            RingKey::from_stored(winner).map_err(|reason| AssertionError::BadStoredKey {
                kid: winner.kid.clone(),
                reason,
            })?;
        let mut retired = Vec::new();
        let mut losers = Vec::new();
        for stored in stored.iter().filter(|key| key.kid != winner.kid) {
            let mut key = match RingKey::from_stored(stored) {
                Ok(key) => key,
                Err(reason) => {
                    tracing::warn!(kid = %stored.kid, reason, "skipping an unreadable retired assertion signing key in the store");
                    continue;
                }
            };
            if key.retired_at.is_none() {
                key.retired_at = Some(current.created_at);
                losers.push(key.kid.clone());
            }
            retired.push(key);
        }
        retired.sort_by_key(|key| std::cmp::Reverse(key.retired_at));
        Ok(Some(Chosen {
            keys: RingKeys { current, retired },
            losers,
        }))
    }

    /// The key that signs at `now` (see [`KeyRing::sign`]).
    fn signing_key(&self, now: u64) -> &RingKey {
        let lead = PUBLISH_LEAD.as_secs();
        let fresh = self.current.created_at.saturating_add(lead) > now;
        match self.retired.first() {
            Some(previous)
                if fresh
                    && previous
                        .retired_at
                        .is_some_and(|at| at.saturating_add(lead) > now) =>
            {
                previous
            }
            _ => &self.current,
        }
    }

    /// The keys published at `now`: the current one, then retired ones within the overlap.
    fn published(&self, now: u64, overlap: Duration) -> impl Iterator<Item = &RingKey> {
        std::iter::once(&self.current).chain(
            self.retired
                .iter()
                .filter(move |key| key.published_at(now, overlap)),
        )
    }

    /// What a change of the published set looks like: the current id, then the others.
    fn fingerprint(&self, now: u64, overlap: Duration) -> Vec<String> {
        self.published(now, overlap)
            .map(|key| key.kid.clone())
            .collect()
    }
}

/// The assertion signing keys of an edge: the current key and the retired keys that still
/// verify for an overlap period, persisted in the store.
///
/// Every edge sharing a store signs with the same key and publishes the same JWKS. Call
/// [`KeyRing::rotate_if_due`] periodically (every minute is plenty, and in any case more often
/// than the overlap): it rotates the key when it is older than `rotate_every`, picks up a
/// rotation another edge made, and drops keys whose overlap is over. Cheap to share behind an
/// `Arc`: signing takes a read lock for a pointer copy.
pub struct KeyRing {
    rotate_every: Duration,
    overlap: Duration,
    keys: RwLock<Arc<RingKeys>>,
    /// The published key ids as of the last [`KeyRing::rotate_if_due`], to tell a change.
    last_published: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("rotate_every", &self.rotate_every)
            .field("overlap", &self.overlap)
            .field("keys", &self.snapshot())
            .finish()
    }
}

// === impl KeyRing ===

impl KeyRing {
    /// Loads the signing keys from `store`, creating the first key when there is none, and
    /// rotates at once if the current key is older than `rotate_every`. A retired key stays
    /// published for `overlap` after its retirement; keep `overlap` longer than the
    /// assertion lifetime ([`super::MAX_TTL`]), or tokens signed just before a rotation are
    /// refused before they expire.
    pub async fn load_or_create(
        store: &Store,
        now: SystemTime,
        rotate_every: Duration,
        overlap: Duration,
    ) -> Result<KeyRing, AssertionError> {
        let chosen = Self::read_or_create(store, now).await?;
        let ring = KeyRing {
            rotate_every,
            overlap,
            keys: RwLock::new(Arc::new(chosen)),
            last_published: std::sync::Mutex::new(Vec::new()),
        };
        ring.rotate_if_due(store, now).await?;
        Ok(ring)
    }

    /// Re-reads the store and rotates when the current key is due; also adopts a rotation
    /// made by another edge and forgets keys whose overlap is over (deleting them from the
    /// store). Returns whether the published key set (or the signing key) changed since the
    /// last call (or since [`KeyRing::load_or_create`]), that is whether the JWKS should be
    /// published and sent to connectors again.
    pub async fn rotate_if_due(
        &self,
        store: &Store,
        now: SystemTime,
    ) -> Result<bool, AssertionError> {
        let seconds = unix_seconds(now);
        let mut keys = Self::read_or_create(store, now).await?;
        let due = keys
            .current
            .created_at
            .saturating_add(self.rotate_every.as_secs())
            <= seconds;
        if due {
            let at = store_time(now)?;
            let (kid, pkcs8) = generate_key()?;
            store.put_signing_key(&kid, &pkcs8, at).await?;
            store.retire_signing_key(&keys.current.kid, at).await?;
            tracing::info!(new_kid = %kid, retired_kid = %keys.current.kid, "rotated the assertion signing key");
            keys = Self::read_or_create(store, now).await?;
        }
        // Unpublished from `retired_at + overlap` on (see `RingKey::published_at`).
        let overlap = i64::try_from(self.overlap.as_secs()).unwrap_or(i64::MAX);
        let unpublished_before = store_time(now)?.saturating_sub(overlap).saturating_add(1);
        let deleted = store
            .delete_signing_keys_retired_before(unpublished_before)
            .await?;
        if deleted > 0 {
            tracing::info!(deleted, "deleted assertion signing keys past their overlap");
        }
        let published = keys.fingerprint(seconds, self.overlap);
        self.replace(keys);
        let mut last = match self.last_published.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let changed = *last != published;
        *last = published;
        Ok(changed)
    }

    /// Signs `claims` (ES256, `kid` in the header) with the key that signs at `claims.iat`:
    /// the current key, except during [`PUBLISH_LEAD`] after a rotation, when the previous
    /// key goes on signing while connectors receive the new key set (a token signed by a key
    /// a connector has not seen yet would be refused).
    pub fn sign(&self, claims: &AssertionClaims) -> Result<String, AssertionError> {
        self.sign_at(claims.iat, claims)
    }

    /// Signs the claims of an access-client token, like [`KeyRing::sign`].
    pub fn sign_cli(&self, claims: &CliClaims) -> Result<String, AssertionError> {
        self.sign_at(claims.iat, claims)
    }

    /// Signs `claims` with the key that signs at `iat`.
    fn sign_at(&self, iat: u64, claims: &impl serde::Serialize) -> Result<String, AssertionError> {
        let keys = self.snapshot();
        let key = keys.signing_key(iat);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The id of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.snapshot().current.kid.clone()
    }

    /// The key set published at `now`: the current key, then retired keys still within
    /// their overlap.
    pub fn jwks(&self, now: SystemTime) -> Jwks {
        let keys = self.snapshot();
        Jwks {
            keys: keys
                .published(unix_seconds(now), self.overlap)
                .map(RingKey::jwk)
                .collect(),
        }
    }

    /// [`KeyRing::jwks`] as compact JSON, the form `/cdn-cgi/access/certs` serves and the
    /// edge sends to connectors.
    pub fn jwks_json(&self, now: SystemTime) -> String {
        self.jwks(now).to_json()
    }

    /// A verifier for the keys published at `now`.
    pub fn verifier(&self, now: SystemTime) -> AssertionVerifier {
        AssertionVerifier::from_jwks(&self.jwks(now))
    }

    /// Signs any header and payload with the current key, for tests that craft tokens a
    /// real edge never makes.
    #[cfg(test)]
    pub(super) fn sign_raw(
        &self,
        header: &Header,
        payload: &serde_json::Value,
    ) -> Result<String, AssertionError> {
        Ok(jsonwebtoken::encode(
            header,
            payload,
            &self.snapshot().current.encoding,
        )?)
    }

    fn snapshot(&self) -> Arc<RingKeys> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, keys: RingKeys) {
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut guard) => *guard = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// The keys in the store, creating a first key when none signs; retires in the store
    /// the unretired keys that lost to the current one.
    async fn read_or_create(store: &Store, now: SystemTime) -> Result<RingKeys, AssertionError> {
        let mut chosen = RingKeys::choose(&store.signing_keys().await?)?;
        if chosen.is_none() {
            let (kid, pkcs8) = generate_key()?;
            store
                .put_signing_key(&kid, &pkcs8, store_time(now)?)
                .await?;
            tracing::info!(%kid, "created an assertion signing key");
            chosen = RingKeys::choose(&store.signing_keys().await?)?;
        }
        let Some(Chosen { keys, losers }) = chosen else {
            // Just stored an unretired key: only a concurrent retirement can hide it.
            return Err(AssertionError::Store(StoreError::Corrupt {
                what: "signing key set (no key signs right after one was created)".to_owned(),
            }));
        };
        let at = i64::try_from(keys.current.created_at).unwrap_or(i64::MAX);
        for kid in losers {
            store.retire_signing_key(&kid, at).await?;
        }
        Ok(keys)
    }
}

/// `now` as the store's unix seconds.
fn store_time(now: SystemTime) -> Result<i64, AssertionError> {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or(AssertionError::Clock(now))
}
