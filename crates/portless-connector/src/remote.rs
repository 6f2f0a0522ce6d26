//! Remotely managed configs: what the connector does with the `ConfigUpdate`s the edge pushes.
//!
//! The edge sends a tunnel's stored config on every connection, right after registration and
//! whenever it changes, so a connector with `ha-connections` connections hears each version
//! several times. [`RemoteUpdates`] decides once per version (apply, refuse, or ignore under
//! `--config-source local`) and gives every connection the same answer.
//!
//! Versions only grow in a store, so an update older than the last one handled is stale (a
//! connection that registered just before a push) and is not applied.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use portless_ingress::{ConfigErrors, Loaded, TunnelConfig};
use portless_proto::{Control, ErrorClass, StreamError};
use tracing::{debug, error, info};

use crate::Rules;
use crate::reload::config_hash;

/// Where a connector takes its ingress rules from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConfigSource {
    /// The local config file (reloaded when it changes); configs pushed by the edge are
    /// ignored, so a remote change never silently overrides what the operator wrote.
    #[default]
    Local,
    /// The edge: pushed configs replace the rules; a local file only supplies the first rules.
    Remote,
}

impl ConfigSource {
    /// The word used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigSource::Local => "local",
            ConfigSource::Remote => "remote",
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A config source other than `local` or `remote`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config source {0:?} is not one of local, remote")]
pub struct UnknownConfigSource(String);

impl FromStr for ConfigSource {
    type Err = UnknownConfigSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(ConfigSource::Local),
            "remote" => Ok(ConfigSource::Remote),
            _ => Err(UnknownConfigSource(s.to_owned())),
        }
    }
}

/// Why a config cannot be managed remotely.
#[derive(Debug, thiserror::Error)]
pub enum RemoteConfigError {
    /// The text does not fit in one control message.
    #[error(
        "the config is {len} bytes; a remotely managed config is at most {max} bytes (it travels in one control message): move rarely changed rules to a local config file"
    )]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit, [`Control::MAX_CONFIG_YAML_LEN`].
        max: usize,
    },
    /// The config is not valid.
    #[error("the config is not valid:\n{0}")]
    Invalid(ConfigErrors),
}

/// Checks a config meant to be pushed through the edge: within the size a `ConfigUpdate`
/// carries, and valid for the ingress crate. `origin` names it in error messages.
/// `portless tunnel ingress push` runs this before storing; connectors run it on receipt.
pub fn check_remote_config(yaml: &str, origin: &Path) -> Result<Loaded, RemoteConfigError> {
    if yaml.len() > Control::MAX_CONFIG_YAML_LEN {
        return Err(RemoteConfigError::TooLarge {
            len: yaml.len(),
            max: Control::MAX_CONFIG_YAML_LEN,
        });
    }
    TunnelConfig::from_yaml_str(yaml, origin).map_err(RemoteConfigError::Invalid)
}

/// Placeholder config of a connector started without a config file under
/// `--config-source remote`: every setting at its default. Its one rule is never served;
/// use it with [`Rules::pending`].
pub fn awaiting_remote_config() -> Result<Loaded, ConfigErrors> {
    TunnelConfig::from_yaml_str(
        "ingress:\n  - service: http_status:503\n",
        Path::new("(waiting for the remote config)"),
    )
}

/// The connector's handling of pushed configs, shared by all its connections.
pub(crate) struct RemoteUpdates {
    source: ConfigSource,
    rules: Rules,
    /// The last version handled and the answer it got: later deliveries of the same version
    /// (one per connection) get that answer without being applied or logged again.
    last: Mutex<Option<(u64, Control)>>,
}

impl RemoteUpdates {
    pub(crate) fn new(source: ConfigSource, rules: Rules) -> Self {
        Self {
            source,
            rules,
            last: Mutex::new(None),
        }
    }

    /// Handles version `version` of the tunnel's config; returns the status for the edge.
    pub(crate) fn receive(&self, version: u64, yaml: &str) -> Control {
        let mut last = match self.last.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match &*last {
            Some((seen, status)) if *seen == version => return status.clone(),
            Some((seen, _)) if *seen > version => {
                debug!(
                    version,
                    handled = *seen,
                    "stale remote config version ignored"
                );
                let why = format!("version {seen} was already handled");
                return Control::config_status(version, false, Some(&why));
            }
            _ => {}
        }
        let status = match self.source {
            ConfigSource::Local => {
                info!(
                    version,
                    "remote config version {version} ignored (--config-source local)"
                );
                Control::config_status(
                    version,
                    false,
                    Some("ignored: this connector uses its local config (--config-source local)"),
                )
            }
            ConfigSource::Remote => self.apply(version, yaml),
        };
        *last = Some((version, status.clone()));
        status
    }

    fn apply(&self, version: u64, yaml: &str) -> Control {
        let origin = format!("remote config version {version}");
        match check_remote_config(yaml, Path::new(&origin)) {
            Ok(loaded) => {
                loaded.log_warnings();
                let rules = loaded.config.ingress.rules().len();
                self.rules.replace(loaded.config.ingress);
                info!(
                    version,
                    rules,
                    hash = %config_hash(yaml.as_bytes()),
                    "applied remote config version {version}"
                );
                Control::config_status(version, true, None)
            }
            Err(e) => {
                error!(
                    version,
                    "remote config version {version} refused; keeping the current rules: {e}"
                );
                Control::config_status(version, false, Some(&e.to_string()))
            }
        }
    }
}

/// The answer to a request that arrived before the connector has any rules (remote source,
/// no config file, no update yet): says what is missing.
pub(crate) fn no_rules_yet() -> StreamError {
    StreamError {
        class: ErrorClass::TunnelDown,
        message: "the connector has no ingress rules yet: it runs with --config-source remote \
                  and is waiting for the edge to send the tunnel's config (push one with \
                  `portless tunnel ingress push`)"
            .to_owned(),
    }
}
