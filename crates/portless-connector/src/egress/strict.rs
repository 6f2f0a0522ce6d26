//! The strict egress policy, for destinations the client chooses (`bastion`, `socks-proxy`).
//!
//! With a URL service the operator named the origin, so the guard only has to stop names
//! that drift. Here the visitor names it, so nothing is reachable by default except the
//! public internet. For each address a destination resolves to ([`check`]):
//!
//! 1. unspecified (`0.0.0.0`, `::`), multicast/broadcast and reserved addresses are refused
//!    whatever the rules say: none is a real TCP destination, and Linux connects the
//!    unspecified address to the local host, which would dodge a rule denying loopback;
//! 2. the rule's `ipRules` entries are tried in order, the first whose prefix and ports
//!    cover the address decides (`allow: true` or `false`). Entries are matched against the
//!    address *reached*: an IPv6 form embedding an IPv4 address (`::ffff:127.0.0.1`, NAT64,
//!    6to4) is matched as that IPv4 address, so `::/0` cannot open IPv4 loopback and a
//!    deny entry for `10.0.0.0/8` also covers `::ffff:10.0.0.1`;
//! 3. a cloud metadata address is allowed only by an entry naming that single address
//!    (`/32` or `/128`): a wide `0.0.0.0/0` or `169.254.0.0/16` allow is a common way to say
//!    "the LAN", not "the instance's credentials";
//! 4. no entry matched: a public address is allowed, every other class (loopback, private,
//!    link-local, unique-local, CGNAT, metadata) is refused.
//!
//! A name is resolved once; the addresses checked are the addresses dialed.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portless_ingress::IpRule;
use portless_proto::ErrorClass;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::{AddressClass, EgressError, EgressPolicy, embedded_v4};

/// Longest domain name a destination may carry (RFC 1035, and SOCKS5's one-byte length).
const MAX_NAME: usize = 253;

// === Destination ===

/// Where the client asked to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A domain name (lowercase, no trailing dot) and port, resolved by the connector.
    Name(String, u16),
}

/// Why a destination the client sent is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DestinationError {
    /// Nothing, or no `:port`, or a port that is not 1–65535.
    #[error("'{0}' is not host:port with a port from 1 to 65535")]
    NoPort(String),
    /// A host that is neither an IP address nor a DNS name.
    #[error("'{0}' is not a host name or IP address")]
    BadHost(String),
}

impl Destination {
    /// From a host (name, IP address, or IPv6 address in brackets) and a port.
    pub(crate) fn new(host: &str, port: u16) -> Result<Self, DestinationError> {
        if port == 0 {
            return Err(DestinationError::NoPort(format!("{host}:{port}")));
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Self::Ip(SocketAddr::new(ip, port)));
        }
        let name = bare.strip_suffix('.').unwrap_or(bare).to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        };
        if name.is_empty() || name.len() > MAX_NAME || !name.split('.').all(label_ok) {
            return Err(DestinationError::BadHost(host.to_owned()));
        }
        Ok(Self::Name(name, port))
    }

    /// From `host:port` (`[v6]:port` for IPv6).
    pub(crate) fn parse_host_port(value: &str) -> Result<Self, DestinationError> {
        let no_port = || DestinationError::NoPort(value.to_owned());
        let (host, port) = value.rsplit_once(':').ok_or_else(no_port)?;
        // A bare IPv6 address has colons of its own: it must come in brackets with a port.
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(no_port());
        }
        let port: u16 = port.parse().map_err(|_| no_port())?;
        Self::new(host, port)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(addr) => write!(f, "{addr}"),
            Self::Name(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

// === the policy ===

/// Why the strict policy refused an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Unspecified, multicast or reserved: never dialed.
    Never(AddressClass),
    /// `ipRules` entry number N (1-based) denies it.
    DeniedByRule(usize),
    /// A metadata address, matched only by a wider allow entry (number N, 1-based).
    MetadataNeedsExactRule(usize),
    /// Not public, and no `ipRules` entry allows it.
    NotAllowed(AddressClass),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never(class) => write!(f, "{class}, never dialed"),
            Self::DeniedByRule(n) => write!(f, "denied by ipRules entry #{n}"),
            Self::MetadataNeedsExactRule(n) => write!(
                f,
                "metadata, allowed only by an ipRules entry for that single address (entry #{n} is wider)"
            ),
            Self::NotAllowed(class) => write!(f, "{class}, no ipRules entry allows it"),
        }
    }
}

/// Whether a client-chosen connection to `ip:port` may be dialed under `ip_rules`.
pub(crate) fn check(ip_rules: &[IpRule], ip: IpAddr, port: u16) -> Result<(), Refusal> {
    let class = AddressClass::of(ip);
    if matches!(
        class,
        AddressClass::Unspecified | AddressClass::Multicast | AddressClass::Reserved
    ) {
        return Err(Refusal::Never(class));
    }
    let reached = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    let first = ip_rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule.matches(reached, port));
    match first {
        Some((n, rule)) if !rule.allow => Err(Refusal::DeniedByRule(n + 1)),
        Some((n, rule)) => {
            let single = if reached.is_ipv4() { 32 } else { 128 };
            if class == AddressClass::Metadata && rule.prefix.len() != single {
                Err(Refusal::MetadataNeedsExactRule(n + 1))
            } else {
                Ok(())
            }
        }
        None if class == AddressClass::Public => Ok(()),
        None => Err(Refusal::NotAllowed(class)),
    }
}

// === dialing ===

/// Why a client-chosen destination was not connected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChosenDialError {
    /// Every address of the destination is one the policy refuses.
    #[error("egress denied: rule #{rule} may not reach {destination} ({})", list(.addresses))]
    Refused {
        /// 1-based rule number.
        rule: usize,
        /// The destination as the client sent it.
        destination: String,
        /// The refused addresses and why.
        addresses: Vec<(IpAddr, Refusal)>,
    },
    /// The name did not resolve (or resolved to nothing).
    #[error("could not resolve {host}: {source}")]
    Lookup {
        /// The name.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// No address accepted within the connect timeout.
    #[error("connecting to {destination} timed out")]
    TimedOut {
        /// The destination.
        destination: String,
    },
    /// Every allowed address failed (the last error is kept).
    #[error("connecting to {destination} failed: {source}")]
    Connect {
        /// The destination.
        destination: String,
        /// The last address's error.
        #[source]
        source: io::Error,
    },
}

impl ChosenDialError {
    /// The class the edge's error page and the metrics show.
    pub(crate) fn class(&self) -> ErrorClass {
        match self {
            Self::Refused { .. } => ErrorClass::EgressDenied,
            Self::TimedOut { .. } => ErrorClass::OriginTimeout,
            Self::Lookup { .. } | Self::Connect { .. } => ErrorClass::OriginUnreachable,
        }
    }
}

fn list(addresses: &[(IpAddr, Refusal)]) -> String {
    let parts: Vec<String> = addresses
        .iter()
        .map(|(ip, why)| format!("{ip}: {why}"))
        .collect();
    parts.join(", ")
}

impl EgressPolicy {
    /// Connects to a destination the client chose, for rule number `rule` (1-based) and its
    /// `ipRules`: resolves a name once, dials the allowed addresses in turn, all within
    /// `timeout`. A refusal is logged here, once, with every refused address.
    pub(crate) async fn connect_chosen(
        &self,
        rule: usize,
        ip_rules: &[IpRule],
        destination: &Destination,
        timeout: Duration,
    ) -> Result<TcpStream, ChosenDialError> {
        let attempt = async {
            let (addresses, port) = match destination {
                Destination::Ip(addr) => (vec![addr.ip()], addr.port()),
                Destination::Name(name, port) => {
                    let addresses = self.lookup(name).await.map_err(|e| match e {
                        EgressError::Lookup { host, source } => {
                            ChosenDialError::Lookup { host, source }
                        }
                        // `lookup` only fails to resolve; keep the message if that changes.
                        other => ChosenDialError::Lookup {
                            host: name.clone(),
                            source: io::Error::other(other.to_string()),
                        },
                    })?;
                    (addresses, *port)
                }
            };
            if addresses.is_empty() {
                return Err(ChosenDialError::Lookup {
                    host: destination.to_string(),
                    source: io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
                });
            }
            let mut allowed = Vec::new();
            let mut refused = Vec::new();
            for ip in addresses {
                match check(ip_rules, ip, port) {
                    Ok(()) => allowed.push(ip),
                    Err(why) => refused.push((ip, why)),
                }
            }
            if allowed.is_empty() {
                warn!(
                    rule,
                    destination = %destination,
                    address = %list(&refused),
                    "egress denied: a client-chosen destination is not allowed by the rule's ipRules"
                );
                return Err(ChosenDialError::Refused {
                    rule,
                    destination: destination.to_string(),
                    addresses: refused,
                });
            }
            if !refused.is_empty() {
                debug!(rule, destination = %destination, refused = %list(&refused), "strict egress dropped some addresses");
            }
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address was dialed");
            for ip in allowed {
                match TcpStream::connect(SocketAddr::new(ip, port)).await {
                    Ok(stream) => {
                        // Interactive protocols (ssh) suffer from Nagle's delays.
                        let _ = stream.set_nodelay(true);
                        return Ok(stream);
                    }
                    Err(e) => last = e,
                }
            }
            Err(ChosenDialError::Connect {
                destination: destination.to_string(),
                source: last,
            })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(ChosenDialError::TimedOut {
                    destination: destination.to_string(),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn rule(prefix: &str, ports: &[u16], allow: bool) -> IpRule {
        IpRule {
            prefix: prefix.parse().unwrap_or_else(|e| panic!("{prefix}: {e}")),
            ports: ports.to_vec(),
            allow,
        }
    }

    #[test]
    fn without_rules_only_public_addresses_pass() {
        assert_eq!(check(&[], ip("8.8.8.8"), 443), Ok(()));
        assert_eq!(check(&[], ip("2606:4700::1111"), 443), Ok(()));
        for (addr, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("10.0.0.1", AddressClass::Private),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("fd12::1", AddressClass::UniqueLocal),
            ("100.64.0.1", AddressClass::Cgnat),
            ("169.254.169.254", AddressClass::Metadata),
            ("64:ff9b::a9fe:a9fe", AddressClass::Metadata),
        ] {
            assert_eq!(
                check(&[], ip(addr), 22),
                Err(Refusal::NotAllowed(class)),
                "{addr}"
            );
        }
    }

    #[test]
    fn first_matching_entry_decides_with_ports() {
        let rules = [
            rule("10.0.0.5/32", &[22], true),
            rule("10.0.0.0/8", &[], false),
            rule("10.0.0.0/8", &[22], true),
            rule("8.8.8.0/24", &[], false),
        ];
        assert_eq!(check(&rules, ip("10.0.0.5"), 22), Ok(()));
        assert_eq!(
            check(&rules, ip("10.0.0.5"), 80),
            Err(Refusal::DeniedByRule(2))
        );
        assert_eq!(
            check(&rules, ip("10.0.0.6"), 22),
            Err(Refusal::DeniedByRule(2))
        );
        assert_eq!(
            check(&rules, ip("8.8.8.8"), 53),
            Err(Refusal::DeniedByRule(4))
        );
        assert_eq!(check(&rules, ip("1.1.1.1"), 53), Ok(()));
    }

    #[test]
    fn embedded_ipv4_forms_are_matched_as_ipv4() {
        let allow_v6 = [rule("::/0", &[], true)];
        assert_eq!(
            check(&allow_v6, ip("::ffff:127.0.0.1"), 22),
            Err(Refusal::NotAllowed(AddressClass::Loopback))
        );
        let deny = [rule("203.0.113.0/24", &[], false)];
        assert_eq!(
            check(&deny, ip("::ffff:203.0.113.9"), 80),
            Err(Refusal::DeniedByRule(1))
        );
        let allow = [rule("127.0.0.1/32", &[8080], true)];
        assert_eq!(check(&allow, ip("::ffff:127.0.0.1"), 8080), Ok(()));
    }

    #[test]
    fn unspecified_and_multicast_are_never_dialed_and_metadata_needs_an_exact_entry() {
        let all = [rule("0.0.0.0/0", &[], true), rule("::/0", &[], true)];
        for addr in ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "240.0.0.1"] {
            assert!(
                matches!(check(&all, ip(addr), 80), Err(Refusal::Never(_))),
                "{addr}"
            );
        }
        assert_eq!(
            check(&all, ip("169.254.169.254"), 80),
            Err(Refusal::MetadataNeedsExactRule(1))
        );
        assert_eq!(check(&all, ip("127.0.0.1"), 80), Ok(()));
        let exact = [rule("169.254.169.254/32", &[80], true)];
        assert_eq!(check(&exact, ip("169.254.169.254"), 80), Ok(()));
    }

    #[test]
    fn destinations_parse_host_port_forms() {
        assert_eq!(
            Destination::parse_host_port("127.0.0.1:22"),
            Ok(Destination::Ip(SocketAddr::new(ip("127.0.0.1"), 22)))
        );
        assert_eq!(
            Destination::parse_host_port("[::1]:22"),
            Ok(Destination::Ip(SocketAddr::new(ip("::1"), 22)))
        );
        assert_eq!(
            Destination::parse_host_port("DB.Internal.:5432"),
            Ok(Destination::Name("db.internal".into(), 5432))
        );
        for bad in [
            "db", "db:", "db:0", "db:70000", "::1:22", "a b:22", ":22", "a..b:1",
        ] {
            assert!(Destination::parse_host_port(bad).is_err(), "{bad}");
        }
    }
}
