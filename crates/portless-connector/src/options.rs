//! Connector settings.

use std::net::IpAddr;
use std::time::Duration;

use portless_proto::TunnelSecret;
use portless_transport::{DialTarget, TransportConfig};
use uuid::Uuid;

use crate::egress::EgressPolicy;

/// Which transport to use toward the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// QUIC, falling back to TCP when UDP is blocked, probing QUIC again later.
    Auto,
    /// QUIC only.
    Quic,
    /// TLS over TCP only.
    Tcp,
}

/// Everything a connector needs besides its rules and TLS config.
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    /// The tunnel served.
    pub tunnel_id: Uuid,
    /// Its secret.
    pub secret: TunnelSecret,
    /// The edge to dial.
    pub edge: DialTarget,
    /// Transport choice.
    pub protocol: ProtocolChoice,
    /// Connections kept to the edge.
    pub ha_connections: u8,
    /// Time in-flight requests get on shutdown.
    pub grace_period: Duration,
    /// First reconnect delay ceiling.
    pub backoff_base: Duration,
    /// Reconnect delay cap.
    pub backoff_cap: Duration,
    /// While on the TCP fallback, how often QUIC is tried again.
    pub quic_probe_interval: Duration,
    /// A connection whose edge is silent this long is dropped and redialed.
    pub dead_after: Duration,
    /// Transport tuning.
    pub transport: TransportConfig,
    /// Local address to dial from.
    pub bind: Option<IpAddr>,
    /// How origin names are resolved before the egress guard checks them (static answers
    /// for tests).
    pub egress: EgressPolicy,
}

impl ConnectorOptions {
    /// Defaults of the reference format: 4 connections, 30 s grace, backoff from 1 s to
    /// 2^5 s, QUIC re-probed every 5 minutes.
    pub fn new(tunnel_id: Uuid, secret: TunnelSecret, edge: DialTarget) -> Self {
        Self {
            tunnel_id,
            secret,
            edge,
            protocol: ProtocolChoice::Auto,
            ha_connections: 4,
            grace_period: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(32),
            quic_probe_interval: Duration::from_secs(300),
            dead_after: Duration::from_secs(5),
            transport: TransportConfig::default(),
            bind: None,
            egress: EgressPolicy::default(),
        }
    }
}
