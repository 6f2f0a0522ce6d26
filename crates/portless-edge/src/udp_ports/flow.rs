//! One client's UDP flow: a tunnel stream to the connector's `udp://` rule, then datagrams
//! both ways until the flow idles, the tunnel side ends it or the edge shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portless_proto::{FrameKind, RequestHead, ResponseHead, StreamError};
use portless_transport::{
    FlowDatagrams, FlowEvent, FramedRecv, FramedSend, LocalUdp, RecvHalf, SendHalf,
    UDP_FLOW_HEADER, UDP_IDLE_HEADER, UDP_UPGRADE, relay_flow,
};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Port;
use super::counters::DropReason;
use crate::registry::InFlight;

/// Limit for opening a flow's stream and getting the connector's answer.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// After a flow could not be opened, its client's datagrams are dropped for this long
/// instead of each trying again: a flood toward a dead tunnel costs one attempt a second.
const FAILED_HOLD: Duration = Duration::from_secs(1);

/// Longest wait for the connector to take the end of a flow's stream.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A flow's tunnel side, once the connector answered `101`.
struct Opened {
    claim: InFlight,
    send: SendHalf,
    recv: tokio::io::BufReader<RecvHalf>,
    datagrams: Option<FlowDatagrams>,
}

/// Runs a client's flow; `queue` holds the client's datagrams, the first already in it.
pub(super) async fn run(
    port: &Arc<Port>,
    client: SocketAddr,
    mut queue: mpsc::Receiver<Bytes>,
    stop: CancellationToken,
) {
    let hostname = port.config.hostname.as_str();
    let opened = tokio::select! {
        opened = tokio::time::timeout(SETUP_TIMEOUT, open(port, client)) => {
            opened.unwrap_or(Err(DropReason::TunnelDown))
        }
        () = stop.cancelled() => return,
    };
    let Opened {
        claim,
        mut send,
        recv,
        datagrams,
    } = match opened {
        Ok(opened) => opened,
        Err(reason) => {
            debug!(%client, hostname, ?reason, "UDP flow not opened");
            hold_failed(port, &mut queue, reason, &stop).await;
            return;
        }
    };
    debug!(%client, hostname, datagrams = datagrams.is_some(), "UDP flow opened");
    let counters = &port.counters;
    let events = |event: FlowEvent| match event {
        FlowEvent::Sent { path, .. } => counters.tunnel(true, path),
        FlowEvent::Received { path, bytes } => {
            counters.sent(bytes);
            counters.tunnel(false, path);
        }
        FlowEvent::Dropped(n) => counters.dropped(DropReason::QueueFull, n),
    };
    let local = LocalUdp {
        socket: &port.socket,
        peer: Some(client),
        inbound: Some(&mut queue),
    };
    let connection = &claim.connection().connection;
    tokio::select! {
        end = relay_flow(local, &mut send, recv, datagrams, port.config.idle_timeout, &events) => {
            debug!(%client, hostname, ?end, "UDP flow ended");
        }
        () = connection.closed() => debug!(%client, hostname, "UDP flow ended with its tunnel connection"),
        () = stop.cancelled() => {}
    }
    // A clean end of the stream ends the flow at the connector too.
    let _ = tokio::time::timeout(CLOSE_WAIT, send.shutdown()).await;
}

/// Opens the flow's stream on one of the tunnel's connections and reads the connector's
/// answer; on failure, the drop reason.
async fn open(port: &Port, client: SocketAddr) -> Result<Opened, DropReason> {
    let state = &port.state;
    let route = state
        .routes
        .lookup(&port.config.hostname)
        .ok_or(DropReason::NoRoute)?;
    let claim = state
        .registry
        .pick(route.tunnel_id, &[])
        .ok_or(DropReason::TunnelDown)?;
    let connection = &claim.connection().connection;
    let datagrams = connection.datagrams().map(|d| d.open_flow());
    let stream = connection
        .open_stream()
        .await
        .map_err(|_| DropReason::TunnelDown)?;
    let request_id = crate::respond::new_request_id();
    let idle_ms = u64::try_from(port.config.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let mut headers = vec![
        (
            "x-forwarded-for".to_owned(),
            client.ip().to_canonical().to_string().into_bytes(),
        ),
        ("x-request-id".to_owned(), request_id.clone().into_bytes()),
        (UDP_IDLE_HEADER.to_owned(), idle_ms.to_string().into_bytes()),
    ];
    if let Some(flow) = &datagrams {
        headers.push((
            UDP_FLOW_HEADER.to_owned(),
            flow.id().to_string().into_bytes(),
        ));
    }
    let head = RequestHead {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        host: port.config.hostname.clone(),
        headers,
        upgrade: Some(UDP_UPGRADE.to_owned()),
        has_body: false,
        request_id,
    };
    let mut send = FramedSend::new(stream.send);
    let mut recv = FramedRecv::new(stream.recv);
    send.write_message(FrameKind::RequestHead, &head)
        .await
        .map_err(|_| DropReason::TunnelDown)?;
    let header = recv
        .read_header()
        .await
        .ok()
        .flatten()
        .ok_or(DropReason::TunnelDown)?;
    let answer = match header.kind {
        FrameKind::ResponseHead => recv
            .read_payload_as::<ResponseHead>(header)
            .await
            .map_err(|_| DropReason::TunnelDown)?,
        FrameKind::StreamError => {
            if let Ok(error) = recv.read_payload_as::<StreamError>(header).await {
                debug!(%client, hostname = %port.config.hostname, class = error.class.as_str(), detail = %error.message, "the connector refused a UDP flow");
            }
            return Err(DropReason::Refused);
        }
        _ => return Err(DropReason::TunnelDown),
    };
    if answer.status != 101 {
        return Err(DropReason::Refused);
    }
    // Datagrams only when the connector registered the id (it echoes it).
    let datagrams = datagrams.filter(|flow| {
        let id = flow.id().to_string();
        answer
            .headers
            .iter()
            .any(|(name, value)| name == UDP_FLOW_HEADER && value.as_slice() == id.as_bytes())
    });
    Ok(Opened {
        claim,
        send: send.into_raw(),
        recv: recv.into_raw(),
        datagrams,
    })
}

/// Drops (and counts) the client's datagrams for [`FAILED_HOLD`] after a failed open.
async fn hold_failed(
    port: &Port,
    queue: &mut mpsc::Receiver<Bytes>,
    reason: DropReason,
    stop: &CancellationToken,
) {
    let hold = tokio::time::sleep(FAILED_HOLD);
    tokio::pin!(hold);
    loop {
        let mut waiting = 0;
        while queue.try_recv().is_ok() {
            waiting += 1;
        }
        if waiting > 0 {
            port.counters.dropped(reason, waiting);
        }
        tokio::select! {
            received = queue.recv() => match received {
                Some(_) => port.counters.dropped(reason, 1),
                None => return,
            },
            () = &mut hold => break,
            () = stop.cancelled() => return,
        }
    }
    // Whatever arrived in the meantime goes down with the flow.
    queue.close();
    let mut late = 0;
    while queue.try_recv().is_ok() {
        late += 1;
    }
    if late > 0 {
        port.counters.dropped(reason, late);
    }
}
