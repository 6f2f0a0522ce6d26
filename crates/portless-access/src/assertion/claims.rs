//! The claims of an identity assertion, and how the edge builds them from a proven identity.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize};

use super::{MAX_TTL, unix_seconds};
use crate::{Identity, Subject};

/// What an identity assertion says, as the JWT payload carries it.
///
/// Field names follow the hosted-access convention, so origins written for it read Portless
/// assertions unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The application the token is for: its canonical hostname. Serialized as an array; a
    /// single string is accepted when reading.
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Who: the username, or the service token's client id.
    pub sub: String,
    /// The user's email address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's current groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The edge that signed it: `https://<auth hostname>` (see [`super::issuer_for_team`]).
    pub iss: String,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Not before, unix seconds.
    pub nbf: u64,
    /// Expiry, unix seconds; at most [`MAX_TTL`] after `iat`.
    pub exp: u64,
    /// Always `app`: a token for one application (not a portal session).
    #[serde(rename = "type")]
    pub r#type: String,
    /// For service tokens: the token's client id, as the incumbent puts it (absent for users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
}

impl AssertionClaims {
    /// The `type` of every assertion for an application.
    pub const APP_TYPE: &'static str = "app";

    /// The claims for `identity` visiting the application `audience` (its canonical hostname),
    /// signed by `issuer`, valid from `now` for `ttl` (clamped to [`MAX_TTL`]).
    pub fn for_identity(
        identity: &Identity,
        audience: &str,
        issuer: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> AssertionClaims {
        let iat = unix_seconds(now);
        let ttl = ttl.min(MAX_TTL).as_secs();
        let common_name = match &identity.subject {
            Subject::User { .. } => None,
            Subject::ServiceToken { client_id, .. } => Some(client_id.clone()),
        };
        AssertionClaims {
            aud: vec![audience.to_owned()],
            sub: identity.name().to_owned(),
            email: identity.email.clone(),
            name: Some(identity.display_name.clone()).filter(|name| !name.is_empty()),
            groups: identity.groups.clone(),
            iss: issuer.to_owned(),
            iat,
            nbf: iat,
            exp: iat.saturating_add(ttl),
            r#type: Self::APP_TYPE.to_owned(),
            common_name,
        }
    }
}

/// `aud` as RFC 7519 allows it: one string or an array of strings.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}
