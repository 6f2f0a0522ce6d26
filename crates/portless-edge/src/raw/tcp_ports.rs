//! Public TCP ports: every connection accepted on a port is carried through the tunnel of
//! the port's hostname, after the client-IP allow-list and the port's connection cap, with
//! an optional PROXY v2 header.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info};

use super::{Relaying, proxy_v2, relay};
use crate::edge::EdgeState;
use crate::metrics::RawLabel;
use crate::ports::TcpPort;

/// Metric label of public TCP port connections.
const KIND: &str = "tcp_port";

/// TCP keep-alive on client connections: a client that vanished without closing (a laptop
/// closed, a NAT entry gone) is found and its connection ended within about two minutes,
/// also on ports without an idle timeout.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 6;

/// Accepts connections on `listener` until shutdown; each runs as its own tracked task.
pub(crate) async fn serve(listener: TcpListener, port: TcpPort, state: Arc<EdgeState>) {
    let port = Arc::new(port);
    let slots = Arc::new(Semaphore::new(port.max_connections));
    if let Ok(addr) = listener.local_addr() {
        info!(listen = %addr, hostname = %port.hostname, proxy_protocol = port.proxy_protocol, max_connections = port.max_connections, "public TCP port open");
    }
    loop {
        let (socket, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "TCP port accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = state.public_shutdown.cancelled() => break,
        };
        state
            .metrics
            .raw_connections
            .get_or_create(&RawLabel { kind: KIND })
            .inc();
        if !port.allows(client.ip()) {
            debug!(%client, hostname = %port.hostname, "TCP port: client not in the allow-list; closed");
            state.metrics.raw_refused(KIND, "allow_list");
            drop(socket);
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%client, hostname = %port.hostname, max_connections = port.max_connections, "TCP port: connection cap reached; closed");
            state.metrics.raw_refused(KIND, "max_connections");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let keepalive = TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES);
        let _ = SockRef::from(&socket).set_tcp_keepalive(&keepalive);
        state.tasks.spawn(connection(
            socket,
            client,
            port.clone(),
            state.clone(),
            slot,
        ));
    }
}

async fn connection(
    socket: TcpStream,
    client: SocketAddr,
    port: Arc<TcpPort>,
    state: Arc<EdgeState>,
    _slot: OwnedSemaphorePermit,
) {
    let deadline = tokio::time::Instant::now() + state.options.client_header_timeout;
    let header = match (port.proxy_protocol, socket.local_addr()) {
        (true, Ok(local)) => proxy_v2::header(client, local),
        (true, Err(_)) => return,
        (false, _) => Vec::new(),
    };
    let how = Relaying {
        kind: KIND,
        idle_timeout: port.idle_timeout,
    };
    relay(
        &state,
        how,
        &port.hostname,
        socket,
        client,
        &header,
        deadline,
    )
    .await;
}
