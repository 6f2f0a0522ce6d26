//! `portless demo`: edge, connector and origin on this machine, wired together.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use portless_connector::{Connector, ConnectorOptions, Rules};
use portless_edge::{AccessOptions, Edge, EdgeListeners, EdgeOptions, EdgeTls};
use portless_ingress::TunnelConfig;
use portless_proto::TunnelSecret;
use portless_store::Store;
use portless_tls::{EdgeTrust, LocalCa, tunnel_client_config};
use portless_transport::DialTarget;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::DemoArgs;
use crate::edge_cmd::bind_tunnel;
use crate::{demo_origin, signals};

/// The demo's public hostname (open to everyone: the policy says `bypass`).
const HOSTNAME: &str = "hello.portless.localhost";
/// The demo's protected hostname: signing in as the demo user is needed.
const PRIVATE: &str = "private.portless.localhost";
/// The demo's login portal.
const PORTAL: &str = "auth.portless.localhost";
/// The demo user.
const DEMO_USER: &str = "demo";

/// Writes the demo's access configuration and users file; returns the config path and the
/// demo user's password (new at every run).
fn write_access(dir: &Path, port: u16) -> anyhow::Result<(std::path::PathBuf, String)> {
    let password = format!("{:016x}", fastrand_seed());
    let hash = portless_access::users::PasswordHash::new_argon2id(&password)
        .map_err(|e| anyhow::anyhow!("hashing the demo password: {e}"))?;
    let users = dir.join("users_database.yml");
    std::fs::write(
        &users,
        format!(
            "users:\n  {DEMO_USER}:\n    displayname: Demo User\n    email: demo@portless.localhost\n    groups: [demo]\n    password: \"{}\"\n",
            hash.as_str()
        ),
    )
    .with_context(|| format!("writing {}", users.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        // Password hashes are secrets too: readable by this user only, as `user add` makes it.
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", users.display()))?;
    }
    let config = dir.join("configuration.yml");
    let text = [
        "authentication_backend:".to_owned(),
        "  file:".to_owned(),
        format!("    path: {}", users.display()),
        "session:".to_owned(),
        "  cookies:".to_owned(),
        "    - domain: portless.localhost".to_owned(),
        format!("      authelia_url: https://{PORTAL}:{port}"),
        "access_control:".to_owned(),
        "  default_policy: deny".to_owned(),
        "  rules:".to_owned(),
        format!("    - domain: {HOSTNAME}"),
        "      policy: bypass".to_owned(),
        format!("    - domain: {PRIVATE}"),
        "      policy: one_factor".to_owned(),
        format!("      subject: [\"user:{DEMO_USER}\"]"),
        String::new(),
    ]
    .join("\n");
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    Ok((config, password))
}

/// 64 random bits from the OS, for the demo password.
fn fastrand_seed() -> u64 {
    let mut bytes = [0u8; 8];
    // The demo password only guards a demo on loopback; a failed RNG still gives the time.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(bytes)
}

async fn public_listener(port: u16) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => Ok(listener),
        Err(_) => Ok(TcpListener::bind("127.0.0.1:0").await?),
    }
}

fn write_ca(dir: &Path, ca: &LocalCa) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("ca.pem");
    std::fs::write(&path, ca.cert_pem()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("portless-demo-{}", std::process::id()));
    let ca = Arc::new(LocalCa::generate("Portless demo CA")?);
    let ca_path = write_ca(&dir, &ca)?;
    let tasks = TaskTracker::new();
    let stop_origin = CancellationToken::new();
    let origin = demo_origin::start(&tasks, stop_origin.clone()).await?;

    let store = Store::open_in_memory().await?;
    let tunnel = store.create_tunnel("demo").await?;
    store.route(HOSTNAME, tunnel.tunnel.id).await?;
    store.route(PRIVATE, tunnel.tunnel.id).await?;
    let (tunnel_tcp, tunnel_udp) = bind_tunnel("127.0.0.1:0".parse()?, true).await?;
    let public = public_listener(args.port).await?;
    let (access_config, password) = write_access(&dir, public.local_addr()?.port())?;
    let listeners = EdgeListeners {
        public,
        tunnel_tcp,
        tunnel_udp,
        metrics: Some(TcpListener::bind("127.0.0.1:0").await?),
        udp_ports: Vec::new(),
        http: None,
        tcp_ports: Vec::new(),
    };
    let tls = EdgeTls::from_ca(ca.clone(), &["127.0.0.1".to_owned()])?;
    let options = EdgeOptions {
        name: "demo-edge".to_owned(),
        grace_period: Duration::from_secs(5),
        access: Some(AccessOptions::new(access_config, dir.join("access.key"))),
        ..EdgeOptions::default()
    };
    let edge = Edge::start(options, listeners, tls, store).await?;

    let rules = format!(
        "ingress:\n  - hostname: {HOSTNAME}\n    service: http://{origin}\n  - hostname: {PRIVATE}\n    service: http://{origin}\n  - service: http_status:404\n"
    );
    let config = TunnelConfig::from_yaml_str(&rules, Path::new("demo"))
        .map_err(|e| anyhow::anyhow!("demo rules: {e}"))?
        .config;
    let mut connector_options = ConnectorOptions::new(
        tunnel.tunnel.id,
        TunnelSecret::new(tunnel.secret.expose().to_vec()),
        DialTarget {
            addr: edge.tunnel_addr(),
            server_name: "127.0.0.1".to_owned(),
        },
    );
    connector_options.grace_period = Duration::from_secs(5);
    let connector = Connector::start(
        connector_options,
        Rules::new(config.ingress),
        tunnel_client_config(EdgeTrust::Pinned(ca.pin()))?,
        Some(TcpListener::bind("127.0.0.1:0").await?),
    )?;
    wait_ready(&connector).await;
    print_banner(
        edge.public_addr(),
        &ca_path,
        edge.metrics_addr(),
        connector.metrics_addr(),
        connector.ready_connections(),
        &password,
    );

    let graceful = CancellationToken::new();
    let immediate = CancellationToken::new();
    signals::watch(graceful.clone(), immediate.clone())?;
    graceful.cancelled().await;
    let stop = async {
        connector.shutdown().await;
        edge.shutdown().await;
    };
    tokio::select! {
        () = stop => {}
        () = immediate.cancelled() => {}
    }
    stop_origin.cancel();
    tasks.close();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

async fn wait_ready(connector: &portless_connector::ConnectorHandle) {
    for _ in 0..100 {
        if connector.ready_connections() >= 1 {
            // Give the other connections a moment: the banner shows how many are up.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_banner(
    public: SocketAddr,
    ca: &Path,
    edge_metrics: Option<SocketAddr>,
    connector_metrics: Option<SocketAddr>,
    connections: usize,
    password: &str,
) {
    let port = public.port();
    let url = format!("https://{HOSTNAME}:{port}/");
    println!();
    println!(
        "Portless demo is running: an edge, a connector ({connections} tunnel connections) and an origin on 127.0.0.1."
    );
    println!();
    println!("  URL:   {url}");
    println!(
        "  Try:   curl --cacert {} --resolve {HOSTNAME}:{port}:127.0.0.1 {url}",
        ca.display()
    );
    println!(
        "  SSE:   curl -N --cacert {} --resolve {HOSTNAME}:{port}:127.0.0.1 {url}events",
        ca.display()
    );
    println!();
    println!("  Protected: https://{PRIVATE}:{port}/  (a browser is sent to the login portal)");
    println!("  Sign in:   user {DEMO_USER}, password {password}");
    println!(
        "  (browsers resolve *.localhost to this machine; trust {} to skip the certificate warning)",
        ca.display()
    );
    if let Some(addr) = edge_metrics {
        println!("  Edge metrics:      http://{addr}/metrics");
    }
    if let Some(addr) = connector_metrics {
        println!("  Connector health:  http://{addr}/ready");
    }
    println!();
    println!("Press Ctrl-C to stop.");
}
