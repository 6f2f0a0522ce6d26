//! The Portless edge: where the internet meets the tunnels.
//!
//! An edge listens on a public HTTPS port and on a tunnel port (QUIC on UDP, TLS over TCP on
//! the same number). Connectors dial the tunnel port and register each connection with
//! their tunnel's id and secret; the edge then routes every public request by canonical
//! hostname to a tunnel, opens one stream on one of that tunnel's live connections, and
//! streams the request and the response through without buffering.
//!
//! Main types: [`Edge`] (start an edge on injected listeners), [`EdgeHandle`] (addresses,
//! state, shutdown), [`EdgeOptions`], [`EdgeListeners`], [`EdgeTls`].
//!
//! Layout:
//! * `edge` — start-up and shutdown of the whole edge;
//! * `access` — policy, portal, sessions and identity for every request;
//! * `config` — the edge config file (`--config`), validated into the types below;
//! * `options` — settings and injected listeners;
//! * `ports` — public raw TCP/UDP ports (parsed config entries);
//! * `bootstrap` — the local CA, certificates and TLS configs from a state directory;
//! * `routes` — hostname → tunnel table, reloaded from the store on change;
//! * `registry` — live tunnel connections and the choice of one per request;
//! * `tunnels` — accepting, registering and supervising connector connections;
//! * `public` — the public HTTPS listener;
//! * `port80` — the plain-HTTP listener: ACME HTTP-01 answers, redirects to HTTPS;
//! * `certs` — the public listener's certificates: static files, ACME, local CA;
//! * `raw` — raw TCP through tunnels: TLS passthrough and public TCP ports;
//! * `stack` — the request pipeline, composed of the layers below;
//! * `respond` — request ids, error pages and response metrics (outermost layer);
//! * `canonicalize` — refusal of ambiguous requests, the canonical request;
//! * `routing` — the tunnel for the canonical host;
//! * `context` — what layers tell later layers (request extensions);
//! * `strict_head` — HTTP/1 request heads checked on the raw bytes before hyper reads them;
//! * `proxy` — one request through a tunnel stream;
//! * `forwarding` — hop-by-hop removal and `X-Forwarded-*` headers;
//! * `pages` — error pages (HTML or JSON) with the request id;
//! * `body` — the response body type;
//! * `metrics` — the edge's Prometheus metrics;
//! * `udp_ports` — public UDP ports: one flow per client address through a tunnel;
//! * `executor` — hyper executor that keeps tasks owned.

mod access;
mod body;
mod bootstrap;
mod canonicalize;
mod certs;
pub mod config;
mod context;
mod edge;
mod error;
mod executor;
mod forwarding;
mod metrics;
mod options;
mod pages;
mod port80;
mod ports;
mod proxy;
mod public;
mod raw;
mod registry;
mod respond;
mod routes;
mod routing;
mod stack;
mod strict_head;
mod tunnels;
mod udp_ports;

pub use access::AccessOptions;
pub use bootstrap::{EdgeTls, StateDir};
pub use config::{EdgeConfig, PassthroughHosts};
pub use edge::{Edge, EdgeHandle};
pub use error::EdgeError;
pub use metrics::EdgeMetrics;
pub use options::{
    AccessKeysWatch, EdgeListeners, EdgeOptions, Hsts, HttpOptions, PublicTlsOptions,
};
pub use portless_acme::{AcmeManager, AcmeOptions, ChallengeKind, Directory, Eab};
pub use portless_tls::StaticCertificate;
pub use ports::{DEFAULT_UDP_IDLE_TIMEOUT, DEFAULT_UDP_MAX_FLOWS, TcpPort, UdpPort};
