//! Public raw ports: the parsed, validated form of one `ports:` entry of the edge config.
//!
//! The config loader (`config::ports`) produces these; the edge is handed them together with
//! an already-bound socket (`EdgeListeners::tcp_ports` / `udp_ports`), so tests bind port 0.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

/// Default idle timeout of one UDP flow.
pub const DEFAULT_UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on concurrent UDP flows of one port.
pub const DEFAULT_UDP_MAX_FLOWS: usize = 1024;
/// Default cap on concurrent connections of one TCP port.
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 10_000;

/// A public TCP port whose connections are carried through the tunnel of `hostname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPort {
    /// Where the edge listens (the binary binds it; tests bind `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// Canonical hostname: the route (tunnel) and the connector ingress rule.
    pub hostname: String,
    /// Client networks allowed to connect; empty allows every client.
    pub allow: Vec<IpNet>,
    /// Write a PROXY protocol v2 header toward the origin before the client's bytes.
    pub proxy_protocol: bool,
    /// A connection with no byte in either direction for this long is closed; `None` keeps
    /// quiet connections open (TCP keep-alive still ends those whose client vanished).
    pub idle_timeout: Option<Duration>,
    /// Most concurrent connections on this port; further clients are closed at once.
    pub max_connections: usize,
}

/// A public UDP port whose datagrams are carried through the tunnel of `hostname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPort {
    /// Where the edge listens (the binary binds it; tests bind `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// Canonical hostname: the route (tunnel) and the connector ingress rule.
    pub hostname: String,
    /// Client networks allowed to send; empty allows every client.
    pub allow: Vec<IpNet>,
    /// A flow with no datagram in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Most concurrent flows (distinct client addresses) on this port; new ones are dropped.
    pub max_flows: usize,
}

impl TcpPort {
    /// A port that allows every client, writes no PROXY header, has no idle timeout and
    /// the default connection cap.
    pub fn new(listen: SocketAddr, hostname: impl Into<String>) -> Self {
        Self {
            listen,
            hostname: hostname.into(),
            allow: Vec::new(),
            proxy_protocol: false,
            idle_timeout: None,
            max_connections: DEFAULT_TCP_MAX_CONNECTIONS,
        }
    }

    /// Whether a client at `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        allowed(&self.allow, ip)
    }
}

impl UdpPort {
    /// A port that allows every client, with the default idle timeout and flow cap.
    pub fn new(listen: SocketAddr, hostname: impl Into<String>) -> Self {
        Self {
            listen,
            hostname: hostname.into(),
            allow: Vec::new(),
            idle_timeout: DEFAULT_UDP_IDLE_TIMEOUT,
            max_flows: DEFAULT_UDP_MAX_FLOWS,
        }
    }

    /// Whether a client at `ip` may send.
    pub fn allows(&self, ip: IpAddr) -> bool {
        allowed(&self.allow, ip)
    }
}

/// An empty list allows all; otherwise the address (IPv4-mapped IPv6 seen as IPv4) must be
/// inside one of the networks.
fn allowed(allow: &[IpNet], ip: IpAddr) -> bool {
    if allow.is_empty() {
        return true;
    }
    let ip = ip.to_canonical();
    allow.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_allow_list_allows_everyone_and_a_list_filters() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut port = TcpPort::new(addr, "a.test");
        assert!(port.allows("192.0.2.1".parse().unwrap()));
        port.allow = vec![
            "127.0.0.1/32".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        assert!(port.allows("127.0.0.1".parse().unwrap()));
        assert!(port.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(port.allows("2001:db8::5".parse().unwrap()));
        assert!(!port.allows("127.0.0.2".parse().unwrap()));
        let udp = UdpPort::new(addr, "a.test");
        assert_eq!(udp.idle_timeout, Duration::from_secs(60));
        assert_eq!(udp.max_flows, 1024);
    }
}
