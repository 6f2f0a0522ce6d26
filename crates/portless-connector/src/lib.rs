//! The Portless connector: runs next to the origins, dials out to the edge, serves streams.
//!
//! A connector keeps `ha-connections` outbound connections to its edge (QUIC, or TLS over
//! TCP when UDP is blocked), registers each with the tunnel id and a proof of the secret,
//! and proxies every stream the edge opens to the origin its ingress rules select. It never
//! listens on a public port. Lost connections come back with exponential backoff and full
//! jitter; on SIGTERM it drains (the edge stops sending new requests) and finishes in-flight
//! requests within the grace period.
//!
//! Main types: [`Connector`] (start), [`ConnectorHandle`] (state, shutdown),
//! [`ConnectorOptions`], [`ProtocolChoice`], [`Rules`] (the live, swappable ingress rules),
//! [`ConfigReloader`] (local file reloads), [`ConfigSource`] (local file or edge-pushed rules).
//! [`EgressPolicy`] (how origin names resolve before the egress guard checks them).
//!
//! Layout:
//! * `connector` — start-up, shared state, shutdown;
//! * `options` — settings;
//! * `protocol` — `auto` protocol choice: QUIC first, TCP fallback, QUIC probes;
//! * `slot` — one connection slot: dial, register, serve, reconnect;
//! * `session` — one registered connection: control stream, request streams, drain;
//! * `stream` — one request stream: rule match and dispatch to a service;
//! * `access` — `originRequest.access`: verifying the edge's identity assertion before
//!   anything reaches the origin;
//! * `reload` — reloading the local config file (poll and SIGHUP) without losing requests;
//! * `remote` — configs pushed by the edge: apply once per version, or ignore;
//! * `origin` — pooled HTTP(S) clients toward origins, per rule;
//! * `origin_connect` — one origin connection: dial, then TLS with the rule's name and deadline;
//! * `egress` — the egress guard: which addresses a rule's origin may reach (and, strict,
//!   which a client-chosen destination may);
//! * `bastion` — the `bastion` service: the destination from the jump header;
//! * `socks` — the `socks-proxy` service: a SOCKS5 server on the upgraded stream;
//! * `udp` — the `udp://` service: one UDP flow per stream, relayed to a connected socket;
//! * `health` — origin health: active checks, passive failure counting, up/down state;
//! * `unix` — HTTP over Unix sockets;
//! * `hello` — the built-in `hello_world` service;
//! * `metrics` — the connector's Prometheus metrics.

mod access;
mod bastion;
mod connector;
mod egress;
mod health;
mod hello;
mod metrics;
mod options;
mod origin;
mod origin_connect;
mod protocol;
mod reload;
mod remote;
mod session;
mod slot;
mod socks;
mod stream;
mod udp;
mod unix;

pub use connector::{Connector, ConnectorError, ConnectorHandle, Rules};
pub use egress::{AddressClass, EgressPolicy};
pub use metrics::ConnectorMetrics;
pub use options::{ConnectorOptions, ProtocolChoice};
pub use reload::{
    ConfigReloader, RESTART_KEYS, ReloadError, ReloadOutcome, config_hash, restart_keys_changed,
};
pub use remote::{
    ConfigSource, RemoteConfigError, UnknownConfigSource, awaiting_remote_config,
    check_remote_config,
};
