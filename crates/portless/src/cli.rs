//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use portless_telemetry::{LogFormat, init_logging};

/// Portless: publish services from servers with zero inbound ports, every request checked at
/// an edge you own.
#[derive(Parser, Debug)]
#[command(name = "portless", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogArgs,
}

/// Logging flags shared by every command.
#[derive(Args, Debug, Clone)]
pub(crate) struct LogArgs {
    /// Log level (error, warn, info, debug; default info, or the config's `loglevel`);
    /// RUST_LOG overrides it.
    #[arg(long = "loglevel", global = true, env = "TUNNEL_LOGLEVEL")]
    pub(crate) level: Option<String>,
    /// Log line format (default, or the config's `output`).
    #[arg(long = "output", global = true, value_enum, env = "TUNNEL_OUTPUT")]
    pub(crate) output: Option<OutputFormat>,
    /// Also write logs to this file (appended), like the config's `logfile`.
    #[arg(long = "logfile", global = true, env = "TUNNEL_LOGFILE")]
    pub(crate) logfile: Option<PathBuf>,
    /// Also write logs to `portless.log` in this directory, like `log-directory`.
    #[arg(long = "log-directory", global = true, env = "TUNNEL_LOGDIRECTORY")]
    pub(crate) log_directory: Option<PathBuf>,
}

/// Log line formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    /// Human-readable lines.
    Default,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an edge: the public HTTPS listener and the tunnel listener connectors dial.
    Edge(EdgeArgs),
    /// Manage and run tunnels.
    #[command(subcommand)]
    Tunnel(TunnelCommand),
    /// Ask the access policy about a URL.
    #[command(subcommand)]
    Policy(crate::policy_cmd::PolicyCommand),
    /// Manage the users file (`users_database.yml`): add users, set passwords, disable.
    #[command(subcommand)]
    User(crate::user_cmd::UserCommand),
    /// Manage service tokens: credentials machines present as `CF-Access-Client-Id` and
    /// `CF-Access-Client-Secret` headers, accepted by rules that name them (`token:NAME`).
    Token {
        #[command(subcommand)]
        command: crate::token_cmd::TokenCommand,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Reach protected applications from a terminal: sign in once through the browser,
    /// then curl them or carry TCP (SSH, RDP...) through the edge.
    #[command(subcommand)]
    Access(crate::access_cmd::AccessCommand),
    /// Start an edge, a connector and a sample origin on this machine, and print a curl
    /// command that reaches the origin through them. Runs until Ctrl-C.
    Demo(DemoArgs),
}

/// `portless edge`.
#[derive(Args, Debug)]
pub(crate) struct EdgeArgs {
    #[command(flatten)]
    pub(crate) state: StateArgs,
    /// Edge config file (YAML): TLS passthrough hostnames, public TCP/UDP ports,
    /// certificates. See docs/edge-config.md. Without it, none of these are on.
    #[arg(long, env = "PORTLESS_EDGE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Public HTTPS address.
    #[arg(long, env = "PORTLESS_LISTEN", default_value = "0.0.0.0:443")]
    pub(crate) listen: SocketAddr,
    /// Tunnel address: QUIC on UDP and TLS on TCP, same port number.
    #[arg(long, env = "PORTLESS_TUNNEL_LISTEN", default_value = "0.0.0.0:7844")]
    pub(crate) tunnel_listen: SocketAddr,
    /// Metrics and health address (`/metrics`, `/ready`, `/healthz`).
    #[arg(long, env = "PORTLESS_EDGE_METRICS", default_value = "127.0.0.1:20240")]
    pub(crate) metrics: SocketAddr,
    /// The tunnel address connectors dial, as written into new tokens (`host:port`).
    /// Defaults to the tunnel listener with 127.0.0.1 for an unspecified address.
    #[arg(long, env = "PORTLESS_ADVERTISE")]
    pub(crate) advertise: Option<String>,
    /// This edge's name, shown in connector logs.
    #[arg(long, env = "PORTLESS_EDGE_NAME", default_value = "edge")]
    pub(crate) name: String,
    /// Serve the TCP fallback only (no QUIC).
    #[arg(long)]
    pub(crate) no_quic: bool,
    /// Time in-flight requests get on shutdown.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) grace_period: Duration,
    /// Access configuration (`access_control`, `session`, users file...): every routed
    /// hostname is then judged by its policy, with the login portal on the configured auth
    /// host. Without it, every route is public.
    #[arg(long, env = "PORTLESS_ACCESS_CONFIG")]
    pub(crate) access_config: Option<PathBuf>,
    /// A reverse proxy (address or CIDR) whose forwarded headers the forward-auth endpoints
    /// trust; repeat for several.
    #[arg(
        long = "trusted-proxy",
        env = "PORTLESS_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDRESS|CIDR",
        value_parser = parse_trusted_proxy
    )]
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// Lifetime of the tokens `portless access login` gets (at most 30 days). Shorter is
    /// safer: a CLI token is not revoked when its person signs out of the browser.
    #[arg(
        long,
        env = "PORTLESS_CLI_TOKEN_LIFETIME",
        default_value = "24h",
        value_parser = parse_cli_token_lifetime
    )]
    pub(crate) cli_token_lifetime: Duration,
}

/// A duration from one minute to [`portless_access::assertion::CLI_MAX_TTL`].
fn parse_cli_token_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); write one such as `8h` or `7d`"))?;
    let max = portless_access::assertion::CLI_MAX_TTL;
    if lifetime < Duration::from_secs(60) || lifetime > max {
        return Err(format!(
            "{text:?} is out of range: a CLI token lives from 1 minute to {} days",
            max.as_secs() / 86_400
        ));
    }
    Ok(lifetime)
}

/// `127.0.0.1` (one address) or `10.0.0.0/8` (a network).
fn parse_trusted_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(address) = text.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(address));
    }
    text.parse::<ipnet::IpNet>().map_err(|_| {
        format!("{text:?} is neither an IP address (127.0.0.1) nor a network (10.0.0.0/8)")
    })
}

/// Where the edge keeps its state.
#[derive(Args, Debug, Clone)]
pub(crate) struct StateArgs {
    /// State directory: store, local CA. Default: /var/lib/portless as root, else
    /// ~/.local/share/portless.
    #[arg(long, env = "PORTLESS_STATE_DIR", global = true)]
    pub(crate) state_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TunnelCommand {
    /// Create a tunnel: writes its credentials file (mode 0400) and prints its token.
    Create(CreateArgs),
    /// List tunnels and their routes.
    List(StateOnly),
    /// Route a hostname to a tunnel (`*.example.com` routes every subdomain).
    Route(RouteArgs),
    /// Delete a tunnel and its routes.
    Delete(DeleteArgs),
    /// Run the connector for a tunnel.
    Run(Box<crate::run_cmd::RunArgs>),
    /// Check or query ingress rules.
    #[command(subcommand)]
    Ingress(IngressCommand),
}

/// Only the state directory.
#[derive(Args, Debug)]
pub(crate) struct StateOnly {
    #[command(flatten)]
    pub(crate) state: StateArgs,
}

/// `portless tunnel create`.
#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Tunnel name (letters, digits, '.', '_', '-').
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) state: StateArgs,
    /// Where to write the credentials file. Default: ~/.portless/<TUNNEL-ID>.json.
    #[arg(long = "credentials-file", alias = "cred-file")]
    pub(crate) credentials_file: Option<PathBuf>,
    /// Also write the token to this file (mode 0600), for `tunnel run --token-file`.
    #[arg(long)]
    pub(crate) token_file: Option<PathBuf>,
    /// The edge address written into the token; default: what the edge advertises.
    #[arg(long)]
    pub(crate) edge: Option<String>,
}

/// `portless tunnel route`.
#[derive(Args, Debug)]
pub(crate) struct RouteArgs {
    /// The public hostname, e.g. app.example.com or *.example.com.
    pub(crate) hostname: String,
    /// The tunnel's name or id.
    pub(crate) tunnel: String,
    #[command(flatten)]
    pub(crate) state: StateArgs,
}

/// `portless tunnel delete`.
#[derive(Args, Debug)]
pub(crate) struct DeleteArgs {
    /// The tunnel's name or id.
    pub(crate) tunnel: String,
    #[command(flatten)]
    pub(crate) state: StateArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum IngressCommand {
    /// Validate the config file's ingress rules: prints OK, or the errors (exit code 1).
    Validate(IngressArgs),
    /// Print the rule that serves URL, and why earlier rules did not.
    Rule(IngressRuleArgs),
    /// Store FILE as TUNNEL's remotely managed config: the edge pushes it live to the
    /// tunnel's connectors (those run with `--config-source remote` apply it). The file is
    /// validated first and must be at most 65,472 bytes; prints the new version.
    Push(IngressPushArgs),
}

/// `portless tunnel ingress push`.
#[derive(Args, Debug)]
pub(crate) struct IngressPushArgs {
    /// The tunnel's name or id.
    pub(crate) tunnel: String,
    /// The config file (the connector YAML format).
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) state: StateArgs,
}

/// The config file to check.
#[derive(Args, Debug)]
pub(crate) struct IngressArgs {
    /// Config file; default: the first of the standard locations that exists.
    #[arg(long, env = "TUNNEL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// `portless tunnel ingress rule`.
#[derive(Args, Debug)]
pub(crate) struct IngressRuleArgs {
    /// The URL to match, e.g. https://app.example.com/api/x.
    pub(crate) url: String,
    #[command(flatten)]
    pub(crate) config: IngressArgs,
}

/// `portless demo`.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Public HTTPS port on 127.0.0.1 (a free one is chosen if it is taken).
    #[arg(long, default_value_t = 8443)]
    pub(crate) port: u16,
}

/// Runs the parsed command. `tunnel run` sets up logging itself, after reading its config
/// file (whose `loglevel`, `output`, `logfile` and `log-directory` apply when no flag says
/// otherwise).
pub(crate) async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tunnel(TunnelCommand::Run(args)) => crate::run_cmd::run(*args, cli.log).await,
        command => {
            cli.log.init(None, None, None)?;
            match command {
                Command::Edge(args) => crate::edge_cmd::run(args).await,
                Command::Demo(args) => crate::demo::run(args).await,
                Command::Access(command) => crate::access_cmd::run(command).await,
                Command::Tunnel(command) => crate::tunnel_cmd::run(command).await,
                Command::Policy(command) => {
                    crate::policy_cmd::run(command)?;
                    Ok(ExitCode::SUCCESS)
                }
                Command::User(command) => {
                    crate::user_cmd::run(command)?;
                    Ok(ExitCode::SUCCESS)
                }
                Command::Token { command, state } => {
                    let (_, store) = crate::tunnel_cmd::open_store(&state).await?;
                    crate::token_cmd::run(command, &store).await?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}

impl LogArgs {
    /// Installs logging: flags first, then the config's values (`level`, `json`, `file`).
    pub(crate) fn init(
        &self,
        config_level: Option<&str>,
        config_json: Option<bool>,
        config_file: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        let level = self.level.as_deref().or(config_level).unwrap_or("info");
        let format = match (self.output, config_json) {
            (Some(OutputFormat::Json), _) | (None, Some(true)) => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let file = self
            .logfile
            .clone()
            .or_else(|| self.log_directory.as_ref().map(|d| d.join("portless.log")))
            .or(config_file);
        let file = match file {
            Some(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        anyhow::anyhow!("cannot create the log directory {}: {e}", parent.display())
                    })?;
                }
                let opened = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        anyhow::anyhow!("cannot open the log file {}: {e}", path.display())
                    })?;
                Some(opened)
            }
            None => None,
        };
        init_logging(format, level, file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_proxy_is_an_address_or_a_network() {
        assert_eq!(
            parse_trusted_proxy("127.0.0.1"),
            Ok("127.0.0.1/32".parse().unwrap())
        );
        assert_eq!(parse_trusted_proxy("::1"), Ok("::1/128".parse().unwrap()));
        assert_eq!(
            parse_trusted_proxy("10.0.0.0/8"),
            Ok("10.0.0.0/8".parse().unwrap())
        );
        let refused = parse_trusted_proxy("proxy.local").unwrap_err();
        assert!(refused.contains("neither an IP address"), "{refused}");
    }

    #[test]
    fn a_cli_token_lifetime_is_a_minute_to_thirty_days() {
        assert_eq!(
            parse_cli_token_lifetime("8h"),
            Ok(Duration::from_secs(8 * 3600))
        );
        assert_eq!(
            parse_cli_token_lifetime("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        for (text, problem) in [
            ("31d", "out of range"),
            ("30s", "out of range"),
            ("soon", "not a duration"),
        ] {
            let refused = parse_cli_token_lifetime(text).unwrap_err();
            assert!(refused.contains(problem), "{text}: {refused}");
        }
    }
}
