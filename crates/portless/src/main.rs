//! `portless`: one binary for every Portless role.
//!
//! `main` is thin: parse the command line, set up logging and the runtime, dispatch to the
//! command modules below, and turn errors into one clear message and exit code 1.
//!
//! Layout:
//! * `access_cmd` — `portless access login|token|curl|tcp` (the access client);
//! * `cli` — the command line (clap);
//! * `paths` — default locations of state and credentials;
//! * `edge_cmd` — `portless edge`;
//! * `tunnel_cmd` — `portless tunnel create|list|route|delete|ingress`;
//! * `policy_cmd` — `portless policy test URL` (which rule decides, and why);
//! * `user_cmd` — `portless user add|passwd|disable|enable|list` (the users file);
//! * `token_cmd` — `portless token create|list|rotate|revoke` (service tokens);
//! * `run_cmd` — `portless tunnel run` (the connector);
//! * `credentials` — finding and checking credentials, tokens and their file modes;
//! * `demo` — `portless demo`, with its built-in origin in `demo_origin`;
//! * `signals` — SIGTERM/SIGINT: first graceful, second immediate.

mod access_cmd;
mod cli;
mod credentials;
mod demo;
mod demo_origin;
mod edge_cmd;
mod paths;
mod policy_cmd;
mod run_cmd;
mod signals;
mod token_cmd;
mod tunnel_cmd;
// Wired into `cli` by the access-control integration; until then only its tests use it.
mod user_cmd;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    portless_tls::install_default_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
