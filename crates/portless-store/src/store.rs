//! [`Store`]: opening the database, the account tag and the routes version.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool, SqliteTransaction};

use crate::secret::{fill_random, to_hex};
use crate::{StoreError, migrate};

/// How long a write waits for another connection's write to finish before failing. Writes are rare
/// and short (one tunnel, one route), so waiting is better than surfacing "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per file-backed pool: SQLite runs one writer at a time anyway; a few readers let
/// route polling and credential checks proceed while a write waits.
const MAX_CONNECTIONS: u32 = 4;
/// How many times [`connect_file`] tries before reporting a locked store file.
const CONNECT_ATTEMPTS: u32 = 8;
/// Random bytes in an account tag (hex-encoded to 32 characters).
const ACCOUNT_TAG_BYTES: usize = 16;

/// The control-plane store: tunnels, their hashed secrets, hostname routes and settings.
///
/// Cheap to clone: clones share one connection pool. Several `Store`s (or processes) may open the same
/// file; writes are serialized by the database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// Generated once per store and never changed, so it is read at open and kept.
    account_tag: Arc<str>,
}

// === impl Store ===

impl Store {
    /// Opens the store file at `path`, creating it (mode 0600) and its directory (mode 0700) if
    /// missing, then applies any pending schema migrations.
    ///
    /// The database runs in WAL mode with a busy timeout, so readers never block the writer and
    /// concurrent writers wait for each other instead of failing.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        prepare_file(path).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL rather than WAL's usual NORMAL: writes are rare, and a rotated secret or a deleted
            // tunnel must survive a power cut.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = connect_file(path, options).await?;
        Self::init(pool).await
    }

    /// Opens a fresh, empty store held in memory, for tests.
    ///
    /// Uses a single connection that is never closed: every SQLite in-memory connection is its own
    /// database, so a second connection (or a recycled one) would see an empty store.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: PathBuf::from(":memory:"),
                source,
            })?;
        Self::init(pool).await
    }

    async fn init(pool: SqlitePool) -> Result<Store, StoreError> {
        migrate::run(&pool).await?;
        let account_tag = ensure_account_tag(&pool).await?.into();
        Ok(Store { pool, account_tag })
    }

    /// The account tag connectors put in their credentials: 32 hex characters, generated when the
    /// store is created and stable afterwards.
    pub async fn account_tag(&self) -> Result<String, StoreError> {
        Ok(self.account_tag.to_string())
    }

    /// A number that changes whenever a tunnel or route changes, so an edge can poll it cheaply and
    /// reload its routing table only when it moved.
    pub async fn routes_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT version FROM routes_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("version")?)
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn account_tag_str(&self) -> &str {
        &self.account_tag
    }

    /// Starts a transaction for a tunnel or route change and bumps the routes version in it.
    ///
    /// The bump is the transaction's first statement on purpose: it takes the write lock before
    /// anything is read, so the reads that follow cannot go stale under another writer (in SQLite a
    /// read-then-write transaction would fail with SQLITE_BUSY_SNAPSHOT instead of waiting; in
    /// PostgreSQL the row lock serializes changes the same way). Callers roll back when nothing
    /// changed, which undoes the bump.
    pub(crate) async fn begin_change(&self) -> Result<SqliteTransaction<'static>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE routes_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Creates the store's directory and file with owner-only permissions, or checks an existing file can
/// be written, so a permission problem is reported as such rather than as an obscure SQLite error.
async fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let access = |source| StoreError::FileAccess {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = tokio::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir).await.map_err(access)?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    // Only applies when the file is created; SQLite gives its -wal and -shm files the same mode.
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(path).await.map_err(access)?;
    warn_if_shared(path, &file).await;
    Ok(())
}

/// Warns when an existing store file is readable by other users. Not an error: the operator may want
/// it (a backup group); tightening it behind their back would be surprising.
async fn warn_if_shared(path: &Path, file: &tokio::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = file.metadata().await {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{mode:o}"),
                    "the store file is accessible to other users: run `chmod 600` on it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, file);
}

/// Connects to the store file, retrying while another process holds it locked.
///
/// Switching a new database to WAL needs an exclusive lock that SQLite does not wait for with the busy
/// timeout, so two processes opening a fresh store at the same moment can see "database is locked".
/// Once one of them has switched, the mode is persistent and the others connect normally.
async fn connect_file(
    path: &Path,
    options: SqliteConnectOptions,
) -> Result<SqlitePool, StoreError> {
    let mut attempt = 1;
    loop {
        let result = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await;
        match result {
            Ok(pool) => return Ok(pool),
            Err(error) if attempt < CONNECT_ATTEMPTS && is_locked(&error) => {
                tracing::debug!(%error, attempt, "store file locked, retrying");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Whether SQLite reported SQLITE_BUSY (5) or SQLITE_LOCKED (6), including their extended codes.
fn is_locked(error: &sqlx::Error) -> bool {
    let Some(code) = error.as_database_error().and_then(|e| e.code()) else {
        return false;
    };
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Generates the account tag on first open; later opens (and concurrent first opens) keep the
/// first one written.
async fn ensure_account_tag(pool: &SqlitePool) -> Result<String, StoreError> {
    let mut bytes = [0u8; ACCOUNT_TAG_BYTES];
    fill_random(&mut bytes)?;
    sqlx::query("INSERT INTO account (id, tag) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(to_hex(&bytes))
        .execute(pool)
        .await?;
    let row = sqlx::query("SELECT tag FROM account WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get("tag")?)
}

/// Now, in unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
