//! TOTP second factors: one sealed seed per user and the last time step accepted for it.
//!
//! The store never sees a seed in the clear: the access crate seals it with the edge's secrets
//! key before it gets here. What the store does own is replay refusal across edges:
//! [`Store::advance_totp_step`] moves the last used step forward with one conditional `UPDATE`,
//! so of two edges checking the same code at the same moment only one succeeds.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sqlx::Row as _;

use crate::{Store, StoreError};

/// A user's stored TOTP second factor.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTotp {
    /// The sealed seed, as given to [`Store::put_totp`].
    pub sealed: Vec<u8>,
    /// The last accepted time step, if a code was accepted since the seed was stored.
    pub last_step: Option<i64>,
}

impl fmt::Debug for StoredTotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTotp")
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .field("last_step", &self.last_step)
            .finish()
    }
}

// === impl Store ===

impl Store {
    /// Stores `sealed` as `username`'s TOTP seed, replacing any earlier one, with `last_step`
    /// as the last accepted step (the step of the code that confirmed the enrolment, so that
    /// code cannot be used again to log in). `now` is unix seconds.
    pub async fn put_totp(
        &self,
        username: &str,
        sealed: &[u8],
        last_step: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        // ON CONFLICT ... DO UPDATE is understood by both SQLite (3.24+) and PostgreSQL.
        sqlx::query(
            "INSERT INTO totp (username, sealed_secret, last_step, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
             last_step = excluded.last_step, created_at = excluded.created_at",
        )
        .bind(username)
        .bind(STANDARD.encode(sealed))
        .bind(last_step)
        .bind(now)
        .execute(self.pool())
        .await?;
        tracing::info!(user = username, "totp second factor stored");
        Ok(())
    }

    /// `username`'s TOTP seed (sealed) and last accepted step, if enrolled.
    pub async fn totp(&self, username: &str) -> Result<Option<StoredTotp>, StoreError> {
        let row = sqlx::query("SELECT sealed_secret, last_step FROM totp WHERE username = $1")
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = row.try_get("sealed_secret")?;
        let sealed = STANDARD
            .decode(text.as_bytes())
            .map_err(|_| StoreError::Corrupt {
                what: format!("sealed totp secret of user \"{username}\""),
            })?;
        Ok(Some(StoredTotp {
            sealed,
            last_step: row.try_get("last_step")?,
        }))
    }

    /// Records `step` as `username`'s last accepted step if it is later than the one stored.
    ///
    /// Returns `false` when the user has no TOTP or a step at or after `step` was already
    /// accepted, by this edge or another: the code is then a replay and must be refused. The
    /// check and the write are one statement, so concurrent callers cannot both get `true`.
    pub async fn advance_totp_step(&self, username: &str, step: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE totp SET last_step = $1 \
             WHERE username = $2 AND (last_step IS NULL OR last_step < $1)",
        )
        .bind(step)
        .bind(username)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes `username`'s TOTP second factor. Returns whether there was one.
    pub async fn delete_totp(&self, username: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM totp WHERE username = $1")
            .bind(username)
            .execute(self.pool())
            .await?;
        let removed = result.rows_affected() > 0;
        if removed {
            tracing::info!(user = username, "totp second factor removed");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_read_replace_delete() {
        let store = Store::open_in_memory().await.unwrap();
        assert_eq!(store.totp("alice").await.unwrap(), None);
        store
            .put_totp("alice", &[1, 2, 3], None, 100)
            .await
            .unwrap();
        assert_eq!(
            store.totp("alice").await.unwrap(),
            Some(StoredTotp {
                sealed: vec![1, 2, 3],
                last_step: None
            })
        );
        store.put_totp("alice", &[9], Some(7), 200).await.unwrap();
        let stored = store.totp("alice").await.unwrap().unwrap();
        assert_eq!((stored.sealed, stored.last_step), (vec![9], Some(7)));
        assert_eq!(store.totp("bob").await.unwrap(), None);
        assert!(store.delete_totp("alice").await.unwrap());
        assert!(!store.delete_totp("alice").await.unwrap());
        assert_eq!(store.totp("alice").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_step_advances_only_forward_and_only_once() {
        let store = Store::open_in_memory().await.unwrap();
        assert!(
            !store.advance_totp_step("alice", 5).await.unwrap(),
            "no row"
        );
        store.put_totp("alice", &[1], None, 0).await.unwrap();
        assert!(store.advance_totp_step("alice", 5).await.unwrap());
        assert!(
            !store.advance_totp_step("alice", 5).await.unwrap(),
            "same step"
        );
        assert!(
            !store.advance_totp_step("alice", 4).await.unwrap(),
            "earlier step"
        );
        assert!(store.advance_totp_step("alice", 6).await.unwrap());
        assert_eq!(
            store.totp("alice").await.unwrap().unwrap().last_step,
            Some(6)
        );
    }

    #[tokio::test]
    async fn concurrent_advances_of_the_same_step_accept_one() {
        let store = Store::open_in_memory().await.unwrap();
        store.put_totp("alice", &[1], Some(1), 0).await.unwrap();
        let (a, b) = tokio::join!(
            store.advance_totp_step("alice", 2),
            store.advance_totp_step("alice", 2)
        );
        assert!(a.unwrap() ^ b.unwrap());
    }

    #[test]
    fn debug_does_not_show_the_sealed_bytes() {
        let stored = StoredTotp {
            sealed: vec![0xde, 0xad],
            last_step: Some(3),
        };
        let text = format!("{stored:?}");
        assert!(
            text.contains("<2 bytes>") && !text.contains("222"),
            "{text}"
        );
    }
}
