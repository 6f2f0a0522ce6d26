//! The edge's Prometheus metrics, registered into an explicit registry (no globals).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use portless_proto::ErrorClass;

/// Label: HTTP status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The status code.
    pub status_code: u16,
}

/// Label: error class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// The class name (`tunnel_down`, `origin_unreachable`...).
    pub class: &'static str,
}

/// Label: tunnel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TunnelLabel {
    /// The tunnel's name.
    pub tunnel: String,
}

/// Label: tunnel transport.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    /// `quic` or `tcp`.
    pub protocol: &'static str,
}

/// Label: registration outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `registered`, `unauthorized`, `unavailable`, `shutting_down`, `malformed`.
    pub outcome: &'static str,
}

/// Label: a public UDP port, by the hostname it maps to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UdpPortLabel {
    /// The port's hostname.
    pub hostname: String,
}

/// Labels: a public UDP port and the direction of its traffic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UdpDirectionLabel {
    /// The port's hostname.
    pub hostname: String,
    /// `in` (from clients) or `out` (to clients).
    pub direction: &'static str,
}

/// Labels: a public UDP port and why a datagram was dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UdpDropLabel {
    /// The port's hostname.
    pub hostname: String,
    /// `not_allowed` (allow-list), `flow_limit` (max_flows reached), `queue_full`,
    /// `no_route`, `tunnel_down`, `refused` (the connector did not open the flow).
    pub reason: &'static str,
}

/// Labels: how UDP datagrams crossed the tunnel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UdpPathLabel {
    /// `to_connector` or `from_connector`.
    pub direction: &'static str,
    /// `quic_datagram` or `stream`.
    pub path: &'static str,
}

/// Label: raw TCP connections (TLS passthrough, public TCP ports).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RawLabel {
    /// `passthrough` or `tcp_port`.
    pub kind: &'static str,
}

/// Label: why a raw connection was closed before any byte reached an origin.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RawRefusedLabel {
    /// `passthrough` or `tcp_port`.
    pub kind: &'static str,
    /// `allow_list`, `no_route`, `tunnel_down`, or the connector's error class.
    pub reason: &'static str,
}

/// Label: direction of raw bytes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RawBytesLabel {
    /// `passthrough` or `tcp_port`.
    pub kind: &'static str,
    /// `to_origin` or `to_client`.
    pub direction: &'static str,
}

/// Everything the edge counts.
#[derive(Clone, Default)]
pub struct EdgeMetrics {
    /// Public requests received.
    pub requests: Counter,
    /// Requests that ended in an error page, by class.
    pub errors: Family<ClassLabel, Counter>,
    /// Responses sent, by status code.
    pub responses: Family<CodeLabel, Counter>,
    /// Requests in flight (until their response body ends).
    pub concurrent: Gauge,
    /// Registered (not draining) tunnel connections, by tunnel.
    pub ha_connections: Family<TunnelLabel, Gauge>,
    /// Tunnel connections accepted, by transport.
    pub tunnel_connections: Family<ProtocolLabel, Counter>,
    /// Registration attempts, by outcome.
    pub registrations: Family<OutcomeLabel, Counter>,
    /// Requests retried on another connection after theirs failed before an answer.
    pub retries: Counter,
    /// UDP flows open now, by port.
    pub udp_flows_active: Family<UdpPortLabel, Gauge>,
    /// UDP flows opened, by port.
    pub udp_flows: Family<UdpPortLabel, Counter>,
    /// UDP datagrams relayed, by port and direction.
    pub udp_datagrams: Family<UdpDirectionLabel, Counter>,
    /// UDP payload bytes relayed, by port and direction.
    pub udp_bytes: Family<UdpDirectionLabel, Counter>,
    /// UDP datagrams dropped, by port and reason.
    pub udp_dropped: Family<UdpDropLabel, Counter>,
    /// UDP datagrams through tunnels, by direction and path (QUIC datagram or stream).
    pub udp_tunnel_datagrams: Family<UdpPathLabel, Counter>,
    /// Raw TCP connections accepted (passthrough, public TCP ports), by kind.
    pub raw_connections: Family<RawLabel, Counter>,
    /// Raw TCP connections closed before reaching an origin, by kind and reason.
    pub raw_refused: Family<RawRefusedLabel, Counter>,
    /// Raw TCP bytes relayed, by kind and direction.
    pub raw_bytes: Family<RawBytesLabel, Counter>,
}

impl EdgeMetrics {
    /// Creates the metrics and registers them under `portless_edge_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let edge = registry.sub_registry_with_prefix("portless_edge");
        edge.register(
            "requests",
            "Public requests received",
            metrics.requests.clone(),
        );
        edge.register(
            "request_errors",
            "Requests answered with an error page, by class",
            metrics.errors.clone(),
        );
        edge.register(
            "responses_by_code",
            "Responses sent, by status code",
            metrics.responses.clone(),
        );
        edge.register(
            "concurrent_requests",
            "Requests in flight",
            metrics.concurrent.clone(),
        );
        edge.register(
            "ha_connections",
            "Registered (not draining) tunnel connections, by tunnel",
            metrics.ha_connections.clone(),
        );
        edge.register(
            "tunnel_connections_accepted",
            "Tunnel connections accepted, by transport",
            metrics.tunnel_connections.clone(),
        );
        edge.register(
            "registrations",
            "Tunnel registration attempts, by outcome",
            metrics.registrations.clone(),
        );
        edge.register(
            "request_retries",
            "Requests retried on another tunnel connection before any answer",
            metrics.retries.clone(),
        );
        edge.register(
            "udp_flows_active",
            "UDP flows open now, by public port hostname",
            metrics.udp_flows_active.clone(),
        );
        edge.register(
            "udp_flows",
            "UDP flows opened, by public port hostname",
            metrics.udp_flows.clone(),
        );
        edge.register(
            "udp_datagrams",
            "UDP datagrams relayed, by public port hostname and direction (in, out)",
            metrics.udp_datagrams.clone(),
        );
        edge.register(
            "udp_bytes",
            "UDP payload bytes relayed, by public port hostname and direction (in, out)",
            metrics.udp_bytes.clone(),
        );
        edge.register(
            "udp_dropped",
            "UDP datagrams dropped, by public port hostname and reason",
            metrics.udp_dropped.clone(),
        );
        edge.register(
            "udp_tunnel_datagrams",
            "UDP datagrams through tunnels, by direction and path (quic_datagram, stream)",
            metrics.udp_tunnel_datagrams.clone(),
        );
        edge.register(
            "raw_connections",
            "Raw TCP connections accepted (TLS passthrough, public TCP ports), by kind",
            metrics.raw_connections.clone(),
        );
        edge.register(
            "raw_refused",
            "Raw TCP connections closed before reaching an origin, by kind and reason",
            metrics.raw_refused.clone(),
        );
        edge.register(
            "raw_bytes",
            "Raw TCP bytes relayed, by kind and direction",
            metrics.raw_bytes.clone(),
        );
        for class in ErrorClass::ALL {
            // Pre-create so dashboards see zeros rather than missing series.
            let _ = metrics.errors.get_or_create(&ClassLabel {
                class: class.as_str(),
            });
        }
        metrics
    }

    /// Counts a raw connection of `kind` refused for `reason`.
    pub(crate) fn raw_refused(&self, kind: &'static str, reason: &'static str) {
        self.raw_refused
            .get_or_create(&RawRefusedLabel { kind, reason })
            .inc();
    }

    /// The byte counters of a raw connection of `kind`.
    pub(crate) fn raw_bytes(&self, kind: &'static str) -> crate::raw::ByteCounters {
        let counter = |direction| {
            self.raw_bytes
                .get_or_create(&RawBytesLabel { kind, direction })
                .clone()
        };
        crate::raw::ByteCounters {
            to_origin: counter("to_origin"),
            to_client: counter("to_client"),
        }
    }

    /// Counts one error of `class`.
    pub fn error(&self, class: ErrorClass) {
        self.errors
            .get_or_create(&ClassLabel {
                class: class.as_str(),
            })
            .inc();
    }
}
