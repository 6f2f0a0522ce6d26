//! Bytes both ways between a client socket and a raw tunnel stream, counted as they flow.

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::RawStream;

/// Size of each direction's copy buffer.
const CHUNK: usize = 64 * 1024;

/// The byte counters of one connection's two directions.
pub(crate) struct ByteCounters {
    pub(crate) to_origin: Counter,
    pub(crate) to_client: Counter,
}

/// Writes `first` toward the origin (a PROXY header, the peeked ClientHello), then copies
/// both ways until both directions ended or `shutdown` fires. Each direction is closed on
/// its own (half-close): the end of the client's bytes becomes the end of the stream toward
/// the origin while the origin's answer keeps flowing, and the other way round. The client
/// is a plain socket, so its halves are split without the lock a generic split would take
/// on every read and write.
pub(crate) async fn splice(
    mut client: TcpStream,
    stream: RawStream,
    first: &[u8],
    counters: ByteCounters,
    shutdown: CancellationToken,
) {
    let RawStream {
        recv: mut tunnel_read,
        send: mut tunnel_write,
        _claim,
    } = stream;
    let (mut client_read, mut client_write) = client.split();
    let up = async {
        if !first.is_empty() {
            if tunnel_write.write_all(first).await.is_err() {
                tunnel_write.abort();
                return;
            }
            counters.to_origin.inc_by(first.len() as u64);
        }
        copy(&mut client_read, &mut tunnel_write, &counters.to_origin).await;
        let _ = tunnel_write.shutdown().await;
    };
    let down = async {
        copy(&mut tunnel_read, &mut client_write, &counters.to_client).await;
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        () = shutdown.cancelled() => {}
    }
}

/// Copies until the reader ends or either side fails, counting each chunk as it is written.
async fn copy(
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
    counter: &Counter,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if writer.write_all(&buf[..n]).await.is_err() {
            return;
        }
        counter.inc_by(n as u64);
    }
}
