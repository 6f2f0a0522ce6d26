//! Every `originRequest` option against real origins, through the real edge and tunnel: what
//! a visitor sees, and what the origin sees.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use portless_connector::{ConnectorHandle, ProtocolChoice};
use portless_ingress::TunnelConfig;
use portless_test_support::{
    ClientBody, ProbeOrigin, StalledOrigin, TestEdge, init_test_logging, ws,
};
use portless_tls::LocalCa;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One ingress rule: hostname, service, `originRequest` lines (`key: value`).
struct Rule<'a> {
    host: &'a str,
    service: String,
    options: &'a [&'a str],
}

fn rule<'a>(host: &'a str, service: impl Into<String>, options: &'a [&'a str]) -> Rule<'a> {
    Rule {
        host,
        service: service.into(),
        options,
    }
}

fn yaml(rules: &[Rule<'_>]) -> String {
    let mut text = String::from("ingress:\n");
    for rule in rules {
        text.push_str(&format!(
            "  - hostname: \"{}\"\n    service: {}\n",
            rule.host, rule.service
        ));
        if !rule.options.is_empty() {
            text.push_str("    originRequest:\n");
            for option in rule.options {
                text.push_str(&format!("      {option}\n"));
            }
        }
    }
    text.push_str("  - service: http_status:404\n");
    text
}

/// An edge with one tunnel routed from every rule's hostname, and its connector.
async fn tunnel(rules: &[Rule<'_>]) -> (TestEdge, ConnectorHandle) {
    init_test_logging();
    let edge = TestEdge::start().await;
    let hosts: Vec<&str> = rules.iter().map(|r| r.host).collect();
    let tunnel = edge.add_tunnel("origins", &hosts).await;
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &yaml(rules),
        )
        .await;
    (edge, connector)
}

/// GET with a deadline, so a hanging origin fails the test instead of stalling it.
async fn get(edge: &TestEdge, host: &str, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    tokio::time::timeout(Duration::from_secs(20), edge.client(false).get(host, path))
        .await
        .unwrap_or_else(|_| panic!("GET {host}{path} got no answer"))
}

fn assert_origin_error(answer: &(StatusCode, HeaderMap, Bytes), status: u16, class: &str) {
    assert_eq!(answer.0.as_u16(), status, "{:?}", answer.2);
    assert_eq!(answer.1["portless-error"], class);
}

/// A private CA (not the edge's) and its certificate in a PEM file, for `caPool`.
fn private_ca(dir: &Path) -> (LocalCa, String) {
    let ca = LocalCa::generate("origin private CA").unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, ca.cert_pem()).unwrap();
    (ca, format!("caPool: {}", path.display()))
}

#[tokio::test]
async fn a_private_ca_fails_closed_until_ca_pool_names_it_or_verification_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pool) = private_ca(dir.path());
    let origin = ProbeOrigin::https(&ca, &["127.0.0.1"]).await;
    let url = format!("https://{}", origin.addr());
    let (edge, _connector) = tunnel(&[
        rule("strict.test", &url, &[]),
        rule("pool.test", &url, &[&ca_pool]),
        rule("noverify.test", &url, &["noTLSVerify: true"]),
    ])
    .await;
    assert_origin_error(
        &get(&edge, "strict.test", "/").await,
        502,
        "origin_unreachable",
    );
    assert_eq!(
        origin.seen().len(),
        0,
        "no request reached an untrusted origin"
    );
    for host in ["pool.test", "noverify.test"] {
        let (status, _, body) = get(&edge, host, "/").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]), "{host}");
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_until_origin_server_name_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pool) = private_ca(dir.path());
    let origin = ProbeOrigin::https(&ca, &["internal.example"]).await;
    let url = format!("https://{}", origin.addr());
    let (edge, _connector) = tunnel(&[
        rule("wrong.test", &url, &[&ca_pool]),
        rule(
            "named.test",
            &url,
            &[&ca_pool, "originServerName: internal.example"],
        ),
    ])
    .await;
    assert_origin_error(
        &get(&edge, "wrong.test", "/").await,
        502,
        "origin_unreachable",
    );
    let (status, _, _) = get(&edge, "named.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(origin.last().sni.as_deref(), Some("internal.example"));
    assert_eq!(origin.last().headers["host"], "named.test");
}

#[tokio::test]
async fn match_sni_to_host_sends_the_request_host_as_the_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pool) = private_ca(dir.path());
    let origin = ProbeOrigin::https(&ca, &["sni.test", "other.sni.test"]).await;
    let url = format!("https://{}", origin.addr());
    let (edge, _connector) = tunnel(&[
        rule("*.sni.test", &url, &[&ca_pool, "matchSNItoHost: true"]),
        rule("sni.test", &url, &[&ca_pool, "matchSNItoHost: true"]),
        rule("plain.test", &url, &[&ca_pool]),
    ])
    .await;
    // Two names through one rule: each connection carries its own request's name.
    for host in ["sni.test", "other.sni.test", "sni.test"] {
        let (status, _, _) = get(&edge, host, "/").await;
        assert_eq!(status, StatusCode::OK, "{host}");
        assert_eq!(origin.last().sni.as_deref(), Some(host));
    }
    // Without the option the name is the origin's address, which the certificate lacks.
    assert_origin_error(
        &get(&edge, "plain.test", "/").await,
        502,
        "origin_unreachable",
    );
}

#[tokio::test]
async fn http_host_header_replaces_host_and_keeps_the_original_in_x_forwarded_host() {
    let origin = ProbeOrigin::http().await;
    let url = format!("http://{}", origin.addr());
    let (edge, _connector) = tunnel(&[
        rule("visitor.test", &url, &["httpHostHeader: x.example"]),
        rule(
            "h2.test",
            &url,
            &["httpHostHeader: x.example", "http2Origin: true"],
        ),
    ])
    .await;
    let (status, _, _) = get(&edge, "visitor.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    let seen = origin.last();
    assert_eq!(seen.headers["host"], "x.example");
    assert_eq!(seen.headers["x-forwarded-host"], "visitor.test");
    // Over HTTP/2 the host is `:authority`, which must say the same.
    let (status, _, _) = get(&edge, "h2.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    let seen = origin.last();
    assert_eq!(seen.version, Version::HTTP_2);
    assert_eq!(seen.authority.as_deref(), Some("x.example"));
    if let Some(host) = seen.headers.get("host") {
        assert_eq!(host, "x.example");
    }
    assert_eq!(seen.headers["x-forwarded-host"], "h2.test");
}

#[tokio::test]
async fn unix_socket_origins_with_and_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pool) = private_ca(dir.path());
    let plain_path = dir.path().join("plain.sock");
    let tls_path = dir.path().join("tls.sock");
    let plain = ProbeOrigin::unix(&plain_path, None);
    let tls = ProbeOrigin::unix(&tls_path, Some((&ca, &["localhost"])));
    let (edge, _connector) = tunnel(&[
        rule("unix.test", format!("unix:{}", plain_path.display()), &[]),
        rule(
            "unixtls.test",
            format!("unix+tls:{}", tls_path.display()),
            &[&ca_pool],
        ),
    ])
    .await;
    let (status, _, body) = get(&edge, "unix.test", "/").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert_eq!(plain.last().headers["host"], "unix.test");
    let (status, _, _) = get(&edge, "unixtls.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    let seen = tls.last();
    assert_eq!(seen.sni.as_deref(), Some("localhost"));
    assert_eq!(seen.headers["host"], "unixtls.test");
}

#[tokio::test]
async fn http2_origin_speaks_h2_over_tls_and_h2c_over_plain_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pool) = private_ca(dir.path());
    let secure = ProbeOrigin::https(&ca, &["127.0.0.1"]).await;
    let plain = ProbeOrigin::http().await;
    let https = format!("https://{}", secure.addr());
    let http = format!("http://{}", plain.addr());
    let (edge, _connector) = tunnel(&[
        rule("h2.tls.test", &https, &[&ca_pool, "http2Origin: true"]),
        rule("h1.tls.test", &https, &[&ca_pool]),
        rule("h2.plain.test", &http, &["http2Origin: true"]),
        rule("h1.plain.test", &http, &[]),
    ])
    .await;
    let cases = [
        ("h2.tls.test", &secure, Version::HTTP_2),
        ("h1.tls.test", &secure, Version::HTTP_11),
        ("h2.plain.test", &plain, Version::HTTP_2),
        ("h1.plain.test", &plain, Version::HTTP_11),
    ];
    for (host, origin, version) in cases {
        let (status, _, _) = get(&edge, host, "/").await;
        assert_eq!(status, StatusCode::OK, "{host}");
        let seen = origin.last();
        assert_eq!(seen.version, version, "{host}");
        assert_eq!(seen.headers["x-forwarded-host"], host);
    }
}

#[tokio::test]
async fn connect_timeout_turns_an_origin_that_never_accepts_into_a_504() {
    let stalled = StalledOrigin::unaccepting().await;
    let (edge, _connector) = tunnel(&[rule(
        "stuck.test",
        format!("http://{}", stalled.addr()),
        &["connectTimeout: 1s"],
    )])
    .await;
    let started = Instant::now();
    assert_origin_error(&get(&edge, "stuck.test", "/").await, 504, "origin_timeout");
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&took),
        "took {took:?}"
    );
}

#[tokio::test]
async fn tls_timeout_ends_a_handshake_the_origin_never_answers() {
    let stalled = StalledOrigin::silent().await;
    let (edge, _connector) = tunnel(&[rule(
        "mute.test",
        format!("https://{}", stalled.addr()),
        &["tlsTimeout: 1s", "noTLSVerify: true"],
    )])
    .await;
    let started = Instant::now();
    assert_origin_error(&get(&edge, "mute.test", "/").await, 504, "origin_timeout");
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&took),
        "took {took:?}"
    );
}

#[tokio::test]
async fn keep_alive_connections_are_reused_and_zero_keeps_none() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pool) = private_ca(dir.path());
    let plain = ProbeOrigin::http().await;
    let secure = ProbeOrigin::https(&ca, &["127.0.0.1"]).await;
    let closing = ProbeOrigin::http().await;
    let keep = ["keepAliveConnections: 4", "keepAliveTimeout: 30s"];
    let secure_keep = [keep[0], keep[1], ca_pool.as_str()];
    let (edge, _connector) = tunnel(&[
        rule("keep.test", format!("http://{}", plain.addr()), &keep),
        rule(
            "keeptls.test",
            format!("https://{}", secure.addr()),
            &secure_keep,
        ),
        rule(
            "close.test",
            format!("http://{}", closing.addr()),
            &["keepAliveConnections: 0"],
        ),
    ])
    .await;
    for host in ["keep.test", "keeptls.test", "close.test"] {
        for i in 0..20 {
            let (status, _, _) = get(&edge, host, &format!("/{i}")).await;
            assert_eq!(status, StatusCode::OK, "{host} request {i}");
        }
    }
    assert_eq!(
        plain.accepted(),
        1,
        "plain HTTP connections were not reused"
    );
    assert_eq!(secure.accepted(), 1, "TLS connections were not reused");
    assert_eq!(plain.seen().len(), 20);
    assert_eq!(closing.accepted(), 20, "keepAliveConnections: 0 keeps none");
}

#[tokio::test]
async fn keep_alive_timeout_closes_idle_connections() {
    let origin = ProbeOrigin::http().await;
    let (edge, _connector) = tunnel(&[rule(
        "idle.test",
        format!("http://{}", origin.addr()),
        &["keepAliveTimeout: 500ms"],
    )])
    .await;
    for _ in 0..3 {
        let (status, _, _) = get(&edge, "idle.test", "/").await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(origin.accepted(), 1, "reused while fresh");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _, _) = get(&edge, "idle.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        origin.accepted(),
        2,
        "an idle connection outlived keepAliveTimeout"
    );
}

/// A POST of `total` pattern bytes in 64 KiB chunks, without Content-Length.
fn streamed_post(edge: &TestEdge, host: &str, total: usize) -> Request<ClientBody> {
    let chunks = (0..total).step_by(65536).map(move |start| {
        let len = 65536.min(total - start);
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![7u8; len])))
    });
    let body: ClientBody = StreamBody::new(futures_util::stream::iter(chunks)).boxed();
    Request::post(edge.client(false).url(host, "/upload"))
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn disable_chunked_encoding_sends_a_content_length_and_bounds_the_buffer() {
    let origin = ProbeOrigin::http().await;
    let url = format!("http://{}", origin.addr());
    let (edge, _connector) = tunnel(&[
        rule("fixed.test", &url, &["disableChunkedEncoding: true"]),
        rule("chunked.test", &url, &[]),
    ])
    .await;
    let client = edge.client(false);
    let total = 3 * 65536 + 5;
    let response = client.send(streamed_post(&edge, "fixed.test", total)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = origin.last();
    assert_eq!(seen.headers["content-length"], total.to_string().as_str());
    assert!(seen.headers.get("transfer-encoding").is_none());
    assert_eq!(seen.body_len, total as u64);
    // The default streams the same body chunked.
    let response = client
        .send(streamed_post(&edge, "chunked.test", total))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = origin.last();
    assert_eq!(seen.headers["transfer-encoding"], "chunked");
    assert_eq!(seen.body_len, total as u64);
    // Past the buffer bound (16 MiB) the visitor is told the body is too large.
    let before = origin.seen().len();
    let response = client
        .send(streamed_post(&edge, "fixed.test", 16 * 1024 * 1024 + 1))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(origin.seen().len(), before, "nothing reached the origin");
}

#[tokio::test]
async fn tcp_keep_alive_and_no_happy_eyeballs_are_accepted() {
    let origin = ProbeOrigin::http().await;
    let (edge, _connector) = tunnel(&[rule(
        "tcp.test",
        format!("http://{}", origin.addr()),
        &["tcpKeepAlive: 15s", "noHappyEyeballs: true"],
    )])
    .await;
    let (status, _, body) = get(&edge, "tcp.test", "/").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
}

#[tokio::test]
async fn proxy_address_and_port_load_with_a_deprecation_warning() {
    let origin = ProbeOrigin::http().await;
    let text = yaml(&[rule(
        "proxy.test",
        format!("http://{}", origin.addr()),
        &["proxyAddress: 127.0.0.1", "proxyPort: 8080"],
    )]);
    let loaded = TunnelConfig::from_yaml_str(&text, Path::new("proxy.yml")).unwrap();
    for key in ["proxyAddress", "proxyPort"] {
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.to_string().contains(&format!("`{key}` is deprecated"))),
            "{key}: {:?}",
            loaded.warnings
        );
    }
    let (edge, _connector) = tunnel(&[rule(
        "proxy.test",
        format!("http://{}", origin.addr()),
        &["proxyAddress: 127.0.0.1", "proxyPort: 8080"],
    )])
    .await;
    let (status, _, _) = get(&edge, "proxy.test", "/").await;
    assert_eq!(status, StatusCode::OK);
}

/// A WebSocket echo through the edge to `host`: sends one text frame, returns the reply.
async fn websocket_echo(edge: &TestEdge, host: &str, message: &str) -> Vec<u8> {
    let client = edge.client(false);
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = Request::get(client.url(host, "/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", key)
        .body(ClientBody::default())
        .unwrap();
    let mut response = client.send(request).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS, "{host}");
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        ws::accept_key(key).as_str()
    );
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let mut io = TokioIo::new(upgraded);
    io.write_all(&ws::text_frame(message.as_bytes(), Some([9, 8, 7, 6])))
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some((opcode, payload, _)) = ws::decode_frame(&buf) {
                assert_eq!(opcode, 1, "a text frame");
                return payload;
            }
            let mut chunk = [0u8; 1024];
            let n = io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the echo");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("an echo")
}

#[tokio::test]
async fn a_websocket_upgrades_over_tls_to_the_origin_even_with_http2_origin() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_pool) = private_ca(dir.path());
    let origin = ProbeOrigin::https(&ca, &["127.0.0.1"]).await;
    let url = format!("wss://{}", origin.addr());
    let (edge, _connector) = tunnel(&[
        rule("wss.test", &url, &[&ca_pool]),
        rule("h2.wss.test", &url, &[&ca_pool, "http2Origin: true"]),
    ])
    .await;
    for host in ["wss.test", "h2.wss.test"] {
        let reply = websocket_echo(&edge, host, "over tls").await;
        assert_eq!(reply, b"echo: over tls", "{host}");
        let seen = origin.last();
        // HTTP/2 has no Upgrade: an upgrade goes over HTTP/1.1 whatever the rule says.
        assert_eq!(seen.version, Version::HTTP_11, "{host}");
        assert!(seen.sni.is_none(), "an IP address is never SNI");
    }
    // Ordinary requests of the http2Origin rule still use HTTP/2.
    let (status, _, _) = get(&edge, "h2.wss.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(origin.last().version, Version::HTTP_2);
}
