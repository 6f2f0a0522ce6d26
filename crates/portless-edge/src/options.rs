//! Edge settings and the listeners it is handed.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use portless_transport::TransportConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The edge's current identity-assertion key set, as JWKS JSON (`None`: access is off, no
/// keys to send). The edge sends it to every connector that takes it, on registration and
/// whenever the value changes.
pub type AccessKeysWatch = watch::Receiver<Option<Arc<str>>>;

use crate::AccessOptions;

/// Settings of one edge.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// The edge's name (its "location" in connector logs).
    pub name: String,
    /// Tunnel transport tuning.
    pub transport: TransportConfig,
    /// Interval of control-stream pings to each connector.
    pub ping_interval: Duration,
    /// A connection silent for this long is closed and its requests go elsewhere.
    pub dead_after: Duration,
    /// How often the route table is checked for changes in the store.
    pub route_poll: Duration,
    /// How long in-flight public requests may run after shutdown starts.
    pub grace_period: Duration,
    /// Limit for a client's TLS handshake and request head.
    pub client_header_timeout: Duration,
    /// Access control; `None` serves every route publicly.
    pub access: Option<AccessOptions>,
    /// The assertion key set (JWKS JSON) to send to connectors, produced from the key ring;
    /// the default holds `None` and never changes.
    pub access_keys: AccessKeysWatch,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            name: "edge".to_owned(),
            transport: TransportConfig::default(),
            ping_interval: Duration::from_secs(1),
            dead_after: Duration::from_secs(4),
            route_poll: Duration::from_secs(1),
            grace_period: Duration::from_secs(30),
            client_header_timeout: Duration::from_secs(30),
            access: None,
            access_keys: watch::channel(None).1,
        }
    }
}

/// Already-bound sockets, so tests can bind port 0 and run in parallel.
pub struct EdgeListeners {
    /// The public HTTPS listener.
    pub public: TcpListener,
    /// The tunnel listener's TCP half.
    pub tunnel_tcp: TcpListener,
    /// The tunnel listener's UDP half (QUIC); `None` serves the TCP fallback only.
    pub tunnel_udp: Option<UdpSocket>,
    /// The metrics/health listener.
    pub metrics: Option<TcpListener>,
    /// Public UDP ports, each bound socket with the mapping it serves.
    pub udp_ports: Vec<(UdpSocket, crate::UdpPort)>,
}
