//! The keys that sign identity assertions: private keys (PKCS#8 DER) with their creation and
//! retirement times.
//!
//! The private key is kept in the store, not in a per-edge file, because every edge that
//! shares the store must sign with the same key: an origin (or a connector verifying the
//! assertion) trusts one key set whichever edge served the request, and a key rotated by one
//! edge is picked up by the others. The store file is created mode 0600 (its directory 0700)
//! and the edge warns when it is readable by others; whoever can read it can mint assertions,
//! so back it up and protect it like the CA key.
//!
//! This module only stores and lists keys; choosing the current key, rotating and publishing
//! the JWKS is `portless-access`'s key ring.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sqlx::Row as _;

use crate::{Store, StoreError};

/// One stored signing key.
///
/// `Debug` shows the key id and times, never the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// The key id (JWK `kid`).
    pub kid: String,
    /// The private key, PKCS#8 DER.
    pub pkcs8: Vec<u8>,
    /// When the key was created, unix seconds.
    pub created_at: i64,
    /// When the key stopped signing, unix seconds; `None` while it signs.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("pkcs8", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

// === impl Store ===

impl Store {
    /// Stores a new signing key. A key id already stored is left as it is (the id is derived
    /// from the public key, so the same id is the same key).
    pub async fn put_signing_key(
        &self,
        kid: &str,
        pkcs8: &[u8],
        created_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, pkcs8, created_at, retired_at) \
             VALUES ($1, $2, $3, NULL) ON CONFLICT (kid) DO NOTHING",
        )
        .bind(kid)
        .bind(STANDARD.encode(pkcs8))
        .bind(created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every stored signing key, oldest first (ties by key id).
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, pkcs8, created_at, retired_at FROM signing_keys \
             ORDER BY created_at, kid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                let kid: String = row.try_get("kid")?;
                let encoded: String = row.try_get("pkcs8")?;
                let pkcs8 =
                    STANDARD
                        .decode(encoded.as_bytes())
                        .map_err(|_| StoreError::Corrupt {
                            what: format!("signing key {kid:?}"),
                        })?;
                Ok(StoredSigningKey {
                    kid,
                    pkcs8,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Marks `kid` as no longer signing from `at` (unix seconds). A key already retired keeps
    /// its first retirement time; an unknown id changes nothing. Returns whether a key was
    /// retired now.
    pub async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = $2 WHERE kid = $1 AND retired_at IS NULL",
        )
        .bind(kid)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the keys retired before `before` (unix seconds): their overlap is over, nothing
    /// signed by them verifies any more. Returns how many were deleted.
    pub async fn delete_signing_keys_retired_before(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        )
        .bind(before)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_stored_retired_and_deleted() {
        let store = Store::open_in_memory().await.unwrap();
        assert!(store.signing_keys().await.unwrap().is_empty());
        store.put_signing_key("b", &[1, 2, 3], 20).await.unwrap();
        store.put_signing_key("a", &[4, 5], 10).await.unwrap();
        // Same id again: ignored.
        store.put_signing_key("a", &[9], 99).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid, "a");
        assert_eq!(keys[0].pkcs8, vec![4, 5]);
        assert_eq!(keys[0].created_at, 10);
        assert_eq!(keys[0].retired_at, None);
        assert_eq!(keys[1].kid, "b");

        assert!(store.retire_signing_key("a", 30).await.unwrap());
        // A second retirement keeps the first time.
        assert!(!store.retire_signing_key("a", 40).await.unwrap());
        assert!(!store.retire_signing_key("unknown", 40).await.unwrap());
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys[0].retired_at, Some(30));

        assert_eq!(
            store.delete_signing_keys_retired_before(30).await.unwrap(),
            0
        );
        assert_eq!(
            store.delete_signing_keys_retired_before(31).await.unwrap(),
            1
        );
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, "b");
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = StoredSigningKey {
            kid: "k".into(),
            pkcs8: vec![0xde, 0xad],
            created_at: 1,
            retired_at: None,
        };
        let text = format!("{key:?}");
        assert!(text.contains("redacted"), "{text}");
        assert!(!text.contains("222"), "{text}");
    }
}
