//! The connector's Prometheus metrics, with names that mirror the incumbent connector's
//! (`*_total_requests`, `*_request_errors`, `*_response_by_code`,
//! `*_concurrent_requests_per_tunnel`, `*_ha_connections`) under `portless_tunnel_`.

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
    /// The class name.
    pub class: &'static str,
}

/// Label: why a request was refused for want of a valid identity assertion.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// E.g. `missing`, `expired`, `bad_signature`, `no_keys`.
    pub reason: &'static str,
}

/// Label: an origin as its rule writes it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabel {
    /// E.g. `http://10.0.0.5:8080`.
    pub origin: String,
}

/// Label: transport.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    /// `quic` or `tcp`.
    pub protocol: &'static str,
}

/// Labels: which way a UDP flow's datagram went and how it crossed the tunnel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UdpPathLabel {
    /// `to_origin` or `to_edge`.
    pub direction: &'static str,
    /// `quic_datagram` or `stream`.
    pub path: &'static str,
}

/// Everything the connector counts.
#[derive(Clone, Default)]
pub struct ConnectorMetrics {
    /// Requests received from the edge.
    pub requests: Counter,
    /// Requests the connector could not serve, by class.
    pub errors: Family<ClassLabel, Counter>,
    /// Responses sent back, by status code.
    pub responses: Family<CodeLabel, Counter>,
    /// Requests in flight.
    pub concurrent: Gauge,
    /// Registered connections (not dialing, not draining).
    pub ha_connections: Gauge,
    /// Successful registrations, by transport.
    pub registrations: Family<ProtocolLabel, Counter>,
    /// Times `auto` fell back from QUIC to TCP.
    pub fallbacks: Counter,
    /// Origin dials the egress guard refused.
    pub egress_denied: Counter,
    /// Requests refused by `originRequest.access` (no valid identity assertion), by reason.
    pub access_denied: Family<ReasonLabel, Counter>,
    /// Health of origins whose rule tracks it: 1 up, 0 down.
    pub origin_up: Family<OriginLabel, Gauge>,
    /// UDP flows being relayed (`udp://` rules).
    pub udp_flows: Gauge,
    /// Datagrams of UDP flows, by direction and tunnel path.
    pub udp_datagrams: Family<UdpPathLabel, Counter>,
    /// Datagrams from the edge dropped because their flow's queue was full.
    pub udp_dropped: Counter,
}

impl ConnectorMetrics {
    /// Creates the metrics and registers them under `portless_tunnel_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let tunnel = registry.sub_registry_with_prefix("portless_tunnel");
        tunnel.register(
            "total_requests",
            "Requests received from the edge",
            metrics.requests.clone(),
        );
        tunnel.register(
            "request_errors",
            "Requests the connector could not serve, by class",
            metrics.errors.clone(),
        );
        tunnel.register(
            "response_by_code",
            "Responses sent back to the edge, by status code",
            metrics.responses.clone(),
        );
        tunnel.register(
            "concurrent_requests_per_tunnel",
            "Requests in flight",
            metrics.concurrent.clone(),
        );
        tunnel.register(
            "ha_connections",
            "Registered connections to the edge",
            metrics.ha_connections.clone(),
        );
        tunnel.register(
            "registrations",
            "Successful registrations, by transport",
            metrics.registrations.clone(),
        );
        tunnel.register(
            "protocol_fallbacks",
            "Times the connector fell back from QUIC to TCP",
            metrics.fallbacks.clone(),
        );
        tunnel.register(
            "egress_denied",
            "Origin dials refused by the egress guard (the address is not one the rule names)",
            metrics.egress_denied.clone(),
        );
        tunnel.register(
            "access_denied",
            "Requests refused for want of a valid identity assertion (originRequest.access), by reason",
            metrics.access_denied.clone(),
        );
        tunnel.register(
            "origin_up",
            "Health of origins whose rule has health checks or several origins (1 up, 0 down)",
            metrics.origin_up.clone(),
        );
        tunnel.register(
            "udp_flows",
            "UDP flows being relayed to udp:// origins",
            metrics.udp_flows.clone(),
        );
        tunnel.register(
            "udp_datagrams",
            "Datagrams of UDP flows, by direction (to_origin, to_edge) and tunnel path (quic_datagram, stream)",
            metrics.udp_datagrams.clone(),
        );
        tunnel.register(
            "udp_dropped",
            "Datagrams from the edge dropped because their UDP flow's queue was full",
            metrics.udp_dropped.clone(),
        );
        for class in ErrorClass::ALL {
            let _ = metrics.errors.get_or_create(&ClassLabel {
                class: class.as_str(),
            });
        }
        metrics
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
