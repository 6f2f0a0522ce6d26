//! Tunnels: create, look up, delete, verify and rotate their secrets.

use std::time::Duration;

use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use subtle::Choice;
use uuid::Uuid;

use crate::secret::SecretHash;
use crate::store::unix_now;
use crate::{Store, StoreError, TunnelSecret};

/// Longest tunnel name: a DNS label's length, so a name can double as one.
const MAX_NAME_LEN: usize = 63;

/// A tunnel: the named identity connectors register under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// The tunnel id connectors present (`TunnelID` in credentials).
    pub id: Uuid,
    /// The unique, human-chosen name.
    pub name: String,
    /// The account tag of the store that holds the tunnel (`AccountTag` in credentials).
    pub account_tag: String,
    /// When the tunnel was created, in unix seconds.
    pub created_at: i64,
}

/// A tunnel just created, with its secret: the only time the secret is available.
#[derive(Debug)]
pub struct NewTunnel {
    /// The tunnel.
    pub tunnel: Tunnel,
    /// Its secret, to be written into the connector's credentials or token.
    pub secret: TunnelSecret,
}

// === impl Store ===

impl Store {
    /// Creates a tunnel named `name` with a fresh 32-byte secret; only the secret's SHA-256 is stored.
    ///
    /// Names are 1 to 63 of `[a-zA-Z0-9._-]`, start with a letter or digit, are unique, and are not
    /// UUIDs (so [`Store::tunnel`] can tell a name from an id).
    pub async fn create_tunnel(&self, name: &str) -> Result<NewTunnel, StoreError> {
        validate_tunnel_name(name)?;
        let secret = TunnelSecret::generate()?;
        let tunnel = Tunnel {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            account_tag: self.account_tag_str().to_owned(),
            created_at: unix_now(),
        };
        let mut tx = self.begin_change().await?;
        sqlx::query(
            "INSERT INTO tunnels (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(tunnel.id.to_string())
        .bind(name)
        .bind(secret.hash().as_str())
        .bind(tunnel.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::TunnelNameTaken {
                name: name.to_owned(),
            },
            _ => error.into(),
        })?;
        tx.commit().await?;
        tracing::info!(tunnel_id = %tunnel.id, tunnel_name = name, "tunnel created");
        Ok(NewTunnel { tunnel, secret })
    }

    /// The tunnel with this id (if `name_or_id` parses as a UUID) or else this name.
    pub async fn tunnel(&self, name_or_id: &str) -> Result<Option<Tunnel>, StoreError> {
        let row = match Uuid::parse_str(name_or_id) {
            Ok(id) => {
                sqlx::query("SELECT id, name, created_at FROM tunnels WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(self.pool())
                    .await?
            }
            Err(_) => {
                sqlx::query("SELECT id, name, created_at FROM tunnels WHERE name = $1")
                    .bind(name_or_id)
                    .fetch_optional(self.pool())
                    .await?
            }
        };
        row.map(|row| self.tunnel_from_row(&row)).transpose()
    }

    /// Every tunnel, by name.
    pub async fn tunnels(&self) -> Result<Vec<Tunnel>, StoreError> {
        sqlx::query("SELECT id, name, created_at FROM tunnels ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| self.tunnel_from_row(row))
            .collect()
    }

    /// Deletes a tunnel and its routes. Returns whether the tunnel existed.
    pub async fn delete_tunnel(&self, id: Uuid) -> Result<bool, StoreError> {
        let id_text = id.to_string();
        let mut tx = self.begin_change().await?;
        // Explicit rather than left to ON DELETE CASCADE, so it does not depend on the connection
        // having foreign keys enabled.
        sqlx::query("DELETE FROM routes WHERE tunnel_id = $1")
            .bind(&id_text)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tunnel_configs WHERE tunnel_id = $1")
            .bind(&id_text)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM tunnels WHERE id = $1")
            .bind(&id_text)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        tracing::info!(tunnel_id = %id, "tunnel deleted");
        Ok(true)
    }

    /// The tunnel, if `presented` is its current secret or its previous one within the rotation
    /// grace period; `None` for a wrong secret or an unknown id alike.
    ///
    /// The comparison is constant-time, and an unknown id is hashed and compared like a known one.
    pub async fn verify_tunnel_secret(
        &self,
        id: Uuid,
        presented: &[u8],
    ) -> Result<Option<Tunnel>, StoreError> {
        let presented = SecretHash::of(presented);
        let row = sqlx::query(
            "SELECT id, name, created_at, secret_hash, previous_secret_hash, previous_valid_until \
             FROM tunnels WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            std::hint::black_box(Credentials::placeholder().accepts(&presented, unix_now()));
            return Ok(None);
        };
        let credentials = Credentials {
            tunnel: self.tunnel_from_row(&row)?,
            current: SecretHash::from_stored(row.try_get("secret_hash")?),
            previous: row
                .try_get::<Option<String>, _>("previous_secret_hash")?
                .map(SecretHash::from_stored),
            previous_valid_until: row.try_get("previous_valid_until")?,
        };
        let accepted = bool::from(credentials.accepts(&presented, unix_now()));
        Ok(accepted.then_some(credentials.tunnel))
    }

    /// Replaces the tunnel's secret with a fresh one and returns it. The previous secret stays valid
    /// for `grace` (rounded up to whole seconds), so connectors can be moved to the new secret without
    /// an outage; a second rotation ends the first one's grace at once.
    pub async fn rotate_tunnel_secret(
        &self,
        id: Uuid,
        grace: Duration,
    ) -> Result<TunnelSecret, StoreError> {
        let secret = TunnelSecret::generate()?;
        let valid_until = unix_now().saturating_add(whole_seconds(grace));
        let mut tx = self.begin_change().await?;
        // Standard SQL evaluates every right-hand side against the old row, so the old secret_hash
        // moves to previous_secret_hash before it is replaced.
        let updated = sqlx::query(
            "UPDATE tunnels SET previous_secret_hash = secret_hash, previous_valid_until = $1, \
             secret_hash = $2 WHERE id = $3",
        )
        .bind(valid_until)
        .bind(secret.hash().as_str())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Err(StoreError::TunnelNotFound { id });
        }
        tx.commit().await?;
        tracing::info!(tunnel_id = %id, grace_secs = grace.as_secs(), "tunnel secret rotated");
        Ok(secret)
    }

    fn tunnel_from_row(&self, row: &SqliteRow) -> Result<Tunnel, StoreError> {
        let id: String = row.try_get("id")?;
        let id = Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt {
            what: format!("tunnel id {id:?}"),
        })?;
        Ok(Tunnel {
            id,
            name: row.try_get("name")?,
            account_tag: self.account_tag_str().to_owned(),
            created_at: row.try_get("created_at")?,
        })
    }
}

/// What a tunnel accepts as proof: its current secret hash and, during a rotation's grace period,
/// the previous one.
struct Credentials {
    tunnel: Tunnel,
    current: SecretHash,
    previous: Option<SecretHash>,
    previous_valid_until: Option<i64>,
}

// === impl Credentials ===

impl Credentials {
    /// Credentials nothing matches, checked for unknown ids so they cost the same as known ones.
    fn placeholder() -> Self {
        Self {
            tunnel: Tunnel {
                id: Uuid::nil(),
                name: String::new(),
                account_tag: String::new(),
                created_at: 0,
            },
            current: SecretHash::placeholder(),
            previous: None,
            previous_valid_until: None,
        }
    }

    /// Whether `presented` matches, without branching on secret data: both hashes are always
    /// compared (a placeholder stands in for a missing previous hash).
    fn accepts(&self, presented: &SecretHash, now: i64) -> Choice {
        let placeholder = SecretHash::placeholder();
        let previous = self.previous.as_ref().unwrap_or(&placeholder);
        let in_grace =
            self.previous.is_some() && self.previous_valid_until.is_some_and(|t| now < t);
        self.current.ct_matches(presented)
            | (previous.ct_matches(presented) & Choice::from(u8::from(in_grace)))
    }
}

/// `grace` in seconds, rounded up so a sub-second grace is not zero.
fn whole_seconds(grace: Duration) -> i64 {
    let secs = grace
        .as_secs()
        .saturating_add(u64::from(grace.subsec_nanos() > 0));
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Checks the tunnel naming rules; the error says which rule failed and how to fix it.
pub(crate) fn validate_tunnel_name(name: &str) -> Result<(), StoreError> {
    let invalid = |reason| StoreError::InvalidTunnelName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid("use 1 to 63 characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !name.chars().all(allowed) {
        return Err(invalid("use letters, digits, '.', '_' or '-'"));
    }
    // A leading '-' reads as a command-line flag; a leading '.' hides the name and allows "..".
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("start it with a letter or digit"));
    }
    if Uuid::parse_str(name).is_ok() {
        return Err(invalid(
            "it reads as a tunnel id: choose a name that is not a UUID",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        match validate_tunnel_name(name) {
            Ok(()) => panic!("{name:?} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in ["web", "Web-1", "db.prod_eu", "a", &"x".repeat(63)] {
            assert!(validate_tunnel_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names_with_the_fix() {
        assert_eq!(
            reason("x y"),
            "tunnel name \"x y\" is invalid: use letters, digits, '.', '_' or '-'"
        );
        assert!(reason("").contains("use 1 to 63 characters"));
        assert!(reason(&"x".repeat(64)).contains("use 1 to 63 characters"));
        assert!(reason("-web").contains("start it with a letter or digit"));
        assert!(reason("..").contains("start it with a letter or digit"));
        assert!(reason("wéb").contains("use letters"));
        assert!(reason("web/1").contains("use letters"));
        assert!(reason(&Uuid::new_v4().to_string()).contains("not a UUID"));
    }

    #[test]
    fn grace_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(3600)), 3600);
        assert_eq!(whole_seconds(Duration::MAX), i64::MAX);
    }

    #[test]
    fn previous_hash_counts_only_within_grace() {
        let current = SecretHash::of(b"new");
        let previous = SecretHash::of(b"old");
        let credentials = Credentials {
            previous: Some(previous.clone()),
            previous_valid_until: Some(100),
            current: current.clone(),
            ..Credentials::placeholder()
        };
        assert!(bool::from(credentials.accepts(&current, 1_000)));
        assert!(bool::from(credentials.accepts(&previous, 99)));
        assert!(!bool::from(credentials.accepts(&previous, 100)));
        assert!(!bool::from(
            credentials.accepts(&SecretHash::of(b"other"), 0)
        ));
        assert!(!bool::from(Credentials::placeholder().accepts(&current, 0)));
    }
}
