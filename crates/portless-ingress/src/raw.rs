//! The config file exactly as serde reads it: step one of two.
//!
//! Every value that validation must point at is a [`Spanned`] so an error can name its line
//! and column. Durations, enums and addresses stay strings here (YAML gives `30` and `"30s"`
//! alike as text to a `String` field) and are parsed in `validate`, where a bad value becomes
//! one collected error instead of aborting the whole parse. Integers are read as `i64` so
//! that `ha-connections: -1` gets our range message rather than serde's "invalid u32".
//!
//! Unknown keys are *not* rejected by serde: the format we are compatible with tolerates
//! them, so `keys` turns them into warnings with positions instead.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A YAML string value and where it was written.
pub(crate) type Text = Spanned<String>;

/// The whole config file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    pub tunnel: Option<Text>,
    pub ingress: Option<Spanned<Vec<Spanned<RawRule>>>>,
    #[serde(rename = "originRequest")]
    pub origin_request: Option<RawOriginRequest>,
    #[serde(rename = "warp-routing")]
    pub warp_routing: Option<RawWarpRouting>,

    #[serde(rename = "credentials-file", alias = "cred-file")]
    pub credentials_file: Option<Text>,
    #[serde(rename = "credentials-contents")]
    pub credentials_contents: Option<Text>,
    pub token: Option<Text>,
    #[serde(rename = "token-file")]
    pub token_file: Option<Text>,
    pub protocol: Option<Text>,
    #[serde(rename = "post-quantum")]
    pub post_quantum: Option<bool>,
    #[serde(rename = "ha-connections")]
    pub ha_connections: Option<Spanned<i64>>,
    pub retries: Option<Spanned<i64>>,
    #[serde(rename = "grace-period")]
    pub grace_period: Option<Text>,
    #[serde(rename = "edge-ip-version")]
    pub edge_ip_version: Option<Text>,
    #[serde(rename = "edge-bind-address")]
    pub edge_bind_address: Option<Text>,
    pub metrics: Option<Text>,
    #[serde(rename = "no-autoupdate")]
    pub no_autoupdate: Option<bool>,
    pub pidfile: Option<Text>,
    pub loglevel: Option<Text>,
    pub logfile: Option<Text>,
    #[serde(rename = "log-directory")]
    pub log_directory: Option<Text>,
    pub output: Option<Text>,
    pub label: Option<Text>,
    pub tag: Option<Spanned<OneOrMany>>,

    /// Portless only: `host:port` of the edge to dial.
    pub edge: Option<Text>,
}

/// One entry of `ingress:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawRule {
    pub hostname: Option<Text>,
    pub path: Option<Text>,
    /// One service, or (Portless extension) a list of origins of the same kind.
    pub service: Option<Spanned<ServiceList>>,
    #[serde(rename = "originRequest")]
    pub origin_request: Option<RawOriginRequest>,
}

/// `service:` as written: one value, or a list of values.
#[derive(Debug)]
pub(crate) enum ServiceList {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for ServiceList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ServiceListVisitor)
    }
}

/// A visitor rather than `#[serde(untagged)]`: a wrong type keeps a precise message.
struct ServiceListVisitor;

impl<'de> serde::de::Visitor<'de> for ServiceListVisitor {
    type Value = ServiceList;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a service such as `http://localhost:8000`, or a list of them")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<ServiceList, E> {
        Ok(ServiceList::One(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<ServiceList, E> {
        Ok(ServiceList::One(value))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ServiceList, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item);
        }
        Ok(ServiceList::Many(items))
    }
}

/// `originRequest:` at the top level or inside a rule. Every field is optional so that a
/// rule's block can be layered over the top-level defaults field by field.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawOriginRequest {
    #[serde(rename = "connectTimeout")]
    pub connect_timeout: Option<Text>,
    #[serde(rename = "tlsTimeout")]
    pub tls_timeout: Option<Text>,
    #[serde(rename = "tcpKeepAlive")]
    pub tcp_keep_alive: Option<Text>,
    #[serde(rename = "noHappyEyeballs")]
    pub no_happy_eyeballs: Option<bool>,
    #[serde(rename = "keepAliveConnections")]
    pub keep_alive_connections: Option<Spanned<i64>>,
    #[serde(rename = "keepAliveTimeout")]
    pub keep_alive_timeout: Option<Text>,
    #[serde(rename = "httpHostHeader")]
    pub http_host_header: Option<Text>,
    #[serde(rename = "originServerName")]
    pub origin_server_name: Option<Text>,
    #[serde(rename = "matchSNItoHost")]
    pub match_sni_to_host: Option<bool>,
    #[serde(rename = "caPool")]
    pub ca_pool: Option<Text>,
    #[serde(rename = "noTLSVerify")]
    pub no_tls_verify: Option<bool>,
    #[serde(rename = "disableChunkedEncoding")]
    pub disable_chunked_encoding: Option<bool>,
    #[serde(rename = "http2Origin")]
    pub http2_origin: Option<bool>,
    #[serde(rename = "bastionMode")]
    pub bastion_mode: Option<bool>,
    #[serde(rename = "proxyType")]
    pub proxy_type: Option<Text>,
    #[serde(rename = "ipRules")]
    pub ip_rules: Option<Vec<Spanned<RawIpRule>>>,
    pub access: Option<Spanned<RawAccess>>,
    /// Portless only: active health checks of the rule's origins.
    #[serde(rename = "healthCheck")]
    pub health_check: Option<Spanned<RawHealthCheck>>,
}

/// `originRequest.healthCheck` (Portless only).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHealthCheck {
    pub path: Option<Text>,
    pub interval: Option<Text>,
    pub timeout: Option<Text>,
    #[serde(rename = "expectedStatus")]
    pub expected_status: Option<Spanned<i64>>,
    #[serde(rename = "unhealthyThreshold")]
    pub unhealthy_threshold: Option<Spanned<i64>>,
    #[serde(rename = "healthyThreshold")]
    pub healthy_threshold: Option<Spanned<i64>>,
}

/// One entry of `originRequest.ipRules`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawIpRule {
    pub prefix: Option<Text>,
    pub ports: Vec<Spanned<i64>>,
    pub allow: bool,
}

/// `originRequest.access`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAccess {
    pub required: bool,
    #[serde(rename = "teamName")]
    pub team_name: Option<Text>,
    #[serde(rename = "audTag")]
    pub aud_tag: Option<OneOrMany>,
}

/// `warp-routing:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawWarpRouting {
    pub enabled: Option<bool>,
    #[serde(rename = "connectTimeout")]
    pub connect_timeout: Option<Text>,
    #[serde(rename = "maxActiveFlows")]
    pub max_active_flows: Option<Spanned<i64>>,
    #[serde(rename = "tcpKeepAlive")]
    pub tcp_keep_alive: Option<Text>,
}

/// A key that people write both as `tag: a=b` and as a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values in file order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}
