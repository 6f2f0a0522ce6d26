//! One registered connection: the control stream (pings, config updates), the request
//! streams, and draining.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portless_proto::{Control, FrameKind};
use portless_transport::{
    ConnectionCloser, ConnectorConnection, Datagrams, FramedRecv, FramedSend, Protocol, RecvHalf,
    SendHalf, TunnelStream,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::connector::Shared;
use crate::slot::Session;
use crate::stream;

/// How a session ended.
pub(crate) enum SessionEnd {
    /// The connector is shutting down; the connection drained.
    Shutdown,
    /// QUIC is usable again. The TCP connection still serves: the slot dials QUIC first and
    /// drains this one afterwards, so capacity never dips.
    Migrate(Box<Draining>),
    /// The connection was lost; the slot reconnects with backoff.
    Lost,
}

/// A connection that stopped taking new work from the slot but is not drained yet.
pub(crate) struct Draining {
    index: u8,
    connection: ConnectorConnection,
    control: ControlLink,
    streams: TaskTracker,
    closer: ConnectionCloser,
}

/// Extra time streams may still arrive after `Drain` is sent: the edge may have opened one
/// just before it read the drain.
const DRAIN_SETTLE: Duration = Duration::from_millis(250);

/// Delay between slots when moving back to QUIC, so they do not all reconnect at once.
const MIGRATE_STAGGER: Duration = Duration::from_secs(1);

/// The control stream's task: answers pings, hands config updates to the shared
/// [`crate::remote`] handling and answers with its status, keeps the edge's assertion keys
/// (see [`crate::access`]), and sends what the session asks,
/// for as long as the connection lives (also while draining, so the edge keeps the
/// connection).
struct ControlLink {
    outbox: mpsc::Sender<Control>,
    /// Cancelled when the control stream ends.
    ended: CancellationToken,
    last_seen: Arc<std::sync::Mutex<Instant>>,
}

impl ControlLink {
    fn spawn(
        shared: Arc<Shared>,
        mut recv: FramedRecv<RecvHalf>,
        mut send: FramedSend<SendHalf>,
    ) -> Self {
        let tasks = shared.tasks.clone();
        let (outbox, mut queue) = mpsc::channel::<Control>(8);
        let ended = CancellationToken::new();
        let last_seen = Arc::new(std::sync::Mutex::new(Instant::now()));
        let pongs = outbox.clone();
        let seen = last_seen.clone();
        // This control stream's key set is joined with the other connections' while it lives.
        let link = shared.access.link();
        let keys = shared.clone();
        let reader = async move {
            loop {
                match recv
                    .read_message::<Control>(FrameKind::Control, "a control message")
                    .await
                {
                    Ok(message) => {
                        if let Ok(mut at) = seen.lock() {
                            *at = Instant::now();
                        }
                        let answer = match message {
                            Control::Ping(n) => Some(Control::Pong(n)),
                            Control::ConfigUpdate { version, yaml } => {
                                Some(shared.remote.receive(version, &yaml))
                            }
                            Control::AccessKeys { jwks } => {
                                shared.access.receive(link, &jwks);
                                None
                            }
                            _ => None,
                        };
                        if let Some(answer) = answer {
                            let _ = pongs.send(answer).await;
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "control stream ended");
                        return;
                    }
                }
            }
        };
        let writer = async move {
            while let Some(message) = queue.recv().await {
                if send
                    .write_message(FrameKind::Control, &message)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        };
        let done = ended.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = reader => {}
                () = writer => {}
            }
            keys.access.forget(link);
            done.cancel();
        });
        Self {
            outbox,
            ended,
            last_seen,
        }
    }

    fn silent_for(&self) -> Duration {
        self.last_seen
            .lock()
            .map(|at| at.elapsed())
            .unwrap_or_default()
    }
}

/// Serves one stream the edge opened (refused with a clear error while the connector has no
/// rules yet: see `stream::answer`).
fn serve_stream(
    shared: &Arc<Shared>,
    streams: &TaskTracker,
    tunnel_stream: TunnelStream,
    datagrams: Option<&Datagrams>,
) {
    streams.spawn(stream::serve(
        shared.clone(),
        tunnel_stream,
        datagrams.cloned(),
    ));
}

/// Serves a registered connection until it ends.
pub(crate) async fn serve(shared: &Arc<Shared>, session: Session) -> SessionEnd {
    let Session {
        index,
        protocol,
        mut connection,
        control_recv,
        control_send,
        registered,
    } = session;
    info!(
        connIndex = index,
        connection = %registered.connection_id,
        location = %registered.edge_name,
        protocol = %protocol,
        "Registered tunnel connection"
    );
    shared.registered();
    let streams = TaskTracker::new();
    let closer = connection.closer();
    let datagrams = connection.datagrams().cloned();
    let control = ControlLink::spawn(shared.clone(), control_recv, control_send);
    let mut quic_back = shared.protocol.subscribe();
    quic_back.mark_unchanged();
    let mut migrate_at: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    let dead_after = shared.options.dead_after;
    let end = loop {
        tokio::select! {
            accepted = connection.accept_stream() => match accepted {
                Some(tunnel_stream) => serve_stream(shared, &streams, tunnel_stream, datagrams.as_ref()),
                None => break Ending::Lost,
            },
            () = control.ended.cancelled() => break Ending::Lost,
            _ = watchdog.tick() => {
                let silent = control.silent_for();
                if silent > dead_after {
                    warn!(connIndex = index, ?silent, "the edge stopped answering; reconnecting");
                    break Ending::Lost;
                }
            }
            () = shared.shutdown.cancelled() => break Ending::Shutdown,
            Ok(()) = quic_back.changed(), if protocol == Protocol::Tcp && migrate_at.is_none() => {
                let delay = MIGRATE_STAGGER * u32::from(index);
                migrate_at = Some(Box::pin(tokio::time::sleep(delay)));
            }
            () = async { if let Some(at) = migrate_at.as_mut() { at.await } }, if migrate_at.is_some() => {
                break Ending::Migrate;
            }
        }
    };
    shared.unregistered();
    let draining = Draining {
        index,
        connection,
        control,
        streams,
        closer,
    };
    match end {
        Ending::Lost => {
            warn!(connIndex = index, connection = %registered.connection_id, "tunnel connection lost");
            draining.closer.close("connection lost");
            SessionEnd::Lost
        }
        Ending::Shutdown => {
            drain(shared, draining).await;
            SessionEnd::Shutdown
        }
        Ending::Migrate => SessionEnd::Migrate(Box::new(draining)),
    }
}

enum Ending {
    Lost,
    Shutdown,
    Migrate,
}

/// Tells the edge to send nothing new on this connection, serves what still arrives for a
/// moment, gives in-flight requests the grace period, then closes. The control stream keeps
/// answering pings meanwhile, so the edge does not cut the drain short.
pub(crate) async fn drain(shared: &Arc<Shared>, draining: Draining) {
    let Draining {
        index,
        mut connection,
        control,
        streams,
        closer,
    } = draining;
    info!(connIndex = index, "draining tunnel connection");
    let datagrams = connection.datagrams().cloned();
    let _ = control.outbox.send(Control::Drain).await;
    let settle = tokio::time::sleep(DRAIN_SETTLE);
    tokio::pin!(settle);
    loop {
        tokio::select! {
            accepted = connection.accept_stream() => match accepted {
                Some(tunnel_stream) => serve_stream(shared, &streams, tunnel_stream, datagrams.as_ref()),
                None => break,
            },
            () = &mut settle => break,
            () = shared.hard.cancelled() => break,
        }
    }
    streams.close();
    let grace = shared.options.grace_period;
    tokio::select! {
        _ = tokio::time::timeout(grace, streams.wait()) => {
            if !streams.is_empty() {
                warn!(connIndex = index, ?grace, in_flight = streams.len(), "grace period over; closing with requests in flight");
            }
        }
        () = shared.hard.cancelled() => {}
    }
    closer
        .close_and_flush("connector shutting down", Duration::from_secs(1))
        .await;
}
