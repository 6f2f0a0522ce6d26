//! What an administrator sees when the users file is wrong: every problem with the file, the
//! line and column, and a suggested fix, in the `file:line:col: error: …` layout compilers use
//! (the same layout as the tunnel config's diagnostics).

use std::fmt;
use std::path::{Path, PathBuf};

pub use portless_diagnostics::Position;
use portless_diagnostics::{Severity, write_diagnostic, write_each};

use super::hash::HashError;

// === UsersFileError ===

/// One problem in a users file: what, where, and how to fix it.
#[derive(Debug)]
pub struct UsersFileError {
    file: PathBuf,
    position: Option<Position>,
    kind: UsersErrorKind,
}

impl UsersFileError {
    pub(crate) fn new(file: &Path, position: Option<Position>, kind: UsersErrorKind) -> Self {
        UsersFileError {
            file: file.to_path_buf(),
            position,
            kind,
        }
    }

    /// The users file the problem is in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the file; `None` when the problem is not at one place (unreadable file).
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// What is wrong, as a typed value.
    pub fn kind(&self) -> &UsersErrorKind {
        &self.kind
    }

    /// A suggested fix, in one sentence.
    pub fn fix(&self) -> String {
        self.kind.fix()
    }
}

impl fmt::Display for UsersFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.kind.to_string();
        write_diagnostic(
            f,
            &self.file,
            self.position,
            Severity::Error,
            &message,
            &self.fix(),
        )
    }
}

impl std::error::Error for UsersFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

// === UsersError ===

/// Why a users file was refused: every problem found (never empty), in file order, so an
/// administrator can fix them all in one edit.
#[derive(Debug)]
pub struct UsersError(Vec<UsersFileError>);

impl UsersError {
    /// Wraps the problems found; callers guarantee at least one.
    pub(crate) fn new(mut errors: Vec<UsersFileError>) -> Self {
        errors.sort_by_key(UsersFileError::position);
        UsersError(errors)
    }

    pub(crate) fn one(file: &Path, position: Option<Position>, kind: UsersErrorKind) -> Self {
        UsersError(vec![UsersFileError::new(file, position, kind)])
    }

    /// The problems in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, UsersFileError> {
        self.0.iter()
    }

    /// How many problems there are (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a `UsersError` holds at least one problem (present for clippy).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_each(f, &self.0)
    }
}

impl std::error::Error for UsersError {}

impl<'a> IntoIterator for &'a UsersError {
    type Item = &'a UsersFileError;
    type IntoIter = std::slice::Iter<'a, UsersFileError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

// === UsersErrorKind ===

/// Every way a users file can be refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersErrorKind {
    /// The file could not be read.
    #[error("could not read the users file: {source}")]
    Read {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing but comments and blank lines.
    #[error("the users file is empty")]
    Empty,
    /// The text is not valid YAML (or repeats a key).
    #[error("invalid YAML: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A value has the wrong type, e.g. a single value where a list belongs.
    #[error("wrong type: {message}")]
    WrongType {
        /// The parser's message.
        message: String,
    },
    /// A key that is not part of the format.
    #[error("unknown key `{key}`")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The closest valid key, if one is close.
        suggestion: Option<&'static str>,
    },
    /// A username that cannot be used (empty, spaces or control characters).
    #[error("invalid username {name:?}: {reason}")]
    InvalidUsername {
        /// The username as written.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two usernames that differ only by case: logins are case-insensitive.
    #[error(
        "user `{name}` is the same as user `{first}` (line {first_line}): usernames are case-insensitive"
    )]
    DuplicateUsername {
        /// The later username as written.
        name: String,
        /// The earlier username as written.
        first: String,
        /// The line of the earlier one.
        first_line: u32,
    },
    /// Two users with the same email address (compared case-insensitively).
    #[error("user `{user}` has the email address {email} of user `{first}`")]
    DuplicateEmail {
        /// The later user.
        user: String,
        /// The address.
        email: String,
        /// The earlier user.
        first: String,
    },
    /// A username that is another user's email address: a login would be ambiguous.
    #[error("username `{name}` is the email address of user `{owner}`")]
    UsernameIsEmail {
        /// The username.
        name: String,
        /// The user whose address it is.
        owner: String,
    },
    /// A user without `password`.
    #[error("user `{user}` has no password")]
    MissingPassword {
        /// The user.
        user: String,
    },
    /// A `password` that is not a hash Portless can verify.
    #[error("the password of user `{user}` is not a recognised hash: {source}")]
    BadPassword {
        /// The user.
        user: String,
        /// What is wrong with the hash.
        #[source]
        source: HashError,
    },
    /// An `email` that is not one address (`local@domain`).
    #[error("the email of user `{user}` is not a single address: {email:?}")]
    InvalidEmail {
        /// The user.
        user: String,
        /// The value as written.
        email: String,
    },
    /// A group name that cannot be used (empty, a comma or control characters).
    #[error("user `{user}` has an invalid group {group:?}")]
    InvalidGroup {
        /// The user.
        user: String,
        /// The group as written.
        group: String,
    },
    /// A `displayname` with control characters (it is sent in a header).
    #[error("the displayname of user `{user}` contains control characters")]
    InvalidDisplayName {
        /// The user.
        user: String,
    },
}

impl UsersErrorKind {
    /// A suggested fix for this problem.
    pub fn fix(&self) -> String {
        use UsersErrorKind as K;
        match self {
            K::Read { .. } => {
                "check the path and the file's permissions, or pass --users-file".into()
            }
            K::Empty => {
                "start the file with `users:`, or add a user with `portless user add NAME`".into()
            }
            K::Syntax { message } => syntax_fix(message).into(),
            K::WrongType { message } => wrong_type_fix(message).into(),
            K::UnknownKey {
                suggestion: Some(key),
                ..
            } => format!("did you mean `{key}`?"),
            K::UnknownKey { .. } => "remove it; a user's keys are `displayname`, `password`, \
                                     `email`, `groups`, `disabled` and the optional profile keys"
                .into(),
            K::InvalidUsername { .. } => {
                "use a name without spaces or control characters, e.g. `alice`".into()
            }
            K::DuplicateUsername { .. } => "rename or remove one of the two users".into(),
            K::DuplicateEmail { .. } => "give each user their own email address".into(),
            K::UsernameIsEmail { .. } => "rename the user, or change the other user's email".into(),
            K::MissingPassword { user } | K::BadPassword { user, .. } => format!(
                "set a password hash with `portless user passwd {user}` (argon2id, scrypt, \
                 pbkdf2, sha512crypt `$6$` and bcrypt `$2b$` hashes are accepted)"
            ),
            K::InvalidEmail { .. } => {
                "write one address like `alice@example.com`, or remove `email`".into()
            }
            K::InvalidGroup { .. } => "use group names without commas or control characters".into(),
            K::InvalidDisplayName { .. } => "write the display name on one line".into(),
        }
    }
}

/// Advice for the YAML mistakes people actually make.
fn syntax_fix(message: &str) -> &'static str {
    if message.contains("duplicate") {
        "keep each username (and each key of a user) once"
    } else if message.contains("tabs") {
        "indent with spaces: YAML does not allow tabs in indentation"
    } else {
        "check the indentation and quoting near this position; quote password hashes with \
         single quotes"
    }
}

/// Advice for a value of the wrong type.
fn wrong_type_fix(message: &str) -> &'static str {
    if message.contains("boolean") {
        "use `true` or `false`"
    } else if message.contains("list") || message.contains("sequence") {
        "use a list: `groups: [admins, dev]`, or one `- item` per line"
    } else if message.contains("mapping") || message.contains("struct") {
        "use a mapping: `key: value` lines indented under this key (users: then name: then \
         displayname, password, email, groups, disabled)"
    } else {
        "write a single value here (quote it if it contains `: ` or `#`)"
    }
}
