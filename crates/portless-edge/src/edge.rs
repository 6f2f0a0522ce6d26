//! Start-up and shutdown of a whole edge.

use std::net::SocketAddr;
use std::sync::Arc;

use portless_store::Store;
use portless_telemetry::{HealthServer, Readiness};
use portless_transport::TunnelListener;
use prometheus_client::registry::Registry as MetricsRegistry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use portless_acme::AcmeManager;

use crate::access::EdgeAccess;
use crate::bootstrap::EdgeTls;
use crate::metrics::EdgeMetrics;
use crate::registry::Registry;
use crate::routes::RouteTable;
use crate::tunnels::TunnelConfigs;
use crate::{EdgeError, EdgeListeners, EdgeOptions, certs, port80, public, tunnels, udp_ports};

/// State shared by the edge's tasks.
pub(crate) struct EdgeState {
    pub(crate) name: String,
    pub(crate) options: EdgeOptions,
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) registry: Registry,
    /// Remotely managed configs, per tunnel with live connections.
    pub(crate) configs: TunnelConfigs,
    pub(crate) metrics: EdgeMetrics,
    /// Access control, when configured.
    pub(crate) access: Option<Arc<EdgeAccess>>,
    /// The ACME client, when configured.
    pub(crate) acme: Option<Arc<AcmeManager>>,
    /// The `Strict-Transport-Security` value for HTTPS responses, when configured.
    pub(crate) hsts: Option<http::HeaderValue>,
    /// HTTPS requests for hostnames of allow-listed TCP ports are held to those lists.
    pub(crate) https_guard: crate::raw::HttpsGuard,
    /// Every task of the edge: listeners, connections, body pumps, upgrades.
    pub(crate) tasks: TaskTracker,
    /// Stops the public listener (first step of shutdown).
    pub(crate) public_shutdown: CancellationToken,
    /// Stops the tunnel side (after public requests drained).
    pub(crate) tunnel_shutdown: CancellationToken,
}

/// A Portless edge.
pub struct Edge;

/// A running edge: its addresses, and how to stop it.
pub struct EdgeHandle {
    state: Arc<EdgeState>,
    public_addr: SocketAddr,
    tunnel_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    udp_addrs: Vec<SocketAddr>,
    http_addr: Option<SocketAddr>,
    registry: Arc<MetricsRegistry>,
    tls: EdgeTls,
    root: CancellationToken,
    public_done: tokio::task::JoinHandle<()>,
    store: Store,
}

impl Edge {
    /// Starts an edge on the given listeners. Routes and credentials come from `store`.
    pub async fn start(
        options: EdgeOptions,
        listeners: EdgeListeners,
        tls: EdgeTls,
        store: Store,
    ) -> Result<EdgeHandle, EdgeError> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| EdgeError::Io { context, source }
        };
        let public_addr = listeners
            .public
            .local_addr()
            .map_err(io("reading the public address"))?;
        let mut metrics_registry = MetricsRegistry::default();
        let metrics = EdgeMetrics::register(&mut metrics_registry);
        let root = CancellationToken::new();
        let tasks = TaskTracker::new();
        let access = match options.access.clone() {
            Some(access) => {
                Some(EdgeAccess::load(access, store.clone(), &mut metrics_registry).await?)
            }
            None => None,
        };
        let mut options = options;
        if let Some(access) = &access {
            // Connectors verify assertions with the keys of this edge's ring.
            options.access_keys = access.keys_watch();
        }
        let routes = Arc::new(RouteTable::default());
        let version = store.routes_version().await?;
        routes.reload(&store).await?;
        let served = routes.clone();
        let portals: Vec<String> = access
            .iter()
            .flat_map(|a| a.portals.iter().map(|p| p.host.clone()))
            .collect();
        let served_portals = portals.clone();
        let public_certs = certs::build(&tls, &options.tls, &store, move |name| {
            served.lookup(name).is_some() || served_portals.iter().any(|p| p == name)
        })?;
        let hsts = match &options.tls.hsts {
            Some(hsts) => Some(
                http::HeaderValue::try_from(hsts.header_value()).map_err(|_| EdgeError::Io {
                    context: "building the HSTS header".to_owned(),
                    source: std::io::Error::other("invalid header value"),
                })?,
            ),
            None => None,
        };
        let state = Arc::new(EdgeState {
            name: options.name.clone(),
            options: options.clone(),
            routes: routes.clone(),
            registry: Registry::new(metrics.clone()),
            configs: TunnelConfigs::default(),
            metrics,
            access: access.clone(),
            acme: public_certs.acme.clone(),
            hsts,
            https_guard: crate::raw::HttpsGuard::new(listeners.tcp_ports.iter().map(|(_, p)| p)),
            tasks: tasks.clone(),
            public_shutdown: root.child_token(),
            tunnel_shutdown: root.child_token(),
        });
        let (store_changed, store_changes) = watch::channel(version);
        tasks.spawn(routes.clone().follow(
            store.clone(),
            options.route_poll,
            version,
            store_changed,
            root.child_token(),
        ));
        if let Some(acme) = &public_certs.acme {
            tasks.spawn(acme.clone().run(root.child_token()));
            tasks.spawn(certs::follow_names(
                acme.clone(),
                state.clone(),
                public_certs.statics.clone(),
                portals,
                store_changes.clone(),
                root.child_token(),
            ));
        }
        if let Some(statics) = &public_certs.statics {
            tasks.spawn(certs::watch_static(
                statics.clone(),
                options.tls.reload_interval,
                root.child_token(),
            ));
        }
        tasks.spawn(tunnels::follow_configs(
            state.clone(),
            store.clone(),
            store_changes,
        ));
        let listener = TunnelListener::start(
            listeners.tunnel_tcp,
            listeners.tunnel_udp,
            tls.tunnel.clone(),
            options.transport.clone(),
            &tasks,
            state.tunnel_shutdown.clone(),
        )?;
        let tunnel_addr = listener.tcp_addr();
        let mut udp_addrs = Vec::with_capacity(listeners.udp_ports.len());
        for (socket, port) in listeners.udp_ports {
            udp_addrs.push(udp_ports::start(&state, socket, port)?);
        }
        tasks.spawn(tunnels::accept_tunnels(
            listener,
            state.clone(),
            store.clone(),
        ));
        if let Some(access) = &access {
            tasks.spawn(access.clone().maintain(root.child_token()));
            tasks.spawn(access.audit.writer(root.child_token().cancelled_owned()));
        }
        for (listener, port) in listeners.tcp_ports {
            tasks.spawn(crate::raw::tcp_ports::serve(listener, port, state.clone()));
        }
        let public_done = tokio::spawn(public::serve_public(
            listeners.public,
            public_certs.config,
            state.clone(),
        ));
        let http_addr = match listeners.http {
            Some(listener) => {
                let addr = listener
                    .local_addr()
                    .map_err(io("reading the port-80 address"))?;
                tasks.spawn(port80::serve_port80(listener, state.clone()));
                Some(addr)
            }
            None => None,
        };
        let registry = Arc::new(metrics_registry);
        let metrics_addr = match listeners.metrics {
            Some(listener) => {
                let addr = listener
                    .local_addr()
                    .map_err(io("reading the metrics address"))?;
                let probe_state = state.clone();
                let probe = Arc::new(move || Readiness {
                    ready_connections: probe_state.registry.ready_connections(),
                    id_field: ("edgeName", probe_state.name.clone()),
                    detail: Default::default(),
                });
                let server = HealthServer::new(registry.clone(), probe);
                tasks.spawn(server.run(listener, tasks.clone(), root.child_token()));
                Some(addr)
            }
            None => None,
        };
        info!(edge = %options.name, public = %public_addr, tunnel = %tunnel_addr, metrics = ?metrics_addr, "edge started");
        Ok(EdgeHandle {
            state,
            public_addr,
            tunnel_addr,
            metrics_addr,
            udp_addrs,
            http_addr,
            registry,
            tls,
            root,
            public_done,
            store,
        })
    }
}

impl EdgeState {
    /// Whether `/.well-known/acme-challenge/` requests for `host` go to its origin.
    pub(crate) fn challenge_to_origin(&self, host: &str) -> bool {
        self.options.http.challenge_to_origin(host)
    }
}

impl EdgeHandle {
    /// The public HTTPS address.
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// The tunnel address (TCP; QUIC on the same port number when UDP was given).
    pub fn tunnel_addr(&self) -> SocketAddr {
        self.tunnel_addr
    }

    /// The metrics/health address, when served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The public UDP ports' addresses, in the order they were given.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The port-80 address, when served.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The ACME client, when configured (certificates served, forced renewal).
    pub fn acme(&self) -> Option<&Arc<AcmeManager>> {
        self.state.acme.as_ref()
    }

    /// The metrics registry (for tests and embedding).
    pub fn metrics_registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// TLS material (CA, pin, key-exchange counters).
    pub fn tls(&self) -> &EdgeTls {
        &self.tls
    }

    /// Reloads the route table from the store now, instead of at the next poll.
    pub async fn reload_routes(&self) -> Result<usize, EdgeError> {
        Ok(self.state.routes.reload(&self.store).await?)
    }

    /// Registered, non-draining tunnel connections.
    pub fn ready_connections(&self) -> usize {
        self.state.registry.ready_connections()
    }

    /// Stops the edge: no new public connections, in-flight requests finish within the
    /// grace period, then tunnel connections close (connectors reconnect elsewhere).
    pub async fn shutdown(self) {
        self.state.public_shutdown.cancel();
        let _ = self.public_done.await;
        for live in self.state.registry.all() {
            live.connection.close("edge shutting down");
        }
        self.root.cancel();
        self.state.tasks.close();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), self.state.tasks.wait()).await;
        info!(edge = %self.state.name, "edge stopped");
    }

    /// Stops everything at once, as a crash would (for failure tests).
    pub fn abort(self) {
        self.root.cancel();
        for live in self.state.registry.all() {
            live.connection.close("edge aborted");
        }
        self.public_done.abort();
    }
}
