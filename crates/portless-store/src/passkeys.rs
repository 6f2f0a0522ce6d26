//! WebAuthn passkeys: one row per registered credential, several per user.
//!
//! The store keeps what the access crate hands it (a serialized credential, which holds only a
//! public key) and owns two rules that must hold across edges:
//! * a credential id is bound to one user, once: [`Store::put_passkey`] refuses an id that is
//!   already registered (to anyone), so an authenticator's credential cannot be re-bound;
//! * the signature counter only moves forward: [`Store::record_passkey_use`] writes a new
//!   counter with one conditional `UPDATE`, so of two edges accepting the same assertion (a
//!   replay, or a cloned authenticator) only one succeeds.

use sqlx::Row as _;

use crate::{Store, StoreError};

/// A passkey to register (see [`Store::put_passkey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey<'a> {
    /// The credential id, base64url without padding.
    pub credential_id: &'a str,
    /// Canonical username.
    pub username: &'a str,
    /// The WebAuthn user handle (a UUID, hyphenated).
    pub user_handle: &'a str,
    /// The name the user gave the passkey.
    pub name: &'a str,
    /// The serialized credential (JSON).
    pub passkey: &'a str,
    /// The signature counter the authenticator reported at registration.
    pub counter: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// A registered passkey, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// Canonical username.
    pub username: String,
    /// The WebAuthn user handle (a UUID, hyphenated).
    pub user_handle: String,
    /// The name the user gave the passkey.
    pub name: String,
    /// The serialized credential (JSON).
    pub passkey: String,
    /// The signature counter at the last accepted use (0: the authenticator keeps none).
    pub counter: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last accepted login, if any.
    pub last_used_at: Option<i64>,
}

/// An accepted login with a passkey, to record (see [`Store::record_passkey_use`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse<'a> {
    /// The credential id.
    pub credential_id: &'a str,
    /// The counter the authenticator reported.
    pub counter: i64,
    /// The credential, re-serialized (webauthn-rs updates its flags and counter).
    pub passkey: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// A `SELECT` of every column [`row_to_passkey`] reads, followed by `$tail`.
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT credential_id, username, user_handle, name, passkey, counter, created_at, \
             last_used_at FROM passkeys ",
            $tail
        )
    };
}

fn row_to_passkey(row: &sqlx::sqlite::SqliteRow) -> Result<StoredPasskey, StoreError> {
    Ok(StoredPasskey {
        credential_id: row.try_get("credential_id")?,
        username: row.try_get("username")?,
        user_handle: row.try_get("user_handle")?,
        name: row.try_get("name")?,
        passkey: row.try_get("passkey")?,
        counter: row.try_get("counter")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

// === impl Store ===

impl Store {
    /// Registers a passkey. Returns `false` (and changes nothing) when its credential id is
    /// already registered, to this user or another: the caller must refuse the registration.
    pub async fn put_passkey(&self, new: &NewPasskey<'_>) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO passkeys (credential_id, username, user_handle, name, passkey, counter, \
             created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) \
             ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(new.credential_id)
        .bind(new.username)
        .bind(new.user_handle)
        .bind(new.name)
        .bind(new.passkey)
        .bind(new.counter)
        .bind(new.created_at)
        .execute(self.pool())
        .await?;
        let added = result.rows_affected() == 1;
        if added {
            tracing::info!(user = new.username, name = new.name, "passkey registered");
        }
        Ok(added)
    }

    /// `username`'s passkeys, oldest first.
    pub async fn passkeys_of(&self, username: &str) -> Result<Vec<StoredPasskey>, StoreError> {
        let rows = sqlx::query(select!(
            "WHERE username = $1 ORDER BY created_at, credential_id"
        ))
        .bind(username)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_passkey).collect()
    }

    /// The passkey with this credential id, whoever it belongs to.
    pub async fn passkey(&self, credential_id: &str) -> Result<Option<StoredPasskey>, StoreError> {
        let row = sqlx::query(select!("WHERE credential_id = $1"))
            .bind(credential_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(row_to_passkey).transpose()
    }

    /// The user handle of `username`'s passkeys, if the user has any.
    pub async fn passkey_user_handle(&self, username: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT user_handle FROM passkeys WHERE username = $1 LIMIT 1")
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| row.try_get("user_handle"))
            .transpose()
            .map_err(StoreError::from)
    }

    /// Records an accepted login: the new counter, the updated credential, the time.
    ///
    /// Returns `false` (and changes nothing) when the credential is gone or the counter does
    /// not move forward: a stored counter above 0 needs a strictly greater new one, and a
    /// stored 0 (an authenticator that keeps no counter) needs a new 0 or more. The check and
    /// the write are one statement, so two edges cannot both accept the same counter value.
    pub async fn record_passkey_use(&self, used: &PasskeyUse<'_>) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE passkeys SET counter = $1, passkey = $2, last_used_at = $3 \
             WHERE credential_id = $4 AND (counter < $1 OR (counter = 0 AND $1 = 0))",
        )
        .bind(used.counter)
        .bind(used.passkey)
        .bind(used.now)
        .bind(used.credential_id)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes `username`'s passkey `credential_id`. Returns whether there was one (another
    /// user's passkey is never removed).
    pub async fn delete_passkey(
        &self,
        username: &str,
        credential_id: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM passkeys WHERE username = $1 AND credential_id = $2")
            .bind(username)
            .bind(credential_id)
            .execute(self.pool())
            .await?;
        let removed = result.rows_affected() > 0;
        if removed {
            tracing::info!(user = username, "passkey removed");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(id: &'a str, user: &'a str, at: i64) -> NewPasskey<'a> {
        NewPasskey {
            credential_id: id,
            username: user,
            user_handle: "6f1c3b1e-0000-4000-8000-000000000001",
            name: "laptop",
            passkey: "{\"k\":1}",
            counter: 0,
            created_at: at,
        }
    }

    #[tokio::test]
    async fn register_list_find_remove() {
        let store = Store::open_in_memory().await.unwrap();
        assert!(store.passkeys_of("alice").await.unwrap().is_empty());
        assert!(store.put_passkey(&new("b", "alice", 20)).await.unwrap());
        assert!(store.put_passkey(&new("a", "alice", 10)).await.unwrap());
        assert!(store.put_passkey(&new("c", "bob", 5)).await.unwrap());
        let ids: Vec<_> = store
            .passkeys_of("alice")
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.credential_id)
            .collect();
        assert_eq!(ids, ["a", "b"], "oldest first, only alice's");
        let found = store.passkey("c").await.unwrap().unwrap();
        assert_eq!(
            (
                found.username.as_str(),
                found.name.as_str(),
                found.created_at
            ),
            ("bob", "laptop", 5)
        );
        assert_eq!(found.last_used_at, None);
        assert_eq!(
            store.passkey_user_handle("alice").await.unwrap().as_deref(),
            Some("6f1c3b1e-0000-4000-8000-000000000001")
        );
        assert_eq!(store.passkey_user_handle("carol").await.unwrap(), None);
        assert!(
            !store.delete_passkey("alice", "c").await.unwrap(),
            "not alice's"
        );
        assert!(store.passkey("c").await.unwrap().is_some());
        assert!(store.delete_passkey("alice", "a").await.unwrap());
        assert!(!store.delete_passkey("alice", "a").await.unwrap());
        assert_eq!(store.passkeys_of("alice").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_credential_id_is_registered_once_for_anyone() {
        let store = Store::open_in_memory().await.unwrap();
        assert!(store.put_passkey(&new("x", "alice", 1)).await.unwrap());
        assert!(!store.put_passkey(&new("x", "alice", 2)).await.unwrap());
        assert!(!store.put_passkey(&new("x", "mallory", 3)).await.unwrap());
        let stored = store.passkey("x").await.unwrap().unwrap();
        assert_eq!((stored.username.as_str(), stored.created_at), ("alice", 1));
    }

    fn used(counter: i64, now: i64) -> PasskeyUse<'static> {
        PasskeyUse {
            credential_id: "x",
            counter,
            passkey: "{\"k\":2}",
            now,
        }
    }

    #[tokio::test]
    async fn the_counter_only_moves_forward() {
        let store = Store::open_in_memory().await.unwrap();
        assert!(
            !store.record_passkey_use(&used(1, 1)).await.unwrap(),
            "no row"
        );
        store.put_passkey(&new("x", "alice", 1)).await.unwrap();
        assert!(store.record_passkey_use(&used(3, 50)).await.unwrap());
        let stored = store.passkey("x").await.unwrap().unwrap();
        assert_eq!(
            (stored.counter, stored.last_used_at, stored.passkey.as_str()),
            (3, Some(50), "{\"k\":2}")
        );
        assert!(
            !store.record_passkey_use(&used(3, 60)).await.unwrap(),
            "same"
        );
        assert!(
            !store.record_passkey_use(&used(2, 60)).await.unwrap(),
            "lower"
        );
        assert!(
            !store.record_passkey_use(&used(0, 60)).await.unwrap(),
            "back to 0"
        );
        assert_eq!(
            store.passkey("x").await.unwrap().unwrap().last_used_at,
            Some(50)
        );
        assert!(store.record_passkey_use(&used(4, 70)).await.unwrap());
    }

    #[tokio::test]
    async fn a_counterless_authenticator_can_log_in_repeatedly() {
        let store = Store::open_in_memory().await.unwrap();
        store.put_passkey(&new("x", "alice", 1)).await.unwrap();
        assert!(store.record_passkey_use(&used(0, 10)).await.unwrap());
        assert!(store.record_passkey_use(&used(0, 20)).await.unwrap());
    }

    #[tokio::test]
    async fn concurrent_uses_of_the_same_counter_accept_one() {
        let store = Store::open_in_memory().await.unwrap();
        store.put_passkey(&new("x", "alice", 1)).await.unwrap();
        store.record_passkey_use(&used(1, 2)).await.unwrap();
        let (first, second) = (used(2, 3), used(2, 3));
        let (a, b) = tokio::join!(
            store.record_passkey_use(&first),
            store.record_passkey_use(&second)
        );
        assert!(a.unwrap() ^ b.unwrap());
    }
}
