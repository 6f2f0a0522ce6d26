//! The loaded users file: users by canonical name and by email, and the first-factor check
//! (password login) with its timing pad and its bound on concurrent hash verifications.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::error::UsersError;
use super::hash::{self, HashAlgorithm, PasswordHash};
use crate::{AuthLevel, Identity, Subject};

/// How many password verifications may run at once in the whole process. Each default
/// argon2id verification holds 64 MiB: a flood of login attempts queues here instead of
/// exhausting memory. One process-wide limit (not one per database) so that it holds across
/// reloads of the users file.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 4;

static VERIFICATION_PERMITS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_VERIFICATIONS);

// === User ===

/// One user of the users file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub(crate) name: String,
    pub(crate) written_name: String,
    pub(crate) display_name: String,
    pub(crate) email: Option<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) disabled: bool,
    pub(crate) password: PasswordHash,
    pub(crate) profile: UserProfile,
}

impl User {
    /// Canonical (lowercase) username: what sessions, rules (`user:NAME`) and headers use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The username as written in the file.
    pub fn written_name(&self) -> &str {
        &self.written_name
    }

    /// `displayname` (empty when absent).
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// `email`, as written.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// `groups`, in file order.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// `disabled: true`: the user never authenticates.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// The stored password hash.
    pub fn password_hash(&self) -> &PasswordHash {
        &self.password
    }

    /// The optional profile fields, kept as written.
    pub fn profile(&self) -> &UserProfile {
        &self.profile
    }

    /// The identity of a session of this user at `level`, with the user's current groups.
    pub fn identity(&self, level: AuthLevel) -> Identity {
        Identity {
            subject: Subject::User {
                name: self.name.clone(),
                level,
                source: crate::Source::UsersFile,
            },
            display_name: self.display_name.clone(),
            email: self.email.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// The optional OpenID-style profile fields the incumbent's users file allows. Portless keeps
/// them (so a file is accepted unchanged) but gives them no meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key of the same name.
pub struct UserProfile {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub gender: Option<String>,
    pub birthdate: Option<String>,
    pub website: Option<String>,
    pub profile: Option<String>,
    pub picture: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub phone_number: Option<String>,
    pub phone_extension: Option<String>,
    /// `address`: a mapping (`street_address`, `locality`, …), kept as a value tree.
    pub address: Option<serde_json::Value>,
    /// `extra`: custom attributes, kept as a value tree.
    pub extra: Option<serde_json::Value>,
}

// === AuthenticatedUser, AuthFailure ===

/// A user whose password was just verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// Canonical username.
    pub name: String,
    /// `displayname`.
    pub display_name: String,
    /// `email`.
    pub email: Option<String>,
    /// `groups`.
    pub groups: Vec<String>,
    /// The algorithm of the stored hash.
    pub hash_algorithm: HashAlgorithm,
    /// Whether the stored hash should be replaced by a new argon2id hash (see
    /// [`PasswordHash::is_legacy`]).
    pub needs_rehash: bool,
}

impl AuthenticatedUser {
    /// The identity of the session this login opens.
    pub fn identity(&self, level: AuthLevel) -> Identity {
        Identity {
            subject: Subject::User {
                name: self.name.clone(),
                level,
                source: crate::Source::UsersFile,
            },
            display_name: self.display_name.clone(),
            email: self.email.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// Why a password login failed. For the audit log only: a login page shows the same message
/// for all of them, and all of them take one hash verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No user has this name or email address.
    #[error("unknown user")]
    UnknownUser,
    /// The user exists but is disabled.
    #[error("user is disabled")]
    Disabled,
    /// The password does not match.
    #[error("wrong password")]
    WrongPassword,
    /// The verification task did not complete (it panicked, or the runtime is shutting down).
    #[error("the password could not be verified")]
    VerifierFailed,
}

// === UsersDatabase ===

/// The users of one version of the users file, with lookups by canonical name and email.
#[derive(Debug)]
pub struct UsersDatabase {
    users: Vec<User>,
    by_name: HashMap<String, usize>,
    by_email: HashMap<String, usize>,
    verifications: AtomicU64,
    dummy_verifications: AtomicU64,
}

impl PartialEq for UsersDatabase {
    fn eq(&self, other: &Self) -> bool {
        self.users == other.users
    }
}

impl UsersDatabase {
    /// Builds the indexes; the users were validated by the parser (unique names and emails).
    pub(crate) fn new(users: Vec<User>) -> UsersDatabase {
        let by_name = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.clone(), i))
            .collect();
        let by_email = users
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((u.email.as_deref()?.to_lowercase(), i)))
            .collect();
        UsersDatabase {
            users,
            by_name,
            by_email,
            verifications: AtomicU64::new(0),
            dummy_verifications: AtomicU64::new(0),
        }
    }

    /// Reads and validates the users file at `path`.
    pub fn load(path: &Path) -> Result<UsersDatabase, UsersError> {
        super::file::load(path).map(|parsed| parsed.database)
    }

    /// Validates users-file text; `origin` names the file in messages.
    pub fn from_yaml_str(src: &str, origin: &Path) -> Result<UsersDatabase, UsersError> {
        super::file::parse(src, origin).map(|parsed| parsed.database)
    }

    /// The users, in file order.
    pub fn users(&self) -> impl ExactSizeIterator<Item = &User> {
        self.users.iter()
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user with this username, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name
            .get(&name.to_lowercase())
            .and_then(|&i| self.users.get(i))
    }

    /// The user with this email address, compared case-insensitively. An address without
    /// exactly one `@` never matches.
    pub fn find_by_email(&self, email: &str) -> Option<&User> {
        if email.matches('@').count() != 1 {
            return None;
        }
        self.by_email
            .get(&email.to_lowercase())
            .and_then(|&i| self.users.get(i))
    }

    /// The user a login form's "username or email" names: a username first (usernames may
    /// contain `@`; the parser refuses one that is another user's address), then an address.
    pub fn find_login(&self, login: &str) -> Option<&User> {
        self.get(login).or_else(|| self.find_by_email(login))
    }

    /// The key brute-force counters use for a login, whatever it names the user by: the
    /// canonical username when the login is a username or an address of a user, otherwise the
    /// login lowercased (so `Alice`, `alice` and `alice@example.com` share one counter, and so
    /// do `Nobody` and `nobody`).
    pub fn canonical_login(&self, login: &str) -> String {
        self.find_login(login)
            .map_or_else(|| login.to_lowercase(), |user| user.name.clone())
    }

    /// Checks a password login. Synchronous and CPU-heavy (64 MiB argon2id): async callers
    /// use [`UsersDatabase::authenticate_blocking`].
    ///
    /// Every call runs exactly one hash verification: an unknown or disabled user is checked
    /// against a default-cost argon2id dummy, so those logins take the time of a wrong
    /// password (the caller adds a fixed floor on top, which also covers cheaper legacy hashes).
    pub fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<AuthenticatedUser, AuthFailure> {
        let user = match self.find_login(login) {
            Some(user) if !user.disabled => user,
            found => {
                self.verifications.fetch_add(1, Ordering::Relaxed);
                self.dummy_verifications.fetch_add(1, Ordering::Relaxed);
                hash::dummy_verification(password);
                return Err(match found {
                    Some(_) => AuthFailure::Disabled,
                    None => AuthFailure::UnknownUser,
                });
            }
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        if !hash::verify_password(&user.password, password) {
            return Err(AuthFailure::WrongPassword);
        }
        Ok(AuthenticatedUser {
            name: user.name.clone(),
            display_name: user.display_name.clone(),
            email: user.email.clone(),
            groups: user.groups.clone(),
            hash_algorithm: user.password.algorithm(),
            needs_rehash: user.password.is_legacy(),
        })
    }

    /// [`UsersDatabase::authenticate`] for async callers: waits for one of the
    /// [`MAX_CONCURRENT_VERIFICATIONS`] process-wide permits, then verifies on tokio's
    /// blocking pool (the permit is held until the verification ends, even if this future is
    /// dropped).
    pub async fn authenticate_blocking(
        self: Arc<Self>,
        login: String,
        password: SecretString,
    ) -> Result<AuthenticatedUser, AuthFailure> {
        let permit = VERIFICATION_PERMITS
            .acquire()
            .await
            .map_err(|_| AuthFailure::VerifierFailed)?;
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            self.authenticate(&login, password.expose_secret())
        });
        task.await.unwrap_or(Err(AuthFailure::VerifierFailed))
    }

    /// How many password verifications [`UsersDatabase::authenticate`] has run (real and
    /// dummy): one per call.
    pub fn verification_count(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// How many of those were dummy verifications for unknown or disabled users.
    pub fn dummy_verification_count(&self) -> u64 {
        self.dummy_verifications.load(Ordering::Relaxed)
    }
}
