//! In-process harness for Portless tests: an edge, connectors and origins on `127.0.0.1:0`
//! with a test CA, real TLS and real QUIC, plus a client that trusts the CA.
//!
//! Everything here is for tests; it favours short timeouts (fast failure detection) over
//! the production defaults.
//!
//! Layout:
//! * `harness` — [`TestEdge`]: edge start/restart, tunnels, connectors;
//! * `origin` — [`TestOrigin`]: an HTTP origin with streaming, SSE, slow and WebSocket
//!   endpoints;
//! * `client` — [`TestClient`]: HTTPS client resolving every hostname to the edge;
//! * `browser` — [`Browser`]: cookies, forms and redirects for portal tests;
//! * `ws` — minimal WebSocket framing for echo tests;
//! * `memory` — resident-memory sampling of this process;
//! * `iperf` — the real `iperf3`, server and client, for throughput through TCP ports;
//! * `peers` — the real OpenID provider and SMTP server the sign-in tests talk to;
//! * `peers_acme` — pebble, the ACME test CA, with its DNS server.

// A test harness: a failed set-up step should panic with its message, like an assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod access;
mod browser;
mod client;
mod harness;
pub mod iperf;
mod memory;
mod origin;
pub mod peers;
pub mod peers_acme;
pub mod ws;

pub use browser::{Browser, Page, form_body};
pub use client::{ClientBody, TestClient};
pub use harness::{
    EdgeSetup, TestEdge, TestTunnel, encode_metrics, fast_edge_options, init_test_logging,
    rules as rules_from_yaml, wait_for,
};
pub use memory::RssSampler;
pub use origin::{TestOrigin, pattern_byte};

/// Recording origins (TLS, h2/h2c, Unix sockets) and origins that never answer.
pub mod probe;
pub use harness::{LogCapture, capture_logs, pending_rules};
pub use probe::{ProbeOrigin, Seen, StalledOrigin};

/// Raw upgraded requests through the edge (TCP-carrying services).
pub mod upgrade;
