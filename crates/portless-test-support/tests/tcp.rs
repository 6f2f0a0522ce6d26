//! `tcp://` (and `ssh://`, `rdp://`, `smb://`) rules end to end: an upgraded request through
//! the real edge carries raw bytes both ways with half-close; a plain request is told to use
//! the access client.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::time::Duration;

use http::StatusCode;
use portless_connector::ProtocolChoice;
use portless_test_support::upgrade::{edge_tls, read_response_head};
use portless_test_support::{TestEdge, init_test_logging};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A TCP server that echoes what it reads and, once the client has finished sending,
/// writes `bye` and closes: the `bye` can only arrive if each direction closes on its own.
async fn echo_then_bye() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if socket.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = socket.write_all(b"bye").await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

async fn tcp_edge(protocol: ProtocolChoice) -> (TestEdge, portless_connector::ConnectorHandle) {
    init_test_logging();
    let edge = TestEdge::start().await;
    let port = echo_then_bye().await;
    let tunnel = edge.add_tunnel("tcp", &["tcp.test", "ssh.test"]).await;
    let rules = format!(
        "ingress:\n  - hostname: tcp.test\n    service: tcp://127.0.0.1:{port}\n  \
         - hostname: ssh.test\n    service: ssh://localhost:{port}\n  - service: http_status:404\n"
    );
    let connector = edge
        .connect(edge.connector_options(&tunnel, protocol), &rules)
        .await;
    (edge, connector)
}

#[tokio::test]
async fn upgraded_streams_carry_raw_tcp_both_ways_with_half_close() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let (edge, _connector) = tcp_edge(protocol).await;
        for host in ["tcp.test", "ssh.test"] {
            let mut io = edge_tls(&edge, host).await;
            let request = format!(
                "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: portless-tcp\r\n\r\n"
            );
            io.write_all(request.as_bytes()).await.unwrap();
            let (head, mut rest) = read_response_head(&mut io).await;
            assert!(
                head.starts_with("http/1.1 101"),
                "{protocol:?} {host}: {head}"
            );
            assert!(head.contains("upgrade: portless-tcp"), "{head}");
            for message in [&b"hello"[..], b"raw bytes \x00\xff through the tunnel"] {
                io.write_all(message).await.unwrap();
                let mut chunk = [0u8; 4096];
                while rest.len() < message.len() {
                    let n = io.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "closed before the echo");
                    rest.extend_from_slice(&chunk[..n]);
                }
                assert_eq!(&rest[..], message, "{protocol:?} {host}");
                rest.clear();
            }
            // Half-close: our end of sending reaches the origin, which still answers.
            io.shutdown().await.unwrap();
            let tail = tokio::time::timeout(Duration::from_secs(5), async {
                let mut tail = rest;
                let _ = io.read_to_end(&mut tail).await;
                tail
            })
            .await
            .expect("the origin's close did not come back");
            assert_eq!(&tail[..], b"bye", "{protocol:?} {host}");
        }
    }
}

#[tokio::test]
async fn a_plain_request_to_a_tcp_rule_is_told_to_use_the_access_client() {
    let (edge, connector) = tcp_edge(ProtocolChoice::Quic).await;
    let (status, headers, _) = edge.client(false).get("tcp.test", "/").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["portless-error"], "bad_request");
    let metrics = portless_test_support::encode_metrics(connector.metrics_registry());
    assert!(
        metrics.contains("portless_tunnel_request_errors_total{class=\"bad_request\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_tcp_rule_whose_name_points_at_metadata_is_refused() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let tunnel = edge.add_tunnel("tcp", &["meta.test"]).await;
    let mut options = edge.connector_options(&tunnel, ProtocolChoice::Quic);
    options.egress = portless_connector::EgressPolicy::default()
        .with_hosts([("db.internal", vec!["169.254.169.254".parse().unwrap()])]);
    let rules = "ingress:\n  - hostname: meta.test\n    service: tcp://db.internal:5432\n  \
                 - service: http_status:404\n";
    let connector = edge.connect(options, rules).await;
    let mut io = edge_tls(&edge, "meta.test").await;
    io.write_all(
        b"GET / HTTP/1.1\r\nHost: meta.test\r\nConnection: Upgrade\r\nUpgrade: portless-tcp\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = read_response_head(&mut io).await;
    assert!(head.starts_with("http/1.1 502"), "{head}");
    assert!(head.contains("portless-error: egress_denied"), "{head}");
    let metrics = portless_test_support::encode_metrics(connector.metrics_registry());
    assert!(
        metrics.contains("portless_tunnel_egress_denied_total 1"),
        "{metrics}"
    );
}
