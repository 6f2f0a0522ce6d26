//! `portless tunnel run`: the connector, its config reloads and SIGHUP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use portless_connector::{
    ConfigReloader, ConfigSource, Connector, ConnectorOptions, ProtocolChoice, Rules,
    awaiting_remote_config,
};
use portless_ingress::{
    EdgeIpVersion, LogFormat as ConfigLogFormat, LogLevel, Protocol, TunnelConfig,
};
use portless_tls::{CaPin, EdgeTrust, tunnel_client_config};
use portless_transport::DialTarget;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::cli::LogArgs;
use crate::edge_cmd::host_of;
use crate::{credentials, signals, tunnel_cmd};

/// `portless tunnel run`. Flags override the config file.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Config file (the widely used tunnel YAML format); default: the standard locations.
    /// Watched: a valid change applies to new requests, an invalid one is refused (also on
    /// SIGHUP).
    #[arg(long, env = "TUNNEL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Where ingress rules come from: `local` (the config file; configs pushed by the edge
    /// are ignored) or `remote` (the edge pushes them; a config file is optional and only
    /// supplies the first rules).
    #[arg(long, env = "TUNNEL_CONFIG_SOURCE", default_value = "local")]
    pub(crate) config_source: ConfigSource,
    /// Serve this one origin for every hostname instead of a config file's rules.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// The tunnel token. Visible to other users in `ps`: prefer --token-file or TUNNEL_TOKEN.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// A file holding the tunnel token (mode 0600 or stricter).
    #[arg(long, env = "TUNNEL_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// The credentials file written by `portless tunnel create` (mode 0400 or 0600).
    #[arg(
        long = "credentials-file",
        alias = "cred-file",
        env = "TUNNEL_CRED_FILE"
    )]
    pub(crate) credentials_file: Option<PathBuf>,
    /// auto (QUIC, falling back to TCP), quic, or http2/tcp.
    #[arg(long, env = "TUNNEL_TRANSPORT_PROTOCOL")]
    pub(crate) protocol: Option<String>,
    /// Connections kept to the edge (default 4).
    #[arg(long, env = "TUNNEL_HA_CONNECTIONS")]
    pub(crate) ha_connections: Option<u8>,
    /// Time in-flight requests get on shutdown (default 30s, at most 3m).
    #[arg(long, env = "TUNNEL_GRACE_PERIOD", value_parser = humantime::parse_duration)]
    pub(crate) grace_period: Option<Duration>,
    /// Reconnect backoff ceiling is 2^retries seconds (default 5).
    #[arg(long, env = "TUNNEL_RETRIES")]
    pub(crate) retries: Option<u32>,
    /// Metrics and health address; default: the first free of 127.0.0.1:20241..20245.
    #[arg(long, env = "TUNNEL_METRICS")]
    pub(crate) metrics: Option<String>,
    /// The edge's tunnel address (`host:port`); default: from the token or config.
    #[arg(long, env = "PORTLESS_EDGE")]
    pub(crate) edge: Option<String>,
    /// Trust the edge's certificate through this CA file instead of the token's pin.
    #[arg(long, env = "PORTLESS_EDGE_CA")]
    pub(crate) edge_ca: Option<PathBuf>,
    /// Write the process id to this file (removed at exit).
    #[arg(long, env = "TUNNEL_PIDFILE")]
    pub(crate) pidfile: Option<PathBuf>,
    /// Which address family reaches the edge: auto, 4 or 6.
    #[arg(long, env = "TUNNEL_EDGE_IP_VERSION")]
    pub(crate) edge_ip_version: Option<String>,
    /// Local address to dial the edge from.
    #[arg(long, env = "TUNNEL_EDGE_BIND_ADDRESS")]
    pub(crate) edge_bind_address: Option<std::net::IpAddr>,
    /// Require post-quantum key agreement (X25519MLKEM768) with the edge: no classical
    /// fallback.
    #[arg(long, env = "TUNNEL_POST_QUANTUM")]
    pub(crate) post_quantum: bool,
    /// A name for this connector, shown in its logs.
    #[arg(long, env = "TUNNEL_LABEL")]
    pub(crate) label: Option<String>,
    /// Accepted for compatibility: Portless never updates itself.
    #[arg(long, env = "NO_AUTOUPDATE")]
    pub(crate) no_autoupdate: bool,
}

/// How often the config file is checked for changes.
const CONFIG_POLL: Duration = Duration::from_secs(1);

/// The config the connector starts with, and where its rules come from next.
struct StartConfig {
    config: TunnelConfig,
    rules: Rules,
    /// The file to watch (`--config-source local` with a config file).
    watch: Option<PathBuf>,
}

/// Installs logging from the flags, then the config's `loglevel`, `output`, `logfile` and
/// `log-directory`.
fn init_logging(log: &LogArgs, config: Option<&TunnelConfig>) -> anyhow::Result<()> {
    let Some(config) = config else {
        return log.init(None, None, None);
    };
    let level = match config.loglevel {
        LogLevel::Fatal => "error",
        other => other.as_str(),
    };
    let file = config.logfile.clone().or_else(|| {
        config
            .log_directory
            .as_ref()
            .map(|d| d.join("portless.log"))
    });
    log.init(
        Some(level),
        Some(config.output == ConfigLogFormat::Json),
        file,
    )
}

fn load_config(args: &RunArgs, log: &LogArgs) -> anyhow::Result<StartConfig> {
    let remote = args.config_source == ConfigSource::Remote;
    let (loaded, file) = match &args.url {
        Some(url) => {
            let yaml = format!("ingress:\n  - service: {url}\n");
            (TunnelConfig::from_yaml_str(&yaml, Path::new("--url")), None)
        }
        None => {
            let path = tunnel_cmd::config_path(args.config.as_ref());
            match path {
                Ok(path) => (TunnelConfig::load(&path), Some(path)),
                // A remotely managed connector may run from a token alone.
                Err(_) if remote => {
                    init_logging(log, None)?;
                    info!(
                        "no config file: waiting for the edge to send this tunnel's config (--config-source remote)"
                    );
                    let placeholder = awaiting_remote_config()
                        .map_err(|e| anyhow::anyhow!("built-in placeholder config: {e}"))?
                        .config;
                    let rules = Rules::pending(placeholder.ingress.clone());
                    return Ok(StartConfig {
                        config: placeholder,
                        rules,
                        watch: None,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(errors) => bail!("the config is not valid:\n{errors}"),
    };
    init_logging(log, Some(&loaded.config))?;
    loaded.log_warnings();
    let watch = match file {
        Some(path) if remote => {
            info!(path = %path.display(), "the config file gives the first rules; later ones come from the edge (--config-source remote)");
            None
        }
        other => other,
    };
    Ok(StartConfig {
        rules: Rules::new(loaded.config.ingress.clone()),
        config: loaded.config,
        watch,
    })
}

/// Watches the config file (when there is one to watch) and turns SIGHUP into a reload.
fn watch_config(
    start: &StartConfig,
    rules: &Rules,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let requests = Arc::new(Notify::new());
    let mut hangup = signal(SignalKind::hangup())?;
    let watching = start.watch.is_some();
    let notify = requests.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                Some(()) = hangup.recv() => {}
                () = stop.cancelled() => return,
            }
            if watching {
                info!("SIGHUP: reloading the config file");
                notify.notify_one();
            } else {
                warn!("SIGHUP ignored: there is no config file to reload (--url, or --config-source remote)");
            }
        }
    });
    if let Some(path) = &start.watch {
        let reloader = Arc::new(ConfigReloader::new(
            path,
            rules.clone(),
            start.config.clone(),
        ));
        info!(path = %path.display(), "watching the config file for changes (SIGHUP reloads at once)");
        tasks.spawn(reloader.watch(CONFIG_POLL, requests, shutdown));
    }
    Ok(())
}

fn protocol(args: &RunArgs, config: &TunnelConfig) -> anyhow::Result<ProtocolChoice> {
    let protocol = match &args.protocol {
        Some(text) => text
            .parse::<Protocol>()
            .map_err(|e| anyhow::anyhow!("--protocol: {e}"))?,
        None => config.protocol,
    };
    Ok(match protocol {
        Protocol::Auto => ProtocolChoice::Auto,
        Protocol::Quic => ProtocolChoice::Quic,
        Protocol::Http2 => ProtocolChoice::Tcp,
    })
}

async fn metrics_listener(
    args: &RunArgs,
    config: &TunnelConfig,
) -> anyhow::Result<Option<TcpListener>> {
    let explicit = args
        .metrics
        .clone()
        .or_else(|| config.metrics.as_ref().map(|m| m.to_string()));
    if let Some(address) = explicit {
        let listener = TcpListener::bind(address.as_str()).await.with_context(|| {
            format!("cannot serve metrics on {address}: choose another address with --metrics")
        })?;
        return Ok(Some(listener));
    }
    for port in 20241..=20245 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return Ok(Some(listener));
        }
    }
    warn!(
        "ports 127.0.0.1:20241-20245 are all taken: running without a metrics server (set --metrics)"
    );
    Ok(None)
}

/// The edge's address, of the family `edge-ip-version` asks for.
async fn resolve_edge(address: &str, version: EdgeIpVersion) -> anyhow::Result<SocketAddr> {
    let addrs = tokio::net::lookup_host(address).await.with_context(|| {
        format!("cannot resolve the edge address {address:?}: write it as host:port")
    })?;
    let mut addrs = addrs.filter(|a| match version {
        EdgeIpVersion::Auto => true,
        EdgeIpVersion::V4 => a.is_ipv4(),
        EdgeIpVersion::V6 => a.is_ipv6(),
    });
    addrs.next().with_context(|| {
        format!(
            "the edge address {address:?} has no {} address (edge-ip-version)",
            version.as_str()
        )
    })
}

/// Writes the process id to `path` and removes the file when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &Path) -> anyhow::Result<Self> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        Ok(Self(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) async fn run(args: RunArgs, log: LogArgs) -> anyhow::Result<ExitCode> {
    let start = load_config(&args, &log)?;
    let config = &start.config;
    let credentials = credentials::resolve(&args, config)?;
    let edge = args
        .edge
        .clone()
        .or_else(|| config.edge.as_ref().map(|e| e.to_string()))
        .or_else(|| credentials.edge.clone())
        .context("no edge address: pass --edge HOST:PORT (the edge logs the address to advertise) or use a token from `portless tunnel create`")?;
    let ip_version = match &args.edge_ip_version {
        Some(text) => text
            .parse::<EdgeIpVersion>()
            .map_err(|e| anyhow::anyhow!("--edge-ip-version: {e}"))?,
        None => config.edge_ip_version,
    };
    let addr = resolve_edge(&edge, ip_version).await?;
    let server_name = credentials
        .server_name
        .clone()
        .unwrap_or_else(|| host_of(&edge));
    let trust = match (&args.edge_ca, &credentials.ca_pin) {
        (Some(path), _) => {
            let certs = portless_tls::load_pem_certs(path)?;
            let cert = certs
                .into_iter()
                .next()
                .with_context(|| format!("{} holds no certificate", path.display()))?;
            EdgeTrust::CaCertificate(cert)
        }
        (None, Some(pin)) => EdgeTrust::Pinned(pin.parse::<CaPin>()?),
        (None, None) => EdgeTrust::SystemRoots,
    };
    let post_quantum = args.post_quantum || config.post_quantum;
    let tls = if post_quantum {
        info!("post-quantum key agreement required with the edge (X25519MLKEM768 only)");
        portless_tls::tunnel_client_config_post_quantum(trust)?
    } else {
        tunnel_client_config(trust)?
    };
    let mut options = ConnectorOptions::new(
        credentials.tunnel_id,
        credentials.secret.clone(),
        DialTarget { addr, server_name },
    );
    options.protocol = protocol(&args, config)?;
    let ha = args
        .ha_connections
        .map(u32::from)
        .unwrap_or(config.ha_connections.get());
    options.ha_connections = u8::try_from(ha.clamp(1, 64)).unwrap_or(4);
    options.grace_period = args.grace_period.unwrap_or(config.grace_period.get());
    if options.grace_period > Duration::from_secs(180) {
        bail!("--grace-period is at most 3m");
    }
    let retries = args.retries.unwrap_or(config.retries).min(16);
    options.backoff_cap = Duration::from_secs(1u64 << retries);
    options.bind = args.edge_bind_address.or(config.edge_bind_address);
    if let Some(label) = args.label.as_ref().or(config.label.as_ref()) {
        info!(label = %label, tags = ?config.tags, "connector label");
    }
    let _pidfile = match args.pidfile.as_ref().or(config.pidfile.as_ref()) {
        Some(path) => Some(PidFile::create(path)?),
        None => None,
    };
    let metrics = metrics_listener(&args, config).await?;
    let handle = Connector::start_with_config_source(
        options,
        start.rules.clone(),
        args.config_source,
        tls,
        metrics,
    )?;
    let watchers = TaskTracker::new();
    watch_config(&start, handle.rules(), &watchers, handle.shutdown_token())?;
    watchers.close();
    if let Some(addr) = handle.metrics_addr() {
        info!(%addr, "metrics and health at http://{addr}/metrics, /ready, /healthz");
    }
    signals::watch(handle.shutdown_token(), handle.abort_token())?;
    handle.wait().await;
    watchers.wait().await;
    Ok(ExitCode::SUCCESS)
}
