//! Raw TCP must not be reachable over HTTPS from clients a port's allow-list refuses.
//!
//! A connector's `tcp://` rule answers any upgraded request with raw TCP to its origin, and a
//! client can send `Upgrade:` over the normal HTTPS listener itself. For the hostname of a
//! public TCP port with an allow-list, that would be a way around the list; so HTTPS requests
//! for such a hostname are held to the same list (the union of its ports' lists; a port of
//! that hostname without a list leaves HTTPS open, as the port itself is).
//!
//! A hostname with a port that sends the PROXY header takes no upgrades over HTTPS at all:
//! its origin trusts the first bytes of a connection to say who the client is, and on an
//! upgraded HTTPS request those bytes would be the client's own.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ports::TcpPort;

/// Hostnames of allow-listed public TCP ports and their networks.
#[derive(Debug, Default)]
pub(crate) struct HttpsGuard {
    restricted: HashMap<String, Vec<IpNet>>,
    /// Hostnames of ports with `proxy_protocol`.
    proxied: HashSet<String>,
}

impl HttpsGuard {
    pub(crate) fn new<'a>(ports: impl IntoIterator<Item = &'a TcpPort>) -> Self {
        let mut restricted: HashMap<String, Option<Vec<IpNet>>> = HashMap::new();
        let mut proxied = HashSet::new();
        for port in ports {
            if port.proxy_protocol {
                proxied.insert(port.hostname.clone());
            }
            let entry = restricted
                .entry(port.hostname.clone())
                .or_insert_with(|| Some(Vec::new()));
            match entry {
                Some(list) if !port.allow.is_empty() => list.extend(port.allow.iter().copied()),
                _ => *entry = None,
            }
        }
        Self {
            restricted: restricted
                .into_iter()
                .filter_map(|(host, list)| Some((host, list?)))
                .collect(),
            proxied,
        }
    }

    /// Whether an HTTPS request for `host` (canonical) from `client` may go on.
    pub(crate) fn allows(&self, host: &str, client: IpAddr) -> bool {
        match self.restricted.get(host) {
            None => true,
            Some(list) => {
                let ip = client.to_canonical();
                list.iter().any(|net| net.contains(&ip))
            }
        }
    }
}

impl HttpsGuard {
    /// Whether an HTTPS request for `host` (canonical) may be upgraded to a raw stream.
    pub(crate) fn allows_upgrade(&self, host: &str) -> bool {
        !self.proxied.contains(host)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn allow_listed_port_hostnames_are_held_to_their_lists() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let mut ssh = TcpPort::new(addr, "ssh.test");
        ssh.allow = vec!["127.0.0.1/32".parse().unwrap()];
        let open = TcpPort::new(addr, "open.test");
        let guard = HttpsGuard::new([&ssh, &open]);
        assert!(guard.allows("ssh.test", "127.0.0.1".parse().unwrap()));
        assert!(!guard.allows("ssh.test", "127.0.0.2".parse().unwrap()));
        assert!(guard.allows("open.test", "192.0.2.1".parse().unwrap()));
        assert!(guard.allows("web.test", "192.0.2.1".parse().unwrap()));
        // One port of the hostname without a list: the hostname is public anyway.
        let open_ssh = TcpPort::new(addr, "ssh.test");
        let guard = HttpsGuard::new([&ssh, &open_ssh]);
        assert!(guard.allows("ssh.test", "192.0.2.1".parse().unwrap()));
        assert!(guard.allows_upgrade("ssh.test"));
        // A port sending the PROXY header: no upgrades over HTTPS for its hostname.
        let mut proxied = TcpPort::new(addr, "db.test");
        proxied.proxy_protocol = true;
        let guard = HttpsGuard::new([&proxied, &open]);
        assert!(!guard.allows_upgrade("db.test"));
        assert!(guard.allows_upgrade("open.test"));
    }
}
