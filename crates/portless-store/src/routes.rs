//! Routes: which tunnel serves each public hostname.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqliteTransaction};
use uuid::Uuid;

use crate::{RouteHostname, Store, StoreError};

/// One route: requests for `hostname` go to the tunnel `tunnel_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Canonical hostname (see [`RouteHostname`]): lowercase, no trailing dot, maybe `*.` prefixed.
    pub hostname: String,
    /// The tunnel that serves it.
    pub tunnel_id: Uuid,
}

/// What [`Store::route`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteChange {
    /// The route as now stored.
    pub route: Route,
    /// The tunnel the hostname was routed to before, when this call moved it to another tunnel.
    pub replaced: Option<Uuid>,
}

// === impl Store ===

impl Store {
    /// Routes `hostname` to `tunnel`, replacing any route the hostname had to another tunnel.
    ///
    /// The hostname is canonicalized first (see [`RouteHostname::parse`]). Routing a hostname to the
    /// tunnel it already goes to changes nothing (and does not bump [`Store::routes_version`]).
    pub async fn route(&self, hostname: &str, tunnel: Uuid) -> Result<RouteChange, StoreError> {
        let route = Route {
            hostname: RouteHostname::parse(hostname)?.into_string(),
            tunnel_id: tunnel,
        };
        let mut tx = self.begin_change().await?;
        if !tunnel_exists(&mut tx, tunnel).await? {
            tx.rollback().await?;
            return Err(StoreError::TunnelNotFound { id: tunnel });
        }
        let previous = routed_tunnel(&mut tx, &route.hostname).await?;
        if previous == Some(tunnel) {
            // Already so: roll back, which also undoes the version bump.
            tx.rollback().await?;
            return Ok(RouteChange {
                route,
                replaced: None,
            });
        }
        let sql = match previous {
            Some(_) => "UPDATE routes SET tunnel_id = $2 WHERE hostname = $1",
            None => "INSERT INTO routes (hostname, tunnel_id) VALUES ($1, $2)",
        };
        sqlx::query(sql)
            .bind(&route.hostname)
            .bind(tunnel.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(hostname = %route.hostname, tunnel_id = %tunnel, replaced = ?previous, "route set");
        Ok(RouteChange {
            route,
            replaced: previous,
        })
    }

    /// Removes the route for `hostname` (canonicalized first). Returns whether there was one.
    pub async fn unroute(&self, hostname: &str) -> Result<bool, StoreError> {
        let hostname = RouteHostname::parse(hostname)?;
        let mut tx = self.begin_change().await?;
        let deleted = sqlx::query("DELETE FROM routes WHERE hostname = $1")
            .bind(hostname.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        tracing::info!(%hostname, "route removed");
        Ok(true)
    }

    /// Every route, by hostname.
    pub async fn routes(&self) -> Result<Vec<Route>, StoreError> {
        sqlx::query("SELECT hostname, tunnel_id FROM routes ORDER BY hostname")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(Route {
                    hostname: row.try_get("hostname")?,
                    tunnel_id: parse_tunnel_id(row)?,
                })
            })
            .collect()
    }
}

async fn tunnel_exists(tx: &mut SqliteTransaction<'_>, id: Uuid) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT id FROM tunnels WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// The tunnel `hostname` (canonical) is routed to, if any.
async fn routed_tunnel(
    tx: &mut SqliteTransaction<'_>,
    hostname: &str,
) -> Result<Option<Uuid>, StoreError> {
    sqlx::query("SELECT tunnel_id FROM routes WHERE hostname = $1")
        .bind(hostname)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| parse_tunnel_id(&row))
        .transpose()
}

fn parse_tunnel_id(row: &SqliteRow) -> Result<Uuid, StoreError> {
    let text: String = row.try_get("tunnel_id")?;
    Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt {
        what: format!("route tunnel id {text:?}"),
    })
}
