//! The egress guard: the connector dials only the origins its rules name.
//!
//! A public app behind the tunnel can be tricked into making the connector fetch something
//! its rules never named (a redirect, a DNS answer that changed, a name that points at cloud
//! metadata). The guard sits in the one place every origin dial passes through, the name
//! resolution: hyper's connector asks [`EgressResolver`] for addresses, and gets back only
//! the addresses this rule may reach. The addresses checked are the addresses dialed; a
//! name is resolved once per dial, so an answer cannot change between check and connect.
//!
//! Every address is first reduced to the IPv4 address it embeds, if any (IPv4-mapped
//! `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`),
//! then put in one [`AddressClass`]. The policy ([`NamedHost::permits`]):
//!
//! * a public address is always allowed;
//! * any address is allowed when the rule's host *is* that IP literal;
//! * a loopback address is allowed through `localhost` and `*.localhost` names;
//! * private (RFC 1918), unique-local and CGNAT addresses are allowed through any hostname
//!   the operator wrote (Docker and LAN service names keep working);
//! * link-local, cloud metadata, unspecified, multicast/broadcast and reserved addresses
//!   are never allowed through a name.
//!
//! Services whose destination the *client* chooses (`bastion`, `socks-proxy`) use the
//! stricter policy of `strict`: `ipRules` first, then public addresses only.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;
use tokio::net::TcpStream;
use tracing::{debug, warn};

// === AddressClass ===

/// What an address reaches, for the egress policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Anything on the internet.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7` (and the deprecated site-local `fec0::/10`).
    UniqueLocal,
    /// Carrier-grade NAT, `100.64/10`.
    Cgnat,
    /// Cloud instance metadata: `169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`.
    Metadata,
    /// `0.0.0.0/8`, `::` (Linux connects "nowhere" to the local host).
    Unspecified,
    /// `224/4`, `255.255.255.255`, `ff00::/8`.
    Multicast,
    /// `240/4`: reserved, never a real origin.
    Reserved,
}

impl AddressClass {
    /// Stable snake_case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link_local",
            Self::UniqueLocal => "unique_local",
            Self::Cgnat => "cgnat",
            Self::Metadata => "metadata",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
        }
    }

    /// Classifies `ip`, looking through IPv6 forms that embed an IPv4 address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => match embedded_v4(v6) {
                Some(v4) => classify_v4(v4),
                None => classify_v6(v6),
            },
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, _, _] = ip.octets();
    // Metadata first: those addresses sit inside the link-local and CGNAT ranges.
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return AddressClass::Metadata;
    }
    match (a, b) {
        (0, _) => AddressClass::Unspecified,
        (127, _) => AddressClass::Loopback,
        (10, _) | (192, 168) => AddressClass::Private,
        (172, 16..=31) => AddressClass::Private,
        (100, 64..=127) => AddressClass::Cgnat,
        (169, 254) => AddressClass::LinkLocal,
        (224..=239, _) => AddressClass::Multicast,
        _ if ip.is_broadcast() => AddressClass::Multicast,
        (240..=255, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    // Metadata before unique-local: AWS's IPv6 metadata address is a ULA.
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return AddressClass::Metadata;
    }
    let first = ip.segments()[0];
    match first {
        0xfc00..=0xfdff => AddressClass::UniqueLocal,
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfec0..=0xfeff => AddressClass::UniqueLocal,
        0xff00..=0xffff => AddressClass::Multicast,
        _ => AddressClass::Public,
    }
}

/// The IPv4 address an IPv6 address stands for, when it is one of the forms that reach an
/// IPv4 host: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`)
/// or 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

// === NamedHost ===

/// A rule's origin host, as the egress policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NamedHost {
    /// The rule names an IP address.
    Literal(IpAddr),
    /// `localhost` or `*.localhost` (RFC 6761): may reach loopback.
    Localhost(String),
    /// Any other hostname the operator wrote.
    Name(String),
}

impl NamedHost {
    /// From the host part of a service URL (IPv6 literals with or without brackets).
    pub(crate) fn parse(host: &str) -> Self {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Self::Literal(ip);
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            Self::Localhost(name)
        } else {
            Self::Name(name)
        }
    }

    /// Whether a dial of this rule may reach `ip`.
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        if let Self::Literal(named) = self {
            // Exactly the address written: the operator named it, whatever its class.
            return *named == ip;
        }
        match AddressClass::of(ip) {
            AddressClass::Public => true,
            AddressClass::Private | AddressClass::UniqueLocal | AddressClass::Cgnat => true,
            AddressClass::Loopback => matches!(self, Self::Localhost(_)),
            AddressClass::LinkLocal
            | AddressClass::Metadata
            | AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Reserved => false,
        }
    }
}

impl fmt::Display for NamedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal(ip) => write!(f, "{ip}"),
            Self::Localhost(name) | Self::Name(name) => f.write_str(name),
        }
    }
}

// === errors ===

/// Why an origin dial did not get an address.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EgressError {
    /// Every address the name resolved to is one this rule may not reach.
    #[error(
        "egress denied: rule #{rule} names {host}, which resolved only to addresses it may not reach ({})",
        list(.addresses)
    )]
    Denied {
        /// 1-based rule number.
        rule: usize,
        /// The rule's origin host.
        host: String,
        /// The refused addresses with their classes.
        addresses: Vec<(IpAddr, AddressClass)>,
    },
    /// The name did not resolve.
    #[error("could not resolve {host}: {source}")]
    Lookup {
        /// The rule's origin host.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
}

fn list(addresses: &[(IpAddr, AddressClass)]) -> String {
    let parts: Vec<String> = addresses
        .iter()
        .map(|(ip, class)| format!("{ip} {class}"))
        .collect();
    parts.join(", ")
}

// === EgressPolicy ===

/// The connector's egress settings: how names are resolved before the policy checks them.
///
/// The default resolves through the system resolver. [`EgressPolicy::with_hosts`] adds
/// static answers that take precedence, so tests can make a name point anywhere without
/// touching `/etc/hosts`.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl EgressPolicy {
    /// The policy with static answers for some names (lowercase, no trailing dot); a name in
    /// the map is never sent to the system resolver.
    pub fn with_hosts<N: Into<String>>(
        mut self,
        hosts: impl IntoIterator<Item = (N, Vec<IpAddr>)>,
    ) -> Self {
        let map = Arc::make_mut(&mut self.hosts);
        for (name, addresses) in hosts {
            let name: String = name.into();
            map.insert(name.trim_end_matches('.').to_ascii_lowercase(), addresses);
        }
        self
    }

    /// Every address `name` (lowercase, no trailing dot) resolves to: the static answer when
    /// the map has one, else the system resolver's, unchecked.
    pub(crate) async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, EgressError> {
        match self.hosts.get(name) {
            Some(addresses) => Ok(addresses.clone()),
            None => Ok(tokio::net::lookup_host((name, 0))
                .await
                .map_err(|source| EgressError::Lookup {
                    host: name.to_owned(),
                    source,
                })?
                .map(|addr| addr.ip())
                .collect()),
        }
    }

    /// Resolves `host` once and keeps the addresses rule number `rule` may reach. A refusal
    /// is logged here, once, with every refused address.
    pub(crate) async fn resolve(
        &self,
        rule: usize,
        host: &NamedHost,
    ) -> Result<Vec<IpAddr>, EgressError> {
        let name = match host {
            NamedHost::Literal(ip) => return Ok(vec![*ip]),
            NamedHost::Localhost(name) | NamedHost::Name(name) => name.as_str(),
        };
        let resolved = self.lookup(name).await?;
        let (allowed, refused): (Vec<IpAddr>, Vec<IpAddr>) =
            resolved.into_iter().partition(|ip| host.permits(*ip));
        if allowed.is_empty() && !refused.is_empty() {
            let addresses: Vec<(IpAddr, AddressClass)> = refused
                .iter()
                .map(|ip| (*ip, AddressClass::of(*ip)))
                .collect();
            warn!(
                rule,
                host = %host,
                address = %list(&addresses),
                "egress denied: the rule's origin resolved only to addresses it may not reach"
            );
            return Err(EgressError::Denied {
                rule,
                host: host.to_string(),
                addresses,
            });
        }
        if !refused.is_empty() {
            // Only the allowed addresses are dialed; the others are worth a trace, not a warning.
            debug!(rule, host = %host, refused = ?refused, "egress guard dropped some addresses");
        }
        Ok(allowed)
    }
}

// === raw TCP ===

/// Why a raw TCP origin could not be dialed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TcpDialError {
    /// The guard refused, or the name did not resolve.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// No address accepted within the connect timeout.
    #[error("connecting to {host}:{port} timed out")]
    TimedOut {
        /// The rule's origin host.
        host: String,
        /// The port dialed.
        port: u16,
    },
    /// Every address refused the connection (the last error is kept).
    #[error("connecting to {host}:{port} failed: {source}")]
    Connect {
        /// The rule's origin host.
        host: String,
        /// The port dialed.
        port: u16,
        /// The last address's error.
        #[source]
        source: io::Error,
    },
}

impl EgressPolicy {
    /// Opens a raw TCP connection to `host:port` for rule number `rule` (1-based), through
    /// the guard: the addresses dialed are the addresses checked, one after another, all
    /// within `timeout`.
    pub(crate) async fn connect_tcp(
        &self,
        rule: usize,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpStream, TcpDialError> {
        let named = NamedHost::parse(host);
        let attempt = async {
            let addresses = self.resolve(rule, &named).await?;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
            for ip in addresses {
                match TcpStream::connect(SocketAddr::new(ip, port)).await {
                    Ok(stream) => {
                        // Interactive protocols (ssh, rdp) suffer from Nagle's delays.
                        let _ = stream.set_nodelay(true);
                        return Ok(stream);
                    }
                    Err(e) => last = e,
                }
            }
            Err(TcpDialError::Connect {
                host: named.to_string(),
                port,
                source: last,
            })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(TcpDialError::TimedOut {
                    host: named.to_string(),
                    port,
                })
            })
    }
}

// === EgressResolver ===

/// hyper's resolver for one origin: resolves through the policy, so hyper only ever dials
/// addresses the rule may reach.
#[derive(Clone)]
pub(crate) struct EgressResolver {
    policy: EgressPolicy,
    rule: usize,
    host: Arc<NamedHost>,
}

impl EgressResolver {
    /// For the origin `host` of rule number `rule` (1-based).
    pub(crate) fn new(policy: EgressPolicy, rule: usize, host: &str) -> Self {
        Self {
            policy,
            rule,
            host: Arc::new(NamedHost::parse(host)),
        }
    }
}

impl tower_service::Service<Name> for EgressResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = EgressError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, EgressError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), EgressError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // hyper asks for the URI's host, which is built from this rule's origin: the
            // rule's own host is what gets resolved and checked, never a name from a request.
            let addresses = this.policy.resolve(this.rule, &this.host).await?;
            // hyper fills in the port from the URI.
            let addrs: Vec<SocketAddr> = addresses
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            Ok(addrs.into_iter())
        })
    }
}

/// Finds an egress refusal in an error's source chain.
pub(crate) fn denied_in<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a EgressError> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(egress @ EgressError::Denied { .. }) = current.downcast_ref::<EgressError>() {
            return Some(egress);
        }
        cause = current.source();
    }
    None
}

mod strict;
pub(crate) use strict::{ChosenDialError, Destination, DestinationError};

#[cfg(test)]
mod tests;
