//! ACME for the Portless edge (docs/adr/0009-acme.md, docs/certificates.md).
//!
//! The edge tells an [`AcmeManager`] which hostnames it serves; the manager orders a
//! certificate for each (instant-acme, one name per certificate, any subdomain depth), answers
//! the CA's challenge through [`Challenges`] — HTTP-01 on the port-80 listener, TLS-ALPN-01 on
//! the public listener — stores certificate, key and account in the control-plane store, and
//! keeps a [`portless_tls::CertMap`] the public resolver reads. Renewal happens ahead of expiry
//! (the CA's ARI window when offered, else with a third of the lifetime left), with jittered
//! exponential backoff on failure; the old certificate is served until the new one is in.
//!
//! Layout:
//! * `options` — [`AcmeOptions`], [`Directory`], [`ChallengeKind`], [`Eab`];
//! * `manager` — [`AcmeManager`]: wanted names, scheduling, renewal, backoff;
//! * `order` — the account and one order;
//! * `challenges` — [`Challenges`], the pending answers;
//! * `cert` — parsing a certificate's validity and ARI id;
//! * `http` — the HTTPS client instant-acme uses (workspace rustls);
//! * `error` — [`AcmeError`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod cert;
mod challenges;
mod error;
mod http;
mod manager;
mod options;
mod order;

pub use challenges::Challenges;
pub use error::AcmeError;
pub use manager::AcmeManager;
pub use options::{
    AcmeOptions, ChallengeKind, Directory, Eab, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING,
};
