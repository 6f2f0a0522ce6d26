//! TLS for Portless: the only crate that names rustls types.
//!
//! Everything TLS-shaped that the edge and the connector need is built here, so that the
//! choice of provider, protocol versions and trust lives in one place:
//!
//! - [`provider()`]: aws-lc-rs with X25519MLKEM768 preferred, X25519 and P-256 as the
//!   classical fallback. `ring` is never used.
//! - [`LocalCa`]: a small CA (rcgen) kept in the edge's state directory, issuing the tunnel
//!   certificate and demo/test certificates; [`CaPin`] is how connectors name it.
//! - [`EdgeTrust`]: how a connector authenticates the edge (pinned CA, CA certificate,
//!   system roots).
//! - Configs: [`tunnel_server_config`] / [`tunnel_client_config`] (TLS 1.3 only, ALPN
//!   [`TUNNEL_ALPN`], for quinn and tokio-rustls alike), [`public_server_config`] (browsers),
//!   [`origin_client_config`] (the connector's HTTPS origins).
//! - [`LocalCaResolver`]: SNI certificates issued on demand for served hostnames.
//! - [`KxCounters`]: counts negotiated key-exchange groups on the server side, which proves
//!   (in tests and in a metric) that tunnels are post-quantum even where quinn hides it.
//!
//! ```
//! # fn main() -> Result<(), portless_tls::TlsError> {
//! use portless_tls::{EdgeTrust, LocalCa, tunnel_client_config, tunnel_server_config};
//!
//! let ca = LocalCa::generate("example CA")?;
//! let server = tunnel_server_config(ca.issue(&["edge.example.com".to_owned()])?)?;
//! let client = tunnel_client_config(EdgeTrust::Pinned(ca.pin()))?;
//! # let _ = (server, client);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `provider`: the crypto provider, its process-wide install, SHA-256.
//! - `pin`: [`CaPin`], `sha256:<base64url>` CA pins.
//! - `ca`: [`LocalCa`], generation, loading from disk, leaf issuance.
//! - `verify`: [`EdgeTrust`] and the server-certificate verifiers behind it.
//! - `config`: the four rustls configs.
//! - `resolver`: [`LocalCaResolver`].
//! - `public`: [`PublicResolver`] (static files → ACME → local CA → default, and TLS-ALPN-01
//!   challenge certificates), [`CertMap`], [`StaticCertificates`].
//! - `kx`: [`KxCounters`] and the counting key-exchange wrappers.
//! - `sni`: [`ClientHelloPeek`], the server name of a ClientHello without terminating TLS.
//! - `pem`: loading certificates and keys from PEM files.
//! - `files`: atomic, private file creation.
//! - `error`: [`TlsError`].

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod ca;
mod config;
mod error;
mod files;
mod kx;
mod pem;
mod pin;
mod provider;
mod public;
mod resolver;
mod sni;
mod verify;

pub use ca::{CA_CERT_FILE, CA_KEY_FILE, LocalCa};
pub use config::{
    OriginTls, TUNNEL_ALPN, origin_client_config, public_server_config,
    public_server_config_with_acme, tunnel_client_config, tunnel_client_config_post_quantum,
    tunnel_server_config, tunnel_server_config_with_counters,
};
pub use error::TlsError;
pub use kx::{KxCounters, kx_group_name};
pub use pem::{load_pem_certs, load_pem_chain_and_key};
pub use pin::CaPin;
pub use provider::{install_default_provider, provider, sha256};
pub use public::{
    ACME_TLS_ALPN, CertMap, PublicResolver, StaticCertificate, StaticCertificates,
    certified_key_from_pem, tls_alpn_challenge_cert,
};
pub use resolver::{DEFAULT_CACHE_CAPACITY, LocalCaResolver};
pub use sni::{ClientHelloPeek, Peeked};
pub use verify::EdgeTrust;

/// The rustls and pki-types crates as this crate uses them, so callers name the same versions.
pub use {rustls, rustls_pki_types};
