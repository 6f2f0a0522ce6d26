//! The users file on disk, reloaded when it changes.
//!
//! The file is polled (a content hash every interval) rather than watched with inotify: it
//! works the same on every filesystem, through symlink swaps (Kubernetes secrets) and editors
//! that replace the file, and costs one small read per interval. A change that does not
//! parse is logged and ignored, so a half-saved file never locks everyone out.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use aws_lc_rs::digest;

use super::database::UsersDatabase;
use super::error::UsersError;

/// What one check of the file found.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// The content is the same as last time.
    Unchanged,
    /// The content changed and is valid: the new database is in use.
    Reloaded {
        /// How many users it has.
        users: usize,
    },
    /// The content changed but is invalid (or unreadable): the previous database stays.
    Rejected(UsersError),
}

/// The users file at a path, with the database of its last valid content.
#[derive(Debug)]
pub struct UsersFile {
    path: PathBuf,
    current: RwLock<Arc<UsersDatabase>>,
    /// SHA-256 of the content last looked at (valid or not), so an invalid version is
    /// reported once, not at every poll.
    last_digest: Mutex<Option<Vec<u8>>>,
}

impl UsersFile {
    /// Reads the file; it must exist and be valid.
    pub fn open(path: &Path) -> Result<UsersFile, UsersError> {
        let (database, digest) = read(path)?;
        Ok(UsersFile {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(database)),
            last_digest: Mutex::new(Some(digest)),
        })
    }

    /// The path given to [`UsersFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database of the last valid content. Cheap (an `Arc` clone): take it once per
    /// request or login and use that one snapshot throughout.
    pub fn current(&self) -> Arc<UsersDatabase> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the file now and swaps in its database if the content changed and is valid;
    /// logs the outcome (`users file reloaded (N users)`, or every error).
    pub fn check_now(&self) -> ReloadOutcome {
        let content = match std::fs::read(&self.path) {
            Ok(content) => content,
            Err(source) => return self.unreadable(source),
        };
        let digest = digest::digest(&digest::SHA256, &content).as_ref().to_vec();
        {
            let mut last = self
                .last_digest
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.as_deref() == Some(digest.as_slice()) {
                return ReloadOutcome::Unchanged;
            }
            *last = Some(digest);
        }
        let parsed = String::from_utf8(content)
            .map_err(|e| {
                let source = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
                read_error(&self.path, source)
            })
            .and_then(|text| UsersDatabase::from_yaml_str(&text, &self.path));
        match parsed {
            Ok(database) => {
                let users = database.len();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(database);
                tracing::info!(path = %self.path.display(), "users file reloaded ({users} users)");
                ReloadOutcome::Reloaded { users }
            }
            Err(errors) => {
                log_rejected(&errors);
                ReloadOutcome::Rejected(errors)
            }
        }
    }

    /// A file that cannot be read (deleted, permissions): reported once, until it can be
    /// read again.
    fn unreadable(&self, source: std::io::Error) -> ReloadOutcome {
        let errors = read_error(&self.path, source);
        let mut last = self
            .last_digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.take().is_some() {
            log_rejected(&errors);
        }
        ReloadOutcome::Rejected(errors)
    }

    /// Checks the file every `interval` until `shutdown` completes. The future borrows
    /// `self`: spawn it with an `Arc<UsersFile>` moved in, e.g.
    /// `tasks.spawn(async move { file.watch(interval, token.cancelled()).await })`.
    ///
    /// Each check reads the file synchronously: it is small, and a poll every few seconds
    /// does not hold a runtime thread long enough to matter.
    pub async fn watch(&self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the file was just read by `open`.
        ticks.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {
                    self.check_now();
                }
            }
        }
    }
}

fn read(path: &Path) -> Result<(UsersDatabase, Vec<u8>), UsersError> {
    let content = std::fs::read(path).map_err(|source| read_error(path, source))?;
    let digest = digest::digest(&digest::SHA256, &content).as_ref().to_vec();
    let text = String::from_utf8(content).map_err(|e| {
        read_error(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    Ok((UsersDatabase::from_yaml_str(&text, path)?, digest))
}

fn read_error(path: &Path, source: std::io::Error) -> UsersError {
    UsersError::one(path, None, super::error::UsersErrorKind::Read { source })
}

fn log_rejected(errors: &UsersError) {
    for error in errors {
        tracing::warn!("users file change ignored, the previous version stays in use: {error}");
    }
}
