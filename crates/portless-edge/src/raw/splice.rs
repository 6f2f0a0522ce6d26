//! Bytes both ways between a client socket and a raw tunnel stream, counted as they flow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portless_transport::pump;
use prometheus_client::metrics::counter::Counter;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RawStream;

/// The byte counters of one connection's two directions.
pub(crate) struct ByteCounters {
    pub(crate) to_origin: Counter,
    pub(crate) to_client: Counter,
}

/// Writes `first` toward the origin (a PROXY header, the peeked ClientHello), then copies
/// both ways until both directions ended, no byte moved either way for `idle_timeout`, or
/// `shutdown` fires. Returns whether the idle timeout ended it. Each direction is closed on
/// its own (half-close): the end of the client's bytes becomes the end of the stream toward
/// the origin while the origin's answer keeps flowing, and the other way round. The client
/// is a plain socket, so its halves are split without the lock a generic split would take
/// on every read and write.
pub(crate) async fn splice(
    mut client: TcpStream,
    stream: RawStream,
    first: &[u8],
    counters: ByteCounters,
    idle_timeout: Option<Duration>,
    shutdown: CancellationToken,
) -> bool {
    let RawStream {
        recv: mut tunnel_read,
        send: mut tunnel_write,
        _claim,
    } = stream;
    let (mut client_read, mut client_write) = client.split();
    // The last moment a chunk went through, in milliseconds since the start; kept only when
    // an idle timeout reads it (no clock read per chunk otherwise).
    let started = Instant::now();
    let last_moved = AtomicU64::new(0);
    let moved = || {
        if idle_timeout.is_some() {
            last_moved.store(millis_since(started), Ordering::Relaxed);
        }
    };
    let up = async {
        if !first.is_empty() {
            if tunnel_write.write_all(first).await.is_err() {
                tunnel_write.abort();
                return;
            }
            counters.to_origin.inc_by(first.len() as u64);
        }
        let _ = pump(&mut client_read, &mut tunnel_write, |n| {
            counters.to_origin.inc_by(n as u64);
            moved();
        })
        .await;
        let _ = tunnel_write.shutdown().await;
    };
    let down = async {
        let _ = pump(&mut tunnel_read, &mut client_write, |n| {
            counters.to_client.inc_by(n as u64);
            moved();
        })
        .await;
        let _ = client_write.shutdown().await;
    };
    let idle = async {
        let Some(limit) = idle_timeout else {
            return std::future::pending().await;
        };
        loop {
            let due = started + Duration::from_millis(last_moved.load(Ordering::Relaxed)) + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => false,
        () = shutdown.cancelled() => false,
        () = idle => true,
    }
}

fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
