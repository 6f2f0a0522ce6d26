//! Public TCP ports: every connection accepted on a port is carried through the tunnel of
//! the port's hostname, after the client-IP allow-list and with an optional PROXY v2 header.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use super::{proxy_v2, relay};
use crate::edge::EdgeState;
use crate::metrics::RawLabel;
use crate::ports::TcpPort;

/// Metric label of public TCP port connections.
const KIND: &str = "tcp_port";

/// Accepts connections on `listener` until shutdown; each runs as its own tracked task.
pub(crate) async fn serve(listener: TcpListener, port: TcpPort, state: Arc<EdgeState>) {
    let port = Arc::new(port);
    if let Ok(addr) = listener.local_addr() {
        info!(listen = %addr, hostname = %port.hostname, proxy_protocol = port.proxy_protocol, "public TCP port open");
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
        let _ = socket.set_nodelay(true);
        state
            .tasks
            .spawn(connection(socket, client, port.clone(), state.clone()));
    }
}

async fn connection(
    socket: TcpStream,
    client: SocketAddr,
    port: Arc<TcpPort>,
    state: Arc<EdgeState>,
) {
    let deadline = tokio::time::Instant::now() + state.options.client_header_timeout;
    let header = match (port.proxy_protocol, socket.local_addr()) {
        (true, Ok(local)) => proxy_v2::header(client, local),
        (true, Err(_)) => return,
        (false, _) => Vec::new(),
    };
    relay(
        &state,
        KIND,
        &port.hostname,
        socket,
        client,
        &header,
        deadline,
    )
    .await;
}
