//! Schema migrations, embedded in the binary.
//!
//! Built by hand from `include_str!` rather than with `sqlx::migrate!`, so the crate needs no sqlx
//! macros (and no build-time database). sqlx records each applied version and its checksum in
//! `_sqlx_migrations` and refuses to start on a store whose applied migrations differ from these.

use std::time::Duration;

use sqlx::SqlSafeStr as _;
use sqlx::SqlitePool;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::StoreError;

/// Every migration, oldest first: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "tunnel configs",
        include_str!("../migrations/0002_tunnel_configs.sql"),
    ),
    (
        3,
        "service tokens and audit log",
        include_str!("../migrations/0003_service_tokens_audit.sql"),
    ),
    (4, "totp", include_str!("../migrations/0004_totp.sql")),
    (
        5,
        "signing keys",
        include_str!("../migrations/0005_signing_keys.sql"),
    ),
    (
        6,
        "passkeys",
        include_str!("../migrations/0006_passkeys.sql"),
    ),
    (7, "acme", include_str!("../migrations/0007_acme.sql")),
];

/// How many times to run the migrator before giving up (see [`run`]).
const ATTEMPTS: u32 = 3;

/// The migrator for [`MIGRATIONS`].
fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Brings the schema up to date.
///
/// sqlx does not lock SQLite during migrations, so two processes opening a new store at once can both
/// decide version 1 is missing; the loser's transaction then fails ("table already exists") and rolls
/// back. Running the migrator again sees the winner's work and has nothing left to do. A persistent
/// failure fails every attempt and is returned.
pub(crate) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrator = migrator();
    let mut attempt = 1;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < ATTEMPTS => {
                tracing::debug!(%error, attempt, "store migration failed, retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => return Err(StoreError::Migrate(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(versions.first(), Some(&1));
    }
}
