//! Remotely managed connector configs: one versioned YAML document per tunnel.

use sqlx::Row as _;
use uuid::Uuid;

use crate::store::unix_now;
use crate::{Store, StoreError};

// === impl Store ===

impl Store {
    /// Stores `yaml` as the remotely managed config of `tunnel` and returns its new version
    /// (1 for the first config, then one more on every change).
    ///
    /// The store keeps the text as given: validating it is the caller's job (the CLI checks it
    /// with the ingress crate before it gets here). Storing the text the tunnel already has
    /// changes nothing and returns the current version, so a repeated push is not a new version
    /// for connectors to apply.
    ///
    /// The change bumps [`Store::routes_version`], which the edge polls: that is how a running
    /// edge learns that it has a config to push.
    pub async fn set_tunnel_config(&self, tunnel: Uuid, yaml: &str) -> Result<i64, StoreError> {
        let id = tunnel.to_string();
        let mut tx = self.begin_change().await?;
        let exists = sqlx::query("SELECT id FROM tunnels WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            tx.rollback().await?;
            return Err(StoreError::TunnelNotFound { id: tunnel });
        }
        let current = sqlx::query("SELECT version, yaml FROM tunnel_configs WHERE tunnel_id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
        let version = match current {
            Some(row) => {
                let version: i64 = row.try_get("version")?;
                let text: String = row.try_get("yaml")?;
                if text == yaml {
                    // Same text: roll back, which also undoes the routes-version bump.
                    tx.rollback().await?;
                    return Ok(version);
                }
                sqlx::query(
                    "UPDATE tunnel_configs SET version = $2, yaml = $3, updated_at = $4 \
                     WHERE tunnel_id = $1",
                )
                .bind(&id)
                .bind(version + 1)
                .bind(yaml)
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
                version + 1
            }
            None => {
                sqlx::query(
                    "INSERT INTO tunnel_configs (tunnel_id, version, yaml, updated_at) \
                     VALUES ($1, 1, $2, $3)",
                )
                .bind(&id)
                .bind(yaml)
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
                1
            }
        };
        tx.commit().await?;
        tracing::info!(tunnel_id = %tunnel, version, bytes = yaml.len(), "tunnel config stored");
        Ok(version)
    }

    /// The remotely managed config of `tunnel` and its version, if one was stored.
    pub async fn tunnel_config(&self, tunnel: Uuid) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT version, yaml FROM tunnel_configs WHERE tunnel_id = $1")
            .bind(tunnel.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Ok((row.try_get("version")?, row.try_get("yaml")?)))
            .transpose()
    }
}
