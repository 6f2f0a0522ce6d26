//! [`TestEdge`]: an edge on port 0 with an in-memory store, and connectors dialing it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portless_connector::{
    ConfigSource, RemoteConfigError, awaiting_remote_config, check_remote_config,
};
use portless_connector::{Connector, ConnectorHandle, ConnectorOptions, ProtocolChoice, Rules};
use portless_edge::{Edge, EdgeHandle, EdgeListeners, EdgeOptions, EdgeTls, TcpPort};
use portless_ingress::TunnelConfig;
use portless_proto::TunnelSecret;
use portless_store::Store;
use portless_tls::{EdgeTrust, LocalCa, tunnel_client_config};
use portless_transport::{DialTarget, TransportConfig};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::TestClient;
use crate::client::SharedCa;

/// Logs for a test run (`RUST_LOG` decides; silent by default).
pub fn init_test_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Transport settings that notice failures in about a second.
fn fast_transport() -> TransportConfig {
    TransportConfig {
        keep_alive: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(3),
        handshake_timeout: Duration::from_secs(2),
        ..TransportConfig::default()
    }
}

/// Edge options with short timers.
pub fn fast_edge_options() -> EdgeOptions {
    EdgeOptions {
        name: "test-edge".to_owned(),
        transport: fast_transport(),
        ping_interval: Duration::from_millis(200),
        dead_after: Duration::from_millis(1500),
        route_poll: Duration::from_millis(100),
        grace_period: Duration::from_secs(5),
        client_header_timeout: Duration::from_secs(10),
        ..EdgeOptions::default()
    }
}

/// How to start a [`TestEdge`].
pub struct EdgeSetup {
    /// Serve QUIC (bind UDP on the tunnel port).
    pub quic: bool,
    /// Bind these addresses instead of port 0 (restart on the same ports).
    pub public_addr: Option<SocketAddr>,
    /// See `public_addr`.
    pub tunnel_addr: Option<SocketAddr>,
    /// Reuse a store (and so tunnels and routes) across restarts.
    pub store: Option<Store>,
    /// Reuse a CA across restarts (connectors keep trusting the pin).
    pub ca: Option<SharedCa>,
    /// Edge options.
    pub options: EdgeOptions,
    /// Access control, configured for the edge's public port once it is bound.
    pub access: Option<std::sync::Arc<crate::access::AccessFixture>>,
    /// Public UDP ports, each bound on its `listen` address (`127.0.0.1:0` for a free
    /// port; see `EdgeHandle::udp_addrs`).
    pub udp_ports: Vec<portless_edge::UdpPort>,
    /// An already-bound public listener (tests that must know the port before the edge
    /// starts, such as ACME tests writing it into the CA's config).
    pub public_listener: Option<TcpListener>,
    /// A port-80 listener to serve (HTTP-01 answers, redirects).
    pub http_listener: Option<TcpListener>,
    /// Public TCP ports; each is bound at its `listen` address (use `127.0.0.1:0`), and the
    /// bound addresses are in [`TestEdge::tcp_ports`], in the same order.
    pub tcp_ports: Vec<TcpPort>,
}

impl Default for EdgeSetup {
    fn default() -> Self {
        Self {
            quic: true,
            public_addr: None,
            tunnel_addr: None,
            store: None,
            ca: None,
            options: fast_edge_options(),
            access: None,
            udp_ports: Vec::new(),
            public_listener: None,
            http_listener: None,
            tcp_ports: Vec::new(),
        }
    }
}

/// A tunnel created in the edge's store.
#[derive(Clone)]
pub struct TestTunnel {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its secret.
    pub secret: TunnelSecret,
}

/// A running edge with what tests need around it.
pub struct TestEdge {
    /// The edge.
    pub handle: EdgeHandle,
    /// Its store.
    pub store: Store,
    /// Its CA.
    pub ca: SharedCa,
    /// The bound addresses of [`EdgeSetup::tcp_ports`], in order.
    pub tcp_ports: Vec<SocketAddr>,
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; panics naming `what`.
pub async fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Prometheus text of a registry.
pub fn encode_metrics(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode metrics");
    text
}

impl TestEdge {
    /// Starts an edge with default test settings.
    pub async fn start() -> Self {
        Self::start_with(EdgeSetup::default()).await
    }

    /// Starts an edge as `setup` says.
    pub async fn start_with(setup: EdgeSetup) -> Self {
        portless_tls::install_default_provider();
        let store = match setup.store {
            Some(store) => store,
            None => Store::open_in_memory().await.expect("store"),
        };
        let ca = match setup.ca {
            Some(ca) => ca,
            None => Arc::new(LocalCa::generate("Portless test CA").expect("CA")),
        };
        let public = match setup.public_listener {
            Some(listener) => listener,
            None => TcpListener::bind(setup.public_addr.unwrap_or(([127, 0, 0, 1], 0).into()))
                .await
                .expect("bind public"),
        };
        let tunnel_tcp = TcpListener::bind(setup.tunnel_addr.unwrap_or(([127, 0, 0, 1], 0).into()))
            .await
            .expect("bind tunnel");
        let tunnel_udp = setup.quic.then(|| {
            std::net::UdpSocket::bind(tunnel_tcp.local_addr().expect("tunnel addr"))
                .expect("bind QUIC on the tunnel port")
        });
        let mut tcp_ports = Vec::new();
        for port in setup.tcp_ports {
            let listener = TcpListener::bind(port.listen).await.expect("bind TCP port");
            tcp_ports.push((listener, port));
        }
        let tcp_addrs = tcp_ports
            .iter()
            .map(|(l, _)| l.local_addr().expect("TCP port addr"))
            .collect();
        let listeners = EdgeListeners {
            public,
            tunnel_tcp,
            tunnel_udp,
            metrics: Some(
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind metrics"),
            ),
            udp_ports: setup
                .udp_ports
                .into_iter()
                .map(|port| {
                    let socket = std::net::UdpSocket::bind(port.listen).expect("bind a UDP port");
                    (socket, port)
                })
                .collect(),
            http: setup.http_listener,
            tcp_ports,
        };
        let tls = EdgeTls::from_ca(ca.clone(), &["127.0.0.1".to_owned()]).expect("edge TLS");
        let mut options = setup.options;
        if let Some(access) = &setup.access {
            let port = listeners.public.local_addr().expect("public addr").port();
            options.access = Some(access.options(port));
        }
        let handle = Edge::start(options, listeners, tls, store.clone())
            .await
            .expect("start edge");
        Self {
            handle,
            store,
            ca,
            tcp_ports: tcp_addrs,
        }
    }

    /// Stops the edge (as a restart would) and returns the set-up for its successor: same
    /// ports, store and CA, QUIC on, default options.
    pub async fn stop_for_restart(self) -> EdgeSetup {
        let setup = EdgeSetup {
            public_addr: Some(self.handle.public_addr()),
            tunnel_addr: Some(self.handle.tunnel_addr()),
            store: Some(self.store.clone()),
            ca: Some(self.ca.clone()),
            ..EdgeSetup::default()
        };
        self.handle.shutdown().await;
        setup
    }

    /// Creates a tunnel routed from `hostnames`, and makes the edge see the routes now.
    pub async fn add_tunnel(&self, name: &str, hostnames: &[&str]) -> TestTunnel {
        let created = self.store.create_tunnel(name).await.expect("create tunnel");
        for host in hostnames {
            self.store
                .route(host, created.tunnel.id)
                .await
                .expect("route");
        }
        self.handle.reload_routes().await.expect("reload routes");
        TestTunnel {
            id: created.tunnel.id,
            secret: TunnelSecret::new(created.secret.expose().to_vec()),
        }
    }

    /// A client for the public listener (HTTP/1.1, or HTTP/2 when `http2`).
    pub fn client(&self, http2: bool) -> TestClient {
        TestClient::new(
            self.ca.cert_der().clone(),
            self.handle.public_addr().port(),
            http2,
        )
    }

    /// Connector options toward this edge with short timers.
    pub fn connector_options(
        &self,
        tunnel: &TestTunnel,
        protocol: ProtocolChoice,
    ) -> ConnectorOptions {
        let mut options = ConnectorOptions::new(
            tunnel.id,
            tunnel.secret.clone(),
            DialTarget {
                addr: self.handle.tunnel_addr(),
                server_name: "127.0.0.1".to_owned(),
            },
        );
        options.protocol = protocol;
        options.ha_connections = 2;
        options.grace_period = Duration::from_secs(5);
        options.backoff_base = Duration::from_millis(100);
        options.backoff_cap = Duration::from_millis(800);
        options.dead_after = Duration::from_millis(1500);
        options.transport = fast_transport();
        options
    }

    /// Starts a connector with `rules` (ingress YAML) and waits until `ha` connections are
    /// registered.
    pub async fn connect(&self, options: ConnectorOptions, rules_yaml: &str) -> ConnectorHandle {
        let wanted = usize::from(options.ha_connections);
        let handle = Connector::start(
            options,
            rules(rules_yaml),
            tunnel_client_config(EdgeTrust::Pinned(self.ca.pin())).expect("client TLS"),
            None,
        )
        .expect("start connector");
        wait_for("connector registration", Duration::from_secs(15), || {
            handle.ready_connections() >= wanted
        })
        .await;
        handle
    }

    /// The edge's metrics as Prometheus text.
    pub fn metrics(&self) -> String {
        encode_metrics(self.handle.metrics_registry())
    }
}

/// Rules from ingress YAML (`ingress:` list).
pub fn rules(yaml: &str) -> Rules {
    let loaded = TunnelConfig::from_yaml_str(yaml, Path::new("test.yml"))
        .unwrap_or_else(|e| panic!("test rules are invalid:\n{e}"));
    Rules::new(loaded.config.ingress)
}

// === Config reloads and remotely managed configs ===

/// Log lines captured from this thread (a `#[tokio::test]` runtime runs every task of the
/// test on it), for assertions on what an operator would read.
pub struct LogCapture {
    text: Arc<std::sync::Mutex<Vec<u8>>>,
    /// Keeps the capturing subscriber in place; a `tracing_core` guard, which this crate
    /// does not name.
    _guard: Box<dyn std::any::Any>,
}

/// One log line sink of a [`LogCapture`].
struct CaptureWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures INFO and above (and the DEBUG lines that explain refused requests) on this
/// thread until the returned value is dropped.
pub fn capture_logs() -> LogCapture {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let text = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = text.clone();
    let guard = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,portless_edge::proxy=debug,portless_connector::remote=debug",
        ))
        .with_ansi(false)
        .with_writer(move || CaptureWriter(sink.clone()))
        .finish()
        .set_default();
    LogCapture {
        text,
        _guard: Box::new(guard),
    }
}

impl LogCapture {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().expect("log buffer")).into_owned()
    }

    /// How many captured lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `count` lines contain `needle`; panics with the log after `timeout`.
    pub async fn wait_for(&self, needle: &str, count: usize, timeout: Duration) {
        let start = Instant::now();
        while self.count(needle) < count {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {count} log line(s) with {needle:?}; log:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl TestEdge {
    /// Starts a connector with `rules` and a config source, and waits until its
    /// connections are registered.
    pub async fn connect_with_source(
        &self,
        options: ConnectorOptions,
        rules: Rules,
        source: ConfigSource,
    ) -> ConnectorHandle {
        let wanted = usize::from(options.ha_connections);
        let handle = Connector::start_with_config_source(
            options,
            rules,
            source,
            tunnel_client_config(EdgeTrust::Pinned(self.ca.pin())).expect("client TLS"),
            None,
        )
        .expect("start connector");
        wait_for("connector registration", Duration::from_secs(15), || {
            handle.ready_connections() >= wanted
        })
        .await;
        handle
    }

    /// What `portless tunnel ingress push` does: checks `yaml`, then stores it as the
    /// tunnel's config; the new version, or why the config was refused.
    pub async fn push_config(
        &self,
        tunnel: &TestTunnel,
        yaml: &str,
    ) -> Result<i64, RemoteConfigError> {
        check_remote_config(yaml, Path::new("pushed.yml"))?;
        Ok(self
            .store
            .set_tunnel_config(tunnel.id, yaml)
            .await
            .expect("store the config"))
    }
}

/// Rules of a connector that waits for its first remote config (token-only run).
pub fn pending_rules() -> Rules {
    Rules::pending(
        awaiting_remote_config()
            .expect("placeholder config")
            .config
            .ingress,
    )
}
