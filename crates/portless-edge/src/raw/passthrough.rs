//! TLS passthrough on the public listener: before the TLS accept, the ClientHello is read
//! (bytes kept, nothing answered); when its SNI is a passthrough hostname the bytes go
//! through the tunnel to an origin that terminates TLS with its own key, and the edge never
//! sees inside. Otherwise the socket, with the bytes put back, goes to the normal handshake.

use std::net::SocketAddr;
use std::sync::Arc;

use portless_tls::{ClientHelloPeek, Peeked};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Relaying, Replay, relay};
use crate::edge::EdgeState;

/// Metric label of passthrough connections.
const KIND: &str = "passthrough";
/// Most bytes read while looking for a complete ClientHello. Real ones are a few KiB
/// (post-quantum key shares included); more is not a client worth waiting for.
const MAX_HELLO: usize = 64 * 1024;
/// Read size while peeking.
const READ: usize = 4096;

/// Hands the socket back for the normal TLS handshake (with any bytes read put back), or
/// relays it to a passthrough origin and returns `None` when done (also `None` when the
/// client left, sent too much, or was too slow before `deadline`).
pub(crate) async fn divert(
    mut socket: TcpStream,
    client: SocketAddr,
    state: &Arc<EdgeState>,
    deadline: Instant,
) -> Option<Replay<TcpStream>> {
    if state.options.passthrough.is_empty() {
        return Some(Replay::new(Vec::new(), socket));
    }
    let peeked = tokio::time::timeout_at(deadline, peek(&mut socket)).await;
    let (bytes, name) = match peeked {
        Ok(Some((bytes, Some(name)))) => (bytes, name),
        Ok(Some((bytes, None))) => return Some(Replay::new(bytes, socket)),
        Ok(None) | Err(_) => return None,
    };
    let host = match portless_proto::canonical_host(&name) {
        Ok(host) if state.options.passthrough.matches(&host) => host,
        _ => return Some(Replay::new(bytes, socket)),
    };
    // A passthrough name that is also an allow-listed TCP port's is held to that list.
    if !state.https_guard.allows(&host, client.ip()) {
        state.metrics.raw_refused(KIND, "allow_list");
        return None;
    }
    state
        .metrics
        .raw_connections
        .get_or_create(&crate::metrics::RawLabel { kind: KIND })
        .inc();
    let how = Relaying {
        kind: KIND,
        idle_timeout: None,
    };
    relay(state, how, &host, socket, client, &bytes, deadline).await;
    None
}

/// Reads until the ClientHello is complete: its bytes, and its server name. Bytes that are
/// not TLS come back with no name, for the handshake to refuse; `None`: the client left or
/// sent more than [`MAX_HELLO`] without completing a ClientHello.
async fn peek(socket: &mut TcpStream) -> Option<(Vec<u8>, Option<String>)> {
    let mut parser = ClientHelloPeek::default();
    let mut bytes = Vec::with_capacity(READ);
    let mut chunk = [0u8; READ];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
        match parser.feed(&chunk[..n]) {
            Peeked::NeedMore if bytes.len() < MAX_HELLO => {}
            Peeked::NeedMore => return None,
            Peeked::Hello(name) => return Some((bytes, name)),
            Peeked::NotTls => return Some((bytes, None)),
        }
    }
}
