//! Live tunnel connections, and the choice of one for each request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use portless_transport::EdgeConnection;
use uuid::Uuid;

use crate::metrics::{EdgeMetrics, TunnelLabel};

/// One registered connector connection.
pub(crate) struct LiveConnection {
    pub(crate) id: Uuid,
    pub(crate) tunnel_id: Uuid,
    pub(crate) tunnel_name: String,
    pub(crate) connector_id: Uuid,
    pub(crate) conn_index: u8,
    pub(crate) connection: EdgeConnection,
    /// Set when the connector asked to drain or the connection is going away: no new
    /// requests, in-flight ones finish.
    draining: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` of the last control message received.
    last_seen_ms: AtomicU64,
    epoch: Instant,
}

impl LiveConnection {
    pub(crate) fn new(
        tunnel_id: Uuid,
        tunnel_name: String,
        connector_id: Uuid,
        conn_index: u8,
        connection: EdgeConnection,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            tunnel_id,
            tunnel_name,
            connector_id,
            conn_index,
            connection,
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_seen_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Records that the connector spoke.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_seen_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the connector last spoke.
    pub(crate) fn silent_for(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// A request's claim on a connection; dropping it ends the claim.
pub(crate) struct InFlight(Arc<LiveConnection>);

impl InFlight {
    pub(crate) fn connection(&self) -> &Arc<LiveConnection> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All registered connections, by tunnel.
pub(crate) struct Registry {
    tunnels: RwLock<HashMap<Uuid, Vec<Arc<LiveConnection>>>>,
    metrics: EdgeMetrics,
}

impl Registry {
    pub(crate) fn new(metrics: EdgeMetrics) -> Self {
        Self {
            tunnels: RwLock::new(HashMap::new()),
            metrics,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Vec<Arc<LiveConnection>>>> {
        self.tunnels.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Vec<Arc<LiveConnection>>>> {
        self.tunnels.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add(&self, live: Arc<LiveConnection>) {
        live.touch();
        let mut tunnels = self.write();
        tunnels
            .entry(live.tunnel_id)
            .or_default()
            .push(live.clone());
        self.update_gauge(&tunnels, &live);
    }

    pub(crate) fn remove(&self, live: &Arc<LiveConnection>) {
        live.draining.store(true, Ordering::Release);
        let mut tunnels = self.write();
        if let Some(list) = tunnels.get_mut(&live.tunnel_id) {
            list.retain(|c| !Arc::ptr_eq(c, live));
            if list.is_empty() {
                tunnels.remove(&live.tunnel_id);
            }
        }
        self.update_gauge(&tunnels, live);
    }

    /// Stops sending new requests to `live`; returns false if it was already draining.
    pub(crate) fn drain(&self, live: &Arc<LiveConnection>) -> bool {
        let first = !live.draining.swap(true, Ordering::AcqRel);
        let tunnels = self.read();
        self.update_gauge(&tunnels, live);
        first
    }

    fn update_gauge(
        &self,
        tunnels: &HashMap<Uuid, Vec<Arc<LiveConnection>>>,
        live: &LiveConnection,
    ) {
        let ready = tunnels
            .get(&live.tunnel_id)
            .map_or(0, |list| list.iter().filter(|c| !c.is_draining()).count());
        self.metrics
            .ha_connections
            .get_or_create(&TunnelLabel {
                tunnel: live.tunnel_name.clone(),
            })
            .set(i64::try_from(ready).unwrap_or(i64::MAX));
    }

    /// Chooses a connection of `tunnel` for a new request, skipping draining ones and those
    /// in `exclude` (already tried). Of two random candidates the less busy one wins
    /// ("power of two choices"): spreads load across replicas like round-robin, and steers
    /// away from a connection that has slowed down.
    pub(crate) fn pick(&self, tunnel: Uuid, exclude: &[Uuid]) -> Option<InFlight> {
        let tunnels = self.read();
        let list = tunnels.get(&tunnel)?;
        let usable = |c: &&Arc<LiveConnection>| !c.is_draining() && !exclude.contains(&c.id);
        let count = list.iter().filter(usable).count();
        let chosen = match count {
            0 => return None,
            1 => list.iter().find(usable)?,
            n => {
                let a = fastrand::usize(0..n);
                let b = (a + 1 + fastrand::usize(0..n - 1)) % n;
                let first = list.iter().filter(usable).nth(a)?;
                let second = list.iter().filter(usable).nth(b)?;
                if second.in_flight() < first.in_flight() {
                    second
                } else {
                    first
                }
            }
        };
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(InFlight(chosen.clone()))
    }

    /// Registered, non-draining connections across all tunnels.
    pub(crate) fn ready_connections(&self) -> usize {
        self.read()
            .values()
            .map(|list| list.iter().filter(|c| !c.is_draining()).count())
            .sum()
    }

    /// Every registered connection, for shutdown.
    pub(crate) fn all(&self) -> Vec<Arc<LiveConnection>> {
        self.read().values().flatten().cloned().collect()
    }
}
