//! The `udp://` service: one UDP flow per stream the edge opens for a public UDP client.
//!
//! The edge's stream asks to upgrade to `portless-udp`. The connector resolves the origin
//! through the egress guard, opens a UDP socket connected to it (so only the origin's replies
//! come back, and each flow has its own source port), registers the flow id for QUIC
//! datagrams when the edge offered one, answers `101` (echoing the id it registered) and
//! relays until the flow idles, the edge closes the stream or the connection goes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http::uri::Authority;
use portless_proto::{ErrorClass, RequestHead, StreamError};
use portless_transport::{
    Datagrams, FlowDatagrams, FlowEvent, FlowPath, LocalUdp, UDP_FLOW_HEADER, UDP_IDLE_HEADER,
    UDP_UPGRADE,
};
use tokio::net::UdpSocket;

use crate::connector::Shared;
use crate::egress::NamedHost;
use crate::metrics::UdpPathLabel;

/// Idle timeout of a flow when the edge sends none.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// Bounds on the idle timeout the edge may ask for.
const IDLE_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));

/// A flow ready to relay: the origin socket, the registered datagram flow, the idle timeout.
pub(crate) struct UdpFlow {
    pub(crate) socket: UdpSocket,
    pub(crate) datagrams: Option<FlowDatagrams>,
    pub(crate) idle_timeout: Duration,
}

impl UdpFlow {
    /// Headers of the `101`: the flow id, when datagrams were registered for it.
    pub(crate) fn response_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.datagrams
            .iter()
            .map(|flow| {
                (
                    UDP_FLOW_HEADER.to_owned(),
                    flow.id().to_string().into_bytes(),
                )
            })
            .collect()
    }
}

/// Sets up the flow of a stream that hit a `udp://` rule.
pub(crate) async fn open(
    shared: &Shared,
    rule: usize,
    authority: &Authority,
    head: &RequestHead,
    datagrams: Option<&Datagrams>,
) -> Result<UdpFlow, StreamError> {
    if head.upgrade.as_deref() != Some(UDP_UPGRADE) {
        return Err(StreamError {
            class: ErrorClass::BadRequest,
            message: format!(
                "this hostname serves UDP (udp://{authority}, rule #{rule}); it is reached \
                 through a UDP port of the edge"
            ),
        });
    }
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let idle_timeout = header(UDP_IDLE_HEADER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_IDLE, Duration::from_millis)
        .clamp(IDLE_RANGE.0, IDLE_RANGE.1);
    let flow_id = header(UDP_FLOW_HEADER).and_then(|v| v.trim().parse::<u64>().ok());
    let socket = connect(shared, rule, authority).await?;
    // Registered before the `101` goes out: the edge sends datagrams only after reading it.
    let datagrams = match (flow_id, datagrams) {
        (Some(id), Some(datagrams)) => {
            Some(datagrams.register_flow(id).ok_or_else(|| StreamError {
                class: ErrorClass::BadRequest,
                message: format!("UDP flow id {id} is already in use on this connection"),
            })?)
        }
        _ => None,
    };
    Ok(UdpFlow {
        socket,
        datagrams,
        idle_timeout,
    })
}

/// A UDP socket connected to the rule's origin, through the egress guard.
async fn connect(
    shared: &Shared,
    rule: usize,
    authority: &Authority,
) -> Result<UdpSocket, StreamError> {
    let unreachable = |message: String| StreamError {
        class: ErrorClass::OriginUnreachable,
        message,
    };
    let port = authority
        .port_u16()
        .ok_or_else(|| unreachable(format!("udp://{authority} has no port")))?;
    let named = NamedHost::parse(authority.host());
    let addresses = shared
        .options
        .egress
        .resolve(rule, &named)
        .await
        .map_err(|error| StreamError {
            class: match error {
                crate::egress::EgressError::Denied { .. } => ErrorClass::EgressDenied,
                _ => ErrorClass::OriginUnreachable,
            },
            message: error.to_string(),
        })?;
    let ip = addresses
        .first()
        .copied()
        .ok_or_else(|| unreachable(format!("{named} has no address")))?;
    let origin = SocketAddr::new(ip, port);
    let local = match ip {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| unreachable(format!("binding a UDP socket for {origin}: {e}")))?;
    socket
        .connect(origin)
        .await
        .map_err(|e| unreachable(format!("connecting a UDP socket to {origin}: {e}")))?;
    Ok(socket)
}

/// Relays a flow until it ends; counts its datagrams.
pub(crate) async fn relay(
    shared: &Shared,
    flow: UdpFlow,
    recv: impl tokio::io::AsyncRead + Unpin + Send,
    send: &mut portless_transport::SendHalf,
) {
    let metrics = &shared.metrics;
    metrics.udp_flows.inc();
    let _active = ActiveFlow(&metrics.udp_flows);
    // The four series of this flow's datagrams, looked up once rather than per datagram.
    let series = |direction| {
        [FlowPath::Datagram, FlowPath::Stream].map(|path| {
            metrics
                .udp_datagrams
                .get_or_create(&UdpPathLabel {
                    direction,
                    path: path.as_str(),
                })
                .clone()
        })
    };
    let (to_edge, to_origin) = (series("to_edge"), series("to_origin"));
    let index = |path| usize::from(path == FlowPath::Stream);
    let events = |event: FlowEvent| match event {
        FlowEvent::Sent { path, .. } => {
            to_edge[index(path)].inc();
        }
        FlowEvent::Received { path, .. } => {
            to_origin[index(path)].inc();
        }
        FlowEvent::Dropped(n) => {
            metrics.udp_dropped.inc_by(n);
        }
    };
    let UdpFlow {
        socket,
        datagrams,
        idle_timeout,
    } = flow;
    let local = LocalUdp {
        socket: &socket,
        peer: None,
        inbound: None,
    };
    // On shutdown flows end at once: the client's next datagram opens a flow on another
    // connection (a UDP flow has no in-flight request to finish).
    let shutdown = shared.shutdown.cancelled();
    tokio::select! {
        end = portless_transport::relay_flow(local, send, recv, datagrams, idle_timeout, &events) => {
            tracing::debug!(?end, "UDP flow ended");
        }
        () = shutdown => {}
    }
    let _ = tokio::io::AsyncWriteExt::shutdown(send).await;
}

/// Decrements the active-flows gauge when the flow ends.
struct ActiveFlow<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for ActiveFlow<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
