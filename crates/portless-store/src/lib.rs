//! The edge's control-plane store: tunnels, their hashed secrets, hostname routes, remotely
//! managed connector configs and settings.
//!
//! The edge asks the store which tunnel serves a hostname and whether a connector's secret is right;
//! the CLI creates tunnels and routes through it. The default backend is an embedded SQLite file (via
//! sqlx); the SQL is kept portable and the public API names no SQLite type, so a PostgreSQL backend
//! for several edges can slot in behind the same [`Store`].
//!
//! Main types:
//! - [`Store`]: the handle (cheap to clone); [`Store::open`] a file or [`Store::open_in_memory`].
//! - [`Tunnel`], [`NewTunnel`] and [`TunnelSecret`]: a tunnel secret is shown once, at creation or
//!   rotation; the store keeps only its SHA-256 and checks it in constant time.
//! - [`Route`], [`RouteChange`] and [`RouteHostname`]: hostname → tunnel, hostnames canonicalized.
//! - [`StoreError`]: every failure, with a message that says what to do.
//!
//! Layout:
//! - `store`: opening the database (file mode, WAL, busy timeout), account tag, routes version.
//! - `migrate`: the embedded schema migrations (`migrations/*.sql`).
//! - `tunnels`: tunnel CRUD, secret verification and rotation.
//! - `routes`: hostname routes.
//! - `settings`: named values.
//! - `service_tokens`: machine credentials' rows (hashes only; the checks live in
//!   `portless-access`).
//! - `audit`: the audit log's rows: batch insert, recent events, retention.
//! - `signing_keys`: the private keys that sign identity assertions, shared by every edge.
//! - `configs`: remotely managed connector configs, one versioned YAML per tunnel.
//! - `totp`: sealed TOTP seeds per user and replay-proof advance of the last used step.
//! - `passkeys`: WebAuthn credentials per user, with a counter that only moves forward.
//! - `acme`: ACME accounts per directory and the certificates obtained for each hostname.
//! - `hostname`: canonical route hostname parsing (pure).
//! - `secret`: [`TunnelSecret`] and the stored hash.
//! - `error`: [`StoreError`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod acme;
mod audit;
mod configs;
mod error;
mod hostname;
mod migrate;
mod passkeys;
mod routes;
mod secret;
mod service_tokens;
mod settings;
mod signing_keys;
mod store;
mod totp;
mod tunnels;

pub use acme::StoredCertificate;
pub use audit::{AuditEventRecord, NewAuditEvent};
pub use error::StoreError;
pub use hostname::{HostnameError, RouteHostname};
pub use passkeys::{NewPasskey, PasskeyUse, StoredPasskey};
pub use routes::{Route, RouteChange};
pub use secret::TunnelSecret;
pub use service_tokens::{NewServiceToken, ServiceTokenRecord};
pub use signing_keys::StoredSigningKey;
pub use store::Store;
pub use totp::StoredTotp;
pub use tunnels::{NewTunnel, Tunnel};
