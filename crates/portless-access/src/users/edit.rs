//! Safe edits of the users file: add a user, change a password, disable or enable a user.
//!
//! Each edit changes the *text* of one user (one value replaced, one line inserted, or one
//! block appended), so every other user, key and comment stays exactly as written. The edited
//! text is parsed again and compared with what the edit meant to do before anything is
//! written; then it is written atomically (a temporary file in the same directory, fsync,
//! rename, fsync of the directory), keeping the file's mode and, when permitted, its owner.
//! A new file is created with mode 0600. Layouts that cannot be edited this way (a `users:`
//! mapping written in flow style, `{…}`) are refused with a message, never rewritten.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::database::{User, UsersDatabase};
use super::error::UsersError;
use super::file::{self, Parsed, UserLayout};
use super::hash::{HashAlgorithm, HashError, PasswordHash};

/// Mode of a users file created by an edit: it holds password hashes.
const NEW_FILE_MODE: u32 = 0o600;

/// A valid (cheap) hash, to check a new user's other values before hashing the password.
const PROBE_HASH: &str = "$2b$05$/BEOxSmn/ht9z/bOjfjKwubqi/VGltvwogUgCfjrmvSmS2E7oO1lG";

/// A user to add.
pub struct NewUser {
    /// Username (kept as written; compared case-insensitively).
    pub name: String,
    /// `displayname`; not written when empty.
    pub displayname: String,
    /// `email`, if any.
    pub email: Option<String>,
    /// `groups`.
    pub groups: Vec<String>,
    /// The password, hashed with argon2id before anything is written.
    pub password_plain: SecretString,
}

/// What an edit did, for the command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditOutcome {
    /// The file written (symlinks resolved).
    pub path: PathBuf,
    /// The user's canonical name.
    pub user: String,
    /// The algorithm of the new password hash, when one was written.
    pub algorithm: Option<HashAlgorithm>,
    /// Whether the file did not exist and was created.
    pub created: bool,
    /// Whether the file changed (`false`: the user already was as asked).
    pub changed: bool,
}

/// Why an edit was refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The file as it is now is invalid: it must be fixed first.
    #[error("the users file is invalid, fix it first:\n{0}")]
    Invalid(UsersError),
    /// A user of this name exists (names are compared case-insensitively).
    #[error(
        "user `{name}` already exists in {path}: use `portless user passwd {name}` to change the password"
    )]
    UserExists {
        /// The existing user's name as written.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// Another user has this email address.
    #[error(
        "user `{user}` already has the email address {email}: give each user their own address"
    )]
    EmailTaken {
        /// The address.
        email: String,
        /// Who has it.
        user: String,
    },
    /// No user of this name.
    #[error("no user `{name}` in {path}: check the name with `portless user list`")]
    NoSuchUser {
        /// The name asked for.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// The new user's values would make the file invalid (e.g. an email with two `@`).
    #[error("the new user is not valid:\n{0}")]
    InvalidNewUser(UsersError),
    /// A value holds a control character (a line break, a tab...): it would end up in a
    /// header sent to applications.
    #[error("the {field} contains a control character (line break, tab...); remove it")]
    ControlCharacter {
        /// Which value: `username`, `display name`, `email` or `group`.
        field: &'static str,
    },
    /// Hashing the password failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The file's layout cannot be edited in place.
    #[error(
        "cannot edit {path} in place: {reason}; rewrite `users:` in block style (one `name:` per line, its keys indented below)"
    )]
    Layout {
        /// The file.
        path: PathBuf,
        /// What is in the way.
        reason: &'static str,
    },
    /// The edited text did not parse back to the intended change (nothing was written).
    #[error(
        "the edit of {path} could not be verified, nothing was written; please report this with the file's layout"
    )]
    Unverified {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

// === the three edits ===

/// Adds a user with a new argon2id hash of `user.password_plain`; creates the file (mode
/// 0600) if it does not exist.
pub fn add_user(path: &Path, user: NewUser) -> Result<EditOutcome, EditError> {
    let fields = [
        ("username", Some(user.name.as_str())),
        ("display name", Some(user.displayname.as_str())),
        ("email", user.email.as_deref()),
    ];
    for (field, value) in fields {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(EditError::ControlCharacter { field });
        }
    }
    if user.groups.iter().any(|g| g.chars().any(char::is_control)) {
        return Err(EditError::ControlCharacter { field: "group" });
    }
    let current = Current::read(path)?;
    let database = current.database();
    if let Some(existing) = database.and_then(|db| db.get(&user.name)) {
        return Err(EditError::UserExists {
            name: existing.written_name().to_owned(),
            path: current.path.clone(),
        });
    }
    if let Some(email) = &user.email
        && let Some(owner) = database.and_then(|db| db.find_by_email(email))
    {
        return Err(EditError::EmailTaken {
            email: email.clone(),
            user: owner.written_name().to_owned(),
        });
    }
    // Check the new user's values before spending a 64 MiB hash on them.
    let probe = render_user(&user, PROBE_HASH, 2, 4);
    UsersDatabase::from_yaml_str(&format!("users:\n{probe}"), &current.path)
        .map_err(EditError::InvalidNewUser)?;

    let hash = PasswordHash::new_argon2id(user.password_plain.expose_secret())?;
    let text = current.text_with_user_added(&user, &hash)?;
    // E.g. a username that is another user's address: only the whole file shows it.
    let new = file::parse(&text, &current.path).map_err(EditError::InvalidNewUser)?;
    let old_users: Vec<&User> = database.map(|db| db.users().collect()).unwrap_or_default();
    let added = new.database.users().last();
    let as_intended = new.database.len() == old_users.len() + 1
        && new.database.users().zip(&old_users).all(|(a, b)| a == *b)
        && added.is_some_and(|u| {
            u.written_name() == user.name
                && u.password_hash() == &hash
                && u.email() == user.email.as_deref()
                && u.groups() == user.groups.as_slice()
                && u.display_name() == user.displayname
        });
    current.commit(
        text,
        as_intended,
        &user.name.to_lowercase(),
        Some(hash.algorithm()),
    )
}

/// Replaces a user's password hash with a new argon2id hash of `plain`.
pub fn set_password(
    path: &Path,
    name: &str,
    plain: &SecretString,
) -> Result<EditOutcome, EditError> {
    let current = Current::read_existing(path)?;
    let (user, layout) = current.user(name)?;
    let at = layout.password.ok_or_else(|| current.unverified())?;
    let hash = PasswordHash::new_argon2id(plain.expose_secret())?;
    let text = current.replace_scalar(at, &single_quoted(hash.as_str()))?;
    let new = current.reparse(&text)?;
    let expected = User {
        password: hash.clone(),
        ..user.clone()
    };
    let as_intended = current.same_except(&new.database, &expected);
    current.commit(text, as_intended, &expected.name, Some(hash.algorithm()))
}

/// Sets or clears a user's `disabled` flag.
pub fn set_disabled(path: &Path, name: &str, disabled: bool) -> Result<EditOutcome, EditError> {
    let current = Current::read_existing(path)?;
    let (user, layout) = current.user(name)?;
    if user.is_disabled() == disabled {
        return Ok(current.outcome(&user.name, None, false));
    }
    let value = if disabled { "true" } else { "false" };
    let text = match layout.disabled {
        Some(at) => current.replace_scalar(at, value)?,
        None => current.insert_after_password(layout, &format!("disabled: {value}"))?,
    };
    let new = current.reparse(&text)?;
    let expected = User {
        disabled,
        ..user.clone()
    };
    let as_intended = current.same_except(&new.database, &expected);
    current.commit(text, as_intended, &expected.name, None)
}

// === the file being edited ===

/// The file as read before an edit.
struct Current {
    /// The file (symlinks resolved, so the link keeps pointing at it).
    path: PathBuf,
    text: String,
    /// `None` for a missing or blank file.
    parsed: Option<Parsed>,
    /// Mode and owner to keep; `None` for a new file.
    metadata: Option<std::fs::Metadata>,
}

impl Current {
    fn read(path: &Path) -> Result<Current, EditError> {
        match std::fs::canonicalize(path) {
            Ok(resolved) => Current::read_resolved(resolved),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Current {
                path: path.to_path_buf(),
                text: String::new(),
                parsed: None,
                metadata: None,
            }),
            Err(source) => Err(io_error("read", path, source)),
        }
    }

    fn read_existing(path: &Path) -> Result<Current, EditError> {
        let resolved = std::fs::canonicalize(path).map_err(|e| io_error("read", path, e))?;
        Current::read_resolved(resolved)
    }

    fn read_resolved(path: PathBuf) -> Result<Current, EditError> {
        let metadata = std::fs::metadata(&path).map_err(|e| io_error("read", &path, e))?;
        let text = std::fs::read_to_string(&path).map_err(|e| io_error("read", &path, e))?;
        let parsed = if portless_diagnostics::is_blank(&text) {
            None
        } else {
            Some(file::parse(&text, &path).map_err(EditError::Invalid)?)
        };
        Ok(Current {
            path,
            text,
            parsed,
            metadata: Some(metadata),
        })
    }

    fn database(&self) -> Option<&UsersDatabase> {
        self.parsed.as_ref().map(|p| &p.database)
    }

    fn user(&self, name: &str) -> Result<(&User, &UserLayout), EditError> {
        let no_such_user = || EditError::NoSuchUser {
            name: name.to_owned(),
            path: self.path.clone(),
        };
        let parsed = self.parsed.as_ref().ok_or_else(no_such_user)?;
        let user = parsed.database.get(name).ok_or_else(no_such_user)?;
        let layout = parsed
            .layouts
            .iter()
            .find(|l| l.name == user.name)
            .ok_or_else(|| self.unverified())?;
        Ok((user, layout))
    }

    fn reparse(&self, text: &str) -> Result<Parsed, EditError> {
        file::parse(text, &self.path).map_err(|_| self.unverified())
    }

    /// Whether `new` holds the same users as the current file, except `expected` in place of
    /// the user of its name.
    fn same_except(&self, new: &UsersDatabase, expected: &User) -> bool {
        let Some(old) = self.database() else {
            return false;
        };
        old.len() == new.len()
            && old.users().zip(new.users()).all(|(before, after)| {
                let want = if before.name == expected.name {
                    expected
                } else {
                    before
                };
                want == after
            })
    }

    fn unverified(&self) -> EditError {
        EditError::Unverified {
            path: self.path.clone(),
        }
    }

    fn outcome(&self, user: &str, algorithm: Option<HashAlgorithm>, changed: bool) -> EditOutcome {
        EditOutcome {
            path: self.path.clone(),
            user: user.to_owned(),
            algorithm,
            created: self.metadata.is_none(),
            changed,
        }
    }

    fn commit(
        &self,
        text: String,
        as_intended: bool,
        user: &str,
        algorithm: Option<HashAlgorithm>,
    ) -> Result<EditOutcome, EditError> {
        if !as_intended {
            return Err(self.unverified());
        }
        write_atomically(&self.path, text.as_bytes(), self.metadata.as_ref()).map_err(
            |(action, path, source)| EditError::Io {
                action,
                path,
                source,
            },
        )?;
        Ok(self.outcome(user, algorithm, true))
    }

    // === text surgery ===

    /// Byte range of the scalar at `at`.
    fn scalar_range(
        &self,
        at: serde_saphyr::Location,
    ) -> Result<std::ops::Range<usize>, EditError> {
        let span = at.span();
        let start = span.byte_offset().and_then(|o| usize::try_from(o).ok());
        let len = span.byte_len().and_then(|l| usize::try_from(l).ok());
        let (Some(start), Some(len)) = (start, len) else {
            return Err(self.unverified());
        };
        let range = start..start + len;
        if self.text.get(range.clone()).is_none() {
            return Err(self.unverified());
        }
        Ok(range)
    }

    fn replace_scalar(&self, at: serde_saphyr::Location, with: &str) -> Result<String, EditError> {
        let range = self.scalar_range(at)?;
        let mut text = self.text.clone();
        text.replace_range(range, with);
        Ok(text)
    }

    /// Inserts `line` (a `key: value`) after the line of the user's `password`, at the same
    /// indentation as `password:`.
    fn insert_after_password(&self, layout: &UserLayout, line: &str) -> Result<String, EditError> {
        let at = layout.password.ok_or_else(|| self.unverified())?;
        let range = self.scalar_range(at)?;
        let line_start = self.text[..range.start].rfind('\n').map_or(0, |i| i + 1);
        let prefix = &self.text[line_start..range.start];
        let indent_len = prefix.len() - prefix.trim_start().len();
        if !prefix.trim_start().starts_with("password:") {
            return Err(self.layout_error("the user is written in flow style"));
        }
        let line_end = self.text[range.end..]
            .find('\n')
            .map_or(self.text.len(), |i| range.end + i + 1);
        let mut text = self.text.clone();
        let mut insertion = String::new();
        if !text[..line_end].ends_with('\n') {
            insertion.push('\n');
        }
        insertion.push_str(&prefix[..indent_len]);
        insertion.push_str(line);
        insertion.push('\n');
        text.insert_str(line_end, &insertion);
        Ok(text)
    }

    fn text_with_user_added(
        &self,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> Result<String, EditError> {
        let first = self.parsed.as_ref().and_then(|p| p.layouts.first());
        let Some(first) = first else {
            return Ok(self.text_with_first_user(user, hash));
        };
        let (indent, field_indent) = self.indentation(first)?;
        let mut text = self.text.clone();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&render_user(user, hash.as_str(), indent, field_indent));
        Ok(text)
    }

    /// A file with no users yet (missing, blank, `users:` or `users: {}`): its comment lines,
    /// then `users:` with the new user.
    fn text_with_first_user(&self, user: &NewUser, hash: &PasswordHash) -> String {
        let mut text: String = self
            .text
            .lines()
            .filter(|line| line.trim_start().starts_with('#'))
            .flat_map(|line| [line, "\n"])
            .collect();
        text.push_str("users:\n");
        text.push_str(&render_user(user, hash.as_str(), 2, 4));
        text
    }

    /// The indentation of user keys, and of their fields, from the first user.
    fn indentation(&self, first: &UserLayout) -> Result<(usize, usize), EditError> {
        let column = usize::try_from(first.key.column()).unwrap_or(0);
        let line = usize::try_from(first.key.line()).unwrap_or(0);
        let key_line = self.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let indent = column.saturating_sub(1);
        let block_style = indent > 0 && key_line.get(..indent).is_some_and(|p| p.trim().is_empty());
        if !block_style {
            return Err(self.layout_error("`users:` is written in flow style"));
        }
        let field_indent = first
            .password
            .and_then(|at| {
                let line = usize::try_from(at.line()).ok()?;
                let text = self.text.lines().nth(line.checked_sub(1)?)?;
                let trimmed = text.trim_start();
                trimmed
                    .starts_with("password:")
                    .then_some(text.len() - trimmed.len())
            })
            .filter(|&i| i > indent)
            .unwrap_or(indent * 2);
        Ok((indent, field_indent))
    }

    fn layout_error(&self, reason: &'static str) -> EditError {
        EditError::Layout {
            path: self.path.clone(),
            reason,
        }
    }
}

// === rendering a new user ===

fn render_user(user: &NewUser, hash: &str, indent: usize, field_indent: usize) -> String {
    let pad = " ".repeat(indent);
    let field = " ".repeat(field_indent);
    let mut out = format!("{pad}{}:\n", scalar(&user.name));
    if !user.displayname.is_empty() {
        out.push_str(&format!(
            "{field}displayname: {}\n",
            scalar(&user.displayname)
        ));
    }
    out.push_str(&format!("{field}password: {}\n", single_quoted(hash)));
    if let Some(email) = &user.email {
        out.push_str(&format!("{field}email: {}\n", scalar(email)));
    }
    let groups: Vec<String> = user.groups.iter().map(|g| scalar(g)).collect();
    out.push_str(&format!("{field}groups: [{}]\n", groups.join(", ")));
    out.push_str(&format!("{field}disabled: false\n"));
    out
}

/// A YAML scalar for `value`: plain when that is unambiguous, single-quoted otherwise.
fn scalar(value: &str) -> String {
    let safe_chars = value
        .chars()
        .all(|c| c.is_alphanumeric() || " ._@+-".contains(c));
    let starts_well = value.chars().next().is_some_and(char::is_alphanumeric);
    let ends_well = !value.ends_with(' ');
    let keyword = matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
    );
    let number = value.parse::<f64>().is_ok();
    if safe_chars && starts_well && ends_well && !keyword && !number {
        value.to_owned()
    } else {
        single_quoted(value)
    }
}

fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

// === atomic write ===

type WriteError = (&'static str, PathBuf, std::io::Error);

/// Writes `contents` to `path` through a temporary file in the same directory, so readers
/// (the edge's reload) see the old file or the new one, never a mix.
fn write_atomically(
    path: &Path,
    contents: &[u8],
    previous: Option<&std::fs::Metadata>,
) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mode = previous.map_or(NEW_FILE_MODE, |m| m.permissions().mode() & 0o7777);
    let (temp_path, mut temp) = create_temp(&dir, path, mode)?;
    let result = (|| {
        let fail = |action: &'static str| {
            let temp_path = temp_path.clone();
            move |e| (action, temp_path, e)
        };
        temp.write_all(contents).map_err(fail("write"))?;
        // The mode given at creation is reduced by the umask; set it exactly.
        temp.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail("set the mode of"))?;
        if let Some(previous) = previous {
            // Only root may give a file away; for anyone else the new file is theirs.
            let _ = std::os::unix::fs::fchown(&temp, Some(previous.uid()), Some(previous.gid()));
        }
        temp.sync_all().map_err(fail("sync"))?;
        std::fs::rename(&temp_path, path).map_err(|e| ("replace", path.to_path_buf(), e))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ("sync the directory", dir.clone(), e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp_path);
    }
    result
}

/// A new file `.NAME.tmp-PID-N` next to `path`, created exclusively with `mode`.
fn create_temp(dir: &Path, path: &Path, mode: u32) -> Result<(PathBuf, std::fs::File), WriteError> {
    let name = path
        .file_name()
        .map_or_else(|| "users".into(), |n| n.to_string_lossy().into_owned());
    let mut last_error = None;
    for attempt in 0..16 {
        let temp_path = dir.join(format!(".{name}.tmp-{}-{attempt}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(("create a temporary file in", dir.to_path_buf(), e)),
        }
    }
    let error = last_error.unwrap_or_else(|| std::io::Error::other("no free temporary name"));
    Err(("create a temporary file in", dir.to_path_buf(), error))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> EditError {
    EditError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
