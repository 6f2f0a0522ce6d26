//! Start-up, shared state and shutdown of a connector.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use portless_ingress::Ingress;
use portless_telemetry::{HealthServer, Readiness};
use portless_transport::{Dialer, TransportError};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;
use uuid::Uuid;

use crate::access::AccessKeys;
use crate::metrics::ConnectorMetrics;
use crate::origin::OriginPool;
use crate::protocol::ProtocolState;
use crate::remote::{ConfigSource, RemoteUpdates};
use crate::{ConnectorOptions, slot};

/// Why a connector could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The transport could not be set up (TLS config unusable for QUIC...).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The metrics listener could not be used.
    #[error("metrics listener: {0}")]
    Metrics(std::io::Error),
}

/// Ingress rules and their origin clients, replaced whole on reload.
pub(crate) struct RuleSet {
    pub(crate) ingress: Ingress,
    pub(crate) origins: OriginPool,
    /// A placeholder: the connector waits for its first remote config. The session answers
    /// streams with a `StreamError` instead of matching these rules.
    pub(crate) pending: bool,
}

/// The connector's live rules: requests read the current set; a reload swaps in a new one
/// without touching requests in flight (they keep the set they started with).
#[derive(Clone)]
pub struct Rules(Arc<RwLock<Arc<RuleSet>>>);

impl Rules {
    /// Rules from a validated ingress.
    pub fn new(ingress: Ingress) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(RuleSet::new(
            ingress, false,
        )))))
    }

    /// Rules of a connector that has none yet (`--config-source remote` without a config
    /// file): every request gets a `StreamError` saying so until the first [`Rules::replace`].
    /// `placeholder` is never matched; it only keeps the rule set total (see
    /// [`crate::awaiting_remote_config`]).
    pub fn pending(placeholder: Ingress) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(RuleSet::new(
            placeholder,
            true,
        )))))
    }

    /// Whether these rules are still waiting for their first config.
    pub fn is_pending(&self) -> bool {
        self.current().pending
    }

    /// Replaces the rules for new requests.
    pub fn replace(&self, ingress: Ingress) {
        let set = Arc::new(RuleSet::new(ingress, false));
        match self.0.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    pub(crate) fn current(&self) -> Arc<RuleSet> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl RuleSet {
    fn new(ingress: Ingress, pending: bool) -> Self {
        let origins = OriginPool::new(ingress.rules().len());
        Self {
            ingress,
            origins,
            pending,
        }
    }
}

/// State shared by a connector's tasks.
pub(crate) struct Shared {
    pub(crate) options: ConnectorOptions,
    pub(crate) connector_id: Uuid,
    pub(crate) dialer: Dialer,
    pub(crate) protocol: ProtocolState,
    pub(crate) rules: Rules,
    /// What to do with configs the edge pushes.
    pub(crate) remote: RemoteUpdates,
    /// The edge's assertion keys, for rules with `originRequest.access`.
    pub(crate) access: AccessKeys,
    pub(crate) metrics: ConnectorMetrics,
    registered: AtomicUsize,
    /// Graceful shutdown: drain, finish in-flight requests within the grace period.
    pub(crate) shutdown: CancellationToken,
    /// Immediate stop (second signal, or after the grace period).
    pub(crate) hard: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

impl Shared {
    pub(crate) fn registered(&self) {
        self.registered.fetch_add(1, Ordering::AcqRel);
        self.metrics.ha_connections.inc();
    }

    pub(crate) fn unregistered(&self) {
        self.registered.fetch_sub(1, Ordering::AcqRel);
        self.metrics.ha_connections.dec();
    }

    pub(crate) fn ready_connections(&self) -> usize {
        self.registered.load(Ordering::Acquire)
    }
}

/// `/ready` detail: the health of tracked origins, `{"origins":[{"rule":1,"origin":"http://..","up":true}]}`
/// (absent when no rule tracks health).
fn origin_detail(
    shared: &Shared,
) -> portless_telemetry::serde_json::Map<String, portless_telemetry::serde_json::Value> {
    use portless_telemetry::serde_json::{Map, Value, json};
    let report = shared.rules.current().origins.health_report();
    let mut detail = Map::new();
    if !report.is_empty() {
        let origins: Vec<Value> = report
            .into_iter()
            .map(|(rule, origin, up)| json!({"rule": rule, "origin": origin, "up": up}))
            .collect();
        detail.insert("origins".into(), Value::Array(origins));
    }
    detail
}

/// A Portless connector.
pub struct Connector;

/// A running connector.
pub struct ConnectorHandle {
    shared: Arc<Shared>,
    slots: TaskTracker,
    metrics_addr: Option<SocketAddr>,
    registry: Arc<Registry>,
}

impl Connector {
    /// Starts the connection slots (one after another, as users of the reference expect)
    /// and the metrics server. `tls` is the tunnel client config (edge verification).
    pub fn start(
        options: ConnectorOptions,
        rules: Rules,
        tls: Arc<portless_tls::rustls::ClientConfig>,
        metrics: Option<TcpListener>,
    ) -> Result<ConnectorHandle, ConnectorError> {
        Self::start_with_config_source(options, rules, ConfigSource::Local, tls, metrics)
    }

    /// Like [`Connector::start`], with the config source: under [`ConfigSource::Remote`] the
    /// configs the edge pushes replace `rules`; under [`ConfigSource::Local`] they are ignored.
    pub fn start_with_config_source(
        options: ConnectorOptions,
        rules: Rules,
        source: ConfigSource,
        tls: Arc<portless_tls::rustls::ClientConfig>,
        metrics: Option<TcpListener>,
    ) -> Result<ConnectorHandle, ConnectorError> {
        let tasks = TaskTracker::new();
        let dialer = Dialer::new(tls, options.transport.clone(), options.bind, tasks.clone())?;
        let mut registry = Registry::default();
        let connector_metrics = ConnectorMetrics::register(&mut registry);
        let registry = Arc::new(registry);
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            protocol: ProtocolState::new(options.protocol),
            connector_id: Uuid::new_v4(),
            dialer,
            remote: RemoteUpdates::new(source, rules.clone()),
            access: AccessKeys::default(),
            rules,
            metrics: connector_metrics,
            registered: AtomicUsize::new(0),
            hard: CancellationToken::new(),
            shutdown,
            tasks: tasks.clone(),
            options,
        });
        let metrics_addr = match metrics {
            Some(listener) => {
                let addr = listener.local_addr().map_err(ConnectorError::Metrics)?;
                let probe_shared = shared.clone();
                let probe = Arc::new(move || Readiness {
                    ready_connections: probe_shared.ready_connections(),
                    id_field: ("connectorId", probe_shared.connector_id.to_string()),
                    detail: origin_detail(&probe_shared),
                });
                let server = HealthServer::new(registry.clone(), probe);
                tasks.spawn(server.run(listener, tasks.clone(), shared.hard.clone()));
                Some(addr)
            }
            None => None,
        };
        let slots = TaskTracker::new();
        let mut previous: Option<oneshot::Receiver<()>> = None;
        for index in 0..shared.options.ha_connections {
            let (first_done, next) = oneshot::channel();
            slots.spawn(slot::run(
                shared.clone(),
                index,
                previous.take(),
                first_done,
            ));
            previous = Some(next);
        }
        slots.close();
        info!(connector = %shared.connector_id, tunnel = %shared.options.tunnel_id, edge = %shared.options.edge.addr, "connector started");
        Ok(ConnectorHandle {
            shared,
            slots,
            metrics_addr,
            registry,
        })
    }
}

impl ConnectorHandle {
    /// This connector's id.
    pub fn connector_id(&self) -> Uuid {
        self.shared.connector_id
    }

    /// Registered connections right now.
    pub fn ready_connections(&self) -> usize {
        self.shared.ready_connections()
    }

    /// The metrics/health address, when served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The metrics registry.
    pub fn metrics_registry(&self) -> &Registry {
        &self.registry
    }

    /// The live rules (for reloads).
    pub fn rules(&self) -> &Rules {
        &self.shared.rules
    }

    /// A token that starts a graceful shutdown when cancelled (wire it to SIGTERM).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// A token that stops everything at once when cancelled (a second signal).
    pub fn abort_token(&self) -> CancellationToken {
        self.shared.hard.clone()
    }

    /// Graceful shutdown: every connection drains (the edge sends no new requests), in-flight
    /// requests get the grace period, then everything stops.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the connector has stopped (after a shutdown or abort token fired).
    pub async fn wait(self) {
        self.slots.wait().await;
        self.shared.hard.cancel();
        self.shared.tasks.close();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(2), self.shared.tasks.wait()).await;
        info!(connector = %self.shared.connector_id, "connector stopped");
    }

    /// Stops at once, without draining.
    pub fn abort(&self) {
        self.shared.shutdown.cancel();
        self.shared.hard.cancel();
    }
}
