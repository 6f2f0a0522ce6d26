//! Origin health end to end: a down origin answers `origin_down` at once, comes back when it
//! is healthy again, and a rule with several origins serves from the healthy ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::time::{Duration, Instant};

use http::StatusCode;
use portless_connector::{ConnectorHandle, ProtocolChoice};
use portless_test_support::{TestClient, TestEdge, TestOrigin, encode_metrics, init_test_logging};
use tokio::net::TcpListener;

const CHECKS: &str = "      healthCheck:\n        path: /hello\n        interval: 200ms\n        \
                      timeout: 500ms\n        unhealthyThreshold: 2\n        healthyThreshold: 2\n";

async fn start(host: &str, service: &str, checks: &str) -> (TestEdge, ConnectorHandle) {
    init_test_logging();
    let edge = TestEdge::start().await;
    let tunnel = edge.add_tunnel("health", &[host]).await;
    let rules = format!(
        "ingress:\n  - hostname: {host}\n    service: {service}\n    originRequest:\n      \
         connectTimeout: 10s\n{checks}  - service: http_status:404\n"
    );
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    (edge, connector)
}

/// GETs `/hello` until the answer is `status` (with `error` as `portless-error`, if given).
async fn until(client: &TestClient, host: &str, status: StatusCode, error: Option<&str>) {
    let start = Instant::now();
    loop {
        let (got, headers, _) = client.get(host, "/hello").await;
        let class = headers
            .get("portless-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if got == status && error.is_none_or(|e| class.as_deref() == Some(e)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {got} {class:?}, waiting for {status} {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn origin_up(connector: &ConnectorHandle, origin: &str) -> Option<i64> {
    let metrics = encode_metrics(connector.metrics_registry());
    let prefix = format!("portless_tunnel_origin_up{{origin=\"{origin}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.parse().unwrap())
}

/// `origin_down` answers come from the connector's own state: no dial, no waiting.
async fn assert_down_fast(client: &TestClient, host: &str) {
    for _ in 0..5 {
        let start = Instant::now();
        let (status, headers, _) = client.get(host, "/hello").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["portless-error"], "origin_down");
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "took {:?}",
            start.elapsed()
        );
    }
}

#[tokio::test]
async fn a_stopped_origin_answers_origin_down_at_once_and_comes_back_when_restarted() {
    let origin = TestOrigin::start("app").await;
    let addr = origin.addr();
    let (edge, connector) = start("app.test", &origin.url(), CHECKS).await;
    let client = edge.client(false);
    let (status, _, body) = client.get("app.test", "/hello").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello from app"[..])
    );
    assert_eq!(origin_up(&connector, &origin.url()), Some(1));

    origin.stop().await;
    until(
        &client,
        "app.test",
        StatusCode::SERVICE_UNAVAILABLE,
        Some("origin_down"),
    )
    .await;
    assert_down_fast(&client, "app.test").await;
    assert_eq!(origin_up(&connector, &format!("http://{addr}")), Some(0));

    let restarted = TestOrigin::serve(TcpListener::bind(addr).await.unwrap(), "app");
    until(&client, "app.test", StatusCode::OK, None).await;
    assert_eq!(origin_up(&connector, &restarted.url()), Some(1));
}

#[tokio::test]
async fn failed_requests_mark_an_origin_down_before_any_check_does() {
    let origin = TestOrigin::start("app").await;
    // Checks so rare that only the first round (at start, origin up) runs in this test.
    let rare = CHECKS.replace("200ms", "1h");
    let (edge, _connector) = start("passive.test", &origin.url(), &rare).await;
    let client = edge.client(false);
    let (status, _, _) = client.get("passive.test", "/hello").await;
    assert_eq!(status, StatusCode::OK);
    origin.stop().await;
    for _ in 0..2 {
        let (status, headers, _) = client.get("passive.test", "/hello").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(headers["portless-error"], "origin_unreachable");
    }
    assert_down_fast(&client, "passive.test").await;
}

#[tokio::test]
async fn requests_spread_over_several_origins_and_skip_a_stopped_one() {
    let a = TestOrigin::start("a").await;
    let b = TestOrigin::start("b").await;
    let service = format!("[{}, {}]", a.url(), b.url());
    let (edge, connector) = start("pool.test", &service, CHECKS).await;
    let client = edge.client(false);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (status, _, body) = client.get("pool.test", "/hello").await;
        assert_eq!(status, StatusCode::OK);
        seen.push(String::from_utf8_lossy(&body).into_owned());
    }
    assert!(seen.iter().any(|s| s == "hello from a"), "{seen:?}");
    assert!(seen.iter().any(|s| s == "hello from b"), "{seen:?}");

    let b_url = b.url();
    b.stop().await;
    // Before and after the checks notice, every request is served: a request that cannot
    // connect to `b` goes on to `a`.
    for _ in 0..20 {
        let (status, _, body) = client.get("pool.test", "/hello").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello from a"[..]));
    }
    let start = Instant::now();
    while origin_up(&connector, &b_url) != Some(0) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "b never marked down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin_up(&connector, &a.url()), Some(1));
    for _ in 0..10 {
        let (status, _, _) = client.get("pool.test", "/hello").await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// GET `path` on a plain-HTTP address; returns the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn ready_shows_each_tracked_origin_and_its_state() {
    init_test_logging();
    let origin = TestOrigin::start("app").await;
    let edge = TestEdge::start().await;
    let tunnel = edge.add_tunnel("health", &["ready.test"]).await;
    let service = origin.url();
    let rules = format!(
        "ingress:\n  - hostname: ready.test\n    service: {service}\n    originRequest:\n{CHECKS}  - service: http_status:404\n"
    );
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let connector = portless_connector::Connector::start(
        edge.connector_options(&tunnel, ProtocolChoice::Quic),
        portless_test_support::rules_from_yaml(&rules),
        portless_tls::tunnel_client_config(portless_tls::EdgeTrust::Pinned(edge.ca.pin())).unwrap(),
        Some(metrics),
    )
    .unwrap();
    portless_test_support::wait_for("registration", Duration::from_secs(10), || {
        connector.ready_connections() == 2
    })
    .await;
    let client = edge.client(false);
    until(&client, "ready.test", StatusCode::OK, None).await;
    let ready: serde_json::Value =
        serde_json::from_str(&http_get(metrics_addr, "/ready").await).unwrap();
    assert_eq!(ready["readyConnections"], 2);
    assert_eq!(ready["origins"][0]["origin"], service.as_str());
    assert_eq!(ready["origins"][0]["up"], true);
    origin.stop().await;
    until(
        &client,
        "ready.test",
        StatusCode::SERVICE_UNAVAILABLE,
        Some("origin_down"),
    )
    .await;
    let ready: serde_json::Value =
        serde_json::from_str(&http_get(metrics_addr, "/ready").await).unwrap();
    assert_eq!(ready["origins"][0]["up"], false, "{ready}");
    connector.abort();
}
