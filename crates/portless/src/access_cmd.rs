//! `portless access login|token|curl|tcp`: the access client, for people and machines that
//! reach protected applications from a terminal instead of a browser.
//!
//! * `login URL` signs in once through the browser (the normal portal and policy) and keeps
//!   the CLI token the edge mints under the user's config directory;
//! * `token URL` prints it; `curl URL [ARGS]` runs curl with it;
//! * `tcp --hostname H` carries a TCP stream through the edge to the connector's `ssh://`,
//!   `tcp://` or `rdp://` rule: on stdin/stdout (an SSH `ProxyCommand`), or for every
//!   connection to a local listener (`--url`).
//!
//! Machines skip the login and present a service token (flags or environment).
//!
//! Layout: `target` (which application a URL names), `store` (token files), `login` (the
//! browser flow), `auth` (what a request presents), `edge` (TLS to the edge and the
//! upgrade), `tcp` (the stream carriers), `curl`.

mod auth;
mod curl;
mod edge;
mod login;
mod store;
mod target;
mod tcp;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

/// `portless access ...`.
#[derive(Subcommand, Debug)]
pub(crate) enum AccessCommand {
    /// Sign in to an application through the browser and keep its CLI token.
    Login(LoginArgs),
    /// Print the stored CLI token of an application (for scripts: `cf-access-token: TOKEN`).
    Token(UrlArg),
    /// Run curl with the application's CLI token (or service token) added; curl's exit
    /// code is passed on.
    Curl(CurlArgs),
    /// Carry a TCP stream through the edge to the hostname's `ssh://`, `tcp://` or `rdp://`
    /// rule: on stdin/stdout (an SSH `ProxyCommand`), or for each connection to `--url`.
    Tcp(TcpArgs),
}

/// An application URL (`https://app.example.com`, or just the hostname).
#[derive(Args, Debug)]
pub(crate) struct UrlArg {
    /// The application, e.g. https://app.example.com.
    pub(crate) url: String,
}

/// `portless access login`.
#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// The application, e.g. https://app.example.com.
    pub(crate) url: String,
    /// Only print the sign-in URL; do not start a browser.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// How long to wait for the browser to come back.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
}

/// `portless access curl`.
#[derive(Args, Debug)]
pub(crate) struct CurlArgs {
    /// The application URL to request.
    pub(crate) url: String,
    /// Arguments for curl, passed unchanged (put them after `--` when they look like flags
    /// of this command).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) curl_args: Vec<String>,
    #[command(flatten)]
    pub(crate) service_token: ServiceTokenArgs,
}

/// `portless access tcp`.
#[derive(Args, Debug)]
pub(crate) struct TcpArgs {
    /// The hostname whose rule serves the stream, e.g. ssh.example.com.
    #[arg(long, alias = "host", alias = "tunnel-host")]
    pub(crate) hostname: String,
    /// Listen here (e.g. 127.0.0.1:2222) and carry every accepted connection; without it
    /// the stream is on stdin/stdout.
    #[arg(long, alias = "listener")]
    pub(crate) url: Option<String>,
    /// Connect to this address instead of HOSTNAME:443 (TLS name and Host stay HOSTNAME).
    #[arg(long, env = "PORTLESS_ACCESS_EDGE", value_name = "HOST:PORT")]
    pub(crate) edge: Option<String>,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
    #[command(flatten)]
    pub(crate) service_token: ServiceTokenArgs,
}

/// Which certificates the client trusts for the edge.
#[derive(Args, Debug)]
pub(crate) struct TlsArgs {
    /// Also trust the CA certificates in this PEM file (a private CA, or the edge's local
    /// CA `ca.pem`); the system's roots stay trusted.
    #[arg(long, env = "PORTLESS_ACCESS_CA_FILE", value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
}

/// A service token, for machines.
#[derive(Args, Debug)]
pub(crate) struct ServiceTokenArgs {
    /// The service token's client id (env PORTLESS_SERVICE_TOKEN_ID or TUNNEL_SERVICE_TOKEN_ID).
    #[arg(long, alias = "id")]
    pub(crate) service_token_id: Option<String>,
    /// The service token's secret (env PORTLESS_SERVICE_TOKEN_SECRET or
    /// TUNNEL_SERVICE_TOKEN_SECRET); prefer the environment, which `ps` does not show.
    #[arg(long, alias = "secret")]
    pub(crate) service_token_secret: Option<String>,
}

/// Runs an `access` command.
pub(crate) async fn run(command: AccessCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccessCommand::Login(args) => {
            login::run(&args).await?;
            Ok(ExitCode::SUCCESS)
        }
        AccessCommand::Token(args) => {
            let target = target::Target::parse(&args.url)?;
            let token = store::TokenStore::default_location()?.load_valid(&target)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        AccessCommand::Curl(args) => curl::run(&args),
        AccessCommand::Tcp(args) => {
            tcp::run(&args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
