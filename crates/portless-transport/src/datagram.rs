//! UDP flows over a tunnel connection: QUIC datagrams tagged with a flow id, and
//! length-prefixed datagrams on the flow's stream.
//!
//! A flow (one public client address of a UDP port) has its own tunnel stream, opened by the
//! edge; closing it ends the flow on both sides. Its datagrams travel as QUIC datagrams when
//! the connection is QUIC and both sides agreed on a flow id (see ADR 0010): each carries the
//! flow id as a QUIC variable-length integer, then the payload. A datagram the QUIC path cannot
//! carry (the TCP fallback has no datagrams; a payload above the path's `max_datagram_size`)
//! goes on the flow's stream instead, framed by [`write_stream_datagram`] /
//! [`StreamDatagrams`]. Receivers accept both paths at once.
//!
//! One task per QUIC connection reads its datagrams and hands each to its flow's bounded
//! queue; a full queue or an unknown flow drops the datagram (UDP semantics) and counts it.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// The `upgrade` of a flow's request head (and of the connector's `101`).
pub const UDP_UPGRADE: &str = "portless-udp";

/// Request header: the flow id the edge chose for the flow's QUIC datagrams; the connector
/// echoes it in its `101` when it registered the id. Without the echo (TCP fallback, a peer
/// without datagrams) every datagram of the flow goes on its stream.
pub const UDP_FLOW_HEADER: &str = "portless-udp-flow";

/// Request header: the port's idle timeout in milliseconds, so the connector ends an idle
/// flow when the edge does.
pub const UDP_IDLE_HEADER: &str = "portless-udp-idle-timeout";

/// Datagrams one flow may have queued between the connection's reader and the flow's task;
/// more are dropped (and counted) instead of growing memory.
const FLOW_QUEUE: usize = 256;

/// Largest datagram on a flow's stream: the largest UDP payload (IPv6 jumbograms aside).
pub const MAX_STREAM_DATAGRAM: usize = u16::MAX as usize;

/// The QUIC datagrams of one connection, shared by all of its flows.
///
/// Cheap to clone. Only QUIC connections have one (see `EdgeConnection::datagrams`).
#[derive(Clone)]
pub struct Datagrams {
    connection: quinn::Connection,
    mux: Arc<Mux>,
}

/// Flow id → the flow's queue.
struct Mux {
    flows: Mutex<HashMap<u64, FlowSlot>>,
    /// Next id [`Datagrams::open_flow`] hands out.
    next_id: AtomicU64,
    /// Datagrams whose flow id is unknown (a flow that just ended) or malformed.
    unroutable: AtomicU64,
}

struct FlowSlot {
    queue: mpsc::Sender<Bytes>,
    dropped: Arc<AtomicU64>,
}

impl Datagrams {
    /// Starts reading the connection's datagrams on `tasks`; the reader ends with the
    /// connection.
    pub(crate) fn start(connection: quinn::Connection, tasks: &TaskTracker) -> Self {
        let mux = Arc::new(Mux {
            flows: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            unroutable: AtomicU64::new(0),
        });
        tasks.spawn(demux(connection.clone(), mux.clone()));
        Self { connection, mux }
    }

    /// Registers a flow under a fresh id (the edge's side: it picks the ids).
    pub fn open_flow(&self) -> FlowDatagrams {
        loop {
            let id = self.mux.next_id.fetch_add(1, Ordering::Relaxed) & VARINT_MAX;
            if let Some(flow) = self.register_flow(id) {
                return flow;
            }
        }
    }

    /// Registers a flow under the id the peer chose; `None` when that id is taken (or above
    /// the largest QUIC varint).
    pub fn register_flow(&self, id: u64) -> Option<FlowDatagrams> {
        if id > VARINT_MAX {
            return None;
        }
        let (queue, incoming) = mpsc::channel(FLOW_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        {
            let mut flows = self.mux.flows.lock().unwrap_or_else(|p| p.into_inner());
            if flows.contains_key(&id) {
                return None;
            }
            flows.insert(
                id,
                FlowSlot {
                    queue,
                    dropped: dropped.clone(),
                },
            );
        }
        Some(FlowDatagrams {
            sender: FlowSender {
                connection: self.connection.clone(),
                id,
            },
            receiver: FlowReceiver {
                mux: self.mux.clone(),
                id,
                incoming,
                dropped,
            },
        })
    }

    /// Datagrams received for no registered flow so far.
    pub fn unroutable(&self) -> u64 {
        self.mux.unroutable.load(Ordering::Relaxed)
    }

    /// Registered flows (for tests and gauges).
    pub fn flows(&self) -> usize {
        self.mux
            .flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

async fn demux(connection: quinn::Connection, mux: Arc<Mux>) {
    while let Ok(mut datagram) = connection.read_datagram().await {
        let Some(id) = decode_varint(&mut datagram) else {
            mux.unroutable.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let flows = mux.flows.lock().unwrap_or_else(|p| p.into_inner());
        match flows.get(&id) {
            Some(slot) => {
                if slot.queue.try_send(datagram).is_err() {
                    slot.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                mux.unroutable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Why a datagram did not go out as a QUIC datagram; the caller sends it on the flow's
/// stream instead (or drops it, for [`DatagramError::Closed`]).
#[derive(Debug, thiserror::Error)]
pub enum DatagramError {
    /// Larger than what the path carries now.
    #[error("the datagram is larger than the QUIC path carries ({max} bytes)")]
    TooLarge {
        /// Largest payload the path carries now.
        max: usize,
    },
    /// The peer does not accept datagrams.
    #[error("the peer does not accept QUIC datagrams")]
    Unsupported,
    /// The connection is gone.
    #[error("the tunnel connection is closed")]
    Closed,
}

/// One flow's QUIC datagrams: send tagged with its id, receive those tagged with it.
/// Dropping it (or its [`FlowReceiver`] half) unregisters the flow.
pub struct FlowDatagrams {
    sender: FlowSender,
    receiver: FlowReceiver,
}

/// The sending half of a [`FlowDatagrams`].
pub struct FlowSender {
    connection: quinn::Connection,
    id: u64,
}

/// The receiving half of a [`FlowDatagrams`]; dropping it unregisters the flow.
pub struct FlowReceiver {
    mux: Arc<Mux>,
    id: u64,
    incoming: mpsc::Receiver<Bytes>,
    dropped: Arc<AtomicU64>,
}

impl FlowDatagrams {
    /// The flow id both sides tag datagrams with.
    pub fn id(&self) -> u64 {
        self.sender.id
    }

    /// The halves, for sending and receiving at the same time.
    pub fn split(self) -> (FlowSender, FlowReceiver) {
        (self.sender, self.receiver)
    }
}

impl FlowSender {
    /// Largest payload the QUIC path carries now (`None`: the peer takes no datagrams).
    pub fn max_payload(&self) -> Option<usize> {
        self.connection
            .max_datagram_size()
            .map(|max| max.saturating_sub(varint_len(self.id)))
    }

    /// Sends `payload` as one QUIC datagram. Like UDP it may be lost; the connection's send
    /// buffer drops its oldest datagrams rather than grow.
    pub fn send(&self, payload: &[u8]) -> Result<(), DatagramError> {
        let max = self.max_payload().ok_or(DatagramError::Unsupported)?;
        if payload.len() > max {
            return Err(DatagramError::TooLarge { max });
        }
        let mut datagram = BytesMut::with_capacity(varint_len(self.id) + payload.len());
        encode_varint(self.id, &mut datagram);
        datagram.extend_from_slice(payload);
        self.connection
            .send_datagram(datagram.freeze())
            .map_err(|e| match e {
                quinn::SendDatagramError::TooLarge => DatagramError::TooLarge { max },
                quinn::SendDatagramError::UnsupportedByPeer
                | quinn::SendDatagramError::Disabled => DatagramError::Unsupported,
                quinn::SendDatagramError::ConnectionLost(_) => DatagramError::Closed,
            })
    }
}

impl FlowReceiver {
    /// The next datagram of this flow; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.incoming.recv().await
    }

    /// Datagrams dropped because this flow's queue was full, since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

impl Drop for FlowReceiver {
    fn drop(&mut self) {
        let mut flows = self.mux.flows.lock().unwrap_or_else(|p| p.into_inner());
        flows.remove(&self.id);
    }
}

// === datagrams on a stream ===

/// Writes one datagram on a flow's stream: a 2-byte big-endian length, then the payload.
pub async fn write_stream_datagram<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
) -> io::Result<()> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a {}-byte datagram is larger than UDP allows",
                payload.len()
            ),
        )
    })?;
    // One buffer: the frame goes out in one write, never split by another's.
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.put_u16(len);
    frame.extend_from_slice(payload);
    writer.write_all(&frame).await?;
    writer.flush().await
}

/// Reads the datagrams of a flow's stream.
pub struct StreamDatagrams<R> {
    inner: R,
}

impl<R: AsyncRead + Unpin> StreamDatagrams<R> {
    /// Wraps the receiving half (after the `101`).
    pub fn new(inner: R) -> Self {
        Self { inner }
    }

    /// The next datagram; `None` at a clean end of the stream (the flow is over). Not
    /// cancel-safe: keep one future alive across datagrams (a loop of its own).
    pub async fn next(&mut self) -> io::Result<Option<Bytes>> {
        let mut len = [0u8; 2];
        match self.inner.read(&mut len[..1]).await? {
            0 => return Ok(None),
            _ => self.inner.read_exact(&mut len[1..]).await?,
        };
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.inner.read_exact(&mut payload).await?;
        Ok(Some(Bytes::from(payload)))
    }
}

// === QUIC variable-length integers (RFC 9000 §16) ===

const VARINT_MAX: u64 = (1 << 62) - 1;

fn varint_len(value: u64) -> usize {
    match value {
        0..=63 => 1,
        64..=16_383 => 2,
        16_384..=1_073_741_823 => 4,
        _ => 8,
    }
}

fn encode_varint(value: u64, dst: &mut BytesMut) {
    match varint_len(value) {
        1 => dst.put_u8(value as u8),
        2 => dst.put_u16(0x4000 | value as u16),
        4 => dst.put_u32(0x8000_0000 | value as u32),
        _ => dst.put_u64(0xC000_0000_0000_0000 | (value & VARINT_MAX)),
    }
}

/// Takes a varint off the front of `src`; `None` when it is cut short.
fn decode_varint(src: &mut Bytes) -> Option<u64> {
    let first = *src.first()?;
    let len = 1usize << (first >> 6);
    if src.len() < len {
        return None;
    }
    let mut value = u64::from(first & 0x3F);
    for byte in &src[1..len] {
        value = (value << 8) | u64::from(*byte);
    }
    src.advance(len);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length_boundary() {
        for value in [
            0,
            63,
            64,
            16_383,
            16_384,
            1_073_741_823,
            1_073_741_824,
            VARINT_MAX,
        ] {
            let mut buf = BytesMut::new();
            encode_varint(value, &mut buf);
            assert_eq!(buf.len(), varint_len(value), "{value}");
            buf.extend_from_slice(b"payload");
            let mut bytes = buf.freeze();
            assert_eq!(decode_varint(&mut bytes), Some(value));
            assert_eq!(&bytes[..], b"payload");
        }
        // RFC 9000 §A.1's examples.
        let mut two = Bytes::from_static(&[0x7b, 0xbd]);
        assert_eq!(decode_varint(&mut two), Some(15_293));
        let mut cut = Bytes::from_static(&[0x80, 0x01]);
        assert_eq!(decode_varint(&mut cut), None);
        assert_eq!(decode_varint(&mut Bytes::new()), None);
    }

    #[tokio::test]
    async fn stream_datagrams_keep_their_boundaries_and_a_clean_end_ends_the_flow() {
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let sizes = [1usize, 0, 1200, 1500, MAX_STREAM_DATAGRAM];
        for (i, size) in sizes.iter().enumerate() {
            let payload = vec![u8::try_from(i).unwrap(); *size];
            write_stream_datagram(&mut a, &payload).await.unwrap();
        }
        let too_big = vec![0u8; MAX_STREAM_DATAGRAM + 1];
        assert!(write_stream_datagram(&mut a, &too_big).await.is_err());
        drop(a);
        let mut reader = StreamDatagrams::new(b);
        for (i, size) in sizes.iter().enumerate() {
            let got = reader.next().await.unwrap().unwrap();
            assert_eq!(got.len(), *size);
            assert!(got.iter().all(|b| usize::from(*b) == i));
        }
        assert!(reader.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_datagram_is_an_error() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 10, 1, 2, 3]).await.unwrap();
        drop(a);
        let mut reader = StreamDatagrams::new(b);
        assert!(reader.next().await.is_err());
    }
}
