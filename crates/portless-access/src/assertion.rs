//! The signed identity assertion the edge forwards to origins: its claims, the keys that sign
//! it (rotated, shared through the store), the JWKS that publishes them, and its verification.
//!
//! Once the edge has admitted a request for a protected application, it tells the origin who
//! is asking in a short-lived ES256 JWT (`Cf-Access-Jwt-Assertion` and
//! `Portless-Jwt-Assertion`). Plain identity headers can be forged by anyone who reaches the
//! origin some other way; the assertion cannot, so an origin (or the connector in front of it,
//! with `originRequest.access`) that checks it only serves what the edge admitted.
//!
//! Main types:
//! * [`AssertionClaims`]: what the token says (`aud`, `sub`, `email`, `groups`, `iss`, times);
//! * [`KeyRing`]: the current signing key and the retired keys still published during their
//!   overlap; persisted in the store so every edge sharing it signs with the same key;
//! * [`Jwks`]: the published key set (`/cdn-cgi/access/certs`, and the connector's copy);
//! * [`CliClaims`]: the longer-lived token the access client (`portless access`) presents,
//!   signed by the same keys with `type: cli`, never interchangeable with an assertion;
//! * [`AssertionVerifier`]: strict verification (ES256 only, known `kid`, numeric times,
//!   exact issuer, audience) with a typed [`VerifyError`] per refusal.
//!
//! Layout: `claims` (the claims and how they are built from an identity), `cli` (the
//! access client's token), `keys` (signing
//! keys and the key ring), `jwks` (the published form), `verify` (verification).

mod claims;
mod cli;
mod jwks;
mod keys;
mod verify;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use claims::AssertionClaims;
pub use cli::{CLI_DEFAULT_TTL, CLI_MAX_TTL, CliClaims};
pub use jwks::{Jwk, Jwks};
pub use keys::{AssertionError, KeyRing, PUBLISH_LEAD};
pub use verify::{AssertionVerifier, JwksError, VerifyError};

/// The request header the hosted-access convention puts the assertion in.
pub const CF_ASSERTION_HEADER: &str = "cf-access-jwt-assertion";
/// The request header Portless also puts the assertion in.
pub const PORTLESS_ASSERTION_HEADER: &str = "portless-jwt-assertion";
/// Both assertion headers, lowercase.
pub const ASSERTION_HEADERS: [&str; 2] = [CF_ASSERTION_HEADER, PORTLESS_ASSERTION_HEADER];

/// The longest lifetime an assertion may have: a stolen token is useless after this.
pub const MAX_TTL: Duration = Duration::from_secs(5 * 60);
/// Clock skew tolerated between the signing edge and the verifier, for `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// How long a key signs before [`KeyRing::rotate_if_due`] replaces it, by default.
pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a retired key is still published (and so verifies) after its replacement, by
/// default: longer than [`MAX_TTL`], so no token outlives the key that signed it.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(60 * 60);

/// The issuer (`iss`) of the assertions an edge signs for the auth hostname (or
/// `originRequest.access.teamName`) `team_name`: `https://<team_name>`, or `team_name` itself
/// when it already starts with `https://`. A trailing `/` is dropped, and a bare hostname is
/// lowercased, so `Auth.Example.com` and `https://auth.example.com/` name the same issuer.
pub fn issuer_for_team(team_name: &str) -> String {
    let name = team_name.trim().trim_end_matches('/');
    match name.strip_prefix("https://") {
        Some(_) => name.to_owned(),
        None => format!("https://{}", name.to_ascii_lowercase()),
    }
}

/// `now` in whole seconds since the Unix epoch (0 for a clock set before 1970).
fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
