//! One registered connection: the control stream, the request streams, and draining.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portless_proto::{Control, FrameKind};
use portless_transport::{ConnectionCloser, ConnectorConnection, FramedSend, Protocol, SendHalf};
use tokio::sync::{Mutex, mpsc};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::connector::Shared;
use crate::slot::Session;
use crate::stream;

/// How a session ended.
pub(crate) enum SessionEnd {
    /// The connector is shutting down; the connection drained.
    Shutdown,
    /// QUIC is usable again; this TCP connection drains in the background while the slot
    /// dials QUIC at once, so capacity never dips.
    Migrate,
    /// The connection was lost; the slot reconnects with backoff.
    Lost,
}

/// Extra time streams may still arrive after `Drain` is sent: the edge may have opened one
/// just before it read the drain.
const DRAIN_SETTLE: Duration = Duration::from_millis(250);

/// Serves a registered connection until it ends.
pub(crate) async fn serve(shared: &Arc<Shared>, session: Session) -> SessionEnd {
    let Session {
        index,
        protocol,
        mut connection,
        mut control_recv,
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
    let control = Arc::new(Mutex::new(control_send));
    let last_seen = Arc::new(std::sync::Mutex::new(Instant::now()));
    let (pongs, mut outbox) = mpsc::channel::<Control>(8);
    let seen = last_seen.clone();
    let reader = async move {
        loop {
            match control_recv
                .read_message::<Control>(FrameKind::Control, "a control message")
                .await
            {
                Ok(message) => {
                    if let Ok(mut at) = seen.lock() {
                        *at = Instant::now();
                    }
                    if let Control::Ping(n) = message {
                        let _ = pongs.send(Control::Pong(n)).await;
                    }
                }
                Err(e) => {
                    debug!(error = %e, "control stream ended");
                    return;
                }
            }
        }
    };
    let writer_control = control.clone();
    let writer = async move {
        while let Some(message) = outbox.recv().await {
            let mut send = writer_control.lock().await;
            if send
                .write_message(FrameKind::Control, &message)
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let mut reader = std::pin::pin!(reader);
    let mut writer = std::pin::pin!(writer);
    let mut quic_back = shared.protocol.subscribe();
    quic_back.mark_unchanged();
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    let dead_after = shared.options.dead_after;
    let end = loop {
        tokio::select! {
            accepted = connection.accept_stream() => match accepted {
                Some(tunnel_stream) => {
                    streams.spawn(stream::serve(shared.clone(), tunnel_stream));
                }
                None => break SessionEnd::Lost,
            },
            () = &mut reader => break SessionEnd::Lost,
            () = &mut writer => break SessionEnd::Lost,
            _ = watchdog.tick() => {
                let silent = last_seen.lock().map(|at| at.elapsed()).unwrap_or_default();
                if silent > dead_after {
                    warn!(connIndex = index, ?silent, "the edge stopped answering; reconnecting");
                    break SessionEnd::Lost;
                }
            }
            () = shared.shutdown.cancelled() => break SessionEnd::Shutdown,
            Ok(()) = quic_back.changed(), if protocol == Protocol::Tcp => break SessionEnd::Migrate,
        }
    };
    shared.unregistered();
    match end {
        SessionEnd::Lost => {
            warn!(connIndex = index, connection = %registered.connection_id, "tunnel connection lost");
            closer.close("connection lost");
        }
        SessionEnd::Shutdown => {
            drain(shared, index, connection, control, streams, closer).await;
        }
        SessionEnd::Migrate => {
            let shared2 = shared.clone();
            shared.tasks.spawn(async move {
                drain(&shared2, index, connection, control, streams, closer).await;
            });
        }
    }
    end
}

/// Tells the edge to send nothing new on this connection, serves what still arrives for a
/// moment, gives in-flight requests the grace period, then closes.
async fn drain(
    shared: &Arc<Shared>,
    index: u8,
    mut connection: ConnectorConnection,
    control: Arc<Mutex<FramedSend<SendHalf>>>,
    streams: TaskTracker,
    closer: ConnectionCloser,
) {
    info!(connIndex = index, "draining tunnel connection");
    {
        let mut send = control.lock().await;
        let _ = send
            .write_message(FrameKind::Control, &Control::Drain)
            .await;
    }
    let settle = tokio::time::sleep(DRAIN_SETTLE);
    tokio::pin!(settle);
    loop {
        tokio::select! {
            accepted = connection.accept_stream() => match accepted {
                Some(tunnel_stream) => {
                    streams.spawn(stream::serve(shared.clone(), tunnel_stream));
                }
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
    closer.close("connector shutting down");
}
