//! Raw TCP through a tunnel: what TLS passthrough and public TCP ports share.
//!
//! A raw connection opens one tunnel stream for a hostname with an upgraded head
//! (`upgrade: portless-tcp`, see COMMON decision 2); the connector's `tcp://` (or `ssh://`,
//! `rdp://`) rule for that hostname answers `101` and splices the stream to its origin.
//! After the `101` bytes flow both ways untouched, each direction closed on its own.
//!
//! Layout: `open` (the stream and its `101`), `splice` (bytes both ways, counted),
//! `replay` (a socket whose first bytes were already read), `proxy_v2` (the PROXY protocol
//! header), `passthrough` (SNI-routed TLS on the public listener), `tcp_ports` (public TCP
//! ports), `guard` (HTTPS requests held to a TCP port's allow-list).

mod guard;
mod open;
pub(crate) mod passthrough;
mod proxy_v2;
mod replay;
mod splice;
pub(crate) mod tcp_ports;

pub(crate) use guard::HttpsGuard;
pub(crate) use open::{RawStream, Relaying, relay};
pub(crate) use replay::Replay;
pub(crate) use splice::{ByteCounters, splice};

/// The upgrade protocol of a raw TCP stream.
pub(crate) const TCP_UPGRADE: &str = "portless-tcp";
