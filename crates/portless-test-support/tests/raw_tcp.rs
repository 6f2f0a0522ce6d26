//! Raw TCP through the edge without HTTP: TLS passthrough by SNI on the public listener, and
//! public TCP ports (iperf3 through them, the client-IP allow-list, the PROXY v2 header).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portless_connector::{ConnectorHandle, ProtocolChoice};
use portless_edge::{PassthroughHosts, TcpPort};
use portless_test_support::upgrade::read_response_head;
use portless_test_support::{EdgeSetup, TestEdge, TestOrigin, init_test_logging, iperf};
use portless_tls::LocalCa;
use portless_tls::rustls;
use portless_tls::rustls::sign::SingleCertAndKey;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Starts an edge as `setup` says, one tunnel routed from `routes`, and a connector with
/// `rules` (ingress YAML).
async fn edge_with(
    setup: EdgeSetup,
    routes: &[&str],
    rules: &str,
    protocol: ProtocolChoice,
) -> (TestEdge, ConnectorHandle) {
    init_test_logging();
    let edge = TestEdge::start_with(setup).await;
    let tunnel = edge.add_tunnel("raw", routes).await;
    let connector = edge
        .connect(edge.connector_options(&tunnel, protocol), rules)
        .await;
    (edge, connector)
}

/// The value of a metric line starting with `series` (0 when absent).
fn metric(edge: &TestEdge, series: &str) -> u64 {
    edge.metrics()
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A TLS client that trusts only `ca`.
fn tls_client(ca: &rustls::pki_types::CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(portless_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TLS origin with its own key (from its own CA): answers each line with
/// `origin: LINE`, then closes when the client has finished sending.
async fn tls_origin(
    ca: &LocalCa,
    names: &[&str],
) -> (SocketAddr, rustls::pki_types::CertificateDer<'static>) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let key = ca.issue(&names).unwrap();
    let leaf = key.cert[0].clone();
    let config = portless_tls::public_server_config(Arc::new(SingleCertAndKey::from(key))).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let n = tls.read(&mut buf).await.unwrap_or(0);
                let answer = format!("origin: {}", String::from_utf8_lossy(&buf[..n]));
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, leaf)
}

#[tokio::test]
async fn passthrough_gives_the_client_the_origins_own_certificate() {
    let origin_ca = LocalCa::generate("Origin's own CA").unwrap();
    let (origin, origin_leaf) = tls_origin(&origin_ca, &["secure.test", "a.b.deep.test"]).await;
    let web = TestOrigin::start("web").await;
    let mut setup = EdgeSetup::default();
    setup.options.passthrough =
        PassthroughHosts::new(["secure.test", "*.deep.test", "orphan.test"]);
    let rules = format!(
        "ingress:\n  - hostname: secure.test\n    service: tcp://{origin}\n  \
         - hostname: \"*.deep.test\"\n    service: tcp://{origin}\n  \
         - hostname: app.test\n    service: {}\n  - service: http_status:404\n",
        web.url()
    );
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let (edge, _connector) = edge_with(
            EdgeSetup {
                options: setup.options.clone(),
                ..EdgeSetup::default()
            },
            &["secure.test", "*.deep.test", "app.test"],
            &rules,
            protocol,
        )
        .await;
        let public = edge.handle.public_addr();
        for host in ["secure.test", "a.b.deep.test"] {
            // The client trusts only the origin's CA: the handshake can only succeed with
            // the origin's own key, which the edge does not have.
            let tcp = TcpStream::connect(public).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
            let mut tls = tls_client(origin_ca.cert_der())
                .connect(name, tcp)
                .await
                .unwrap_or_else(|e| panic!("{protocol:?} {host}: handshake with the origin: {e}"));
            let seen = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            assert_eq!(seen, origin_leaf, "{host}: the origin's certificate");
            tls.write_all(b"hello").await.unwrap();
            let mut answer = String::new();
            tls.read_to_string(&mut answer).await.unwrap();
            assert_eq!(answer, "origin: hello");
        }
        // A client that trusts only the edge's CA cannot complete it: the edge terminated
        // nothing.
        let tcp = TcpStream::connect(public).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("secure.test".to_owned()).unwrap();
        assert!(
            tls_client(edge.ca.cert_der())
                .connect(name, tcp)
                .await
                .is_err()
        );
        // A passthrough hostname without a route is closed.
        let tcp = TcpStream::connect(public).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("orphan.test".to_owned()).unwrap();
        assert!(
            tls_client(origin_ca.cert_der())
                .connect(name, tcp)
                .await
                .is_err()
        );
        // Other hostnames on the same listener still terminate at the edge.
        let (status, _, body) = edge.client(false).get("app.test", "/hello").await;
        assert_eq!(status, 200);
        assert_eq!(&body[..], b"hello from web");
        assert_eq!(
            metric(
                &edge,
                "portless_edge_raw_connections_total{kind=\"passthrough\"}"
            ),
            4
        );
        assert_eq!(
            metric(
                &edge,
                "portless_edge_raw_refused_total{kind=\"passthrough\",reason=\"no_route\"}"
            ),
            1
        );
        edge.handle.shutdown().await;
    }
}

/// A TCP server that echoes what it reads, counting connections; `bye` after the client
/// finished sending (arrives only if each direction closes on its own).
async fn echo_origin() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.write_all(b"bye").await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

/// Connects to `to` from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// Sends `message`, finishes sending, and reads everything until the other side closes.
async fn exchange(io: &mut (impl AsyncRead + AsyncWrite + Unpin), message: &[u8]) -> Vec<u8> {
    io.write_all(message).await.unwrap();
    io.shutdown().await.unwrap();
    let mut got = Vec::new();
    let _ = io.read_to_end(&mut got).await;
    got
}

fn port(hostname: &str) -> TcpPort {
    TcpPort::new("127.0.0.1:0".parse().unwrap(), hostname)
}

#[tokio::test]
async fn iperf3_runs_through_a_public_tcp_port_both_ways() {
    if !iperf::available() {
        return;
    }
    let server = iperf::Iperf3Server::start();
    let rules = format!(
        "ingress:\n  - hostname: iperf.test\n    service: tcp://{}\n  - service: http_status:404\n",
        server.addr
    );
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let setup = EdgeSetup {
            tcp_ports: vec![port("iperf.test")],
            ..EdgeSetup::default()
        };
        let (edge, _connector) = edge_with(setup, &["iperf.test"], &rules, protocol).await;
        let target = edge.tcp_ports[0];
        for reverse in [false, true] {
            let result = tokio::task::spawn_blocking(move || {
                iperf::run_client(target, 16 * 1024 * 1024, reverse)
            })
            .await
            .unwrap();
            assert_eq!(result.error, None, "{protocol:?} reverse={reverse}");
            assert!(
                result.bytes_received > 0,
                "{protocol:?} reverse={reverse}: {result:?}"
            );
        }
        assert!(
            metric(
                &edge,
                "portless_edge_raw_bytes_total{kind=\"tcp_port\",direction=\"to_origin\"}"
            ) > 0
        );
        assert!(
            metric(
                &edge,
                "portless_edge_raw_bytes_total{kind=\"tcp_port\",direction=\"to_client\"}"
            ) > 0
        );
        edge.handle.shutdown().await;
    }
}

#[tokio::test]
async fn the_allow_list_refuses_other_clients_on_the_port_and_over_https() {
    let (origin, accepted) = echo_origin().await;
    let mut allowed = port("echo.test");
    allowed.allow = vec!["127.0.0.1/32".parse().unwrap()];
    let setup = EdgeSetup {
        tcp_ports: vec![allowed],
        ..EdgeSetup::default()
    };
    let rules = format!(
        "ingress:\n  - hostname: echo.test\n    service: tcp://{origin}\n  - service: http_status:404\n"
    );
    let (edge, _connector) = edge_with(setup, &["echo.test"], &rules, ProtocolChoice::Quic).await;
    let target = edge.tcp_ports[0];
    // 127.0.0.1 is in the list: bytes both ways, with half-close.
    let mut io = connect_from([127, 0, 0, 1], target).await.unwrap();
    assert_eq!(exchange(&mut io, b"ping").await, b"pingbye");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // 127.0.0.2 is not: closed at once, nothing reaches the origin.
    let mut io = connect_from([127, 0, 0, 2], target).await.unwrap();
    let mut got = Vec::new();
    let _ = io.read_to_end(&mut got).await;
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(
            &edge,
            "portless_edge_raw_refused_total{kind=\"tcp_port\",reason=\"allow_list\"}"
        ),
        1
    );
    // Nor can it get the same bytes with an upgrade over the HTTPS listener.
    for (from, expected) in [
        ([127, 0, 0, 2], "http/1.1 403"),
        ([127, 0, 0, 1], "http/1.1 101"),
    ] {
        let tcp = connect_from(from, edge.handle.public_addr()).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("echo.test".to_owned()).unwrap();
        let mut tls = tls_client(edge.ca.cert_der())
            .connect(name, tcp)
            .await
            .unwrap();
        tls.write_all(
            b"GET / HTTP/1.1\r\nHost: echo.test\r\nConnection: Upgrade\r\nUpgrade: portless-tcp\r\n\r\n",
        )
        .await
        .unwrap();
        let (head, _) = read_response_head(&mut tls).await;
        assert!(head.starts_with(expected), "from {from:?}: {head}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A PROXY protocol v2 header, parsed as an origin would (haproxy's proxy-protocol.txt,
/// 2.2): the source and destination of a TCP/IPv4 `PROXY` header.
fn parse_proxy_v2(header: &[u8]) -> (SocketAddr, SocketAddr) {
    assert_eq!(&header[..12], b"\r\n\r\n\0\r\nQUIT\n", "signature");
    assert_eq!(header[12], 0x21, "version 2, command PROXY");
    assert_eq!(header[13], 0x11, "TCP over IPv4");
    assert_eq!(u16::from_be_bytes([header[14], header[15]]), 12);
    let a = &header[16..28];
    let src = SocketAddr::from(([a[0], a[1], a[2], a[3]], u16::from_be_bytes([a[8], a[9]])));
    let dst = SocketAddr::from(([a[4], a[5], a[6], a[7]], u16::from_be_bytes([a[10], a[11]])));
    (src, dst)
}

#[tokio::test]
async fn the_origin_reads_the_real_client_address_from_the_proxy_v2_header() {
    // The origin reads the header first, reports it, then echoes the rest.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut header = [0u8; 28];
                socket.read_exact(&mut header).await.unwrap();
                let _ = seen_tx.send(parse_proxy_v2(&header));
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let mut with_header = port("pp.test");
    with_header.proxy_protocol = true;
    let setup = EdgeSetup {
        tcp_ports: vec![with_header],
        ..EdgeSetup::default()
    };
    let rules = format!(
        "ingress:\n  - hostname: pp.test\n    service: tcp://{origin}\n  - service: http_status:404\n"
    );
    let (edge, _connector) = edge_with(setup, &["pp.test"], &rules, ProtocolChoice::Tcp).await;
    let target = edge.tcp_ports[0];
    for from in [[127, 0, 0, 1], [127, 0, 0, 2]] {
        let mut io = connect_from(from, target).await.unwrap();
        let client = io.local_addr().unwrap();
        assert_eq!(
            exchange(&mut io, b"after the header").await,
            b"after the header"
        );
        let (src, dst) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(src, client, "the real client's address and port");
        assert_eq!(dst, target, "the edge address the client connected to");
    }
    // An upgrade over HTTPS would let the client write its own header: refused.
    let tcp = TcpStream::connect(edge.handle.public_addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("pp.test".to_owned()).unwrap();
    let mut tls = tls_client(edge.ca.cert_der())
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(
        b"GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: Upgrade\r\nUpgrade: portless-tcp\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = read_response_head(&mut tls).await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), seen_rx.recv())
            .await
            .is_err(),
        "the origin saw a connection from the HTTPS upgrade"
    );
}

/// Reads until the other side closes; what arrived.
async fn read_until_closed(io: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut got))
        .await
        .expect("the edge closed the connection");
    got
}

#[tokio::test]
async fn a_port_caps_its_connections_and_closes_idle_ones() {
    let (origin, accepted) = echo_origin().await;
    let mut capped = port("echo.test");
    capped.max_connections = 1;
    capped.idle_timeout = Some(Duration::from_millis(600));
    let setup = EdgeSetup {
        tcp_ports: vec![capped],
        ..EdgeSetup::default()
    };
    let rules = format!(
        "ingress:\n  - hostname: echo.test\n    service: tcp://{origin}\n  - service: http_status:404\n"
    );
    let (edge, _connector) = edge_with(setup, &["echo.test"], &rules, ProtocolChoice::Quic).await;
    let target = edge.tcp_ports[0];

    // The first connection is relayed and kept open while bytes move, past the idle limit.
    let mut first = TcpStream::connect(target).await.unwrap();
    for _ in 0..6 {
        assert_eq!(exchange_line(&mut first, b"ping").await, b"ping");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A second one, while the first holds the only slot, is closed before the origin sees it.
    let mut second = TcpStream::connect(target).await.unwrap();
    assert!(read_until_closed(&mut second).await.is_empty());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(
            &edge,
            "portless_edge_raw_refused_total{kind=\"tcp_port\",reason=\"max_connections\"}"
        ),
        1
    );
    // Quiet past the limit: the edge closes the first, and its slot is free again.
    let started = tokio::time::Instant::now();
    assert!(read_until_closed(&mut first).await.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed too early"
    );
    // (The slot is given back just after the socket closes.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(target).await.unwrap();
    assert_eq!(exchange(&mut third, b"again").await, b"againbye");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    edge.handle.shutdown().await;
}

/// Writes `message` and reads its echo back, leaving the connection open.
async fn exchange_line(io: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    io.write_all(message).await.unwrap();
    let mut got = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut got))
        .await
        .expect("echo in time")
        .unwrap();
    got
}
