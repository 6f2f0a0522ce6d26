//! Reading a config file: YAML text → key checks → raw structs → validated config, and where
//! to look for the file when `--config` is not given.

use std::path::{Path, PathBuf};

use portless_diagnostics::{is_blank, parser_message};
use serde_saphyr::Spanned;

use crate::config::{Loaded, TunnelConfig};
use crate::diagnostic::{ConfigError, ConfigErrorKind, ConfigErrors, Position};
use crate::keys::{self, Node};
use crate::raw::RawConfig;
use crate::validate::{self, Checker};

impl TunnelConfig {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
        let src = std::fs::read_to_string(path).map_err(|source| {
            ConfigErrors::one(ConfigError::new(
                path,
                None,
                ConfigErrorKind::Read { source },
            ))
        })?;
        TunnelConfig::from_yaml_str(&src, path)
    }

    /// Validates config text; `origin` names the file in messages.
    ///
    /// On success, the warnings (unknown keys, deprecated keys, unreachable rules) come with
    /// the config; on failure, every error found is returned, in file order.
    pub fn from_yaml_str(src: &str, origin: &Path) -> Result<Loaded, ConfigErrors> {
        let mut ck = Checker::new(origin);
        if is_blank(src) {
            // The parser sees no document at all; to the user this is a file without rules.
            ck.error_at(None, ConfigErrorKind::NoRules);
            return Err(ConfigErrors::new(ck.errors));
        }
        // Pass 1: the bare key tree. Syntax errors (and repeated keys) surface here.
        let tree: Spanned<Node> = serde_saphyr::from_str(src).map_err(|e| {
            let kind = ConfigErrorKind::Syntax {
                message: parser_message(&e),
            };
            ConfigErrors::one(ConfigError::new(origin, Position::of_error(&e), kind))
        })?;
        keys::check_keys(&tree, origin, &mut ck.warnings);
        // Pass 2: typed. A failure here is a value of the wrong type; name its key.
        let raw: RawConfig = serde_saphyr::from_str(src).map_err(|e| {
            let position = Position::of_error(&e);
            let message = parser_message(&e);
            let kind = match position.and_then(|p| keys::key_at(&tree, p)) {
                Some(key) => ConfigErrorKind::WrongType { key, message },
                None => ConfigErrorKind::Syntax { message },
            };
            ConfigErrors::one(ConfigError::new(origin, position, kind))
        })?;
        let config = validate::validate(raw, origin, &mut ck);
        match config {
            Some(config) if ck.errors.is_empty() => Ok(Loaded {
                config,
                warnings: sorted(ck.warnings),
            }),
            _ => {
                let mut errors = ck.errors;
                // Checks run section by section; users read top to bottom.
                errors.sort_by_key(|e| e.position());
                Err(ConfigErrors::new(errors))
            }
        }
    }
}

fn sorted(mut warnings: Vec<crate::Warning>) -> Vec<crate::Warning> {
    warnings.sort_by_key(|w| w.position());
    warnings
}

/// Where to look for a config file when none is given, in order: Portless's own
/// directories, then those of the tunnel connector whose format we read, so an existing
/// setup works unchanged. Each directory is tried for `config.yml` then `config.yaml`.
/// Directories under `home` are skipped when it is `None`.
pub fn default_search_paths(home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let home_dir = |sub: &str| home.map(|h| h.join(sub));
    dirs.extend(home_dir(".portless"));
    dirs.push(PathBuf::from("/etc/portless"));
    dirs.extend(home_dir(".cloudflared"));
    dirs.extend(home_dir(".cloudflare-warp"));
    dirs.extend(home_dir("cloudflare-warp"));
    dirs.push(PathBuf::from("/etc/cloudflared"));
    dirs.push(PathBuf::from("/usr/local/etc/cloudflared"));
    dirs.iter()
        .flat_map(|dir| [dir.join("config.yml"), dir.join("config.yaml")])
        .collect()
}

/// The first of [`default_search_paths`] that exists.
pub fn find_config_file(home: Option<&Path>) -> Option<PathBuf> {
    default_search_paths(home).into_iter().find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_paths_put_portless_first() {
        let paths = default_search_paths(Some(Path::new("/home/ada")));
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/home/ada/.portless/config.yml",
                "/home/ada/.portless/config.yaml",
                "/etc/portless/config.yml",
                "/etc/portless/config.yaml",
                "/home/ada/.cloudflared/config.yml",
                "/home/ada/.cloudflared/config.yaml",
                "/home/ada/.cloudflare-warp/config.yml",
                "/home/ada/.cloudflare-warp/config.yaml",
                "/home/ada/cloudflare-warp/config.yml",
                "/home/ada/cloudflare-warp/config.yaml",
                "/etc/cloudflared/config.yml",
                "/etc/cloudflared/config.yaml",
                "/usr/local/etc/cloudflared/config.yml",
                "/usr/local/etc/cloudflared/config.yaml",
            ]
        );
        assert_eq!(default_search_paths(None).len(), 6);
    }
}
