//! The published key set (JWKS, RFC 7517): the public halves of the signing keys that still
//! verify, as origins and connectors fetch or receive them.

use serde::{Deserialize, Serialize};

/// A JSON Web Key Set: `{"keys":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys, the current signing key first.
    pub keys: Vec<Jwk>,
}

/// One public P-256 key, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: always `EC`.
    pub kty: String,
    /// Curve: always `P-256`.
    pub crv: String,
    /// The point's x coordinate, base64url without padding (32 bytes).
    pub x: String,
    /// The point's y coordinate, base64url without padding (32 bytes).
    pub y: String,
    /// The key id tokens name in their header.
    pub kid: String,
    /// Always `ES256`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub r#use: String,
}

impl Jwks {
    /// The key set as compact JSON.
    pub fn to_json(&self) -> String {
        // Serializing these plain string fields cannot fail; an empty set is the safe fallback.
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"keys":[]}"#))
    }
}

impl Jwk {
    /// The published form of a P-256 public key with coordinates `x`, `y` (base64url).
    pub(crate) fn p256(kid: &str, x: String, y: String) -> Jwk {
        Jwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x,
            y,
            kid: kid.to_owned(),
            alg: "ES256".to_owned(),
            r#use: "sig".to_owned(),
        }
    }
}
