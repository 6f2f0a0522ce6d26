//! Raw TCP must not be reachable over HTTPS from clients a port's allow-list refuses.
//!
//! A connector's `tcp://` rule answers any upgraded request with raw TCP to its origin, and a
//! client can send `Upgrade:` over the normal HTTPS listener itself. For the hostname of a
//! public TCP port with an allow-list, that would be a way around the list; so HTTPS requests
//! for such a hostname are held to the same list (the union of its ports' lists; a port of
//! that hostname without a list leaves HTTPS open, as the port itself is).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ports::TcpPort;

/// Hostnames of allow-listed public TCP ports and their networks.
#[derive(Debug, Default)]
pub(crate) struct HttpsGuard {
    restricted: HashMap<String, Vec<IpNet>>,
}

impl HttpsGuard {
    pub(crate) fn new<'a>(ports: impl IntoIterator<Item = &'a TcpPort>) -> Self {
        let mut restricted: HashMap<String, Option<Vec<IpNet>>> = HashMap::new();
        for port in ports {
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
    }
}
