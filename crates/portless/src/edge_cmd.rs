//! `portless edge`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use portless_edge::{
    AccessOptions, Edge, EdgeConfig, EdgeListeners, EdgeOptions, EdgeTls, StateDir, TcpPort,
    UdpPort,
};
use portless_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::EdgeArgs;
use crate::{paths, signals};

/// Store settings the edge writes so `tunnel create` can put them in tokens.
pub(crate) const SETTING_ADVERTISE: &str = "edge.advertise";

/// Binds a TCP listener, with a message that says how to fix the usual failures.
pub(crate) async fn bind_tcp(
    addr: SocketAddr,
    what: &str,
    flag: &str,
) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        let hint = if addr.port() < 1024 {
            format!("ports below 1024 need root or CAP_NET_BIND_SERVICE; or choose another port with {flag}")
        } else {
            format!("is another process using it? choose another address with {flag}")
        };
        format!("cannot listen on {addr} for the {what}: {hint}")
    })
}

/// Binds the tunnel listener: TCP, and UDP on the same port number for QUIC.
pub(crate) async fn bind_tunnel(
    addr: SocketAddr,
    quic: bool,
) -> anyhow::Result<(TcpListener, Option<std::net::UdpSocket>)> {
    let tcp = bind_tcp(addr, "tunnel listener", "--tunnel-listen").await?;
    let port = tcp.local_addr()?.port();
    let udp = if quic {
        let udp_addr = SocketAddr::new(addr.ip(), port);
        Some(std::net::UdpSocket::bind(udp_addr).with_context(|| {
            format!("cannot listen on UDP {udp_addr} for QUIC: is another process using it? pass --no-quic to serve TCP only")
        })?)
    } else {
        None
    };
    Ok((tcp, udp))
}

/// The address written into tokens when none is advertised: the listener's, with loopback
/// for an unspecified IP.
fn default_advertise(listen: SocketAddr, bound_port: u16) -> String {
    let ip = if listen.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        listen.ip()
    };
    SocketAddr::new(ip, bound_port).to_string()
}

/// The host part of `host:port` (brackets removed).
pub(crate) fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// Binds each public TCP port of the config file.
async fn bind_tcp_ports(ports: &[TcpPort]) -> anyhow::Result<Vec<(TcpListener, TcpPort)>> {
    let mut bound = Vec::with_capacity(ports.len());
    for port in ports {
        let what = format!("public TCP port of {}", port.hostname);
        let listener = bind_tcp(port.listen, &what, "`listen` in the edge config").await?;
        bound.push((listener, port.clone()));
    }
    Ok(bound)
}

/// Binds each public UDP port of the config file.
fn bind_udp_ports(ports: &[UdpPort]) -> anyhow::Result<Vec<(std::net::UdpSocket, UdpPort)>> {
    ports
        .iter()
        .map(|port| {
            let socket = std::net::UdpSocket::bind(port.listen).with_context(|| {
                format!(
                    "cannot listen on UDP {} (public UDP port of {}): is another process using it? \
                     change `listen` in the edge config",
                    port.listen, port.hostname
                )
            })?;
            Ok((socket, port.clone()))
        })
        .collect()
}

pub(crate) async fn run(args: EdgeArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => match EdgeConfig::load(path) {
            Ok(config) => config,
            Err(errors) => {
                eprintln!("{errors}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => EdgeConfig::default(),
    };
    let state = StateDir(paths::state_dir(args.state.state_dir));
    state.ensure()?;
    let store = Store::open(&state.store_path())
        .await
        .with_context(|| format!("opening the store in {}", state.0.display()))?;
    let (tunnel_tcp, tunnel_udp) = bind_tunnel(args.tunnel_listen, !args.no_quic).await?;
    let tunnel_port = tunnel_tcp.local_addr()?.port();
    let advertise = args
        .advertise
        .unwrap_or_else(|| default_advertise(args.tunnel_listen, tunnel_port));
    let tls = EdgeTls::load(&state, &[host_of(&advertise)])?;
    let public = bind_tcp(args.listen, "public HTTPS listener", "--listen").await?;
    let https_port = public.local_addr()?.port();
    let http = match config.http.listen {
        Some(addr) => Some(
            bind_tcp(
                addr,
                "port-80 listener",
                "`listen` of `http` in the edge config",
            )
            .await?,
        ),
        None => None,
    };
    let listeners = EdgeListeners {
        public,
        tunnel_tcp,
        tunnel_udp,
        metrics: Some(bind_tcp(args.metrics, "metrics listener", "--metrics").await?),
        udp_ports: bind_udp_ports(&config.udp_ports)?,
        http,
        tcp_ports: bind_tcp_ports(&config.tcp_ports).await?,
    };
    store.set_setting(SETTING_ADVERTISE, &advertise).await?;
    let access = args.access_config.map(|config| {
        let mut access = AccessOptions::new(config, state.0.join("access.key"));
        access.trusted_proxies = args.trusted_proxies.clone();
        access.cli_token_ttl = args.cli_token_lifetime;
        access
    });
    let options = EdgeOptions {
        name: args.name,
        grace_period: args.grace_period,
        access,
        passthrough: config.passthrough.clone(),
        tls: config.tls.public_tls_options(),
        http: config.http.http_options(https_port),
        ..EdgeOptions::default()
    };
    let pin = tls.pin();
    let handle = Edge::start(options, listeners, tls, store).await?;
    tracing::info!(
        advertise = %advertise,
        ca_pin = %pin,
        ca = %state.ca_cert_path().display(),
        "connectors dial the advertised address and trust the CA pin; create tunnels with `portless tunnel create NAME`"
    );
    let graceful = CancellationToken::new();
    let immediate = CancellationToken::new();
    signals::watch(graceful.clone(), immediate.clone())?;
    graceful.cancelled().await;
    tokio::select! {
        () = handle.shutdown() => {}
        () = immediate.cancelled() => {}
    }
    Ok(ExitCode::SUCCESS)
}
