//! One connection slot: dial, register, serve, and come back after losses.

use std::sync::Arc;
use std::time::Duration;

use portless_proto::{FrameKind, Refused, Register, RegisterResponse, Registered};
use portless_transport::{
    Backoff, ConnectorConnection, FramedRecv, FramedSend, Protocol, RecvHalf, SendHalf,
    TransportError,
};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::connector::Shared;
use crate::metrics::ProtocolLabel;
use crate::session::{self, Draining, SessionEnd};

/// A registered connection, ready to serve.
pub(crate) struct Session {
    pub(crate) index: u8,
    pub(crate) protocol: Protocol,
    pub(crate) connection: ConnectorConnection,
    pub(crate) control_recv: FramedRecv<RecvHalf>,
    pub(crate) control_send: FramedSend<SendHalf>,
    pub(crate) registered: Registered,
}

/// Why a slot could not get a registered connection.
enum AttemptError {
    /// The edge could not be reached over this protocol.
    Dial(TransportError),
    /// The edge answered and refused.
    Refused(Refused),
}

/// Runs slot `index` until shutdown. Waits for the previous slot's first attempt (so a
/// connector's connections start one after another and a QUIC fallback found by the first
/// spares the others the wait), and signals its own.
pub(crate) async fn run(
    shared: Arc<Shared>,
    index: u8,
    previous: Option<oneshot::Receiver<()>>,
    first_done: oneshot::Sender<()>,
) {
    if let Some(previous) = previous {
        tokio::select! {
            _ = previous => {}
            () = shared.shutdown.cancelled() => return,
        }
    }
    let mut first_done = Some(first_done);
    let options = &shared.options;
    let mut backoff = Backoff::new(options.backoff_base, options.backoff_cap);
    // A connection being replaced: drained once its successor is up (or failed to come up).
    let mut replaced: Option<Box<Draining>> = None;
    loop {
        if shared.shutdown.is_cancelled() {
            if let Some(old) = replaced.take() {
                session::drain(&shared, *old).await;
            }
            return;
        }
        let attempt = tokio::select! {
            attempt = connect(&shared, index) => attempt,
            () = shared.shutdown.cancelled() => continue,
        };
        if let Some(done) = first_done.take() {
            let _ = done.send(());
        }
        if let Some(old) = replaced.take() {
            let drainer = shared.clone();
            shared
                .tasks
                .spawn(async move { session::drain(&drainer, *old).await });
        }
        let mut wait_at_least = Duration::ZERO;
        match attempt {
            Ok(session) => {
                backoff.reset();
                match session::serve(&shared, session).await {
                    SessionEnd::Shutdown => return,
                    SessionEnd::Migrate(old) => {
                        replaced = Some(old);
                        continue;
                    }
                    SessionEnd::Lost => {}
                }
            }
            Err(AttemptError::Refused(refused)) => {
                error!(connIndex = index, code = ?refused.code, "the edge refused the connection: {}", refused.message);
                wait_at_least = Duration::from_millis(refused.retry_after_ms.unwrap_or(0));
            }
            Err(AttemptError::Dial(e)) => {
                warn!(connIndex = index, edge = %options.edge.addr, error = %e, retry = backoff.attempts() + 1, "cannot reach the edge");
            }
        }
        let delay = backoff.next_delay().max(wait_at_least);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.shutdown.cancelled() => return,
        }
    }
}

/// One attempt: the current protocol, and under `auto` TCP right after a failed QUIC dial.
/// The fallback sticks only when TCP then works: an edge that is simply down must not push
/// every connector onto TCP for the next probe interval.
async fn connect(shared: &Arc<Shared>, index: u8) -> Result<Session, AttemptError> {
    let protocol = shared.protocol.current();
    match register(shared, index, protocol).await {
        Err(AttemptError::Dial(e))
            if protocol == Protocol::Quic
                && shared.options.protocol == crate::ProtocolChoice::Auto =>
        {
            let session = register(shared, index, Protocol::Tcp).await?;
            if shared.protocol.quic_failed() {
                shared.metrics.fallbacks.inc();
                warn!(connIndex = index, error = %e, "QUIC to the edge failed but TCP works: falling back to TCP; QUIC will be probed again");
                shared.tasks.spawn(probe_quic(shared.clone()));
            }
            Ok(session)
        }
        other => other,
    }
}

async fn register(
    shared: &Arc<Shared>,
    index: u8,
    protocol: Protocol,
) -> Result<Session, AttemptError> {
    let options = &shared.options;
    let (connection, control) = shared
        .dialer
        .dial(protocol, &options.edge)
        .await
        .map_err(AttemptError::Dial)?;
    let mut control_send = FramedSend::new(control.send);
    let mut control_recv = FramedRecv::new(control.recv);
    let register = Register {
        tunnel_id: options.tunnel_id,
        secret: options.secret.clone(),
        connector_id: shared.connector_id,
        conn_index: index,
        client_version: env!("CARGO_PKG_VERSION").to_owned(),
        features: vec![
            Register::FEATURE_CONFIG_UPDATES.to_owned(),
            Register::FEATURE_ACCESS_KEYS.to_owned(),
        ],
    };
    control_send
        .write_message(FrameKind::Register, &register)
        .await
        .map_err(AttemptError::Dial)?;
    let answer = tokio::time::timeout(
        options.transport.handshake_timeout,
        control_recv
            .read_message::<RegisterResponse>(FrameKind::RegisterResponse, "RegisterResponse"),
    )
    .await
    .map_err(|_| {
        AttemptError::Dial(TransportError::HandshakeTimeout(
            options.edge.addr.to_string(),
        ))
    })?
    .map_err(AttemptError::Dial)?;
    match answer {
        RegisterResponse::Registered(registered) => {
            shared
                .metrics
                .registrations
                .get_or_create(&ProtocolLabel {
                    protocol: protocol.as_str(),
                })
                .inc();
            Ok(Session {
                index,
                protocol,
                connection,
                control_recv,
                control_send,
                registered,
            })
        }
        RegisterResponse::Refused(refused) => Err(AttemptError::Refused(refused)),
    }
}

/// While on the TCP fallback, tries a QUIC handshake every probe interval; on success the
/// connector goes back to QUIC (TCP sessions migrate one by one).
async fn probe_quic(shared: Arc<Shared>) {
    let every = shared.options.quic_probe_interval;
    while shared.protocol.on_fallback() {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shared.shutdown.cancelled() => return,
        }
        if let Ok((connection, _control)) = shared
            .dialer
            .dial(Protocol::Quic, &shared.options.edge)
            .await
        {
            connection.closer().close("probe");
            info!("QUIC reaches the edge again: moving connections back to QUIC");
            shared.protocol.quic_recovered();
        }
    }
}
