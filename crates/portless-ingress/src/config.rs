//! The validated connector config: step two of two. Every field has its final type and its
//! default; nothing here can hold a value the format forbids.

use std::fmt;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use uuid::Uuid;

use crate::addr::HostPort;
use crate::choice::UnknownChoice;
use crate::diagnostic::Warning;
use crate::duration::GracePeriod;
use crate::matcher::Ingress;
use crate::origin_request::OriginRequest;

/// A connector config file, validated. Build it with [`TunnelConfig::load`] or
/// [`TunnelConfig::from_yaml_str`].
///
/// `Debug` never shows `token` or `credentials-contents`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TunnelConfig {
    /// The file this was loaded from (as given by the caller).
    pub source: PathBuf,
    /// `tunnel`: the tunnel's UUID or name.
    pub tunnel: Option<TunnelRef>,
    /// `credentials-file` (alias `cred-file`): path of the credentials JSON.
    pub credentials_file: Option<PathBuf>,
    /// `credentials-contents`: the credentials JSON itself.
    pub credentials_contents: Option<SecretString>,
    /// `token`: the tunnel token. Prefer `token-file` or the environment: a token in a file
    /// that others can read is a token others can use.
    pub token: Option<SecretString>,
    /// `token-file`: a file holding the tunnel token.
    pub token_file: Option<PathBuf>,
    /// `protocol` (auto).
    pub protocol: Protocol,
    /// `post-quantum` (false): require post-quantum key agreement with the edge.
    pub post_quantum: bool,
    /// `ha-connections` (4): connections this connector keeps to the edge.
    pub ha_connections: NonZeroU32,
    /// `retries` (5): reconnect backoff ceiling is 2^retries seconds.
    pub retries: u32,
    /// `grace-period` (30s, at most 3m): how long shutdown waits for in-flight requests.
    pub grace_period: GracePeriod,
    /// `edge-ip-version` (auto).
    pub edge_ip_version: EdgeIpVersion,
    /// `edge-bind-address`: local address to dial the edge from.
    pub edge_bind_address: Option<IpAddr>,
    /// `metrics`: address of the metrics server (`None`: try `localhost:20241`..`20245`).
    pub metrics: Option<HostPort>,
    /// `no-autoupdate` (false). Portless never updates itself; accepted for compatibility.
    pub no_autoupdate: bool,
    /// `pidfile`: where to write the process id.
    pub pidfile: Option<PathBuf>,
    /// `loglevel` (info).
    pub loglevel: LogLevel,
    /// `logfile`: log to this file as well.
    pub logfile: Option<PathBuf>,
    /// `log-directory`: log to a file in this directory as well.
    pub log_directory: Option<PathBuf>,
    /// `output` (default): log line format.
    pub output: LogFormat,
    /// `label`: a name for this connector shown in the edge's listings.
    pub label: Option<String>,
    /// `tag`: `KEY=VALUE` labels reported to the edge.
    pub tags: Vec<Tag>,
    /// `edge` (Portless only): `host:port` of the edge to dial.
    pub edge: Option<HostPort>,
    /// `originRequest`: the defaults every rule starts from (already merged into each rule).
    pub origin_request: OriginRequest,
    /// `warp-routing`: private-network routing options.
    pub warp_routing: WarpRouting,
    /// `ingress`: the rules.
    pub ingress: Ingress,
}

impl TunnelConfig {
    /// `ha-connections` when not set.
    // 1 + 3, spelled without `unwrap`: the crate has none outside tests.
    pub const DEFAULT_HA_CONNECTIONS: NonZeroU32 = NonZeroU32::MIN.saturating_add(3);
    /// `retries` when not set.
    pub const DEFAULT_RETRIES: u32 = 5;
}

/// A config and the warnings found while loading it. Show the warnings to the user: they
/// are usually typos that silently change what the connector does.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: TunnelConfig,
    /// Unknown, misspelled or deprecated keys and unreachable rules, in file order.
    pub warnings: Vec<Warning>,
}

impl Loaded {
    /// Logs every warning at `WARN` level, one event each.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            tracing::warn!(target: "portless_ingress::config", "{warning}");
        }
    }
}

/// `tunnel`: a UUID, or a name to look the tunnel up by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TunnelRef {
    /// The tunnel's UUID.
    Id(Uuid),
    /// The tunnel's name.
    Name(String),
}

impl TunnelRef {
    /// A UUID if `s` is one, otherwise a name.
    pub fn parse(s: &str) -> TunnelRef {
        let s = s.trim();
        Uuid::parse_str(s).map_or_else(|_| TunnelRef::Name(s.to_owned()), TunnelRef::Id)
    }
}

impl fmt::Display for TunnelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelRef::Id(id) => write!(f, "{id}"),
            TunnelRef::Name(name) => f.write_str(name),
        }
    }
}

/// A `tag` entry, `KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The part before `=` (never empty).
    pub key: String,
    /// The part after `=`.
    pub value: String,
}

impl FromStr for Tag {
    type Err = ();

    fn from_str(s: &str) -> Result<Tag, ()> {
        match s.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(Tag {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            }),
            _ => Err(()),
        }
    }
}

/// `warp-routing`: routing private IP traffic through the tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarpRouting {
    /// `enabled` (false).
    pub enabled: bool,
    /// `connectTimeout` (5s).
    pub connect_timeout: Duration,
    /// `maxActiveFlows` (0 = unlimited, shown as `None`).
    pub max_active_flows: Option<NonZeroU64>,
    /// `tcpKeepAlive` (30s).
    pub tcp_keep_alive: Duration,
}

impl Default for WarpRouting {
    fn default() -> Self {
        WarpRouting {
            enabled: false,
            connect_timeout: Duration::from_secs(5),
            max_active_flows: None,
            tcp_keep_alive: Duration::from_secs(30),
        }
    }
}

/// Declares a config enum parsed from a fixed set of words; `FromStr` errors list them.
macro_rules! word_enum {
    (
        $(#[$meta:meta])* $name:ident,
        { $( $(#[$vmeta:meta])* $variant:ident = $word:literal $(| $alias:literal)* ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The words accepted in the config file.
            pub const CHOICES: &'static [&'static str] = &[$($word),+];

            /// The canonical word for this value.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $word, )+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownChoice;

            fn from_str(s: &str) -> Result<Self, UnknownChoice> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $( $word $(| $alias)* => Ok($name::$variant), )+
                    _ => Err(UnknownChoice::new(s, Self::CHOICES)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum! {
    /// `protocol`: the transport to the edge.
    Protocol, {
        /// `auto`: QUIC, falling back to TLS over TCP when UDP is blocked.
        #[default]
        Auto = "auto",
        /// `quic`: QUIC only.
        Quic = "quic",
        /// `http2` (or `tcp`): Portless's TLS-over-TCP transport with HTTP/2.
        Http2 = "http2" | "tcp",
    }
}

word_enum! {
    /// `edge-ip-version`: which address family to reach the edge with.
    EdgeIpVersion, {
        /// `auto`: whatever resolves.
        #[default]
        Auto = "auto",
        /// `4`: IPv4 only.
        V4 = "4",
        /// `6`: IPv6 only.
        V6 = "6",
    }
}

word_enum! {
    /// `loglevel`.
    LogLevel, {
        /// `debug`.
        Debug = "debug",
        /// `info`.
        #[default]
        Info = "info",
        /// `warn`.
        Warn = "warn" | "warning",
        /// `error`.
        Error = "error",
        /// `fatal`.
        Fatal = "fatal",
    }
}

word_enum! {
    /// `output`: log line format.
    LogFormat, {
        /// `default`: human-readable lines.
        #[default]
        Default = "default",
        /// `json`: one JSON object per line.
        Json = "json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_accepts_tcp_as_http2() {
        assert_eq!("tcp".parse::<Protocol>(), Ok(Protocol::Http2));
        assert_eq!("QUIC".parse::<Protocol>(), Ok(Protocol::Quic));
        let err = "udp".parse::<Protocol>().unwrap_err();
        assert_eq!(err.to_string(), "'udp' is not one of auto, quic, http2");
        assert_eq!(Protocol::default(), Protocol::Auto);
    }

    #[test]
    fn tunnel_ref_is_uuid_or_name() {
        assert!(matches!(
            TunnelRef::parse("6ff42ae2-765d-4adf-8112-31c55c1551ef"),
            TunnelRef::Id(_)
        ));
        assert_eq!(
            TunnelRef::parse("home-lab"),
            TunnelRef::Name("home-lab".into())
        );
    }

    #[test]
    fn tags_need_a_key() {
        assert_eq!(
            "env=prod".parse::<Tag>(),
            Ok(Tag {
                key: "env".into(),
                value: "prod".into()
            })
        );
        assert!("=prod".parse::<Tag>().is_err());
        assert!("prod".parse::<Tag>().is_err());
    }
}
