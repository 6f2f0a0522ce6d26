//! The connector's config file and its ingress rules.
//!
//! A Portless connector reads the YAML format of the most widely used tunnel connector
//! unchanged (`tunnel`, `credentials-file`, `ingress:` rules with `hostname`, `path`,
//! `service`, `originRequest`, and the flag-style keys), plus Portless's own `edge` key. This
//! crate turns that text into a validated [`TunnelConfig`], explains every problem with the
//! file, line, column and a suggested fix, and answers "which rule serves this request?".
//!
//! ```
//! use std::path::Path;
//! use portless_ingress::{Service, TunnelConfig};
//!
//! let yaml = "
//! tunnel: home-lab
//! ingress:
//!   - hostname: grafana.example.com
//!     service: http://localhost:3000
//!   - service: http_status:404
//! ";
//! let loaded = TunnelConfig::from_yaml_str(yaml, Path::new("config.yml")).unwrap();
//! assert!(loaded.warnings.is_empty());
//! let hit = loaded.config.ingress.find("Grafana.Example.com:443", "/d/home");
//! assert_eq!(hit.index, 0);
//! assert_eq!(hit.rule.service().to_string(), "http://localhost:3000");
//! ```
//!
//! Main types:
//! * [`TunnelConfig`] — the validated file; built by [`TunnelConfig::load`] or
//!   [`TunnelConfig::from_yaml_str`], returned inside [`Loaded`] with its [`Warning`]s;
//! * [`Ingress`] — the rules, with [`Ingress::find`] (first match, indexed by hostname) and
//!   [`Ingress::explain`] (why each earlier rule did not match);
//! * [`IngressRule`], [`HostPattern`], [`Service`], [`OriginRequest`] — one rule and its parts;
//! * [`ConfigErrors`] / [`ConfigError`] / [`ConfigErrorKind`] — what is wrong, where, and the fix.
//!
//! Config loading is two steps: serde reads raw structs whose values keep their positions,
//! then validation builds types that cannot hold an invalid state (`Duration`, `NonZeroU32`,
//! `SecretString`, enums), collecting every error instead of stopping at the first. Unknown
//! keys, which the format tolerates, become warnings that suggest the closest valid key.
//!
//! Layout:
//! * `raw` — serde structs mirroring the file, with positions;
//! * `keys` — the key tree: unknown, misspelled and deprecated keys; which key an error is in;
//! * `validate` — raw → validated, collecting errors;
//! * `load` — reading files and text, default search paths;
//! * `config` — [`TunnelConfig`] and its flag-style option types;
//! * `origin_request` — [`OriginRequest`] options and defaults;
//! * `ip_rule` — `ipRules` prefixes and ports;
//! * `service` — [`Service`] kinds and their parsing;
//! * `hostname` — rule hostname patterns and request-host normalization;
//! * `rule` — [`IngressRule`];
//! * `matcher` — [`Ingress`]: indexed first-match lookup and explanations;
//! * `duration`, `addr`, `choice` — value types (`30s`, `host:port`, fixed words);
//! * `diagnostic` — errors and warnings as users see them.

// Tests may unwrap: a panic there is a failed test, not a crashed connector.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod addr;
mod choice;
mod config;
mod diagnostic;
mod duration;
mod hostname;
mod ip_rule;
mod keys;
mod load;
mod matcher;
mod origin_request;
mod raw;
mod rule;
mod service;
mod validate;

pub use addr::{HostPort, HostPortError};
pub use choice::UnknownChoice;
pub use config::{
    EdgeIpVersion, Loaded, LogFormat, LogLevel, Protocol, Tag, TunnelConfig, TunnelRef, WarpRouting,
};
pub use diagnostic::{
    ConfigError, ConfigErrorKind, ConfigErrors, Position, Suggestion, Warning, WarningKind,
};
pub use duration::{GracePeriod, parse_duration};
pub use hostname::{HostPattern, HostnameError, normalize_host};
pub use ip_rule::{IpPrefix, IpPrefixError, IpRule};
pub use load::{default_search_paths, find_config_file};
pub use matcher::{Explanation, Ingress, Miss, RuleMatch, SkippedRule};
pub use origin_request::{AccessPolicy, HealthCheck, OriginRequest, ProxyType};
pub use rule::IngressRule;
pub use service::{Service, ServiceError, TcpKind};
