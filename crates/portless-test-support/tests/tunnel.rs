//! The tunnel's data path, in process: real sockets on port 0, real TLS, real QUIC.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use portless_connector::ProtocolChoice;
use portless_test_support::{
    ClientBody, EdgeSetup, TestEdge, TestOrigin, init_test_logging, pattern_byte, wait_for, ws,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn rules(host: &str, origin: &TestOrigin) -> String {
    format!(
        "ingress:\n  - hostname: \"{host}\"\n    service: {}\n  - service: http_status:404\n",
        origin.url()
    )
}

async fn edge_with_tunnel(
    host: &str,
    protocol: ProtocolChoice,
) -> (TestEdge, TestOrigin, portless_connector::ConnectorHandle) {
    init_test_logging();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("app").await;
    let tunnel = edge.add_tunnel("app", &[host]).await;
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, protocol),
            &rules(host, &origin),
        )
        .await;
    (edge, origin, connector)
}

#[tokio::test]
async fn routes_by_canonical_host_and_refuses_a_host_other_than_the_sni() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let alpha = TestOrigin::start("alpha").await;
    let beta = TestOrigin::start("beta").await;
    let a = edge.add_tunnel("alpha", &["alpha.test"]).await;
    let b = edge.add_tunnel("beta", &["*.beta.test"]).await;
    let _ca = edge
        .connect(
            edge.connector_options(&a, ProtocolChoice::Quic),
            &rules("alpha.test", &alpha),
        )
        .await;
    let _cb = edge
        .connect(
            edge.connector_options(&b, ProtocolChoice::Quic),
            &rules("*.beta.test", &beta),
        )
        .await;
    for http2 in [false, true] {
        let client = edge.client(http2);
        let (status, _, body) = client.get("alpha.test", "/hello").await;
        assert_eq!(
            (status, &body[..]),
            (StatusCode::OK, &b"hello from alpha"[..])
        );
        let (status, _, body) = client.get("x.y.beta.test", "/hello").await;
        assert_eq!(
            (status, &body[..]),
            (StatusCode::OK, &b"hello from beta"[..])
        );
    }
    // A Host that is not the name the TLS handshake asked for is refused before routing: the
    // certificate and the access policy would be about different applications. (Unrouted
    // names get no certificate, so the 404 itself is proven end to end with curl -k.)
    let client = edge.client(false);
    let request = Request::get(client.url("alpha.test", "/hello"))
        .header("host", "nobody.test")
        .body(ClientBody::default())
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["portless-error"], "bad_request");
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains(&id),
        "the page shows the request id"
    );
    // Host case and a trailing dot do not change the route.
    let request = Request::get(edge.client(false).url("alpha.test", "/hello"))
        .header(
            "host",
            format!("ALPHA.Test.:{}", edge.handle.public_addr().port()),
        )
        .body(portless_test_support::ClientBody::default())
        .unwrap();
    let response = edge.client(false).send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_origin_sees_forwarding_headers_and_the_request_id_and_no_hop_by_hop_headers() {
    let (edge, origin, _connector) = edge_with_tunnel("fwd.test", ProtocolChoice::Quic).await;
    let client = edge.client(false);
    let request = Request::get(client.url("fwd.test", "/headers"))
        .header("x-forwarded-for", "10.0.0.1")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("keep-alive", "timeout=5")
        .body(ClientBody::default())
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen = origin.last_headers().unwrap();
    assert_eq!(
        seen["x-forwarded-for"], "127.0.0.1",
        "a client cannot choose its address"
    );
    assert_eq!(seen["x-forwarded-proto"], "https");
    assert_eq!(seen["x-forwarded-host"], "fwd.test");
    assert_eq!(seen["x-request-id"], request_id.as_str());
    assert_eq!(seen["host"], "fwd.test");
    assert!(seen.get("x-private").is_none());
    assert!(seen.get("keep-alive").is_none());
}

#[tokio::test]
async fn server_sent_events_arrive_one_by_one() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let (edge, _origin, _connector) = edge_with_tunnel("sse.test", protocol).await;
        let client = edge.client(false);
        let request = Request::get(client.url("sse.test", "/sse/4/300"))
            .body(ClientBody::default())
            .unwrap();
        let mut body = client.send(request).await.into_body();
        let start = Instant::now();
        let mut arrivals = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                arrivals.push((start.elapsed(), String::from_utf8_lossy(&data).into_owned()));
            }
        }
        let texts: String = arrivals.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            "data: event 0\n\ndata: event 1\n\ndata: event 2\n\ndata: event 3\n\n"
        );
        // Each event is forwarded when the origin sends it, ~300 ms apart, not all at the end.
        assert!(
            arrivals.len() >= 4,
            "{protocol:?}: events were merged: {arrivals:?}"
        );
        let first = arrivals[0].0;
        let last = arrivals[arrivals.len() - 1].0;
        assert!(
            first < Duration::from_millis(250),
            "{protocol:?}: first event late: {arrivals:?}"
        );
        assert!(
            last - first >= Duration::from_millis(800),
            "{protocol:?}: events bunched: {arrivals:?}"
        );
    }
}

#[tokio::test]
async fn bodies_without_content_length_arrive_whole_both_ways() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let (edge, _origin, _connector) = edge_with_tunnel("chunked.test", protocol).await;
        let client = edge.client(false);
        // Upload: a streamed body of unknown length goes out chunked.
        let total: u64 = 3 * 1024 * 1024 + 17;
        let chunks = futures_util::stream::iter((0..total).step_by(65536).map(move |start| {
            let end = (start + 65536).min(total);
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(
                (start..end).map(pattern_byte).collect::<Vec<_>>(),
            )))
        }));
        let body: ClientBody = StreamBody::new(chunks).boxed();
        let request = Request::post(client.url("chunked.test", "/count"))
            .body(body)
            .unwrap();
        let response = client.send(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.into_body().collect().await.unwrap().to_bytes();
        let sum: u64 = (0..total).map(|i| u64::from(pattern_byte(i))).sum();
        assert_eq!(
            String::from_utf8_lossy(&text),
            format!("bytes={total} sum={sum}"),
            "{protocol:?}"
        );
        // Download without Content-Length.
        let (status, headers, body) = client.get("chunked.test", "/nolength/1000003").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get("content-length").is_none());
        assert_eq!(body.len(), 1_000_003, "{protocol:?}");
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, b)| *b == pattern_byte(i as u64))
        );
    }
}

async fn websocket_echo(edge: &TestEdge, host: &str) {
    let mut tls = portless_test_support::upgrade::edge_tls(edge, host).await;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let (head, mut buf) = portless_test_support::upgrade::read_response_head(&mut tls).await;
    let mut chunk = [0u8; 4096];
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains(&format!(
            "sec-websocket-accept: {}",
            ws::accept_key(key).to_ascii_lowercase()
        )),
        "{head}"
    );
    for message in ["hello", "through the tunnel"] {
        tls.write_all(&ws::text_frame(message.as_bytes(), Some([1, 2, 3, 4])))
            .await
            .unwrap();
        let reply = loop {
            if let Some((opcode, payload, used)) = ws::decode_frame(&buf) {
                buf.drain(..used);
                assert_eq!(opcode, 1);
                break payload;
            }
            let n = tls.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the echo");
            buf.extend_from_slice(&chunk[..n]);
        };
        assert_eq!(String::from_utf8_lossy(&reply), format!("echo: {message}"));
    }
    // Half-close from the client: the origin sees the end and closes its side too.
    tls.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the upgraded connection did not close after the close frame"
    );
}

#[tokio::test]
async fn websocket_upgrades_echo_through_both_transports() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let (edge, _origin, _connector) = edge_with_tunnel("ws.test", protocol).await;
        websocket_echo(&edge, "ws.test").await;
    }
}

#[tokio::test]
async fn failures_are_told_apart_by_class() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("gone").await;
    let origin_url = origin.url();
    origin.stop().await;
    let tunnel = edge.add_tunnel("app", &["app.test", "down.test"]).await;
    let rules = format!(
        "ingress:\n  - hostname: app.test\n    service: {origin_url}\n  - service: http_status:418\n"
    );
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    let client = edge.client(false);
    let (status, headers, _) = client.get("app.test", "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["portless-error"], "origin_unreachable");
    let (status, _, _) = client.get("down.test", "/").await;
    assert_eq!(
        status.as_u16(),
        418,
        "http_status: rules answer from the connector"
    );
    connector.shutdown().await;
    let (status, headers, _) = client.get("app.test", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["portless-error"], "tunnel_down");
    let metrics = edge.metrics();
    assert!(
        metrics.contains("portless_edge_request_errors_total{class=\"tunnel_down\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portless_edge_responses_by_code_total{status_code=\"502\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_tunnel_negotiates_x25519mlkem768_over_quic_and_tcp() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let (edge, _origin, _connector) = edge_with_tunnel("pq.test", protocol).await;
        let kx = &edge.handle.tls().tunnel_kx;
        assert_eq!(
            kx.get("X25519MLKEM768"),
            2,
            "{protocol:?}: both connections are post-quantum"
        );
        assert_eq!(
            kx.total(),
            2,
            "{protocol:?}: no classical handshakes: {:?}",
            kx.snapshot()
        );
    }
}

#[tokio::test]
async fn blocked_udp_makes_auto_fall_back_to_tcp_within_seconds() {
    init_test_logging();
    // The tunnel port's UDP side is a black hole: QUIC packets go nowhere, as behind a
    // firewall that drops UDP.
    let edge = TestEdge::start_with(EdgeSetup {
        quic: false,
        ..EdgeSetup::default()
    })
    .await;
    let _black_hole = std::net::UdpSocket::bind(edge.handle.tunnel_addr()).unwrap();
    let origin = TestOrigin::start("app").await;
    let tunnel = edge.add_tunnel("app", &["auto.test"]).await;
    let start = Instant::now();
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Auto),
            &rules("auto.test", &origin),
        )
        .await;
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(8),
        "fallback took {elapsed:?}"
    );
    let (status, _, body) = edge.client(false).get("auto.test", "/hello").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello from app"[..])
    );
    let metrics = portless_test_support::encode_metrics(connector.metrics_registry());
    assert!(
        metrics.contains("portless_tunnel_registrations_total{protocol=\"tcp\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portless_tunnel_protocol_fallbacks_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn losing_one_replica_loses_no_following_request() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("app").await;
    let tunnel = edge.add_tunnel("app", &["ha.test"]).await;
    let rules = rules("ha.test", &origin);
    let first = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    let second = edge
        .connect(edge.connector_options(&tunnel, ProtocolChoice::Tcp), &rules)
        .await;
    wait_for("4 registered connections", Duration::from_secs(5), || {
        edge.handle.ready_connections() == 4
    })
    .await;
    let client = edge.client(false);
    // Kill one replica without any goodbye.
    first.abort();
    for i in 0..40 {
        let (status, body) = client
            .try_get("ha.test", "/hello")
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(
            status,
            StatusCode::OK,
            "request {i}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    wait_for(
        "the dead replica to be unregistered",
        Duration::from_secs(10),
        || edge.handle.ready_connections() == 2,
    )
    .await;
    assert_eq!(second.ready_connections(), 2);
}

#[tokio::test]
async fn the_connector_registers_again_after_an_edge_restart() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("app").await;
    let tunnel = edge.add_tunnel("app", &["restart.test"]).await;
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules("restart.test", &origin),
        )
        .await;
    let restart = edge.stop_for_restart().await;
    wait_for("the connector to notice", Duration::from_secs(10), || {
        connector.ready_connections() == 0
    })
    .await;
    let edge = TestEdge::start_with(restart).await;
    wait_for("re-registration", Duration::from_secs(15), || {
        connector.ready_connections() == 2
    })
    .await;
    let (status, _, body) = edge.client(false).get("restart.test", "/hello").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello from app"[..])
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_slow_request() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        // The slow request outlives the edge's dead-after (1.5 s): the connector must keep
        // answering pings while it drains.
        let (edge, _origin, connector) = edge_with_tunnel("slow.test", protocol).await;
        let client = edge.client(false);
        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.get("slow.test", "/slow/3000").await }
        });
        let big = tokio::spawn({
            let client = client.clone();
            async move { client.get("slow.test", "/slowbytes/1000/8000000").await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stopping = tokio::spawn(connector.shutdown());
        // Draining: the edge sends no new request to the connector.
        wait_for("drain", Duration::from_secs(3), || {
            edge.handle.ready_connections() == 0
        })
        .await;
        let (status, headers, _) = client.get("slow.test", "/hello").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{protocol:?}");
        assert_eq!(headers["portless-error"], "tunnel_down");
        let (status, _, body) = big.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{protocol:?}");
        assert_eq!(
            body.len(),
            8_000_000,
            "{protocol:?}: a response in transit was cut by the drain"
        );
        let (status, _, body) = slow.await.unwrap();
        assert_eq!(
            (status, &body[..]),
            (StatusCode::OK, &b"slow done"[..]),
            "{protocol:?}"
        );
        tokio::time::timeout(Duration::from_secs(5), stopping)
            .await
            .expect("connector exits after draining")
            .unwrap();
    }
}

#[tokio::test]
async fn the_edge_store_never_holds_the_plain_secret() {
    init_test_logging();
    let dir = tempfile::tempdir().unwrap();
    let store = portless_store::Store::open(&dir.path().join("portless.db"))
        .await
        .unwrap();
    let edge = TestEdge::start_with(EdgeSetup {
        store: Some(store),
        ..EdgeSetup::default()
    })
    .await;
    let origin = TestOrigin::start("app").await;
    let tunnel = edge.add_tunnel("app", &["secret.test"]).await;
    let _connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules("secret.test", &origin),
        )
        .await;
    let secret = tunnel.secret.expose().to_vec();
    let b64 = tunnel.secret.to_base64();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "raw secret on disk"
        );
        assert!(
            !bytes.windows(b64.len()).any(|w| w == b64.as_bytes()),
            "base64 secret on disk"
        );
    }
    // A wrong secret is refused and counted.
    let mut wrong = edge.connector_options(&tunnel, ProtocolChoice::Quic);
    wrong.secret = portless_proto::TunnelSecret::new(vec![0; 32]);
    let refused = portless_connector::Connector::start(
        wrong,
        portless_test_support::rules_from_yaml(&rules("secret.test", &origin)),
        portless_tls::tunnel_client_config(portless_tls::EdgeTrust::Pinned(edge.ca.pin())).unwrap(),
        None,
    )
    .unwrap();
    let edge_metrics = || edge.metrics();
    wait_for("a refused registration", Duration::from_secs(5), || {
        edge_metrics().contains("portless_edge_registrations_total{outcome=\"unauthorized\"}")
    })
    .await;
    assert_eq!(refused.ready_connections(), 0);
    refused.abort();
}

#[tokio::test]
async fn after_a_fallback_the_connector_moves_back_to_quic_without_failing_requests() {
    init_test_logging();
    let edge = TestEdge::start_with(EdgeSetup {
        quic: false,
        ..EdgeSetup::default()
    })
    .await;
    let black_hole = std::net::UdpSocket::bind(edge.handle.tunnel_addr()).unwrap();
    let origin = TestOrigin::start("app").await;
    let tunnel = edge.add_tunnel("app", &["back.test"]).await;
    let mut options = edge.connector_options(&tunnel, ProtocolChoice::Auto);
    options.quic_probe_interval = Duration::from_millis(500);
    let connector = edge.connect(options, &rules("back.test", &origin)).await;
    let metrics = || portless_test_support::encode_metrics(connector.metrics_registry());
    assert!(metrics().contains("portless_tunnel_registrations_total{protocol=\"tcp\"} 2"));
    // UDP gets through again: a new edge on the same ports, now with QUIC.
    let restart = edge.stop_for_restart().await;
    drop(black_hole);
    let edge = TestEdge::start_with(restart).await;
    wait_for("connections back on QUIC", Duration::from_secs(15), || {
        metrics().contains("portless_tunnel_registrations_total{protocol=\"quic\"} 2")
    })
    .await;
    // While the last TCP connection drains, requests keep working.
    let client = edge.client(false);
    for i in 0..20 {
        let (status, _) = client
            .try_get("back.test", "/hello")
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(status, StatusCode::OK, "request {i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_oversized_request_head_is_a_client_error_not_a_tunnel_failure() {
    let (edge, _origin, _connector) = edge_with_tunnel("big.test", ProtocolChoice::Quic).await;
    let client = edge.client(false);
    let mut request = Request::get(client.url("big.test", "/hello"));
    for i in 0..12 {
        request = request.header(format!("x-filler-{i}"), "a".repeat(8000));
    }
    let response = client
        .send(request.body(ClientBody::default()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["portless-error"], "bad_request");
}

#[tokio::test]
async fn an_origin_that_does_not_accept_in_time_is_a_504_origin_timeout() {
    init_test_logging();
    // A listener that never accepts, with its queue filled: further SYNs go unanswered, so
    // the connector's connect hangs until `connectTimeout`.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let stuck = socket.listen(0).unwrap();
    let addr = stuck.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(stream);
        }
    }
    let edge = TestEdge::start().await;
    let tunnel = edge.add_tunnel("app", &["stuck.test"]).await;
    let rules = format!(
        "ingress:\n  - hostname: stuck.test\n    service: http://{addr}\n    originRequest:\n      connectTimeout: 1s\n  - service: http_status:404\n"
    );
    let _connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    let started = Instant::now();
    let (status, headers, _) = edge.client(false).get("stuck.test", "/").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["portless-error"], "origin_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cancelled_requests_do_not_cost_the_tcp_fallback_its_connections() {
    let (edge, _origin, connector) = edge_with_tunnel("cancel.test", ProtocolChoice::Tcp).await;
    // HTTP/1.1 to the edge: an HTTP/2 client resetting this many streams would (rightly) be
    // sent away by the edge's rapid-reset protection before the tunnel is exercised.
    let client = edge.client(false);
    let metrics = || portless_test_support::encode_metrics(connector.metrics_registry());
    // Clients that give up: each request is dropped at a different point of its life.
    for round in 0..6u64 {
        let mut pending = Vec::new();
        for i in 0..40u64 {
            let client = client.clone();
            pending.push(tokio::spawn(async move {
                let request = Request::get(client.url("cancel.test", "/slow/200"))
                    .body(ClientBody::default())
                    .unwrap();
                let _ = tokio::time::timeout(
                    Duration::from_micros(300 * (i + round)),
                    client.send(request),
                )
                .await;
            }));
        }
        for task in pending {
            let _ = task.await;
        }
    }
    for i in 0..200 {
        let (status, body) = client
            .try_get("cancel.test", "/hello")
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(
            status,
            StatusCode::OK,
            "request {i}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert!(
        metrics().contains("portless_tunnel_registrations_total{protocol=\"tcp\"} 2"),
        "a connection was lost and re-registered:\n{}",
        metrics()
    );
    assert_eq!(connector.ready_connections(), 2);
}

#[tokio::test]
async fn the_hello_world_service_answers_with_what_arrived() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let tunnel = edge.add_tunnel("hello", &["hello.test", "dash.test"]).await;
    let rules = "ingress:\n  - hostname: hello.test\n    service: hello_world\n  - hostname: dash.test\n    service: hello-world\n  - service: http_status:404\n";
    let _connector = edge
        .connect(edge.connector_options(&tunnel, ProtocolChoice::Quic), rules)
        .await;
    for host in ["hello.test", "dash.test"] {
        let (status, headers, body) = edge.client(false).get(host, "/some/path?q=1").await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("Hello from Portless!"), "{text}");
        assert!(text.contains(&format!("host: {host}")), "{text}");
        assert!(text.contains("path: /some/path?q=1"), "{text}");
        assert!(
            text.contains(headers["x-request-id"].to_str().unwrap()),
            "{text}"
        );
    }
}
