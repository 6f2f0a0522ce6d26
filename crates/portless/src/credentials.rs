//! Finding the tunnel's credentials: flags, environment, config file; and refusing files
//! that other users can read.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use portless_ingress::TunnelConfig;
use portless_proto::{Credentials, TunnelToken};
use secrecy::ExposeSecret as _;
use tracing::warn;

use crate::run_cmd::RunArgs;

/// Refuses a secret file that group or others can read: anyone on the machine could serve
/// (or impersonate) the tunnel with it.
pub(crate) fn check_private(path: &Path) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(path).with_context(|| {
        format!(
            "cannot read {}: check the path and its permissions",
            path.display()
        )
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {mode:03o}); anyone on this machine could use the tunnel secret in it. Fix: chmod 400 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<String> {
    check_private(path)?;
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// Resolves credentials in order: `--token`, `TUNNEL_TOKEN`, `--token-file`,
/// `--credentials-file`, then the config's `token`, `token-file`, `credentials-file`,
/// `credentials-contents`.
pub(crate) fn resolve(args: &RunArgs, config: &TunnelConfig) -> anyhow::Result<Credentials> {
    if let Some(token) = &args.token {
        warn!(
            "a token on the command line is visible to every user of this machine (ps, /proc); prefer --token-file FILE or the TUNNEL_TOKEN environment variable"
        );
        return Ok(TunnelToken::decode(token)?);
    }
    if let Some(token) = std::env::var("TUNNEL_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(TunnelToken::decode(&token)?);
    }
    if let Some(path) = &args.token_file {
        return Ok(TunnelToken::decode(&read_secret_file(path, "token file")?)?);
    }
    if let Some(path) = &args.credentials_file {
        return from_credentials_file(path);
    }
    if let Some(token) = &config.token {
        return Ok(TunnelToken::decode(token.expose_secret())?);
    }
    if let Some(path) = &config.token_file {
        return Ok(TunnelToken::decode(&read_secret_file(path, "token file")?)?);
    }
    if let Some(path) = &config.credentials_file {
        return from_credentials_file(path);
    }
    if let Some(contents) = &config.credentials_contents {
        return Ok(Credentials::from_file_json(contents.expose_secret())?);
    }
    // Like the incumbent: a config naming its tunnel by id finds `<id>.json` where
    // `tunnel create` writes it.
    if let Some(portless_ingress::TunnelRef::Id(id)) = &config.tunnel {
        let path = crate::paths::default_credentials_file(id);
        if path.is_file() {
            return from_credentials_file(&path);
        }
    }
    bail!(
        "no tunnel credentials: pass --token-file FILE (or set TUNNEL_TOKEN), or --credentials-file FILE as written by `portless tunnel create`, or set credentials-file in the config"
    )
}

fn from_credentials_file(path: &Path) -> anyhow::Result<Credentials> {
    let text = read_secret_file(path, "credentials file")?;
    Credentials::from_file_json(&text).with_context(|| format!("in {}", path.display()))
}
