//! Service tokens' rows: machine credentials, kept as hashes only.
//!
//! The store is deliberately dumb here: it keeps what `portless-access` hands it (the canonical
//! name, the public client id and hex SHA-256 hashes) and returns rows. Generating secrets,
//! checking them in constant time, expiry and the rotation grace are decided in
//! `portless-access::service_token`, so they are tested there with an injected clock.
//!
//! None of these writes bump the routes version: a token change does not change routing.

use std::fmt;

use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError};

/// `SELECT` of every column [`record_from_row`] reads, followed by `$rest` (a literal, so the
/// query stays a `&'static str`).
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT name, client_id, secret_hash, previous_secret_hash, previous_valid_until, ",
            "created_at, expires_at, rotated_at, revoked_at FROM service_tokens ",
            $rest
        )
    };
}

/// A service token to insert. Hashes are hex SHA-256; the secret itself never reaches the store.
#[derive(Clone, Copy)]
pub struct NewServiceToken<'a> {
    /// Canonical (lowercase) name; unique among live tokens.
    pub name: &'a str,
    /// The public client id; unique forever.
    pub client_id: &'a str,
    /// Hex SHA-256 of the secret.
    pub secret_hash: &'a str,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for NewServiceToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewServiceToken")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A service token as stored. `Debug` leaves out the hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceTokenRecord {
    /// Canonical (lowercase) name.
    pub name: String,
    /// The public client id.
    pub client_id: String,
    /// Hex SHA-256 of the current secret.
    pub secret_hash: String,
    /// Hex SHA-256 of the secret the last rotation replaced, if any.
    pub previous_secret_hash: Option<String>,
    /// Unix seconds until which the previous secret is still accepted.
    pub previous_valid_until: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
    /// Unix seconds of the last rotation, if any.
    pub rotated_at: Option<i64>,
    /// Unix seconds of the revocation, if revoked.
    pub revoked_at: Option<i64>,
}

impl fmt::Debug for ServiceTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokenRecord")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("previous_valid_until", &self.previous_valid_until)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("rotated_at", &self.rotated_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

// === impl Store ===

impl Store {
    /// Inserts a service token.
    ///
    /// Fails with [`StoreError::ServiceTokenNameTaken`] if a live (not revoked) token has this
    /// name; a client id collision (which 128 random bits make practically impossible) is a
    /// database error.
    pub async fn insert_service_token(&self, new: &NewServiceToken<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO service_tokens (name, client_id, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new.name)
        .bind(new.client_id)
        .bind(new.secret_hash)
        .bind(new.created_at)
        .bind(new.expires_at)
        .execute(self.pool())
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if is_name_violation(db.as_ref()) => {
                StoreError::ServiceTokenNameTaken {
                    name: new.name.to_owned(),
                }
            }
            _ => error.into(),
        })?;
        tracing::info!(
            token_name = new.name,
            client_id = new.client_id,
            "service token created"
        );
        Ok(())
    }

    /// The token with this client id, revoked or not: one indexed lookup, for authentication.
    pub async fn service_token_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceTokenRecord>, StoreError> {
        let row = sqlx::query(select_tokens!("WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The live (not revoked) token with this canonical name.
    pub async fn service_token(
        &self,
        name: &str,
    ) -> Result<Option<ServiceTokenRecord>, StoreError> {
        let row = sqlx::query(select_tokens!("WHERE name = $1 AND revoked_at IS NULL"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Every live (not revoked) token, by name. Expired tokens are included.
    pub async fn service_tokens(&self) -> Result<Vec<ServiceTokenRecord>, StoreError> {
        sqlx::query(select_tokens!("WHERE revoked_at IS NULL ORDER BY name"))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }

    /// Replaces the live token's secret hash with `new_secret_hash`; the old hash becomes the
    /// previous one, accepted until `previous_valid_until` (unix seconds). A second rotation
    /// ends the first one's grace at once. Returns the updated row, or `None` if no live token
    /// has this name.
    pub async fn rotate_service_token(
        &self,
        name: &str,
        new_secret_hash: &str,
        previous_valid_until: i64,
        rotated_at: i64,
    ) -> Result<Option<ServiceTokenRecord>, StoreError> {
        // Standard SQL evaluates every right-hand side against the old row, so the old
        // secret_hash moves to previous_secret_hash before it is replaced.
        let updated = sqlx::query(
            "UPDATE service_tokens SET previous_secret_hash = secret_hash, \
             previous_valid_until = $1, secret_hash = $2, rotated_at = $3 \
             WHERE name = $4 AND revoked_at IS NULL",
        )
        .bind(previous_valid_until)
        .bind(new_secret_hash)
        .bind(rotated_at)
        .bind(name)
        .execute(self.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        tracing::info!(token_name = name, "service token secret rotated");
        self.service_token(name).await
    }

    /// Revokes the live token with this name: it is refused from now on, and its name is free
    /// for a new token. Returns whether such a token existed.
    pub async fn revoke_service_token(
        &self,
        name: &str,
        revoked_at: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE service_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(revoked_at)
        .bind(name)
        .execute(self.pool())
        .await?
        .rows_affected();
        if updated > 0 {
            tracing::info!(token_name = name, "service token revoked");
        }
        Ok(updated > 0)
    }
}

/// Whether a unique violation is the live-name index's (and not the client id's).
fn is_name_violation(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.is_unique_violation() && !db.message().contains("client_id")
}

fn record_from_row(row: &SqliteRow) -> Result<ServiceTokenRecord, StoreError> {
    Ok(ServiceTokenRecord {
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        secret_hash: row.try_get("secret_hash")?,
        previous_secret_hash: row.try_get("previous_secret_hash")?,
        previous_valid_until: row.try_get("previous_valid_until")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        rotated_at: row.try_get("rotated_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token<'a>(name: &'a str, client_id: &'a str) -> NewServiceToken<'a> {
        NewServiceToken {
            name,
            client_id,
            secret_hash: "aa",
            created_at: 100,
            expires_at: Some(200),
        }
    }

    /// A store holding one token, `ci` with client id `id1`.
    async fn store_with_ci() -> Store {
        let store = Store::open_in_memory().await.unwrap();
        store
            .insert_service_token(&token("ci", "id1"))
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn insert_then_read_back_by_id_and_name() {
        let store = store_with_ci().await;
        let by_id = store
            .service_token_by_client_id("id1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_id.name, "ci");
        assert_eq!(by_id.secret_hash, "aa");
        assert_eq!(by_id.expires_at, Some(200));
        assert_eq!(by_id.previous_secret_hash, None);
        assert_eq!(store.service_token("ci").await.unwrap(), Some(by_id));
        assert_eq!(
            store.service_token_by_client_id("nope").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn live_names_are_unique_and_revocation_frees_them() {
        let store = store_with_ci().await;
        let error = store
            .insert_service_token(&token("ci", "id2"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::ServiceTokenNameTaken { name } if name == "ci"),
            "{error}"
        );
        assert!(error.to_string().contains("revoke the existing token"));

        assert!(store.revoke_service_token("ci", 150).await.unwrap());
        assert!(!store.revoke_service_token("ci", 151).await.unwrap());
        assert_eq!(store.service_token("ci").await.unwrap(), None);
        let revoked = store
            .service_token_by_client_id("id1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.revoked_at, Some(150));

        store
            .insert_service_token(&token("ci", "id2"))
            .await
            .unwrap();
        let listed = store.service_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].client_id, "id2");
    }

    #[tokio::test]
    async fn a_reused_client_id_is_not_reported_as_a_name_clash() {
        let store = store_with_ci().await;
        let error = store
            .insert_service_token(&token("other", "id1"))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Database(_)), "{error}");
    }

    #[tokio::test]
    async fn rotation_keeps_the_old_hash_as_previous() {
        let store = store_with_ci().await;
        let rotated = store
            .rotate_service_token("ci", "bb", 500, 400)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rotated.secret_hash, "bb");
        assert_eq!(rotated.previous_secret_hash.as_deref(), Some("aa"));
        assert_eq!(rotated.previous_valid_until, Some(500));
        assert_eq!(rotated.rotated_at, Some(400));
        assert_eq!(
            store
                .rotate_service_token("nope", "cc", 0, 0)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn token_changes_do_not_move_the_routes_version() {
        let store = Store::open_in_memory().await.unwrap();
        let before = store.routes_version().await.unwrap();
        store
            .insert_service_token(&token("ci", "id1"))
            .await
            .unwrap();
        store.rotate_service_token("ci", "bb", 1, 1).await.unwrap();
        store.revoke_service_token("ci", 2).await.unwrap();
        assert_eq!(store.routes_version().await.unwrap(), before);
    }

    #[test]
    fn debug_leaves_out_the_hashes() {
        let record = ServiceTokenRecord {
            name: "ci".into(),
            client_id: "id".into(),
            secret_hash: "deadbeef".into(),
            previous_secret_hash: Some("cafebabe".into()),
            previous_valid_until: None,
            created_at: 0,
            expires_at: None,
            rotated_at: None,
            revoked_at: None,
        };
        let debug = format!("{record:?}");
        assert!(
            !debug.contains("deadbeef") && !debug.contains("cafebabe"),
            "{debug}"
        );
    }
}
