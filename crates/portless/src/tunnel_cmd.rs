//! `portless tunnel create|list|route|delete|ingress validate|rule|push`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use portless_edge::StateDir;
use portless_ingress::{Miss, TunnelConfig, find_config_file};
use portless_proto::{Credentials, TunnelSecret, TunnelToken};
use portless_store::Store;
use portless_tls::LocalCa;

use crate::cli::{
    CreateArgs, IngressArgs, IngressCommand, IngressPushArgs, RouteArgs, StateArgs, TunnelCommand,
};
use crate::edge_cmd::{SETTING_ADVERTISE, host_of};
use crate::paths;

pub(crate) async fn run(command: TunnelCommand) -> anyhow::Result<ExitCode> {
    match command {
        // Dispatched before logging is set up (see `cli::dispatch`).
        TunnelCommand::Run(_) => unreachable_run(),
        TunnelCommand::Create(args) => create(args).await,
        TunnelCommand::List(args) => list(&args.state).await,
        TunnelCommand::Route(args) => route(args).await,
        TunnelCommand::Delete(args) => delete(&args.tunnel, &args.state).await,
        TunnelCommand::Ingress(IngressCommand::Validate(args)) => validate(&args),
        TunnelCommand::Ingress(IngressCommand::Rule(args)) => rule(&args.url, &args.config),
        TunnelCommand::Ingress(IngressCommand::Push(args)) => push(args).await,
    }
}

fn unreachable_run() -> anyhow::Result<ExitCode> {
    bail!("internal: `tunnel run` is dispatched by cli::dispatch")
}

pub(crate) async fn open_store(state: &StateArgs) -> anyhow::Result<(StateDir, Store)> {
    let dir = StateDir(paths::state_dir(state.state_dir.clone()));
    dir.ensure()?;
    let store = Store::open(&dir.store_path())
        .await
        .with_context(|| format!("opening the store in {}", dir.0.display()))?;
    Ok((dir, store))
}

/// Writes `contents` to a new file with `mode`; refuses to overwrite.
pub(crate) fn write_new_private(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {}: if it exists, move it away or choose another path",
                path.display()
            )
        })?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let (dir, store) = open_store(&args.state).await?;
    let ca = LocalCa::load_or_create(&dir.0)?;
    let edge = match args.edge {
        Some(edge) => edge,
        None => store
            .setting(SETTING_ADVERTISE)
            .await?
            .unwrap_or_else(|| "127.0.0.1:7844".to_owned()),
    };
    let created = store.create_tunnel(&args.name).await?;
    let credentials = Credentials {
        account_tag: created.tunnel.account_tag.clone(),
        tunnel_id: created.tunnel.id,
        secret: TunnelSecret::new(created.secret.expose().to_vec()),
        server_name: Some(host_of(&edge)),
        edge: Some(edge.clone()),
        ca_pin: Some(ca.pin().to_string()),
    };
    let path = args
        .credentials_file
        .unwrap_or_else(|| paths::default_credentials_file(&created.tunnel.id));
    write_new_private(&path, &credentials.to_file_json(), 0o400)?;
    let token = TunnelToken::encode(&credentials);
    if let Some(token_path) = &args.token_file {
        write_new_private(token_path, &format!("{token}\n"), 0o600)?;
    }
    println!(
        "Created tunnel {} with id {}",
        created.tunnel.name, created.tunnel.id
    );
    println!("Credentials written to {} (mode 0400)", path.display());
    if let Some(token_path) = &args.token_file {
        println!("Token written to {} (mode 0600)", token_path.display());
    }
    println!(
        "Edge address in the credentials: {edge} (CA pin {})",
        ca.pin()
    );
    println!();
    println!("Token (keep it secret; anyone holding it can serve this tunnel):");
    println!("{token}");
    println!();
    println!("Next:");
    println!(
        "  portless tunnel route app.example.com {}",
        created.tunnel.name
    );
    println!(
        "  portless tunnel run --credentials-file {} --url http://localhost:8080",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(state: &StateArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(state).await?;
    let tunnels = store.tunnels().await?;
    let routes = store.routes().await?;
    if tunnels.is_empty() {
        println!("No tunnels yet: create one with `portless tunnel create NAME`.");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<36}  {:<20}  ROUTES", "ID", "NAME");
    for tunnel in tunnels {
        let hostnames: Vec<&str> = routes
            .iter()
            .filter(|r| r.tunnel_id == tunnel.id)
            .map(|r| r.hostname.as_str())
            .collect();
        println!(
            "{:<36}  {:<20}  {}",
            tunnel.id,
            tunnel.name,
            hostnames.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn route(args: RouteArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(&args.state).await?;
    let Some(tunnel) = store.tunnel(&args.tunnel).await? else {
        bail!(
            "no tunnel named {:?}: `portless tunnel list` shows the tunnels, `portless tunnel create NAME` makes one",
            args.tunnel
        );
    };
    let change = store.route(&args.hostname, tunnel.id).await?;
    match change.replaced {
        Some(previous) if previous != tunnel.id => println!(
            "Routed {} to tunnel {} ({}), replacing tunnel {previous}",
            change.route.hostname, tunnel.name, tunnel.id
        ),
        _ => println!(
            "Routed {} to tunnel {} ({})",
            change.route.hostname, tunnel.name, tunnel.id
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(name: &str, state: &StateArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(state).await?;
    let Some(tunnel) = store.tunnel(name).await? else {
        bail!("no tunnel named {name:?}: `portless tunnel list` shows the tunnels");
    };
    store.delete_tunnel(tunnel.id).await?;
    println!(
        "Deleted tunnel {} ({}) and its routes",
        tunnel.name, tunnel.id
    );
    Ok(ExitCode::SUCCESS)
}

/// The config file: the flag, else the first default location that exists.
pub(crate) fn config_path(flag: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path.clone());
    }
    let home = paths::home();
    find_config_file(home.as_deref()).with_context(|| {
        let searched: Vec<String> = portless_ingress::default_search_paths(home.as_deref())
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "no config file found (looked for {}); pass --config FILE",
            searched.join(", ")
        )
    })
}

fn validate(args: &IngressArgs) -> anyhow::Result<ExitCode> {
    let path = config_path(args.config.as_ref())?;
    match TunnelConfig::load(&path) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("{warning}");
            }
            println!("OK");
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn rule(url: &str, args: &IngressArgs) -> anyhow::Result<ExitCode> {
    let path = config_path(args.config.as_ref())?;
    let loaded = match TunnelConfig::load(&path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let uri: http::Uri = url.parse().with_context(|| {
        format!("{url:?} is not a URL; write it like https://app.example.com/path")
    })?;
    let host = uri.host().with_context(|| {
        format!("{url:?} has no hostname; write it like https://app.example.com/path")
    })?;
    let host = portless_proto::canonical_host(host)?;
    let path_only = portless_proto::canonical_path(uri.path())?;
    let explanation = loaded.config.ingress.explain(&host, &path_only);
    for skipped in &explanation.skipped {
        let why = match skipped.reason {
            Miss::Hostname => format!("hostname {} does not match {host}", skipped.rule.hostname()),
            Miss::Path => format!(
                "path {} does not match {path_only}",
                skipped.rule.path().map_or("", |r| r.as_str())
            ),
        };
        println!("rule #{} skipped: {why}", skipped.index + 1);
    }
    let matched = explanation.matched;
    println!("Matched rule #{}:", matched.index + 1);
    println!("  hostname: {}", matched.rule.hostname());
    if let Some(regex) = matched.rule.path() {
        println!("  path: {}", regex.as_str());
    }
    println!("  service: {}", matched.rule.service());
    Ok(ExitCode::SUCCESS)
}

/// `portless tunnel ingress push`: validate, then store; running edges push it to the
/// tunnel's connectors within a poll interval.
async fn push(args: IngressPushArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(&args.state).await?;
    match push_config(&store, &args.tunnel, &args.file).await {
        Ok(pushed) => {
            for warning in &pushed.warnings {
                eprintln!("{warning}");
            }
            println!(
                "Stored config version {} for tunnel {} ({} rules); connectors run with --config-source remote apply it",
                pushed.version, pushed.tunnel, pushed.rules
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(PushError::Refused(e)) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(PushError::Other(e)) => Err(e),
    }
}

/// A config stored by [`push_config`].
struct Pushed {
    tunnel: String,
    version: i64,
    rules: usize,
    warnings: Vec<portless_ingress::Warning>,
}

/// Why a push did not store anything.
enum PushError {
    /// The file is not a config the edge can push (invalid, or too large).
    Refused(portless_connector::RemoteConfigError),
    /// Anything else: unreadable file, unknown tunnel, store failure.
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for PushError {
    fn from(e: E) -> Self {
        PushError::Other(e.into())
    }
}

async fn push_config(store: &Store, tunnel: &str, file: &Path) -> Result<Pushed, PushError> {
    let yaml = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    let loaded =
        portless_connector::check_remote_config(&yaml, file).map_err(PushError::Refused)?;
    let Some(found) = store.tunnel(tunnel).await? else {
        return Err(anyhow::anyhow!(
            "no tunnel named {tunnel:?}: `portless tunnel list` shows the tunnels"
        )
        .into());
    };
    let version = store.set_tunnel_config(found.id, &yaml).await?;
    Ok(Pushed {
        tunnel: found.name,
        version,
        rules: loaded.config.ingress.rules().len(),
        warnings: loaded.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[tokio::test]
    async fn push_stores_valid_configs_and_refuses_invalid_or_oversized_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory().await.unwrap();
        let id = store.create_tunnel("web").await.unwrap().tunnel.id;

        let good = write(&dir, "good.yml", "ingress:\n  - service: hello_world\n");
        let pushed = push_config(&store, "web", &good).await.ok().unwrap();
        assert_eq!((pushed.version, pushed.rules), (1, 1));

        let bad = write(
            &dir,
            "bad.yml",
            "ingress:\n  - hostname: a.test\n    service: http_status:200\n",
        );
        let Err(PushError::Refused(e)) = push_config(&store, "web", &bad).await else {
            panic!("an invalid config was accepted");
        };
        assert!(e.to_string().contains("bad.yml"), "{e}");

        let huge = format!(
            "ingress:\n  - service: hello_world\n#{}\n",
            "x".repeat(70_000)
        );
        let huge = write(&dir, "huge.yml", &huge);
        let Err(PushError::Refused(e)) = push_config(&store, "web", &huge).await else {
            panic!("an oversized config was accepted");
        };
        assert!(e.to_string().contains("at most 65472 bytes"), "{e}");

        assert_eq!(store.tunnel_config(id).await.unwrap().map(|c| c.0), Some(1));
    }
}
