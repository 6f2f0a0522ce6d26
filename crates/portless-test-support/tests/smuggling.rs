//! Request smuggling at the edge (attack class J), with raw bytes over TLS: heads that two
//! parsers could read differently are answered 400 before anything reaches the origin, and
//! what is valid — pipelined keep-alive requests, chunked uploads, WebSocket upgrades — still
//! works.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::time::Duration;

use portless_connector::{ConnectorHandle, ProtocolChoice};
use portless_test_support::upgrade::{edge_tls, read_response_head};
use portless_test_support::{TestEdge, TestOrigin, init_test_logging, ws};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const HOST: &str = "app.test";

struct Setup {
    edge: TestEdge,
    origin: TestOrigin,
    _connector: ConnectorHandle,
}

async fn setup() -> Setup {
    init_test_logging();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("smuggling").await;
    let tunnel = edge.add_tunnel("smuggling", &[HOST]).await;
    let rules = format!(
        "ingress:\n  - hostname: {HOST}\n    service: {}\n  - service: http_status:404\n",
        origin.url()
    );
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    Setup {
        edge,
        origin,
        _connector: connector,
    }
}

/// Sends `request` as is and reads until the edge closes; the text received.
async fn exchange(edge: &TestEdge, request: &[u8]) -> String {
    let mut io = edge_tls(edge, HOST).await;
    io.write_all(request).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), io.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the edge did not close: {:?}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

fn assert_refused(response: &str, problem: &str) {
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response:?}"
    );
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(body.contains(problem), "{body:?} should name {problem:?}");
}

#[tokio::test]
async fn ambiguous_heads_are_refused_before_the_origin() {
    let s = setup().await;
    let cases: &[(&str, &str)] = &[
        (
            "POST /count HTTP/1.1\r\nHost: app.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
            "both Content-Length and Transfer-Encoding",
        ),
        ("GET /hello HTTP/1.1\nHost: app.test\n\n", "bare LF"),
        (
            "POST /count HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            "Content-Length is present more than once",
        ),
        (
            "GET /hello HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n b\r\n\r\n",
            "obs-fold",
        ),
        (
            "POST /count HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            "Transfer-Encoding must be exactly",
        ),
        (
            "POST /count HTTP/1.1\r\nHost: app.test\r\nContent-Length : 3\r\n\r\nabc",
            "whitespace between a header name and its colon",
        ),
        (
            "GET /hello HTTP/1.1\r\nHost: app.test\r\nX: a\0b\r\n\r\n",
            "control character",
        ),
        (
            "GET hello HTTP/1.1\r\nHost: app.test\r\n\r\n",
            "request target",
        ),
    ];
    for (request, problem) in cases {
        let response = exchange(&s.edge, request.as_bytes()).await;
        assert_refused(&response, problem);
    }
    assert_eq!(s.origin.requests(), 0, "the origin saw none of them");
}

#[tokio::test]
async fn a_smuggled_second_request_is_refused_after_the_first_is_answered() {
    let s = setup().await;
    let pipelined = "GET /hello HTTP/1.1\r\nHost: app.test\r\n\r\n\
         POST /count HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
         0\r\n\r\nGET /hello HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let response = exchange(&s.edge, pipelined.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response:?}");
    let (first, second) = response
        .split_once("hello from smuggling")
        .unwrap_or_else(|| panic!("the first request was not answered: {response:?}"));
    assert!(!first.contains("400"), "{first:?}");
    assert_refused(second, "both Content-Length and Transfer-Encoding");
    assert_eq!(
        s.origin.requests(),
        1,
        "the origin saw only the first request"
    );
}

#[tokio::test]
async fn chunked_uploads_and_keep_alive_still_work() {
    let s = setup().await;
    let mut io = edge_tls(&s.edge, HOST).await;
    let upload = "POST /count HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n\
         5;note=first\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: none\r\n\r\n\
         POST /count HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc";
    io.write_all(upload.as_bytes()).await.unwrap();
    let expected_sum: u64 = b"hello world".iter().map(|&b| u64::from(b)).sum();
    let (head, mut rest) = read_response_head(&mut io).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let body = format!("bytes=11 sum={expected_sum}");
    while rest.len() < body.len() {
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        rest.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(&rest[..body.len()], body.as_bytes());
    let rest = rest.split_off(body.len());
    // The second, pipelined request on the same connection.
    let mut io = tokio::io::AsyncReadExt::chain(&rest[..], io);
    let (head, rest) = read_response_head(&mut io).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let sum: u64 = b"abc".iter().map(|&b| u64::from(b)).sum();
    let mut body = rest;
    let want = format!("bytes=3 sum={sum}");
    while body.len() < want.len() {
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(body, want.as_bytes());
    assert_eq!(s.origin.requests(), 2);
}

#[tokio::test]
async fn websocket_upgrades_still_work() {
    let s = setup().await;
    let mut io = edge_tls(&s.edge, HOST).await;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let (head, mut buf) = read_response_head(&mut io).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains(&ws::accept_key(key).to_ascii_lowercase()),
        "{head}"
    );
    // WebSocket frames are not HTTP: bytes like a bare LF must pass untouched.
    let payload = b"hi\nGET / HTTP/1.1\nx";
    io.write_all(&ws::text_frame(payload, Some([1, 2, 3, 4])))
        .await
        .unwrap();
    let frame = loop {
        if let Some((opcode, payload, _)) = ws::decode_frame(&buf) {
            break (opcode, payload);
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), io.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the echo");
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut expected = b"echo: ".to_vec();
    expected.extend_from_slice(payload);
    assert_eq!(frame, (1, expected));
}

#[tokio::test]
async fn http2_clients_are_unaffected() {
    let s = setup().await;
    let (status, _, body) = s.edge.client(true).get(HOST, "/hello").await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"hello from smuggling");
    let (status, _, body) = s.edge.client(false).get(HOST, "/hello").await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"hello from smuggling");
}
