//! The connector's egress guard end to end: rules whose names resolve to addresses they may
//! not reach are refused before any dial, named loopback origins work, redirects are the
//! visitor's business.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::convert::Infallible;
use std::net::IpAddr;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use portless_connector::{EgressPolicy, ProtocolChoice};
use portless_test_support::{TestEdge, TestOrigin, encode_metrics, init_test_logging};
use tokio::net::TcpListener;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `(public hostname, service)` pairs as ingress YAML, with a 404 catch-all.
fn ingress(rules: &[(&str, String)]) -> String {
    let mut yaml = String::from("ingress:\n");
    for (host, service) in rules {
        yaml.push_str(&format!(
            "  - hostname: {host}\n    service: {service}\n    originRequest:\n      connectTimeout: 2s\n"
        ));
    }
    yaml.push_str("  - service: http_status:404\n");
    yaml
}

#[tokio::test]
async fn names_that_resolve_to_addresses_the_rule_does_not_name_are_refused() {
    init_test_logging();
    let edge = TestEdge::start().await;
    // A live origin on loopback: a guard that let a name through would reach it (200).
    let origin = TestOrigin::start("loopback").await;
    let port = origin.addr().port();
    let cases = [
        ("metadata.test", "meta.internal", "169.254.169.254"),
        ("mapped.test", "mapped.internal", "::ffff:127.0.0.1"),
        ("v6loop.test", "v6loop.internal", "::1"),
        ("zero.test", "zero.internal", "0.0.0.0"),
    ];
    let hostnames: Vec<&str> = cases.iter().map(|(public, _, _)| *public).collect();
    let tunnel = edge.add_tunnel("guarded", &hostnames).await;
    let mut options = edge.connector_options(&tunnel, ProtocolChoice::Quic);
    options.egress = EgressPolicy::default().with_hosts(
        cases
            .iter()
            .map(|(_, name, address)| (*name, vec![ip(address)])),
    );
    let rules: Vec<(&str, String)> = cases
        .iter()
        .map(|(public, name, _)| (*public, format!("http://{name}:{port}")))
        .collect();
    let connector = edge.connect(options, &ingress(&rules)).await;
    let client = edge.client(false);
    for (public, name, address) in cases {
        let (status, headers, _) = client.get(public, "/hello").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{name} -> {address}");
        assert_eq!(
            headers["portless-error"], "egress_denied",
            "{name} -> {address}"
        );
    }
    assert_eq!(origin.requests(), 0, "no refused dial reached the origin");
    let metrics = encode_metrics(connector.metrics_registry());
    assert!(
        metrics.contains("portless_tunnel_egress_denied_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portless_tunnel_request_errors_total{class=\"egress_denied\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn localhost_names_and_loopback_literals_reach_their_origin() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("local").await;
    let port = origin.addr().port();
    let tunnel = edge
        .add_tunnel("local", &["byname.test", "byliteral.test", "lan.test"])
        .await;
    let mut options = edge.connector_options(&tunnel, ProtocolChoice::Quic);
    // `app.localhost` is a localhost name (RFC 6761) even when a static answer gives it.
    options.egress = EgressPolicy::default().with_hosts([("app.localhost", vec![ip("127.0.0.1")])]);
    let rules = [
        ("byname.test", format!("http://localhost:{port}")),
        ("byliteral.test", format!("http://127.0.0.1:{port}")),
        ("lan.test", format!("http://app.localhost:{port}")),
    ];
    let _connector = edge.connect(options, &ingress(&rules)).await;
    let client = edge.client(false);
    for (host, _) in &rules {
        let (status, _, body) = client.get(host, "/hello").await;
        assert_eq!(
            (status, &body[..]),
            (StatusCode::OK, &b"hello from local"[..]),
            "{host}"
        );
    }
}

/// An origin whose every answer is a redirect to the cloud metadata service.
async fn redirecting_origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    let response = Response::builder()
                        .status(StatusCode::FOUND)
                        .header("location", "http://169.254.169.254/latest/meta-data/")
                        .body(Full::new(Bytes::from_static(b"moved")))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_redirect_to_metadata_goes_to_the_visitor_and_is_not_followed() {
    init_test_logging();
    let edge = TestEdge::start().await;
    let port = redirecting_origin().await;
    let tunnel = edge.add_tunnel("redirect", &["redirect.test"]).await;
    let options = edge.connector_options(&tunnel, ProtocolChoice::Quic);
    let rules = [("redirect.test", format!("http://127.0.0.1:{port}"))];
    let connector = edge.connect(options, &ingress(&rules)).await;
    let (status, headers, body) = edge.client(false).get("redirect.test", "/").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers["location"],
        "http://169.254.169.254/latest/meta-data/"
    );
    assert_eq!(&body[..], b"moved");
    let metrics = encode_metrics(connector.metrics_registry());
    assert!(
        metrics.contains("portless_tunnel_egress_denied_total 0"),
        "{metrics}"
    );
}
