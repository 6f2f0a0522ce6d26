//! Opening a raw stream: route → connection → upgraded head → `101`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portless_proto::{ErrorClass, FrameKind, RequestHead, encode_message};
use portless_transport::{FramedRecv, FramedSend, RecvHalf, SendHalf};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use super::{TCP_UPGRADE, splice};
use crate::edge::EdgeState;
use crate::forwarding::REQUEST_ID;
use crate::proxy::{Failure, read_answer};
use crate::registry::InFlight;

/// Connections tried before giving up: nothing of the client's bytes is sent before the
/// `101`, so another connection can always take over.
const MAX_ATTEMPTS: usize = 4;

/// A tunnel stream that answered `101`: raw bytes from here on.
pub(crate) struct RawStream {
    /// Bytes from the origin (with any already buffered after the `101`).
    pub(crate) recv: BufReader<RecvHalf>,
    /// Bytes toward the origin.
    pub(crate) send: SendHalf,
    /// Keeps the connection counted as busy while the stream lives.
    pub(crate) _claim: InFlight,
}

/// Why no raw stream could be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// No route for the hostname.
    NoRoute,
    /// The route's tunnel has no live connection that could open a stream.
    TunnelDown,
    /// The connector answered, but not with `101` (no TCP rule, origin unreachable…).
    Refused(ErrorClass),
}

impl OpenError {
    /// A metric label / log word.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpenError::NoRoute => "no_route",
            OpenError::TunnelDown => "tunnel_down",
            OpenError::Refused(class) => class.as_str(),
        }
    }
}

/// [`open`] for a client connection of `kind` (a metric label), given until `deadline`; a
/// failure is counted and logged (debug, with the request id the connector logs too), and
/// the connection is to be closed.
pub(crate) async fn open_for(
    state: &EdgeState,
    kind: &'static str,
    host: &str,
    client: SocketAddr,
    deadline: Instant,
) -> Option<RawStream> {
    let request_id = crate::respond::new_request_id();
    let reason = match tokio::time::timeout_at(
        deadline,
        open(state, host, client.ip(), &request_id),
    )
    .await
    {
        Ok(Ok(stream)) => {
            debug!(%client, %host, %request_id, kind, "raw TCP: relaying");
            return Some(stream);
        }
        Ok(Err(e)) => e.as_str(),
        Err(_) => "timeout",
    };
    debug!(%client, %host, %request_id, kind, reason, "raw TCP: no stream to the origin; closing");
    state.metrics.raw_refused(kind, reason);
    None
}

/// How the connections of one source (passthrough, a TCP port) are relayed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relaying {
    /// Metric label and log word.
    pub(crate) kind: &'static str,
    /// A connection with no byte either way for this long is closed.
    pub(crate) idle_timeout: Option<Duration>,
}

/// Relays a client's connection to the origin of `host`: opens the stream (see
/// [`open_for`]), writes `first` toward the origin, then splices both ways until both ends
/// closed, the connection was idle too long or the tunnel side shuts down.
pub(crate) async fn relay(
    state: &EdgeState,
    how: Relaying,
    host: &str,
    socket: TcpStream,
    client: SocketAddr,
    first: &[u8],
    deadline: Instant,
) {
    let Some(stream) = open_for(state, how.kind, host, client, deadline).await else {
        return;
    };
    let idle = splice(
        socket,
        stream,
        first,
        state.metrics.raw_bytes(how.kind),
        how.idle_timeout,
        state.tunnel_shutdown.clone(),
    )
    .await;
    if idle {
        debug!(%client, %host, kind = how.kind, "raw TCP: idle timeout; closed");
    }
}

/// Opens a raw stream to the origin of `host` (canonical) for a client at `client`.
pub(crate) async fn open(
    state: &EdgeState,
    host: &str,
    client: IpAddr,
    request_id: &str,
) -> Result<RawStream, OpenError> {
    let route = state.routes.lookup(host).ok_or(OpenError::NoRoute)?;
    let ip = client.to_canonical().to_string();
    let head = RequestHead {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        host: host.to_owned(),
        headers: vec![
            ("x-forwarded-for".into(), ip.clone().into_bytes()),
            ("x-real-ip".into(), ip.into_bytes()),
            (
                REQUEST_ID.as_str().to_owned(),
                request_id.as_bytes().to_vec(),
            ),
            ("connection".into(), b"upgrade".to_vec()),
            ("upgrade".into(), TCP_UPGRADE.as_bytes().to_vec()),
        ],
        upgrade: Some(TCP_UPGRADE.to_owned()),
        has_body: false,
        request_id: request_id.to_owned(),
    };
    let mut encoded = bytes::BytesMut::new();
    encode_message(FrameKind::RequestHead, &head, &mut encoded)
        .map_err(|_| OpenError::Refused(ErrorClass::Internal))?;
    let mut tried = Vec::with_capacity(2);
    while tried.len() < MAX_ATTEMPTS {
        let Some(claim) = state.registry.pick(route.tunnel_id, &tried) else {
            break;
        };
        tried.push(claim.connection().id);
        let Ok(stream) = claim.connection().connection.open_stream().await else {
            continue;
        };
        let mut send = FramedSend::new(stream.send);
        let mut recv = FramedRecv::new(stream.recv);
        if send.write_encoded(&encoded).await.is_err() {
            continue;
        }
        match read_answer(&mut recv).await {
            Ok(answer) if answer.status == 101 => {
                return Ok(RawStream {
                    recv: recv.into_raw(),
                    send: send.into_raw(),
                    _claim: claim,
                });
            }
            Ok(_) => {
                send.get_mut().abort();
                return Err(OpenError::Refused(ErrorClass::BadRequest));
            }
            Err(Failure::Answered(class)) => return Err(OpenError::Refused(class)),
            Err(Failure::Transport) => continue,
        }
    }
    Err(OpenError::TunnelDown)
}
