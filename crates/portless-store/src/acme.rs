//! ACME accounts (one per directory URL) and the certificate of each hostname.
//!
//! The store only keeps the text; obtaining, parsing and renewing is `portless-acme`'s job.
//! Several edges sharing the store see each other's certificates, so a name is ordered once
//! and a renewal by one edge reaches the others at their next look.

use std::fmt;

use sqlx::Row as _;

use crate::{Store, StoreError};

/// A stored certificate. `Debug` never shows the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// Canonical hostname.
    pub hostname: String,
    /// PEM chain, leaf first.
    pub chain_pem: String,
    /// PEM private key.
    pub key_pem: String,
    /// Validity of the leaf, unix seconds.
    pub not_before: i64,
    /// See `not_before`.
    pub not_after: i64,
    /// The directory URL that issued it.
    pub issuer: String,
    /// Unix seconds of the last write.
    pub updated_at: i64,
}

impl fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCertificate")
            .field("hostname", &self.hostname)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("issuer", &self.issuer)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn certificate_from(row: &sqlx::sqlite::SqliteRow) -> Result<StoredCertificate, StoreError> {
    Ok(StoredCertificate {
        hostname: row.try_get("hostname")?,
        chain_pem: row.try_get("chain_pem")?,
        key_pem: row.try_get("key_pem")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        issuer: row.try_get("issuer")?,
        updated_at: row.try_get("updated_at")?,
    })
}

// === impl Store ===

impl Store {
    /// The credentials (JSON) of the ACME account at `directory`, if one was created.
    pub async fn acme_account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT credentials FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("credentials")?),
            None => None,
        })
    }

    /// Stores the account for `directory` unless one is there already, and returns the one
    /// kept: of two edges creating an account at once, both end up using the first stored.
    pub async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO acme_accounts (directory, credentials, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (directory) DO NOTHING",
        )
        .bind(directory)
        .bind(credentials)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.acme_account(directory)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("ACME account for {directory} (vanished after insert)"),
            })
    }

    /// Stores `certificate`, replacing the hostname's previous one.
    pub async fn put_certificate(&self, certificate: &StoredCertificate) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO certificates (hostname, chain_pem, key_pem, not_before, not_after, issuer, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (hostname) DO UPDATE SET chain_pem = excluded.chain_pem, \
             key_pem = excluded.key_pem, not_before = excluded.not_before, \
             not_after = excluded.not_after, issuer = excluded.issuer, updated_at = excluded.updated_at",
        )
        .bind(&certificate.hostname)
        .bind(&certificate.chain_pem)
        .bind(&certificate.key_pem)
        .bind(certificate.not_before)
        .bind(certificate.not_after)
        .bind(&certificate.issuer)
        .bind(certificate.updated_at)
        .execute(self.pool())
        .await?;
        tracing::info!(hostname = %certificate.hostname, not_after = certificate.not_after, "certificate stored");
        Ok(())
    }

    /// The stored certificate of `hostname`.
    pub async fn certificate(
        &self,
        hostname: &str,
    ) -> Result<Option<StoredCertificate>, StoreError> {
        let row = sqlx::query(
            "SELECT hostname, chain_pem, key_pem, not_before, not_after, issuer, updated_at \
             FROM certificates WHERE hostname = $1",
        )
        .bind(hostname)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(certificate_from).transpose()
    }

    /// Every stored certificate.
    pub async fn certificates(&self) -> Result<Vec<StoredCertificate>, StoreError> {
        let rows = sqlx::query(
            "SELECT hostname, chain_pem, key_pem, not_before, not_after, issuer, updated_at \
             FROM certificates ORDER BY hostname",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(certificate_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str, not_after: i64) -> StoredCertificate {
        StoredCertificate {
            hostname: name.to_owned(),
            chain_pem: "chain".to_owned(),
            key_pem: "key".to_owned(),
            not_before: 1,
            not_after,
            issuer: "https://acme.test/dir".to_owned(),
            updated_at: 2,
        }
    }

    #[tokio::test]
    async fn certificates_are_replaced_per_hostname() {
        let store = Store::open_in_memory().await.unwrap();
        store.put_certificate(&cert("a.test", 10)).await.unwrap();
        store.put_certificate(&cert("b.test", 20)).await.unwrap();
        store.put_certificate(&cert("a.test", 30)).await.unwrap();
        let all = store.certificates().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            store
                .certificate("a.test")
                .await
                .unwrap()
                .unwrap()
                .not_after,
            30
        );
        assert!(store.certificate("c.test").await.unwrap().is_none());
        assert!(!format!("{:?}", all[0]).contains("key\""));
    }

    #[tokio::test]
    async fn the_first_account_stored_wins() {
        let store = Store::open_in_memory().await.unwrap();
        let dir = "https://acme.test/dir";
        assert_eq!(store.acme_account(dir).await.unwrap(), None);
        assert_eq!(store.put_acme_account(dir, "one", 1).await.unwrap(), "one");
        assert_eq!(store.put_acme_account(dir, "two", 2).await.unwrap(), "one");
    }
}
