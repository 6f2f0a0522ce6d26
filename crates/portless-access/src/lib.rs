//! Identity and access for the Portless edge: who is asking, and may they.
//!
//! Every request to a protected hostname is judged here before it reaches a tunnel: the edge
//! builds an [`AccessRequest`] from the canonical request (the same host and path that routing
//! and the origin see), attaches the [`Identity`] its session or service token proves, and asks
//! the policy engine for a decision. The portal, forward-auth endpoints and the connector's
//! verification of the signed assertion are built from the same parts.
//!
//! Main types: [`Identity`], [`AccessRequest`], [`AuthLevel`].
//!
//! Layout:
//! * `identity` — the identity a request carries and the request the policy sees;
//! * `config` — the access configuration file (the SSO portal's file, loaded unchanged):
//!   sections, durations, diagnostics;
//! * `policy` — the `access_control` format: parsing, validation, compiled rules, decisions
//!   and explanations;
//! * `users` — the users file: parsing, password hashes (argon2id and migration formats),
//!   safe edits, reload on change;
//! * `email_pin` — email one-time PINs: canonical addresses, the PIN book, SMTP delivery;
//! * `session` — server-side portal and application sessions, one-time codes;
//! * `regulation` — brute-force bans per canonical user and per client address;
//! * `totp` — RFC 6238 second factor with replay refusal;
//! * `passkey` — WebAuthn passkeys: registration, second factor, passwordless login;
//! * `secretbox` — authenticated encryption of secrets at rest;
//! * `assertion` — the signed identity JWT, its keys, rotation and JWKS, and its verification;
//! * `service_token` — machine credentials: creation, hashing, expiry, rotation;
//! * `audit` — one structured event per access decision and login step;
//! * `redirect` — validation of `rd` redirect targets;
//! * `forward_auth` — the forward-auth endpoints' request parsing and status contract;
//! * `oidc` — upstream OpenID Connect login: discovery, code flow with PKCE, ID-token checks;
//! * `headers` — stripping client-supplied identity headers and setting the edge's own.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod assertion;
pub mod audit;
mod authority;
pub mod config;
pub mod email_pin;
pub mod forward_auth;
pub mod headers;
mod identity;
pub mod oidc;
pub mod passkey;
pub mod policy;
pub mod redirect;
pub mod regulation;
pub mod secretbox;
pub mod service_token;
pub mod session;
pub mod totp;
pub mod users;

pub use identity::{AccessRequest, AuthLevel, Identity, Source, Subject};
