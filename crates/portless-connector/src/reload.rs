//! Reloading a locally managed config file without dropping anything.
//!
//! [`ConfigReloader`] re-reads the connector's config file when asked (SIGHUP) or when its
//! content changes (polled), and swaps the new rules in with [`Rules::replace`]: requests
//! already in flight keep the rules they started with, connections are not touched. A file
//! that does not validate is refused with every error logged, and the rules in use stay.
//!
//! Only the rules (`ingress`, with `originRequest` merged in) change live. Settings that
//! shape the connections themselves ([`RESTART_KEYS`]) are read at start; a change to one is
//! reported as applying after a restart.
//!
//! Why polling and not file notifications: a config file is a few kilobytes, so reading and
//! hashing it every second costs nothing, needs no dependency, and also sees the changes
//! notifications miss (editors that replace the file, bind mounts, ConfigMap symlink swaps).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portless_ingress::{ConfigErrors, TunnelConfig};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::Rules;

/// Keys read only at start: the connector's identity, transport and listeners.
pub const RESTART_KEYS: [&str; 6] = [
    "tunnel",
    "credentials-file",
    "protocol",
    "ha-connections",
    "metrics",
    "edge",
];

/// A short content hash for logs: the first 12 hex digits of the SHA-256 (what
/// `sha256sum FILE | cut -c1-12` prints), so an operator can tell which file is live.
pub fn config_hash(bytes: &[u8]) -> String {
    portless_tls::sha256(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a reload did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file does not validate; every error is listed.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// What one reload attempt did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The new rules serve new requests.
    Applied {
        /// How many rules.
        rules: usize,
        /// [`config_hash`] of the file.
        hash: String,
        /// Restart-only keys ([`RESTART_KEYS`]) whose value changed.
        needs_restart: Vec<&'static str>,
    },
    /// The content is the one in use (or the one already refused): nothing to do.
    Unchanged,
    /// Refused; the previous rules stay.
    Refused(ReloadError),
}

/// Reloads one config file into the connector's [`Rules`].
pub struct ConfigReloader {
    path: PathBuf,
    rules: Rules,
    /// Serializes reloads (a SIGHUP during a poll) and holds what is in use.
    state: Mutex<State>,
}

struct State {
    /// The config in use, to tell which restart-only keys changed.
    config: TunnelConfig,
    /// SHA-256 of the content in use (`None`: not read yet, the next poll reloads).
    applied: Option<[u8; 32]>,
    /// SHA-256 of the last content refused, so a broken file is reported once, not every second.
    refused: Option<[u8; 32]>,
    /// The last poll could not read the file (reported once, like a refused content).
    unreadable: bool,
}

impl ConfigReloader {
    /// A reloader for `path`, whose content `config` was loaded from at start. Reads the file
    /// now to know its content hash; if it changed since `config` was loaded, the first poll
    /// reloads it.
    pub fn new(path: &Path, rules: Rules, config: TunnelConfig) -> Self {
        let applied = std::fs::read(path).ok().map(|b| portless_tls::sha256(&b));
        Self {
            path: path.to_owned(),
            rules,
            state: Mutex::new(State {
                config,
                applied,
                refused: None,
                unreadable: false,
            }),
        }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads if the content changed since the last reload (what the watch loop runs).
    pub async fn poll(&self) -> ReloadOutcome {
        self.reload(false).await
    }

    /// Reloads now (SIGHUP): an unchanged file is reported as such, a file refused before is
    /// checked and reported again.
    pub async fn reload_now(&self) -> ReloadOutcome {
        self.reload(true).await
    }

    async fn reload(&self, asked: bool) -> ReloadOutcome {
        let mut state = self.state.lock().await;
        let bytes = match tokio::fs::read(&self.path).await {
            Ok(bytes) => bytes,
            Err(source) => {
                // Editors that save by rename leave a moment without the file: say it once.
                if asked || !state.unreadable {
                    warn!(path = %self.path.display(), error = %source, "cannot read the config file; keeping the previous config");
                }
                state.unreadable = true;
                let path = self.path.clone();
                return ReloadOutcome::Refused(ReloadError::Read { path, source });
            }
        };
        state.unreadable = false;
        let digest = portless_tls::sha256(&bytes);
        if state.applied == Some(digest) {
            if asked {
                info!(path = %self.path.display(), "config file unchanged");
            }
            state.refused = None;
            return ReloadOutcome::Unchanged;
        }
        if !asked && state.refused == Some(digest) {
            return ReloadOutcome::Unchanged;
        }
        let text = String::from_utf8_lossy(&bytes);
        match TunnelConfig::from_yaml_str(&text, &self.path) {
            Ok(loaded) => {
                loaded.log_warnings();
                let needs_restart = restart_keys_changed(&state.config, &loaded.config);
                let rules = loaded.config.ingress.rules().len();
                let hash = config_hash(&bytes);
                self.rules.replace(loaded.config.ingress.clone());
                info!(path = %self.path.display(), rules, %hash, "config reloaded");
                if !needs_restart.is_empty() {
                    warn!(keys = %needs_restart.join(", "), "these settings changed in the config file and apply after a restart");
                }
                *state = State {
                    config: loaded.config,
                    applied: Some(digest),
                    refused: None,
                    unreadable: false,
                };
                ReloadOutcome::Applied {
                    rules,
                    hash,
                    needs_restart,
                }
            }
            Err(errors) => {
                error!(path = %self.path.display(), "config reload refused; keeping the previous config:\n{errors}");
                state.refused = Some(digest);
                ReloadOutcome::Refused(ReloadError::Invalid(errors))
            }
        }
    }

    /// Polls every `every` and reloads on each `requests` notification (SIGHUP), until
    /// `shutdown`.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        requests: Arc<Notify>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => { self.poll().await; }
                () = requests.notified() => { self.reload_now().await; }
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// The [`RESTART_KEYS`] whose value differs between `old` and `new`.
pub fn restart_keys_changed(old: &TunnelConfig, new: &TunnelConfig) -> Vec<&'static str> {
    let changed = [
        old.tunnel != new.tunnel,
        old.credentials_file != new.credentials_file,
        old.protocol != new.protocol,
        old.ha_connections != new.ha_connections,
        old.metrics != new.metrics,
        old.edge != new.edge,
    ];
    RESTART_KEYS
        .iter()
        .zip(changed)
        .filter_map(|(key, changed)| changed.then_some(*key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> TunnelConfig {
        TunnelConfig::from_yaml_str(yaml, Path::new("t.yml"))
            .unwrap()
            .config
    }

    #[test]
    fn restart_keys_are_told_apart_from_live_ones() {
        let old = config("protocol: quic\ningress:\n  - service: http_status:404\n");
        let new = config(
            "protocol: http2\nha-connections: 2\ningress:\n  - hostname: a.test\n    service: hello_world\n  - service: http_status:404\n",
        );
        assert_eq!(
            restart_keys_changed(&old, &new),
            ["protocol", "ha-connections"]
        );
        assert!(restart_keys_changed(&new, &new).is_empty());
    }

    #[test]
    fn the_hash_is_a_sha256_prefix() {
        // sha256("") = e3b0c442 98fc...
        assert_eq!(config_hash(b""), "e3b0c44298fc");
    }
}
