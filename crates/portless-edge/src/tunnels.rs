//! Accepting connector connections: registration, then supervision of the control stream,
//! including pushing the tunnel's remotely managed config and the edge's identity-assertion
//! keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portless_proto::{
    Control, FrameKind, RefusalCode, Refused, Register, RegisterResponse, Registered,
};
use portless_store::Store;
use portless_transport::{Accepted, FramedRecv, FramedSend, RecvHalf, SendHalf, TunnelListener};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::edge::EdgeState;
use crate::metrics::{OutcomeLabel, ProtocolLabel};
use crate::options::AccessKeysWatch;
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
    // Subscribe before reading the store: a push landing in between is then seen either by
    // the read below or by the follower, never by neither.
    let config = register
        .features
        .iter()
        .any(|f| f == Register::FEATURE_CONFIG_UPDATES)
        .then(|| state.configs.subscribe(tunnel.id));
    if config.is_some() {
        state.configs.refresh(&store, tunnel.id).await;
    }
    let access_keys = register
        .features
        .iter()
        .any(|f| f == Register::FEATURE_ACCESS_KEYS)
        .then(|| {
            let mut keys = state.options.access_keys.clone();
            // The current key set (if any) goes out at once.
            keys.mark_changed();
            keys
        });
    let pushes = Pushes {
        config,
        access_keys,
    };
    supervise(&live, recv, send, pushes, &state).await;
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

/// What the edge pushes to one connection, each only when the connector announced it
/// understands it.
struct Pushes {
    /// The tunnel's remotely managed config.
    config: Option<ConfigReceiver>,
    /// The edge's identity-assertion key set.
    access_keys: Option<AccessKeysWatch>,
}

/// Runs the control stream until the connection ends: answers pings, applies drains, pings
/// the connector and closes the connection when it falls silent, sends the tunnel's config
/// and the assertion keys (those of `pushes` that are given: the connector understands
/// them) and logs what the connector did with the config.
async fn supervise(
    live: &Arc<LiveConnection>,
    mut recv: FramedRecv<RecvHalf>,
    mut send: FramedSend<SendHalf>,
    pushes: Pushes,
    state: &EdgeState,
) {
    let Pushes {
        mut config,
        mut access_keys,
    } = pushes;
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
                Ok(Control::ConfigStatus {
                    version,
                    applied,
                    error,
                }) => {
                    log_config_status(live, version, applied, error.as_deref());
                }
                Ok(Control::ConfigUpdate { .. }) => {
                    debug!(connection = %live.id, "ignored a config update sent by a connector");
                }
                Ok(Control::AccessKeys { .. }) => {
                    debug!(connection = %live.id, "ignored access keys sent by a connector");
                }
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
                Some(update) = next_config(&mut config) => {
                    if send.write_message(FrameKind::Control, &update).await.is_err() {
                        return;
                    }
                }
                Some(keys) = next_access_keys(&mut access_keys) => {
                    if send.write_message(FrameKind::Control, &keys).await.is_err() {
                        return;
                    }
                    debug!(connection = %live.id, tunnel = %live.tunnel_name, "sent the assertion keys");
                }
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

// === Remotely managed configs ===

/// A tunnel's config as last read from the store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StoredConfig {
    version: u64,
    yaml: String,
}

type ConfigReceiver = watch::Receiver<Option<Arc<StoredConfig>>>;

/// The latest stored config of every tunnel with live connections that take config updates.
/// Each such connection watches its tunnel's entry and sends every new value; a watch keeps
/// only the latest, so a connection that is slow to write skips versions instead of queueing
/// 64 KiB messages.
#[derive(Default)]
pub(crate) struct TunnelConfigs {
    by_tunnel: Mutex<HashMap<Uuid, watch::Sender<Option<Arc<StoredConfig>>>>>,
}

impl TunnelConfigs {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Sender<Option<Arc<StoredConfig>>>>> {
        match self.by_tunnel.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A receiver for `tunnel`'s config, marked changed so the current one (if any) is sent
    /// to the new connection at once.
    fn subscribe(&self, tunnel: Uuid) -> ConfigReceiver {
        let mut receiver = self
            .map()
            .entry(tunnel)
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        receiver.mark_changed();
        receiver
    }

    /// Reads `tunnel`'s config from the store and publishes it if it is newer than the one
    /// held. A store failure keeps what connections already have.
    async fn refresh(&self, store: &Store, tunnel: Uuid) {
        let stored = match store.tunnel_config(tunnel).await {
            Ok(Some((version, yaml))) => match u64::try_from(version) {
                Ok(version) => StoredConfig { version, yaml },
                Err(_) => {
                    warn!(tunnelID = %tunnel, version, "the store holds a negative config version; not sending it");
                    return;
                }
            },
            Ok(None) => return,
            Err(e) => {
                warn!(tunnelID = %tunnel, error = %e, "cannot read the tunnel's config; connectors keep the one they have");
                return;
            }
        };
        if stored.yaml.len() > Control::MAX_CONFIG_YAML_LEN {
            // Pushing checks this; a larger text got into the store some other way. Sending it
            // would fail the write and take the whole connection down.
            warn!(tunnelID = %tunnel, version = stored.version, bytes = stored.yaml.len(), max = Control::MAX_CONFIG_YAML_LEN, "the tunnel's config is too large to send; connectors keep the one they have");
            return;
        }
        let map = self.map();
        let Some(sender) = map.get(&tunnel) else {
            return;
        };
        sender.send_if_modified(|held| {
            let newer = held.as_ref().is_none_or(|h| h.version < stored.version);
            if newer {
                *held = Some(Arc::new(stored));
            }
            newer
        });
    }

    /// Re-reads the config of every tunnel still watched, and forgets the others.
    async fn refresh_all(&self, store: &Store) {
        let tunnels: Vec<Uuid> = {
            let mut map = self.map();
            map.retain(|_, sender| sender.receiver_count() > 0);
            map.keys().copied().collect()
        };
        for tunnel in tunnels {
            self.refresh(store, tunnel).await;
        }
    }
}

/// Re-reads watched tunnels' configs whenever the store's version moves, until the route
/// follower (the sender of `changes`) stops.
pub(crate) async fn follow_configs(
    state: Arc<EdgeState>,
    store: Store,
    mut changes: watch::Receiver<i64>,
) {
    while changes.changed().await.is_ok() {
        state.configs.refresh_all(&store).await;
    }
}

/// The next config to send on a connection, when its tunnel's config changed; never
/// resolves for a connection that takes no config updates.
async fn next_config(config: &mut Option<ConfigReceiver>) -> Option<Control> {
    let Some(receiver) = config.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        if receiver.changed().await.is_err() {
            // The entry was dropped while this connection still watched it: cannot happen
            // (entries with receivers are kept); stop sending configs on this connection.
            return std::future::pending().await;
        }
        if let Some(stored) = receiver.borrow_and_update().clone() {
            return Some(Control::ConfigUpdate {
                version: stored.version,
                yaml: stored.yaml.clone(),
            });
        }
    }
}

/// The next assertion key set to send on a connection, when it changed; never resolves for
/// a connection that takes no keys, or once the key source is gone. A `None` value (access
/// turned off) sends nothing: the connector keeps refusing what it cannot verify.
async fn next_access_keys(keys: &mut Option<AccessKeysWatch>) -> Option<Control> {
    let Some(receiver) = keys.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        if receiver.changed().await.is_err() {
            // The key source stopped (or access was never configured): nothing more to send.
            *keys = None;
            return std::future::pending().await;
        }
        let Some(jwks) = receiver.borrow_and_update().clone() else {
            continue;
        };
        if jwks.len() > Control::MAX_ACCESS_KEYS_LEN {
            warn!(
                bytes = jwks.len(),
                max = Control::MAX_ACCESS_KEYS_LEN,
                "the assertion key set is too large to send to connectors"
            );
            continue;
        }
        return Some(Control::AccessKeys {
            jwks: jwks.to_string(),
        });
    }
}

fn log_config_status(live: &LiveConnection, version: u64, applied: bool, error: Option<&str>) {
    if applied {
        info!(connection = %live.id, tunnel = %live.tunnel_name, connector = %live.connector_id, version, "connector applied config version {version}");
    } else {
        warn!(connection = %live.id, tunnel = %live.tunnel_name, connector = %live.connector_id, version, error = error.unwrap_or(""), "connector did not apply config version {version}");
    }
}
