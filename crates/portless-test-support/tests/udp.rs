//! Public UDP ports end to end: client datagrams through the edge's UDP port, the tunnel
//! (QUIC datagrams, or a stream over the TCP fallback) and the connector's `udp://` rule to
//! an echo origin, and back to the right client.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portless_connector::{ConnectorHandle, ProtocolChoice};
use portless_edge::UdpPort;
use portless_test_support::{EdgeSetup, TestEdge, encode_metrics, init_test_logging, wait_for};
use tokio::net::UdpSocket;

const HOST: &str = "game.test";

/// Longest wait for one echo: loopback answers in microseconds; this only bounds a failure.
const ECHO_WAIT: Duration = Duration::from_secs(5);

/// A UDP echo origin; records the source address of every datagram it receives.
struct EchoOrigin {
    addr: SocketAddr,
    sources: Arc<Mutex<Vec<SocketAddr>>>,
}

impl EchoOrigin {
    async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let sources = Arc::new(Mutex::new(Vec::new()));
        let seen = sources.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                seen.lock().unwrap().push(from);
                let _ = socket.send_to(&buf[..n], from).await;
            }
        });
        Self { addr, sources }
    }

    /// Distinct source addresses seen so far, in order of first appearance.
    fn distinct_sources(&self) -> Vec<SocketAddr> {
        let mut distinct = Vec::new();
        for source in self.sources.lock().unwrap().iter() {
            if !distinct.contains(source) {
                distinct.push(*source);
            }
        }
        distinct
    }
}

fn port(configure: impl FnOnce(&mut UdpPort)) -> UdpPort {
    let mut port = UdpPort::new("127.0.0.1:0".parse().unwrap(), HOST);
    configure(&mut port);
    port
}

struct Setup {
    edge: TestEdge,
    connector: ConnectorHandle,
    origin: EchoOrigin,
    udp: SocketAddr,
    rules: String,
    tunnel: portless_test_support::TestTunnel,
}

async fn setup(protocol: ProtocolChoice, udp_port: UdpPort) -> Setup {
    init_test_logging();
    let edge = TestEdge::start_with(EdgeSetup {
        udp_ports: vec![udp_port],
        ..EdgeSetup::default()
    })
    .await;
    let origin = EchoOrigin::start().await;
    let tunnel = edge.add_tunnel("udp", &[HOST]).await;
    let rules = format!(
        "ingress:\n  - hostname: {HOST}\n    service: udp://127.0.0.1:{}\n  - service: http_status:404\n",
        origin.addr.port()
    );
    let connector = edge
        .connect(edge.connector_options(&tunnel, protocol), &rules)
        .await;
    let udp = edge.handle.udp_addrs()[0];
    Setup {
        edge,
        connector,
        origin,
        udp,
        rules,
        tunnel,
    }
}

async fn client(bind: &str, edge_port: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(bind).await.unwrap();
    socket.connect(edge_port).await.unwrap();
    socket
}

/// Sends `payload` and waits for exactly it to come back.
async fn echo(client: &UdpSocket, payload: &[u8]) {
    client.send(payload).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(ECHO_WAIT, client.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no echo of a {}-byte datagram", payload.len()))
        .unwrap();
    assert_eq!(
        &buf[..n],
        payload,
        "echo of a {}-byte datagram",
        payload.len()
    );
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

/// The value of the first sample of `name` whose labels contain every one of `labels`; 0
/// when there is none.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split(['{', ' '])
                .next()
                .is_some_and(|sample| sample == name)
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

fn edge_metric(edge: &TestEdge, name: &str, labels: &[&str]) -> f64 {
    metric(&edge.metrics(), name, labels)
}

const TUNNEL_DATAGRAMS: &str = "portless_edge_udp_tunnel_datagrams_total";

#[tokio::test]
async fn datagrams_of_every_size_echo_exactly_over_quic_datagrams_and_the_tcp_fallback() {
    // Small enough for any QUIC path (1200-byte packets minus overhead), then large ones that
    // only the stream can carry.
    let small = [1usize, 2, 64, 100, 512, 900, 1000];
    let large = [1200usize, 1500, 4000, 9000];
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let s = setup(protocol, port(|_| {})).await;
        let client = client("127.0.0.1:0", s.udp).await;
        for round in 0..3u8 {
            for (i, len) in small.iter().chain(&large).enumerate() {
                echo(&client, &payload(*len, round * 16 + i as u8)).await;
            }
        }
        let total = 3 * (small.len() + large.len());
        let text = s.edge.metrics();
        let via = |direction: &str, path: &str| {
            metric(
                &text,
                TUNNEL_DATAGRAMS,
                &[
                    &format!("direction=\"{direction}\""),
                    &format!("path=\"{path}\""),
                ],
            )
        };
        for direction in ["to_connector", "from_connector"] {
            let datagram = via(direction, "quic_datagram");
            let stream = via(direction, "stream");
            assert_eq!(
                datagram + stream,
                total as f64,
                "{protocol:?} {direction}\n{text}"
            );
            match protocol {
                ProtocolChoice::Quic => {
                    assert!(
                        datagram >= (3 * small.len()) as f64,
                        "{direction}: small datagrams must ride QUIC datagrams\n{text}"
                    );
                    assert!(
                        stream >= (3 * 2) as f64,
                        "{direction}: datagrams above the QUIC limit go on the stream\n{text}"
                    );
                }
                _ => assert_eq!(datagram, 0.0, "the TCP fallback has no datagrams\n{text}"),
            }
        }
        let port_label = format!("hostname=\"{HOST}\"");
        assert_eq!(
            metric(
                &text,
                "portless_edge_udp_datagrams_total",
                &[&port_label, "direction=\"in\""]
            ),
            total as f64
        );
        assert_eq!(
            metric(
                &text,
                "portless_edge_udp_datagrams_total",
                &[&port_label, "direction=\"out\""]
            ),
            total as f64
        );
        let bytes: usize = 3 * small.iter().chain(&large).sum::<usize>();
        assert_eq!(
            metric(
                &text,
                "portless_edge_udp_bytes_total",
                &[&port_label, "direction=\"out\""]
            ),
            bytes as f64
        );
        assert_eq!(
            metric(&text, "portless_edge_udp_flows_total", &[&port_label]),
            1.0,
            "one client, one flow"
        );
        let connector = encode_metrics(s.connector.metrics_registry());
        let at_connector = |path: &str| {
            metric(
                &connector,
                "portless_tunnel_udp_datagrams_total",
                &["direction=\"to_origin\"", &format!("path=\"{path}\"")],
            )
        };
        assert_eq!(
            at_connector("quic_datagram") + at_connector("stream"),
            total as f64,
            "{connector}"
        );
        if protocol == ProtocolChoice::Quic {
            assert!(at_connector("quic_datagram") >= (3 * small.len()) as f64);
        }
        assert_eq!(
            s.origin.distinct_sources().len(),
            1,
            "one flow, one origin socket"
        );
    }
}

/// 40 datagrams of growing size, each tagged with `tag`, each echoed exactly.
async fn talk(socket: &UdpSocket, tag: u8) {
    for i in 0..40usize {
        let mut message = payload(1 + i * 25, tag);
        message[0] = tag;
        echo(socket, &message).await;
    }
}

#[tokio::test]
async fn two_clients_get_only_their_own_replies() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let s = setup(protocol, port(|_| {})).await;
        let a = client("127.0.0.1:0", s.udp).await;
        let b = client("127.0.0.1:0", s.udp).await;
        tokio::join!(talk(&a, b'A'), talk(&b, b'B'));
        assert_eq!(
            edge_metric(&s.edge, "portless_edge_udp_flows_total", &[]),
            2.0,
            "{protocol:?}: one flow per client address"
        );
        assert_eq!(s.origin.distinct_sources().len(), 2);
    }
}

#[tokio::test]
async fn the_allow_list_drops_datagrams_from_other_addresses() {
    let s = setup(
        ProtocolChoice::Quic,
        port(|p| p.allow = vec!["127.0.0.1/32".parse().unwrap()]),
    )
    .await;
    let refused = client("127.0.0.2:0", s.udp).await;
    refused.send(b"let me in").await.unwrap();
    refused.send(b"please").await.unwrap();
    wait_for("the refused datagrams to be counted", ECHO_WAIT, || {
        edge_metric(
            &s.edge,
            "portless_edge_udp_dropped_total",
            &["reason=\"not_allowed\""],
        ) >= 2.0
    })
    .await;
    let allowed = client("127.0.0.1:0", s.udp).await;
    echo(&allowed, b"hello").await;
    let mut buf = [0u8; 64];
    assert!(
        refused.try_recv(&mut buf).is_err(),
        "a refused client got a reply"
    );
    assert_eq!(
        edge_metric(&s.edge, "portless_edge_udp_flows_total", &[]),
        1.0,
        "a refused datagram opens no flow"
    );
    assert_eq!(s.origin.sources.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn clients_beyond_the_flow_cap_get_nothing_and_open_flows_keep_working() {
    let s = setup(ProtocolChoice::Quic, port(|p| p.max_flows = 2)).await;
    let first = client("127.0.0.1:0", s.udp).await;
    let second = client("127.0.0.1:0", s.udp).await;
    echo(&first, b"one").await;
    echo(&second, b"two").await;
    let third = client("127.0.0.1:0", s.udp).await;
    third.send(b"three").await.unwrap();
    wait_for(
        "the third client's datagram to be dropped",
        ECHO_WAIT,
        || {
            edge_metric(
                &s.edge,
                "portless_edge_udp_dropped_total",
                &["reason=\"flow_limit\""],
            ) >= 1.0
        },
    )
    .await;
    for i in 0..10u8 {
        echo(&first, &[b'1', i]).await;
        echo(&second, &[b'2', i]).await;
    }
    let mut buf = [0u8; 64];
    assert!(
        third.try_recv(&mut buf).is_err(),
        "the third client got a reply"
    );
    assert_eq!(
        edge_metric(&s.edge, "portless_edge_udp_flows_active", &[]),
        2.0
    );
    assert_eq!(s.origin.distinct_sources().len(), 2);
}

#[tokio::test]
async fn an_idle_flow_ends_on_both_sides_and_the_next_datagram_opens_a_new_one() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let s = setup(
            protocol,
            port(|p| p.idle_timeout = Duration::from_millis(300)),
        )
        .await;
        let client = client("127.0.0.1:0", s.udp).await;
        echo(&client, b"before").await;
        assert_eq!(
            edge_metric(&s.edge, "portless_edge_udp_flows_active", &[]),
            1.0
        );
        wait_for("the idle flow to end at the edge", ECHO_WAIT, || {
            edge_metric(&s.edge, "portless_edge_udp_flows_active", &[]) == 0.0
        })
        .await;
        wait_for("the idle flow to end at the connector", ECHO_WAIT, || {
            metric(
                &encode_metrics(s.connector.metrics_registry()),
                "portless_tunnel_udp_flows",
                &[],
            ) == 0.0
        })
        .await;
        echo(&client, b"after").await;
        let sources = s.origin.distinct_sources();
        assert_eq!(
            sources.len(),
            2,
            "{protocol:?}: a new flow has a new origin socket: {sources:?}"
        );
        assert_eq!(
            edge_metric(&s.edge, "portless_edge_udp_flows_total", &[]),
            2.0
        );
    }
}

#[tokio::test]
async fn a_dead_tunnel_connection_ends_its_flows_and_the_next_datagram_finds_a_new_one() {
    let s = setup(ProtocolChoice::Quic, port(|_| {})).await;
    let client = client("127.0.0.1:0", s.udp).await;
    echo(&client, b"first connector").await;
    s.connector.abort();
    wait_for(
        "the flow to end with its connection",
        Duration::from_secs(10),
        || edge_metric(&s.edge, "portless_edge_udp_flows_active", &[]) == 0.0,
    )
    .await;
    let _successor = s
        .edge
        .connect(
            s.edge.connector_options(&s.tunnel, ProtocolChoice::Quic),
            &s.rules,
        )
        .await;
    wait_for(
        "only the new connector's connections",
        Duration::from_secs(10),
        || s.edge.handle.ready_connections() == 2,
    )
    .await;
    echo(&client, b"second connector").await;
    assert_eq!(
        edge_metric(&s.edge, "portless_edge_udp_flows_total", &[]),
        2.0
    );
}

#[tokio::test]
async fn a_port_whose_connector_has_no_udp_rule_drops_and_counts() {
    init_test_logging();
    let edge = TestEdge::start_with(EdgeSetup {
        udp_ports: vec![port(|_| {})],
        ..EdgeSetup::default()
    })
    .await;
    let tunnel = edge.add_tunnel("udp", &[HOST]).await;
    let _connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            "ingress:\n  - service: http_status:404\n",
        )
        .await;
    let client = client("127.0.0.1:0", edge.handle.udp_addrs()[0]).await;
    client.send(b"anyone?").await.unwrap();
    wait_for("the refused flow to be counted", ECHO_WAIT, || {
        edge_metric(
            &edge,
            "portless_edge_udp_dropped_total",
            &["reason=\"refused\""],
        ) >= 1.0
    })
    .await;
}

#[tokio::test]
async fn an_https_upgrade_to_portless_udp_is_refused_so_the_port_limits_hold() {
    use portless_test_support::upgrade::{edge_tls, read_response_head};
    use tokio::io::AsyncWriteExt as _;
    let s = setup(
        ProtocolChoice::Quic,
        port(|p| p.allow = vec!["192.0.2.0/24".parse().unwrap()]),
    )
    .await;
    let mut io = edge_tls(&s.edge, HOST).await;
    io.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\nUpgrade: Portless-UDP\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (head, _) = read_response_head(&mut io).await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(s.origin.sources.lock().unwrap().is_empty());
    let connector = encode_metrics(s.connector.metrics_registry());
    assert_eq!(
        metric(&connector, "portless_tunnel_total_requests_total", &[]),
        0.0,
        "nothing reached the connector\n{connector}"
    );
}

#[tokio::test]
async fn a_plain_request_to_a_udp_rule_is_told_where_udp_comes_from() {
    let s = setup(ProtocolChoice::Quic, port(|_| {})).await;
    let (status, headers, _) = s.edge.client(false).get(HOST, "/").await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert_eq!(headers["portless-error"], "bad_request");
}
