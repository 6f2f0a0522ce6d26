//! The access client's token: a longer-lived JWT the edge mints at `/cdn-cgi/access/cli`
//! for a signed-in person, which `portless access` presents later in `cf-access-token`.
//!
//! It is signed by the same key ring as application assertions, but its `type` is `cli`:
//! an application assertion (`type: app`, minutes long, forwarded to origins) is never
//! accepted where a CLI token is expected, nor the reverse, so an origin that logs the
//! assertion it receives cannot turn it into a day of access, and a CLI token cannot be
//! replayed to an origin as an assertion.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::unix_seconds;
use crate::{AuthLevel, Identity, Source, Subject};

/// The longest lifetime a CLI token may have, whatever the edge is configured with: a lost
/// laptop's token stops working within this.
pub const CLI_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The lifetime of a CLI token by default.
pub const CLI_DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What a CLI token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CliClaims {
    /// The one application host the token opens (canonical hostname).
    pub aud: Vec<String>,
    /// The username (users file) or the lowercase email address (provider, email PIN).
    pub sub: String,
    /// The email address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The groups at login (for users-file users the edge re-reads the file instead).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The edge that signed it (`https://<auth hostname>`).
    pub iss: String,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Not before, unix seconds.
    pub nbf: u64,
    /// Expiry, unix seconds; at most [`CLI_MAX_TTL`] after `iat`.
    pub exp: u64,
    /// Always [`CliClaims::CLI_TYPE`].
    #[serde(rename = "type")]
    pub r#type: String,
    /// Authentication methods at login: `["pwd"]`, or `["pwd", "mfa"]` for two factors.
    pub amr: Vec<String>,
    /// Where the identity comes from: `users`, `email`, or `oidc:<provider>`.
    pub source: String,
}

impl CliClaims {
    /// The `type` of every CLI token.
    pub const CLI_TYPE: &'static str = "cli";

    /// The claims for the person `identity` on application `audience`, signed by `issuer`,
    /// valid from `now` for `ttl` (clamped to [`CLI_MAX_TTL`]). `None` for a service token:
    /// a machine already holds a credential, and a token minted from it would outlive its
    /// revocation.
    pub fn for_identity(
        identity: &Identity,
        audience: &str,
        issuer: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> Option<CliClaims> {
        let Subject::User {
            name,
            level,
            source,
        } = &identity.subject
        else {
            return None;
        };
        let iat = unix_seconds(now);
        let amr = match level {
            AuthLevel::OneFactor => vec!["pwd".to_owned()],
            AuthLevel::TwoFactor => vec!["pwd".to_owned(), "mfa".to_owned()],
        };
        let source = match source {
            Source::UsersFile => "users".to_owned(),
            Source::EmailPin => "email".to_owned(),
            Source::Oidc(provider) => format!("oidc:{provider}"),
        };
        Some(CliClaims {
            aud: vec![audience.to_owned()],
            sub: name.clone(),
            email: identity.email.clone(),
            name: Some(identity.display_name.clone()).filter(|n| !n.is_empty()),
            groups: identity.groups.clone(),
            iss: issuer.to_owned(),
            iat,
            nbf: iat,
            exp: iat.saturating_add(ttl.min(CLI_MAX_TTL).as_secs()),
            r#type: Self::CLI_TYPE.to_owned(),
            amr,
            source,
        })
    }

    /// How strongly the person authenticated at login.
    pub fn level(&self) -> AuthLevel {
        if self.amr.iter().any(|m| m == "mfa") {
            AuthLevel::TwoFactor
        } else {
            AuthLevel::OneFactor
        }
    }

    /// Where the identity comes from; `None` for a `source` no edge writes.
    pub fn identity_source(&self) -> Option<Source> {
        match self.source.as_str() {
            "users" => Some(Source::UsersFile),
            "email" => Some(Source::EmailPin),
            other => other
                .strip_prefix("oidc:")
                .filter(|p| !p.is_empty())
                .map(|p| Source::Oidc(p.to_owned())),
        }
    }

    /// The identity the token proves as it was at login (the edge re-reads the users file
    /// for users-file people instead); `None` when its `source` is unknown.
    pub fn identity(&self) -> Option<Identity> {
        let source = self.identity_source()?;
        Some(Identity {
            subject: Subject::User {
                name: self.sub.clone(),
                level: self.level(),
                source,
            },
            display_name: self.name.clone().unwrap_or_else(|| self.sub.clone()),
            email: self.email.clone(),
            groups: self.groups.clone(),
        })
    }
}
