//! A UDP port's metric handles, looked up once when the port starts.
//!
//! Every datagram is counted; looking its series up in the metric families would hash a
//! label (and clone the hostname into it) under the family's lock per datagram. The handles
//! share their values with the families, so the metrics endpoint sees the same numbers.

use portless_transport::FlowPath;
use prometheus_client::metrics::counter::Counter;

use crate::metrics::{EdgeMetrics, UdpDirectionLabel, UdpDropLabel, UdpPathLabel};

/// Why a datagram from a client was dropped (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DropReason {
    /// The client's address is outside the port's allow-list.
    NotAllowed,
    /// The port already has `max_flows` flows.
    FlowLimit,
    /// The flow's queue (toward the tunnel or toward the client) was full.
    QueueFull,
    /// No route maps the port's hostname to a tunnel.
    NoRoute,
    /// The tunnel has no connection, or it failed while the flow opened.
    TunnelDown,
    /// The connector did not open the flow.
    Refused,
}

impl DropReason {
    const ALL: [Self; 6] = [
        Self::NotAllowed,
        Self::FlowLimit,
        Self::QueueFull,
        Self::NoRoute,
        Self::TunnelDown,
        Self::Refused,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::NotAllowed => "not_allowed",
            Self::FlowLimit => "flow_limit",
            Self::QueueFull => "queue_full",
            Self::NoRoute => "no_route",
            Self::TunnelDown => "tunnel_down",
            Self::Refused => "refused",
        }
    }
}

/// One direction's datagram and byte counters.
struct Traffic {
    datagrams: Counter,
    bytes: Counter,
}

/// The counters of one public UDP port.
pub(super) struct PortCounters {
    /// From clients.
    inbound: Traffic,
    /// To clients.
    outbound: Traffic,
    /// By [`DropReason`], in [`DropReason::ALL`]'s order.
    dropped: [Counter; DropReason::ALL.len()],
    /// Through the tunnel, by direction then path: `[to, from][datagram, stream]`.
    tunnel: [[Counter; 2]; 2],
}

impl PortCounters {
    /// Resolves (and so creates, at zero) every series of the port `hostname`.
    pub(super) fn new(metrics: &EdgeMetrics, hostname: &str) -> Self {
        let traffic = |direction| {
            let label = UdpDirectionLabel {
                hostname: hostname.to_owned(),
                direction,
            };
            Traffic {
                datagrams: metrics.udp_datagrams.get_or_create(&label).clone(),
                bytes: metrics.udp_bytes.get_or_create(&label).clone(),
            }
        };
        let dropped = DropReason::ALL.map(|reason| {
            let label = UdpDropLabel {
                hostname: hostname.to_owned(),
                reason: reason.as_str(),
            };
            metrics.udp_dropped.get_or_create(&label).clone()
        });
        let tunnel = ["to_connector", "from_connector"].map(|direction| {
            [FlowPath::Datagram, FlowPath::Stream].map(|path| {
                let label = UdpPathLabel {
                    direction,
                    path: path.as_str(),
                };
                metrics.udp_tunnel_datagrams.get_or_create(&label).clone()
            })
        });
        Self {
            inbound: traffic("in"),
            outbound: traffic("out"),
            dropped,
            tunnel,
        }
    }

    /// Counts one datagram of `bytes` from a client.
    pub(super) fn received(&self, bytes: usize) {
        self.inbound.count(bytes);
    }

    /// Counts one datagram of `bytes` sent to a client.
    pub(super) fn sent(&self, bytes: usize) {
        self.outbound.count(bytes);
    }

    /// Counts `count` datagrams dropped for `reason`.
    pub(super) fn dropped(&self, reason: DropReason, count: u64) {
        // The discriminants are the positions in `ALL`.
        self.dropped[reason as usize].inc_by(count);
    }

    /// Counts one datagram through the tunnel, toward the connector or from it.
    pub(super) fn tunnel(&self, to_connector: bool, path: FlowPath) {
        let direction = usize::from(!to_connector);
        let path = match path {
            FlowPath::Datagram => 0,
            FlowPath::Stream => 1,
        };
        self.tunnel[direction][path].inc();
    }
}

impl Traffic {
    fn count(&self, bytes: usize) {
        self.datagrams.inc();
        self.bytes.inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }
}
