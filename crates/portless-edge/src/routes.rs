//! The hostname → tunnel table, reloaded from the store when it changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use portless_store::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// A route target: the tunnel's id and name (the name labels metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteTarget {
    pub(crate) tunnel_id: Uuid,
}

#[derive(Default)]
struct Routes {
    exact: HashMap<String, RouteTarget>,
    /// Keyed by the suffix after `*.`: `*.example.com` → `example.com`.
    wildcard: HashMap<String, RouteTarget>,
}

/// Routes by canonical hostname. Reads take a read lock and one hash lookup per label, so
/// thousands of routes cost the same as ten.
#[derive(Default)]
pub(crate) struct RouteTable {
    current: RwLock<Arc<Routes>>,
}

impl RouteTable {
    /// The tunnel serving `host` (already canonical): an exact route first, then the
    /// longest wildcard suffix (`*.example.com` matches at any depth, not `example.com`).
    pub(crate) fn lookup(&self, host: &str) -> Option<RouteTarget> {
        let routes = self.snapshot();
        if let Some(target) = routes.exact.get(host) {
            return Some(target.clone());
        }
        let mut rest = host;
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(target) = routes.wildcard.get(suffix) {
                return Some(target.clone());
            }
            rest = suffix;
        }
        None
    }

    /// Every exact (non-wildcard) hostname routed: the names that get ACME certificates.
    pub(crate) fn exact_names(&self) -> Vec<String> {
        self.snapshot().exact.keys().cloned().collect()
    }

    fn snapshot(&self) -> Arc<Routes> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the table with the store's routes.
    pub(crate) async fn reload(&self, store: &Store) -> Result<usize, portless_store::StoreError> {
        let mut routes = Routes::default();
        let list = store.routes().await?;
        let count = list.len();
        for route in list {
            let target = RouteTarget {
                tunnel_id: route.tunnel_id,
            };
            match route.hostname.strip_prefix("*.") {
                Some(suffix) => routes.wildcard.insert(suffix.to_owned(), target),
                None => routes.exact.insert(route.hostname, target),
            };
        }
        let routes = Arc::new(routes);
        match self.current.write() {
            Ok(mut guard) => *guard = routes,
            Err(poisoned) => *poisoned.into_inner() = routes,
        }
        Ok(count)
    }

    /// Polls the store's route version and reloads on change, until `shutdown`. A failed
    /// poll keeps the last good table: routes that worked keep working. Each version seen is
    /// also published on `changed`, for what else follows the store (tunnel configs).
    pub(crate) async fn follow(
        self: Arc<Self>,
        store: Store,
        every: Duration,
        mut version: i64,
        changed: watch::Sender<i64>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            match store.routes_version().await {
                Ok(now) if now != version => match self.reload(&store).await {
                    Ok(count) => {
                        info!(routes = count, "route table reloaded");
                        version = now;
                        changed.send_replace(now);
                    }
                    Err(e) => {
                        warn!(error = %e, "reloading routes failed; keeping the previous table")
                    }
                },
                Ok(_) => {}
                Err(e) => warn!(error = %e, "checking for route changes failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exact_beats_wildcard_and_wildcards_match_any_depth() {
        let store = Store::open_in_memory().await.unwrap();
        let a = store.create_tunnel("a").await.unwrap().tunnel.id;
        let b = store.create_tunnel("b").await.unwrap().tunnel.id;
        store.route("*.example.com", a).await.unwrap();
        store.route("api.example.com", b).await.unwrap();
        let table = RouteTable::default();
        assert_eq!(table.reload(&store).await.unwrap(), 2);
        let id = |h: &str| table.lookup(h).map(|t| t.tunnel_id);
        assert_eq!(id("api.example.com"), Some(b));
        assert_eq!(id("x.example.com"), Some(a));
        assert_eq!(id("x.y.z.example.com"), Some(a));
        assert_eq!(id("example.com"), None);
        assert_eq!(id("example.org"), None);
    }
}
