//! The tunnel token and credentials-file formats.
//!
//! Both keep the shape of the widely used tunnel connector's files so existing tooling and
//! habits carry over: the token is standard base64 of compact JSON `{"a","t","s"}`, the
//! credentials file is JSON with `AccountTag`, `TunnelSecret`, `TunnelID`. Portless adds
//! optional fields telling the connector where the edge is and how to trust it.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Shortest secret accepted: 32 bytes, as the reference format requires.
const MIN_SECRET_LEN: usize = 32;

/// A tunnel secret. Its `Debug` never shows the bytes, so it can sit in structs that are
/// logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSecret(Vec<u8>);

impl TunnelSecret {
    /// Wraps raw secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw bytes, for hashing or sending inside TLS. Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Standard base64 with padding, as written in credentials files and tokens.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }

    /// Parses base64 (padding optional) and checks the minimum length.
    pub fn from_base64(text: &str) -> Result<Self, CredentialsError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| CredentialsError::SecretEncoding)?;
        if bytes.len() < MIN_SECRET_LEN {
            return Err(CredentialsError::SecretTooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for TunnelSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TunnelSecret(..)")
    }
}

/// Problems reading a token or credentials file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The token is not base64.
    #[error(
        "the tunnel token is not valid base64: copy the whole token printed by `portless tunnel create`"
    )]
    TokenEncoding,
    /// The token's JSON does not have the expected fields.
    #[error(
        "the tunnel token does not hold a tunnel id and secret ({0}): use the token printed by `portless tunnel create`"
    )]
    TokenJson(String),
    /// The credentials file's JSON is not as expected.
    #[error(
        "the credentials file is not valid ({0}): it must hold AccountTag, TunnelSecret and TunnelID, as written by `portless tunnel create`"
    )]
    FileJson(String),
    /// The secret is not base64.
    #[error("the tunnel secret is not valid base64")]
    SecretEncoding,
    /// The secret is shorter than 32 bytes.
    #[error("the tunnel secret is {0} bytes long; at least 32 are required")]
    SecretTooShort(usize),
}

/// Everything a connector needs to serve a tunnel: identity, secret, and how to reach and
/// trust the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account (store) the tunnel belongs to.
    pub account_tag: String,
    /// The tunnel's id.
    pub tunnel_id: Uuid,
    /// The tunnel's secret.
    pub secret: TunnelSecret,
    /// The edge's tunnel address (`host:port`), when known.
    pub edge: Option<String>,
    /// The pin of the CA that signs the edge's tunnel certificate (`sha256:...`), when the
    /// edge uses its own CA; without it the connector uses the system roots.
    pub ca_pin: Option<String>,
    /// The name to verify in the edge's certificate, when it differs from the edge host.
    pub server_name: Option<String>,
}

/// Wire form of the token's JSON, with the reference's one-letter keys.
#[derive(Serialize, Deserialize)]
struct TokenJson {
    a: String,
    t: Uuid,
    s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
}

/// The tunnel token: [`Credentials`] in one pasteable string.
pub struct TunnelToken;

impl TunnelToken {
    /// Encodes credentials as a token.
    pub fn encode(credentials: &Credentials) -> String {
        let json = TokenJson {
            a: credentials.account_tag.clone(),
            t: credentials.tunnel_id,
            s: credentials.secret.to_base64(),
            e: credentials.edge.clone(),
            p: credentials.ca_pin.clone(),
            n: credentials.server_name.clone(),
        };
        // Serializing a struct of strings cannot fail.
        let text = serde_json::to_string(&json).unwrap_or_default();
        STANDARD.encode(text)
    }

    /// Decodes a token (surrounding whitespace and missing padding tolerated).
    pub fn decode(token: &str) -> Result<Credentials, CredentialsError> {
        let token = token.trim();
        let bytes = STANDARD
            .decode(token)
            .or_else(|_| STANDARD_NO_PAD.decode(token.trim_end_matches('=')))
            .map_err(|_| CredentialsError::TokenEncoding)?;
        let json: TokenJson = serde_json::from_slice(&bytes)
            .map_err(|e| CredentialsError::TokenJson(e.to_string()))?;
        Ok(Credentials {
            account_tag: json.a,
            tunnel_id: json.t,
            secret: TunnelSecret::from_base64(&json.s)?,
            edge: json.e,
            ca_pin: json.p,
            server_name: json.n,
        })
    }
}

/// Wire form of the credentials file.
#[derive(Serialize, Deserialize)]
struct FileJson {
    #[serde(rename = "AccountTag")]
    account_tag: String,
    #[serde(rename = "TunnelSecret")]
    tunnel_secret: String,
    #[serde(rename = "TunnelID")]
    tunnel_id: Uuid,
    #[serde(
        rename = "EdgeAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    edge: Option<String>,
    #[serde(rename = "EdgeCaPin", default, skip_serializing_if = "Option::is_none")]
    ca_pin: Option<String>,
    #[serde(
        rename = "EdgeServerName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    server_name: Option<String>,
}

impl Credentials {
    /// Renders the credentials-file JSON (pretty, with a trailing newline).
    pub fn to_file_json(&self) -> String {
        let json = FileJson {
            account_tag: self.account_tag.clone(),
            tunnel_secret: self.secret.to_base64(),
            tunnel_id: self.tunnel_id,
            edge: self.edge.clone(),
            ca_pin: self.ca_pin.clone(),
            server_name: self.server_name.clone(),
        };
        let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses a credentials file's JSON. Unknown fields are tolerated: files written by the
    /// incumbent connector carry extra ones.
    pub fn from_file_json(text: &str) -> Result<Self, CredentialsError> {
        let json: FileJson =
            serde_json::from_str(text).map_err(|e| CredentialsError::FileJson(e.to_string()))?;
        Ok(Self {
            account_tag: json.account_tag,
            tunnel_id: json.tunnel_id,
            secret: TunnelSecret::from_base64(&json.tunnel_secret)?,
            edge: json.edge,
            ca_pin: json.ca_pin,
            server_name: json.server_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            account_tag: "acct".into(),
            tunnel_id: Uuid::new_v4(),
            secret: TunnelSecret::new(vec![7; 32]),
            edge: Some("edge.example.com:7844".into()),
            ca_pin: Some("sha256:abc".into()),
            server_name: None,
        }
    }

    #[test]
    fn token_round_trips_and_has_the_reference_shape() {
        let creds = sample();
        let token = TunnelToken::encode(&creds);
        assert_eq!(TunnelToken::decode(&token).unwrap(), creds);
        let json: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(&token).unwrap()).unwrap();
        assert_eq!(json["a"], "acct");
        assert_eq!(json["t"], creds.tunnel_id.to_string());
        assert_eq!(json["s"], creds.secret.to_base64());
    }

    #[test]
    fn a_reference_style_token_without_portless_fields_decodes() {
        let id = Uuid::new_v4();
        let secret = STANDARD.encode([1u8; 32]);
        let text = format!(r#"{{"a":"6f1c","t":"{id}","s":"{secret}"}}"#);
        let creds = TunnelToken::decode(&STANDARD.encode(text)).unwrap();
        assert_eq!(creds.tunnel_id, id);
        assert_eq!(creds.edge, None);
    }

    #[test]
    fn credentials_file_round_trips_and_tolerates_extra_fields() {
        let creds = sample();
        assert_eq!(
            Credentials::from_file_json(&creds.to_file_json()).unwrap(),
            creds
        );
        let id = Uuid::new_v4();
        let text = format!(
            r#"{{"AccountTag":"x","TunnelSecret":"{}","TunnelID":"{id}","Endpoint":""}}"#,
            STANDARD.encode([3u8; 40])
        );
        assert_eq!(Credentials::from_file_json(&text).unwrap().tunnel_id, id);
    }

    #[test]
    fn short_or_garbled_secrets_are_refused() {
        assert!(matches!(
            TunnelSecret::from_base64(&STANDARD.encode([1u8; 16])),
            Err(CredentialsError::SecretTooShort(16))
        ));
        assert!(TunnelSecret::from_base64("***").is_err());
        assert!(matches!(
            TunnelToken::decode("not a token"),
            Err(CredentialsError::TokenEncoding)
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let creds = sample();
        let text = format!("{creds:?}");
        assert!(!text.contains(&creds.secret.to_base64()));
        assert!(!text.contains("7, 7, 7"));
        assert!(text.contains("TunnelSecret(..)"));
    }
}
