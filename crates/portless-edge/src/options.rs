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

use portless_acme::AcmeOptions;
use portless_tls::StaticCertificate;

use crate::{AccessOptions, PassthroughHosts, TcpPort};

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
    /// Certificates and TLS behaviour of the public listener.
    pub tls: PublicTlsOptions,
    /// The port-80 listener's behaviour (when one is given in [`EdgeListeners::http`]).
    pub http: HttpOptions,
    /// Hostnames whose TLS is relayed to the origin untouched (SNI passthrough).
    pub passthrough: PassthroughHosts,
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
            tls: PublicTlsOptions::default(),
            http: HttpOptions::default(),
            passthrough: PassthroughHosts::default(),
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
    /// The plain-HTTP listener (port 80): ACME HTTP-01 answers and redirects to HTTPS.
    pub http: Option<TcpListener>,
    /// Public TCP ports, each with the port entry it serves.
    pub tcp_ports: Vec<(TcpListener, TcpPort)>,
}

/// Certificates of the public listener, in the order they are tried per SNI name: static
/// files, then ACME, then (without ACME) the local CA.
#[derive(Debug, Clone)]
pub struct PublicTlsOptions {
    /// `Strict-Transport-Security` on every HTTPS response; `None`: not sent.
    pub hsts: Option<Hsts>,
    /// Obtain certificates by ACME for every exact route and portal host.
    pub acme: Option<AcmeOptions>,
    /// Certificate files per hostname pattern.
    pub certificates: Vec<StaticCertificate>,
    /// How often the static files are checked for changes (reloaded when one changed).
    pub reload_interval: Duration,
}

impl Default for PublicTlsOptions {
    fn default() -> Self {
        Self {
            hsts: None,
            acme: None,
            certificates: Vec::new(),
            reload_interval: Duration::from_secs(10),
        }
    }
}

/// The `Strict-Transport-Security` header's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hsts {
    /// `max-age`: how long browsers remember to use HTTPS only.
    pub max_age: Duration,
    /// `includeSubDomains`.
    pub include_subdomains: bool,
    /// `preload` (only meaningful with a long max-age and includeSubDomains).
    pub preload: bool,
}

impl Hsts {
    /// The header value, e.g. `max-age=31536000; includeSubDomains`.
    pub fn header_value(&self) -> String {
        let mut value = format!("max-age={}", self.max_age.as_secs());
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        value
    }
}

/// Settings of the port-80 listener.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Hostnames whose `/.well-known/acme-challenge/` requests go through the tunnel to the
    /// origin instead of being answered by the edge (canonical, exact names).
    pub acme_challenge_to_origin: Vec<String>,
    /// The HTTPS port named in redirects; `None` (or 443) names none.
    pub https_port: Option<u16>,
}

impl HttpOptions {
    /// Whether `host`'s ACME challenges go to its origin (which then manages its own
    /// certificates).
    pub(crate) fn challenge_to_origin(&self, host: &str) -> bool {
        self.acme_challenge_to_origin.iter().any(|h| h == host)
    }
}
