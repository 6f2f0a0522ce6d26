//! Accepting connector connections: registration, then supervision of the control stream.

use std::sync::Arc;
use std::time::Duration;

use portless_proto::{
    Control, FrameKind, RefusalCode, Refused, Register, RegisterResponse, Registered,
};
use portless_store::Store;
use portless_transport::{Accepted, FramedRecv, FramedSend, RecvHalf, SendHalf, TunnelListener};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::edge::EdgeState;
use crate::metrics::{OutcomeLabel, ProtocolLabel};
use crate::registry::LiveConnection;

/// Limit for the connector's `Register` after its handshake.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until shutdown, each registered and supervised in its own task.
pub(crate) async fn accept_tunnels(
    mut listener: TunnelListener,
    state: Arc<EdgeState>,
    store: Store,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = state.tunnel_shutdown.cancelled() => break,
        };
        let Some(accepted) = accepted else { break };
        let protocol = accepted.connection.protocol();
        state
            .metrics
            .tunnel_connections
            .get_or_create(&ProtocolLabel {
                protocol: protocol.as_str(),
            })
            .inc();
        let state2 = state.clone();
        let store = store.clone();
        state
            .tasks
            .spawn(async move { serve_connection(accepted, state2, store).await });
    }
    listener.close_quic("edge shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(2), listener.wait_idle()).await;
}

fn outcome(state: &EdgeState, outcome: &'static str) {
    state
        .metrics
        .registrations
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}

async fn serve_connection(accepted: Accepted, state: Arc<EdgeState>, store: Store) {
    let Accepted {
        connection,
        control,
    } = accepted;
    let remote = connection.remote_addr();
    let protocol = connection.protocol();
    let mut recv = FramedRecv::new(control.recv);
    let mut send = FramedSend::new(control.send);
    let register = match tokio::time::timeout(
        REGISTER_TIMEOUT,
        recv.read_message::<Register>(FrameKind::Register, "Register"),
    )
    .await
    {
        Ok(Ok(register)) => register,
        Ok(Err(e)) => {
            outcome(&state, "malformed");
            debug!(%remote, error = %e, "connector sent no valid registration");
            connection.close("registration expected");
            return;
        }
        Err(_) => {
            outcome(&state, "malformed");
            connection.close("registration timed out");
            return;
        }
    };
    let refusal = |code, message: &str, retry_after_ms| {
        RegisterResponse::Refused(Refused {
            code,
            message: message.to_owned(),
            retry_after_ms,
        })
    };
    if state.tunnel_shutdown.is_cancelled() {
        outcome(&state, "shutting_down");
        let answer = refusal(
            RefusalCode::ShuttingDown,
            "the edge is shutting down",
            Some(1000),
        );
        let _ = send
            .write_message(FrameKind::RegisterResponse, &answer)
            .await;
        return;
    }
    let tunnel = match store
        .verify_tunnel_secret(register.tunnel_id, register.secret.expose())
        .await
    {
        Ok(Some(tunnel)) => tunnel,
        Ok(None) => {
            outcome(&state, "unauthorized");
            warn!(%remote, tunnel = %register.tunnel_id, "refused a connector: unknown tunnel or wrong secret");
            let answer = refusal(
                RefusalCode::Unauthorized,
                "unknown tunnel or wrong secret: check that the connector uses the credentials file or token printed by `portless tunnel create` for this edge",
                None,
            );
            let _ = send
                .write_message(FrameKind::RegisterResponse, &answer)
                .await;
            let _ = send.finish().await;
            // Give the refusal a moment to reach the connector before closing.
            tokio::time::sleep(Duration::from_millis(100)).await;
            connection.close("unauthorized");
            return;
        }
        Err(e) => {
            outcome(&state, "unavailable");
            warn!(%remote, error = %e, "cannot check tunnel credentials; refusing the connection");
            let answer = refusal(
                RefusalCode::Unavailable,
                "the edge cannot check credentials right now",
                Some(5000),
            );
            let _ = send
                .write_message(FrameKind::RegisterResponse, &answer)
                .await;
            connection.close("store unavailable");
            return;
        }
    };
    let live = Arc::new(LiveConnection::new(
        tunnel.id,
        tunnel.name.clone(),
        register.connector_id,
        register.conn_index,
        connection.clone(),
    ));
    let answer = RegisterResponse::Registered(Registered {
        connection_id: live.id,
        edge_name: state.name.clone(),
    });
    if let Err(e) = send
        .write_message(FrameKind::RegisterResponse, &answer)
        .await
    {
        debug!(%remote, error = %e, "connector left during registration");
        return;
    }
    outcome(&state, "registered");
    state.registry.add(live.clone());
    info!(
        connIndex = register.conn_index,
        connection = %live.id,
        tunnel = %tunnel.name,
        tunnelID = %tunnel.id,
        connector = %register.connector_id,
        protocol = %protocol,
        remote = %remote,
        "Registered tunnel connection"
    );
    supervise(&live, recv, send, &state).await;
    state.registry.remove(&live);
    connection.close("connection ended");
    info!(
        connIndex = live.conn_index,
        connection = %live.id,
        tunnel = %tunnel.name,
        connector = %live.connector_id,
        "Unregistered tunnel connection"
    );
}

/// Runs the control stream until the connection ends: answers pings, applies drains, pings
/// the connector and closes the connection when it falls silent.
async fn supervise(
    live: &Arc<LiveConnection>,
    mut recv: FramedRecv<RecvHalf>,
    mut send: FramedSend<SendHalf>,
    state: &EdgeState,
) {
    let (replies, mut outbox) = mpsc::channel::<Control>(8);
    let reader = async {
        loop {
            let message = recv
                .read_message::<Control>(FrameKind::Control, "a control message")
                .await;
            live.touch();
            match message {
                Ok(Control::Drain) => {
                    if state.registry.drain(live) {
                        info!(connection = %live.id, tunnel = %live.tunnel_name, "connector is draining this connection");
                    }
                }
                Ok(Control::Ping(n)) => {
                    let _ = replies.send(Control::Pong(n)).await;
                }
                Ok(Control::Pong(_)) => {}
                Err(e) => {
                    debug!(connection = %live.id, error = %e, "control stream ended");
                    return;
                }
            }
        }
    };
    let writer = async {
        let mut tick = tokio::time::interval(state.options.ping_interval);
        let mut sequence = 0u64;
        loop {
            tokio::select! {
                Some(message) = outbox.recv() => {
                    if send.write_message(FrameKind::Control, &message).await.is_err() {
                        return;
                    }
                }
                _ = tick.tick() => {
                    if live.silent_for() > state.options.dead_after {
                        warn!(connection = %live.id, tunnel = %live.tunnel_name, "connector stopped answering; closing the connection");
                        return;
                    }
                    sequence += 1;
                    if send.write_message(FrameKind::Control, &Control::Ping(sequence)).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = reader => {}
        () = writer => {}
        () = live.connection.closed() => {}
        () = state.tunnel_shutdown.cancelled() => {}
    }
}
