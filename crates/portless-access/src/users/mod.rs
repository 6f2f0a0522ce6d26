//! The users file (`users_database.yml`): who may log in with a password, their groups, and
//! whether they are disabled — in the format of the SSO portal self-hosters already use, so
//! an existing file works unchanged.
//!
//! ```yaml
//! users:
//!   alice:
//!     displayname: Alice Doe
//!     password: "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>"
//!     email: alice@example.com
//!     groups: [admins, dev]
//!     disabled: false
//! ```
//!
//! Usernames and email addresses are compared case-insensitively (`Alice`, `alice` and
//! `alice@example.com` are one user: brute-force counters keyed by the canonical name cannot
//! be split). New hashes are argon2id; argon2i/d, scrypt, PBKDF2, sha512crypt and bcrypt
//! hashes are verified for migration.
//!
//! Main types: [`UsersDatabase`] (one loaded version; lookups and
//! [`UsersDatabase::authenticate`]), [`UsersFile`] (the file on disk, reloaded on change),
//! [`PasswordHash`].
//!
//! Layout:
//! * `file` — parsing and validation, with positions for errors and edits;
//! * `error` — what is wrong with a file, where, and how to fix it;
//! * `hash` — the hash formats, verification, new argon2id hashes;
//! * `database` — users, lookups, password login with its timing pad;
//! * `watch` — reloading the file when it changes;
//! * `edit` — `add_user`, `set_password`, `set_disabled`: atomic edits that keep the rest of
//!   the file, comments included.

mod database;
mod edit;
mod error;
mod file;
mod hash;
mod watch;

#[cfg(test)]
mod tests;

pub use database::{
    AuthFailure, AuthenticatedUser, MAX_CONCURRENT_VERIFICATIONS, User, UserProfile, UsersDatabase,
};
pub use edit::{EditError, EditOutcome, NewUser, add_user, set_disabled, set_password};
pub use error::{Position, UsersError, UsersErrorKind, UsersFileError};
pub use hash::{
    DEFAULT_ARGON2_M_COST, DEFAULT_ARGON2_OUTPUT_LEN, DEFAULT_ARGON2_P_COST, DEFAULT_ARGON2_T_COST,
    HashAlgorithm, HashError, PasswordHash, verify_password,
};
pub use watch::{ReloadOutcome, UsersFile};
