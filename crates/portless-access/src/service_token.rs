//! Service tokens: credentials for machines (CI jobs, scripts, other services).
//!
//! A machine presents a public client id and a secret in two headers
//! (`CF-Access-Client-Id`/`CF-Access-Client-Secret`, like the incumbent, or
//! `Portless-Client-Id`/`Portless-Client-Secret`). Only policy rules that name service tokens
//! admit them; this module proves *which* token is presenting, the policy decides what it may do.
//!
//! Why it is built this way:
//! * The secret is 32 random bytes, shown once at creation or rotation. The store keeps only its
//!   SHA-256: with that much entropy a fast hash is enough (there is nothing to brute-force,
//!   unlike a password), so every request costs one indexed lookup and one hash.
//! * Comparisons are constant-time, both the current and the previous hash are always compared,
//!   and an unknown client id is compared against a placeholder, so response timing does not tell
//!   a real client id or a near-miss secret from a wrong one.
//! * Refusals are typed ([`TokenRefusal`]) so the audit log says *why* (a revoked token still in
//!   use is worth knowing about), while the client always gets the same answer.
//! * Rotation keeps the previous secret valid for a grace period, so a fleet of clients can move
//!   to the new secret without an outage. Time is always a parameter, so expiry and grace are
//!   tested deterministically.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::HeaderMap;
use portless_store::{NewServiceToken, ServiceTokenRecord, Store, StoreError};
use secrecy::{ExposeSecret as _, SecretString};
use subtle::{Choice, ConstantTimeEq as _};

use crate::{Identity, Subject};

/// The incumbent's client id header.
pub const CF_CLIENT_ID: &str = "cf-access-client-id";
/// The incumbent's client secret header.
pub const CF_CLIENT_SECRET: &str = "cf-access-client-secret";
/// Portless's own client id header.
pub const PORTLESS_CLIENT_ID: &str = "portless-client-id";
/// Portless's own client secret header.
pub const PORTLESS_CLIENT_SECRET: &str = "portless-client-secret";

/// Suffix of every client id, so a leaked id is recognisable in logs and secret scanners.
const CLIENT_ID_SUFFIX: &str = ".access";
/// Random bytes in a client id (hex-encoded to 32 characters).
const CLIENT_ID_BYTES: usize = 16;
/// Random bytes in a client secret (hex-encoded to 64 characters).
const SECRET_BYTES: usize = 32;
/// Longest token name: a DNS label's length, like tunnel names.
const MAX_NAME_LEN: usize = 63;

// === ClientSecret ===

/// A client secret: 64 lowercase hex characters (32 random bytes).
///
/// Returned once, by [`ServiceTokens::create`] and [`ServiceTokens::rotate`]; the store cannot
/// show it again. `Debug` prints `ClientSecret(..)`.
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// The secret, to print once or hand to the client's configuration.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn generate() -> Result<(Self, [u8; SECRET_BYTES]), TokenError> {
        let mut bytes = [0u8; SECRET_BYTES];
        fill_random(&mut bytes)?;
        Ok((Self(SecretString::from(to_hex(&bytes))), bytes))
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

// === TokenInfo ===

/// What may be shown about a service token: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Canonical (lowercase) name, as rules name it (`token:NAME`).
    pub name: String,
    /// The public client id (`<32 hex>.access`).
    pub client_id: String,
    /// When it was created (whole seconds).
    pub created_at: SystemTime,
    /// When it stops working, if ever (whole seconds).
    pub expires_at: Option<SystemTime>,
    /// When its secret was last rotated, if ever.
    pub rotated_at: Option<SystemTime>,
    /// Until when the secret replaced by the last rotation is still accepted.
    pub previous_valid_until: Option<SystemTime>,
}

impl TokenInfo {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    fn from_record(record: &ServiceTokenRecord) -> Self {
        Self {
            name: record.name.clone(),
            client_id: record.client_id.clone(),
            created_at: from_unix(record.created_at),
            expires_at: record.expires_at.map(from_unix),
            rotated_at: record.rotated_at.map(from_unix),
            previous_valid_until: record.previous_valid_until.map(from_unix),
        }
    }
}

// === AuthenticatedToken ===

/// A service token that presented a valid secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedToken {
    /// Canonical (lowercase) name, as rules name it (`token:NAME`).
    pub name: String,
    /// The public client id.
    pub client_id: String,
}

impl AuthenticatedToken {
    /// The identity the policy judges: a [`Subject::ServiceToken`], no display name, email or
    /// groups.
    pub fn identity(&self) -> Identity {
        Identity {
            subject: Subject::ServiceToken {
                name: self.name.clone(),
                client_id: self.client_id.clone(),
            },
            display_name: String::new(),
            email: None,
            groups: Vec::new(),
        }
    }
}

// === errors ===

/// Why a presented token was refused. The client always gets the same answer; the variant is
/// for the audit log ([`TokenRefusal::as_str`]) and the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// No token has this client id (or the id is malformed).
    #[error("no service token has this client id: check the client's CF-Access-Client-Id")]
    UnknownClient,
    /// The secret is not the token's (nor its previous one), or is malformed.
    #[error(
        "the service token secret is wrong: give the client the secret printed by `portless token create` or `rotate`"
    )]
    WrongSecret,
    /// The secret is the one a rotation replaced, and its grace period is over.
    #[error(
        "the service token secret was replaced by a rotation and its grace period is over: give the client the new secret"
    )]
    RotatedOut,
    /// The token is past its expiry.
    #[error("the service token has expired: create a new one with `portless token create`")]
    Expired,
    /// The token was revoked.
    #[error("the service token was revoked: create a new one with `portless token create`")]
    Revoked,
    /// The store could not be read; the request must be refused (fail closed).
    #[error("cannot check the service token: {0}")]
    Store(#[source] StoreError),
}

impl TokenRefusal {
    /// A short stable name for logs and metrics: `unknown_client`, `wrong_secret`,
    /// `rotated_out`, `expired`, `revoked`, `store_error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown_client",
            Self::WrongSecret => "wrong_secret",
            Self::RotatedOut => "rotated_out",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Store(_) => "store_error",
        }
    }
}

/// Why creating, rotating, revoking or listing service tokens failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The name breaks the naming rules.
    #[error("service token name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks and how to fix it.
        reason: &'static str,
    },
    /// A live token already has this name.
    #[error(
        "a service token named {name:?} already exists: choose another name, or revoke it first with `portless token revoke {name}`"
    )]
    NameTaken {
        /// The name in use.
        name: String,
    },
    /// No live token has this name.
    #[error("no service token is named {name:?}: `portless token list` shows the tokens")]
    NotFound {
        /// The unknown name.
        name: String,
    },
    /// A zero lifetime would create a token that never works.
    #[error("a service token lifetime must be longer than zero: use e.g. 1y, or forever")]
    ZeroLifetime,
    /// The operating system's random generator failed.
    #[error("the operating system random generator failed: check the host's entropy source")]
    Random,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for TokenError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ServiceTokenNameTaken { name } => Self::NameTaken { name },
            other => Self::Store(other),
        }
    }
}

/// Why the token headers of a request are unusable. The edge answers 400: a client that sends
/// them wants token authentication, and guessing which value it meant would be fail-open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenHeaderError {
    /// The same header appears more than once.
    #[error("the {header} header appears more than once: send it once")]
    Duplicate {
        /// The repeated header (lowercase).
        header: &'static str,
    },
    /// The `CF-Access-` and `Portless-` forms of a header disagree.
    #[error(
        "the {first} and {second} headers disagree: send one of them, or the same value in both"
    )]
    Conflicting {
        /// One header (lowercase).
        first: &'static str,
        /// The other (lowercase).
        second: &'static str,
    },
    /// A header value is empty or not visible ASCII.
    #[error(
        "the {header} header is empty or not plain text: send the value printed by `portless token create`"
    )]
    Malformed {
        /// The header (lowercase).
        header: &'static str,
    },
    /// A client id came without a secret.
    #[error(
        "a service token client id was sent without its secret: also send CF-Access-Client-Secret"
    )]
    MissingSecret,
    /// A secret came without a client id.
    #[error("a service token secret was sent without its client id: also send CF-Access-Client-Id")]
    MissingClientId,
}

// === token_from_headers ===

/// The service token credentials a request carries: `Ok(None)` when it carries none, the
/// (client id, secret) pair when it carries both halves exactly once.
///
/// Reads `CF-Access-Client-Id`/`-Secret` and `Portless-Client-Id`/`-Secret` in any case (header
/// names are case-insensitive). A pair may mix the two forms; if both forms of one half are sent
/// they must agree. A repeated header, disagreeing forms, an empty value or a missing half is an
/// error (→ 400). The `_` underscore variants are not read here: the edge strips them.
pub fn token_from_headers(
    headers: &HeaderMap,
) -> Result<Option<(String, SecretString)>, TokenHeaderError> {
    let id = one_value(headers, CF_CLIENT_ID, PORTLESS_CLIENT_ID)?;
    let secret = one_value(headers, CF_CLIENT_SECRET, PORTLESS_CLIENT_SECRET)?;
    match (id, secret) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(TokenHeaderError::MissingSecret),
        (None, Some(_)) => Err(TokenHeaderError::MissingClientId),
        (Some(id), Some(secret)) => Ok(Some((id.to_owned(), SecretString::from(secret)))),
    }
}

/// The value of a header that has two names: at most once each, equal if both are present.
fn one_value<'a>(
    headers: &'a HeaderMap,
    first: &'static str,
    second: &'static str,
) -> Result<Option<&'a str>, TokenHeaderError> {
    match (single(headers, first)?, single(headers, second)?) {
        (Some(a), Some(b)) if a != b => Err(TokenHeaderError::Conflicting { first, second }),
        (a, b) => Ok(a.or(b)),
    }
}

/// The value of `name`, if present exactly once and non-empty visible ASCII.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, TokenHeaderError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(TokenHeaderError::Duplicate { header: name });
    }
    match value.to_str().map(str::trim) {
        Ok(text) if !text.is_empty() => Ok(Some(text)),
        _ => Err(TokenHeaderError::Malformed { header: name }),
    }
}

// === ServiceTokens ===

/// Service tokens over the store: management (create, rotate, revoke, list) and authentication.
///
/// Cheap to clone. Every [`authenticate`](Self::authenticate) is one indexed lookup, so there
/// is no cache to go stale: a revocation applies to the next request.
#[derive(Clone, Debug)]
pub struct ServiceTokens {
    store: Store,
}

impl ServiceTokens {
    /// Service tokens kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates a token named `name` (canonicalized to lowercase) that works for `lifetime` from
    /// `now`, or forever if `None`. Returns its details and its secret, which is never shown again.
    pub async fn create(
        &self,
        name: &str,
        lifetime: Option<Duration>,
        now: SystemTime,
    ) -> Result<(TokenInfo, ClientSecret), TokenError> {
        let name = canonical_name(name)?;
        if lifetime == Some(Duration::ZERO) {
            return Err(TokenError::ZeroLifetime);
        }
        let client_id = generate_client_id()?;
        let (secret, bytes) = ClientSecret::generate()?;
        let created_at = to_unix(now);
        let expires_at = lifetime.map(|l| created_at.saturating_add(whole_seconds(l)));
        let hash = hash_hex(&bytes);
        self.store
            .insert_service_token(&NewServiceToken {
                name: &name,
                client_id: &client_id,
                secret_hash: &hash,
                created_at,
                expires_at,
            })
            .await?;
        let info = TokenInfo {
            name,
            client_id,
            created_at: from_unix(created_at),
            expires_at: expires_at.map(from_unix),
            rotated_at: None,
            previous_valid_until: None,
        };
        Ok((info, secret))
    }

    /// Gives the token a new secret; the old one keeps working until `now + grace` (a second
    /// rotation ends the first one's grace at once). The expiry does not change.
    pub async fn rotate(
        &self,
        name: &str,
        grace: Duration,
        now: SystemTime,
    ) -> Result<(TokenInfo, ClientSecret), TokenError> {
        let name = canonical_name(name)?;
        let (secret, bytes) = ClientSecret::generate()?;
        let now = to_unix(now);
        let valid_until = now.saturating_add(whole_seconds(grace));
        let record = self
            .store
            .rotate_service_token(&name, &hash_hex(&bytes), valid_until, now)
            .await?
            .ok_or(TokenError::NotFound { name })?;
        Ok((TokenInfo::from_record(&record), secret))
    }

    /// Revokes the token: refused from the next request on; its name is free again.
    pub async fn revoke(&self, name: &str, now: SystemTime) -> Result<(), TokenError> {
        let name = canonical_name(name)?;
        if self.store.revoke_service_token(&name, to_unix(now)).await? {
            Ok(())
        } else {
            Err(TokenError::NotFound { name })
        }
    }

    /// Every live (not revoked) token, by name, expired ones included.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let records = self.store.service_tokens().await?;
        Ok(records.iter().map(TokenInfo::from_record).collect())
    }

    /// The token whose client id and secret these are, if it may be used at `now`.
    ///
    /// Timing does not depend on the secret nor on whether the client id exists beyond the
    /// lookup itself: a malformed secret or an unknown id is hashed and compared like a real one.
    /// A revoked, expired or rotated-out token is reported as such only when the secret is
    /// right; otherwise the refusal is [`TokenRefusal::WrongSecret`].
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
        now: SystemTime,
    ) -> Result<AuthenticatedToken, TokenRefusal> {
        let presented = presented_hash(secret);
        let record = match canonical_client_id(client_id) {
            Some(id) => self
                .store
                .service_token_by_client_id(&id)
                .await
                .map_err(TokenRefusal::Store)?,
            None => None,
        };
        let Some(record) = record else {
            std::hint::black_box(compare(&placeholder_hash(), None, &presented));
            return Err(TokenRefusal::UnknownClient);
        };
        let matched = compare(
            &record.secret_hash,
            record.previous_secret_hash.as_deref(),
            &presented,
        );
        judge(&record, matched, to_unix(now))
    }
}

/// Which stored hash a presented secret matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matched {
    Current,
    Previous,
    Neither,
}

/// Compares `presented` against both hashes, always both, in constant time. A malformed
/// presented secret (`None`) is compared as a placeholder and matches nothing.
fn compare(current: &str, previous: Option<&str>, presented: &Option<String>) -> Matched {
    let placeholder = placeholder_hash();
    let well_formed = Choice::from(u8::from(presented.is_some()));
    let presented = presented.as_deref().unwrap_or(&placeholder);
    let current_ok = current.as_bytes().ct_eq(presented.as_bytes()) & well_formed;
    let previous_ok = previous
        .unwrap_or(&placeholder)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        & Choice::from(u8::from(previous.is_some()))
        & well_formed;
    if bool::from(current_ok) {
        Matched::Current
    } else if bool::from(previous_ok) {
        Matched::Previous
    } else {
        Matched::Neither
    }
}

/// The verdict once the secret has been compared: revocation, then expiry, then the rotation
/// grace. Only a right secret learns about the token's state.
fn judge(
    record: &ServiceTokenRecord,
    matched: Matched,
    now: i64,
) -> Result<AuthenticatedToken, TokenRefusal> {
    if matched == Matched::Neither {
        return Err(TokenRefusal::WrongSecret);
    }
    if record.revoked_at.is_some() {
        return Err(TokenRefusal::Revoked);
    }
    if record.expires_at.is_some_and(|t| now >= t) {
        return Err(TokenRefusal::Expired);
    }
    if matched == Matched::Previous && record.previous_valid_until.is_none_or(|t| now >= t) {
        return Err(TokenRefusal::RotatedOut);
    }
    Ok(AuthenticatedToken {
        name: record.name.clone(),
        client_id: record.client_id.clone(),
    })
}

/// Hex SHA-256 of the decoded secret, or `None` if it is not 64 hex characters. Both cases
/// hash 32 bytes, so they cost the same.
fn presented_hash(secret: &str) -> Option<String> {
    let decoded = decode_hex::<SECRET_BYTES>(secret);
    let hash = hash_hex(decoded.as_ref().unwrap_or(&[0u8; SECRET_BYTES]));
    decoded.map(|_| hash)
}

/// A hash no secret produces in practice (not hex of a SHA-256 output anyone can find).
fn placeholder_hash() -> String {
    "0".repeat(64)
}

/// The client id in canonical (lowercase) form, if it has the shape of one.
fn canonical_client_id(client_id: &str) -> Option<String> {
    let lower = client_id.to_ascii_lowercase();
    let hex = lower.strip_suffix(CLIENT_ID_SUFFIX)?;
    decode_hex::<CLIENT_ID_BYTES>(hex)?;
    Some(lower)
}

fn generate_client_id() -> Result<String, TokenError> {
    let mut bytes = [0u8; CLIENT_ID_BYTES];
    fill_random(&mut bytes)?;
    Ok(format!("{}{CLIENT_ID_SUFFIX}", to_hex(&bytes)))
}

/// The canonical (lowercase) form of a token name, or why it is invalid.
pub fn canonical_name(name: &str) -> Result<String, TokenError> {
    let invalid = |reason| TokenError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid("use 1 to 63 characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !name.chars().all(allowed) {
        return Err(invalid("use letters, digits, '.', '_' or '-'"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("start it with a letter or digit"));
    }
    Ok(name.to_ascii_lowercase())
}

// === small helpers ===

fn fill_random(dest: &mut [u8]) -> Result<(), TokenError> {
    SystemRandom::new()
        .fill(dest)
        .map_err(|_| TokenError::Random)
}

fn hash_hex(bytes: &[u8]) -> String {
    to_hex(digest(&SHA256, bytes).as_ref())
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes exactly `N` bytes of hex (either case).
fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

fn to_unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// `d` in seconds, rounded up so a sub-second duration is not zero.
fn whole_seconds(d: Duration) -> i64 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(previous: Option<&str>, previous_valid_until: Option<i64>) -> ServiceTokenRecord {
        ServiceTokenRecord {
            name: "ci".into(),
            client_id: "id".into(),
            secret_hash: hash_hex(b"new"),
            previous_secret_hash: previous.map(str::to_owned),
            previous_valid_until,
            created_at: 0,
            expires_at: Some(1_000),
            rotated_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn compare_checks_both_hashes_and_refuses_malformed() {
        let current = hash_hex(b"new");
        let previous = hash_hex(b"old");
        assert_eq!(
            compare(&current, Some(&previous), &Some(current.clone())),
            Matched::Current
        );
        assert_eq!(
            compare(&current, Some(&previous), &Some(previous.clone())),
            Matched::Previous
        );
        assert_eq!(
            compare(&current, None, &Some(previous.clone())),
            Matched::Neither
        );
        // A malformed secret never matches, even a placeholder-looking stored hash.
        let placeholder = placeholder_hash();
        assert_eq!(
            compare(&placeholder, Some(&placeholder), &None),
            Matched::Neither
        );
    }

    #[test]
    fn judge_orders_revocation_expiry_and_grace() {
        let mut r = record(Some("x"), Some(500));
        assert!(judge(&r, Matched::Current, 999).is_ok());
        assert!(matches!(
            judge(&r, Matched::Current, 1_000),
            Err(TokenRefusal::Expired)
        ));
        assert!(judge(&r, Matched::Previous, 499).is_ok());
        assert!(matches!(
            judge(&r, Matched::Previous, 500),
            Err(TokenRefusal::RotatedOut)
        ));
        assert!(matches!(
            judge(&r, Matched::Neither, 0),
            Err(TokenRefusal::WrongSecret)
        ));
        r.revoked_at = Some(1);
        assert!(matches!(
            judge(&r, Matched::Current, 0),
            Err(TokenRefusal::Revoked)
        ));
        assert!(matches!(
            judge(&r, Matched::Neither, 0),
            Err(TokenRefusal::WrongSecret)
        ));
    }

    #[test]
    fn presented_secrets_must_be_64_hex_of_either_case() {
        let bytes = [0xab; 32];
        let expected = hash_hex(&bytes);
        assert_eq!(presented_hash(&to_hex(&bytes)), Some(expected.clone()));
        assert_eq!(
            presented_hash(&to_hex(&bytes).to_uppercase()),
            Some(expected)
        );
        assert_eq!(presented_hash(""), None);
        assert_eq!(presented_hash(&"g".repeat(64)), None);
        assert_eq!(presented_hash(&"a".repeat(63)), None);
        assert_eq!(presented_hash(&"é".repeat(32)), None);
        assert_eq!(presented_hash("+a".repeat(32).as_str()), None);
    }

    #[test]
    fn client_ids_have_a_recognisable_shape() {
        let id = generate_client_id().unwrap();
        assert_eq!(id.len(), 32 + ".access".len());
        assert!(id.ends_with(".access"));
        assert_eq!(canonical_client_id(&id), Some(id.clone()));
        assert_eq!(canonical_client_id(&id.to_uppercase()), Some(id.clone()));
        assert_eq!(canonical_client_id("abc.access"), None);
        assert_eq!(canonical_client_id(&id.replace(".access", "")), None);
        assert_ne!(generate_client_id().unwrap(), id);
    }

    #[test]
    fn names_are_canonical_and_validated_with_the_fix() {
        assert_eq!(canonical_name("CI-Runner_1.eu").unwrap(), "ci-runner_1.eu");
        for (bad, fix) in [
            ("", "1 to 63"),
            ("-x", "start it with"),
            ("a b", "use letters"),
            ("tök", "use letters"),
            ("a:b", "use letters"),
        ] {
            let message = canonical_name(bad).unwrap_err().to_string();
            assert!(message.contains(fix), "{bad:?}: {message}");
        }
        assert!(canonical_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let (secret, _) = ClientSecret::generate().unwrap();
        assert_eq!(format!("{secret:?}"), "ClientSecret(..)");
        assert_eq!(secret.expose().len(), 64);
    }
}
