//! `ports:`: public raw TCP and UDP ports, each carried through the tunnel of one hostname
//! (docs/tcp-udp-ports.md). One list holds both protocols; each entry says which.

use std::collections::HashSet;
use std::net::SocketAddr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::{Checker, Text};
use super::keys::Section;
use crate::ports::{
    DEFAULT_TCP_MAX_CONNECTIONS, DEFAULT_UDP_IDLE_TIMEOUT, DEFAULT_UDP_MAX_FLOWS, TcpPort, UdpPort,
};

/// Most flows one UDP port, or connections one TCP port, may be configured for.
const MAX_FLOWS_LIMIT: usize = 1_000_000;

/// One entry of `ports:` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawPort {
    pub listen: Option<Text>,
    pub protocol: Option<Text>,
    pub hostname: Option<Text>,
    pub allow: Option<Spanned<Vec<Text>>>,
    pub proxy_protocol: Option<Text>,
    pub idle_timeout: Option<Text>,
    pub max_flows: Option<Text>,
    pub max_connections: Option<Text>,
}

/// The keys of one entry.
pub(crate) static SECTION: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawPort>,
    children: &[],
};

/// The validated `ports:` list, split by protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ports {
    pub tcp: Vec<TcpPort>,
    pub udp: Vec<UdpPort>,
}

/// What one protocol's keys add to an entry.
enum Extra {
    /// `proxy_protocol`, `idle_timeout` (none by default), `max_connections`.
    Tcp(bool, Option<std::time::Duration>, usize),
    /// `idle_timeout`, `max_flows`.
    Udp(std::time::Duration, usize),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Protocol {
    Tcp,
    Udp,
}

pub(crate) fn validate(raw: &[Spanned<RawPort>], ck: &mut Checker) -> Ports {
    let mut ports = Ports::default();
    let mut seen: HashSet<(Protocol, SocketAddr)> = HashSet::new();
    for (i, entry) in raw.iter().enumerate() {
        let label = format!("ports entry #{}", i + 1);
        let key = |name: &str| format!("`{name}` of {label}");
        let port = &entry.value;
        let missing = |ck: &mut Checker, name: &str, fix: &str| {
            ck.invalid(entry, &label, format!("`{name}` is missing"), fix);
        };
        let protocol = match &port.protocol {
            None => {
                missing(ck, "protocol", "add `protocol: tcp` or `protocol: udp`");
                None
            }
            Some(text) => match text.value.trim().to_ascii_lowercase().as_str() {
                "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                other => {
                    let problem = format!("unknown protocol `{other}`");
                    ck.invalid(text, &key("protocol"), problem, "write `tcp` or `udp`");
                    None
                }
            },
        };
        let listen = match &port.listen {
            None => {
                missing(ck, "listen", "add `listen: 0.0.0.0:PORT`");
                None
            }
            Some(text) => ck.listen(text, &key("listen")),
        };
        let hostname = match &port.hostname {
            None => {
                let fix = "add `hostname: NAME`: the route (tunnel) and the connector's \
                           ingress rule that serve this port";
                missing(ck, "hostname", fix);
                None
            }
            Some(text) => ck.hostname(text, &key("hostname")),
        };
        let allow = port
            .allow
            .as_ref()
            .map(|list| {
                if list.value.is_empty() {
                    ck.invalid(
                        list,
                        &key("allow"),
                        "the allow-list is empty, which would be read as \"everyone\"",
                        "list the client networks to admit, or remove `allow` to admit every \
                         client",
                    );
                }
                list.value
                    .iter()
                    .filter_map(|text| ck.network(text, &key("allow")))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let Some(protocol) = protocol else { continue };
        // The keys of one protocol are checked even when `listen` or `hostname` is wrong, so
        // every problem of the entry is reported at once.
        let extra = match protocol {
            Protocol::Tcp => {
                if let Some(text) = &port.max_flows {
                    ck.invalid(
                        text,
                        &key("max_flows"),
                        "`max_flows` applies to UDP ports only",
                        "write `max_connections` to cap a TCP port's connections",
                    );
                }
                let proxy = match &port.proxy_protocol {
                    Some(text) => proxy_protocol(text, &key("proxy_protocol"), ck),
                    None => Some(false),
                };
                let idle_timeout = match &port.idle_timeout {
                    Some(text) => ck.duration(text, &key("idle_timeout")).map(Some),
                    None => Some(None),
                };
                let max_connections = match &port.max_connections {
                    Some(text) => ck.count(text, &key("max_connections"), 1, MAX_FLOWS_LIMIT),
                    None => Some(DEFAULT_TCP_MAX_CONNECTIONS),
                };
                match (proxy, idle_timeout, max_connections) {
                    (Some(p), Some(i), Some(m)) => Some(Extra::Tcp(p, i, m)),
                    _ => None,
                }
            }
            Protocol::Udp => {
                if let Some(text) = &port.proxy_protocol {
                    ck.invalid(
                        text,
                        &key("proxy_protocol"),
                        "the PROXY protocol header is sent on TCP ports only",
                        "remove `proxy_protocol` from this UDP port",
                    );
                }
                if let Some(text) = &port.max_connections {
                    ck.invalid(
                        text,
                        &key("max_connections"),
                        "`max_connections` applies to TCP ports only",
                        "write `max_flows` to cap a UDP port's flows",
                    );
                }
                let idle_timeout = match &port.idle_timeout {
                    Some(text) => ck.duration(text, &key("idle_timeout")),
                    None => Some(DEFAULT_UDP_IDLE_TIMEOUT),
                };
                let max_flows = match &port.max_flows {
                    Some(text) => ck.count(text, &key("max_flows"), 1, MAX_FLOWS_LIMIT),
                    None => Some(DEFAULT_UDP_MAX_FLOWS),
                };
                idle_timeout.zip(max_flows).map(|(i, m)| Extra::Udp(i, m))
            }
        };
        let (Some(listen), Some(hostname), Some(extra)) = (listen, hostname, extra) else {
            continue;
        };
        if let Some(text) = &port.listen
            && !seen.insert((protocol, listen))
        {
            let problem = format!("{listen} is listed twice for the same protocol");
            let fix = "give each port its own address";
            ck.invalid(text, &key("listen"), problem, fix);
            continue;
        }
        match extra {
            Extra::Tcp(proxy_protocol, idle_timeout, max_connections) => ports.tcp.push(TcpPort {
                listen,
                hostname,
                allow,
                proxy_protocol,
                idle_timeout,
                max_connections,
            }),
            Extra::Udp(idle_timeout, max_flows) => ports.udp.push(UdpPort {
                listen,
                hostname,
                allow,
                idle_timeout,
                max_flows,
            }),
        }
    }
    ports
}

/// `v2` turns the header on; `off`/`false`/`none` leave it off.
fn proxy_protocol(text: &Text, key: &str, ck: &mut Checker) -> Option<bool> {
    match text.value.trim().to_ascii_lowercase().as_str() {
        "v2" | "2" => Some(true),
        "off" | "false" | "none" | "no" => Some(false),
        "v1" | "1" => {
            ck.invalid(
                text,
                key,
                "PROXY protocol v1 (text) is not supported",
                "write `proxy_protocol: v2` (most servers that read v1 read v2 too)",
            );
            None
        }
        other => {
            let problem = format!("`{other}` is not a PROXY protocol version");
            ck.invalid(
                text,
                key,
                problem,
                "write `proxy_protocol: v2`, or remove the key",
            );
            None
        }
    }
}
