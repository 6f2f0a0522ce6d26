//! Public UDP ports: datagrams from clients, one flow per client address, each flow carried
//! through the tunnel of the port's hostname (see `flow` and ADR 0010).
//!
//! One task per port reads the shared socket. A datagram from an address outside the
//! port's allow-list is dropped; one from a known client goes to its flow's queue; one from
//! a new client opens a flow unless the port is at `max_flows` (then it is dropped and the
//! flows already open carry on). Every drop is counted by reason.

mod counters;
mod flow;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::edge::EdgeState;
use crate::metrics::UdpPortLabel;
use crate::{EdgeError, UdpPort};
use counters::{DropReason, PortCounters};

/// Datagrams a flow may have waiting (while its stream opens, or when the tunnel is slower
/// than the client); more are dropped.
const FLOW_QUEUE: usize = 64;

/// Largest datagram read from the public socket (the largest UDP payload).
const MAX_DATAGRAM: usize = 65_535;

/// One public UDP port and its flows.
pub(crate) struct Port {
    config: UdpPort,
    socket: UdpSocket,
    flows: Mutex<HashMap<SocketAddr, FlowEntry>>,
    next_flow: AtomicU64,
    state: Arc<EdgeState>,
    label: UdpPortLabel,
    counters: PortCounters,
}

/// A client's flow, as the port's reader sees it.
struct FlowEntry {
    /// Tells a flow from its successor for the same client.
    serial: u64,
    queue: mpsc::Sender<Bytes>,
}

/// Starts serving a public UDP port on an already-bound socket; returns its address. The
/// port and its flows stop when the edge's public side shuts down.
pub(crate) fn start(
    state: &Arc<EdgeState>,
    socket: std::net::UdpSocket,
    config: UdpPort,
) -> Result<SocketAddr, EdgeError> {
    let io = |context: &str| {
        let context = format!("{context} (UDP port for {})", config.hostname);
        move |source| EdgeError::Io { context, source }
    };
    socket
        .set_nonblocking(true)
        .map_err(io("configuring the socket"))?;
    let socket = UdpSocket::from_std(socket).map_err(io("registering the socket"))?;
    let addr = socket.local_addr().map_err(io("reading the address"))?;
    let label = UdpPortLabel {
        hostname: config.hostname.clone(),
    };
    // Zeros rather than missing series.
    let _ = state.metrics.udp_flows_active.get_or_create(&label);
    info!(listen = %addr, hostname = %config.hostname, max_flows = config.max_flows, idle_timeout = ?config.idle_timeout, "UDP port serving");
    let counters = PortCounters::new(&state.metrics, &config.hostname);
    let port = Arc::new(Port {
        config,
        socket,
        flows: Mutex::new(HashMap::new()),
        next_flow: AtomicU64::new(0),
        state: state.clone(),
        label,
        counters,
    });
    let stop = state.public_shutdown.clone();
    state.tasks.spawn(port.read(stop));
    Ok(addr)
}

impl Port {
    /// Reads the public socket until `stop`.
    async fn read(self: Arc<Self>, stop: CancellationToken) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let received = tokio::select! {
                received = self.socket.recv_from(&mut buf) => received,
                () = stop.cancelled() => break,
            };
            let (n, client) = match received {
                Ok(received) => received,
                Err(e) => {
                    // ICMP errors of earlier sends and the like: nothing to do with the next
                    // datagram.
                    debug!(hostname = %self.config.hostname, error = %e, "reading the UDP port failed");
                    continue;
                }
            };
            if !self.config.allows(client.ip()) {
                self.counters.dropped(DropReason::NotAllowed, 1);
                continue;
            }
            self.counters.received(n);
            // A copy of just the datagram: one waiting in a flow's queue then holds its own
            // bytes, not a share of a 64 KiB receive buffer.
            self.dispatch(client, Bytes::copy_from_slice(&buf[..n]), &stop);
        }
        // Dropping the queues ends every flow's uplink; the flows also watch `stop`.
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, FlowEntry>> {
        self.flows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a datagram to its client's flow, opening one when there is none. The map's lock
    /// is shared only with flows that end, so this reader seldom waits for it.
    fn dispatch(self: &Arc<Self>, client: SocketAddr, payload: Bytes, stop: &CancellationToken) {
        let mut flows = self.lock();
        let payload = match flows.get(&client) {
            Some(flow) => match flow.queue.try_send(payload) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => {
                    self.counters.dropped(DropReason::QueueFull, 1);
                    return;
                }
                // The flow just ended: this datagram opens the client's next one.
                Err(TrySendError::Closed(payload)) => {
                    flows.remove(&client);
                    payload
                }
            },
            None => payload,
        };
        if flows.len() >= self.config.max_flows {
            self.counters.dropped(DropReason::FlowLimit, 1);
            return;
        }
        let (queue, incoming) = mpsc::channel(FLOW_QUEUE);
        let _ = queue.try_send(payload);
        let serial = self.next_flow.fetch_add(1, Ordering::Relaxed);
        flows.insert(client, FlowEntry { serial, queue });
        drop(flows);
        let metrics = &self.state.metrics;
        metrics.udp_flows.get_or_create(&self.label).inc();
        metrics.udp_flows_active.get_or_create(&self.label).inc();
        let port = self.clone();
        let stop = stop.child_token();
        self.state.tasks.spawn(async move {
            flow::run(&port, client, incoming, stop).await;
            port.ended(client, serial);
        });
    }

    /// Forgets a flow that ended (unless the client already has a newer one).
    fn ended(&self, client: SocketAddr, serial: u64) {
        let mut flows = self.lock();
        if flows.get(&client).is_some_and(|flow| flow.serial == serial) {
            flows.remove(&client);
        }
        drop(flows);
        self.state
            .metrics
            .udp_flows_active
            .get_or_create(&self.label)
            .dec();
    }
}
