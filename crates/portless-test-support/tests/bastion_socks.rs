//! `bastion` and `socks-proxy` rules end to end, over QUIC and TCP: the client chooses the
//! destination, so the connector's strict egress policy decides — `ipRules` first, then
//! public addresses only — and loopback or metadata stay out of reach unless a rule allows
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::time::Duration;

use portless_connector::{ConnectorHandle, EgressPolicy, ProtocolChoice};
use portless_test_support::upgrade::upgrade_request;
use portless_test_support::{TestEdge, encode_metrics, init_test_logging};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A TCP server on 127.0.0.1 that echoes what it reads.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.into_split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    port
}

/// Writes `message` and expects it back.
async fn assert_echo(io: &mut (impl AsyncRead + AsyncWrite + Unpin), message: &[u8], what: &str) {
    io.write_all(message).await.unwrap();
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut back))
        .await
        .unwrap_or_else(|_| panic!("{what}: no echo"))
        .unwrap();
    assert_eq!(back, message, "{what}");
}

/// An `originRequest` block allowing exactly 127.0.0.1 on `port`.
fn allow_loopback(port: u16) -> String {
    format!(
        "    originRequest:\n      connectTimeout: 2s\n      ipRules:\n        - prefix: 127.0.0.1/32\n          \
         ports: [{port}]\n          allow: true\n"
    )
}

/// An edge and a connector serving `hostnames` with `rules`; `loop.internal` resolves
/// (statically) to the IPv4-mapped loopback address.
async fn start(
    protocol: ProtocolChoice,
    hostnames: &[&str],
    rules: &str,
) -> (TestEdge, ConnectorHandle) {
    init_test_logging();
    let edge = TestEdge::start().await;
    let tunnel = edge.add_tunnel("jump", hostnames).await;
    let mut options = edge.connector_options(&tunnel, protocol);
    options.egress = EgressPolicy::default()
        .with_hosts([("loop.internal", vec!["::ffff:127.0.0.1".parse().unwrap()])]);
    let connector = edge.connect(options, rules).await;
    (edge, connector)
}

#[tokio::test]
async fn bastion_reaches_what_ip_rules_allow_and_nothing_else() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let port = echo_server().await;
        let rules = format!(
            "ingress:\n  - hostname: bastion.test\n    service: bastion\n{allow}  \
             - hostname: mode.test\n    service: http://localhost:1\n{allow}      bastionMode: true\n  \
             - hostname: strict.test\n    service: bastion\n  - service: http_status:404\n",
            allow = allow_loopback(port),
        );
        let (edge, connector) = start(
            protocol,
            &["bastion.test", "mode.test", "strict.test"],
            &rules,
        )
        .await;
        let allowed = [
            (
                "bastion.test",
                format!("Cf-Access-Jump-Destination: 127.0.0.1:{port}"),
            ),
            (
                "mode.test",
                format!("Portless-Jump-Destination: tcp://127.0.0.1:{port}/x"),
            ),
        ];
        for (host, header) in &allowed {
            let (mut io, head, rest) = upgrade_request(&edge, host, &[header]).await;
            assert!(
                head.starts_with("http/1.1 101"),
                "{protocol:?} {host}: {head}"
            );
            assert!(rest.is_empty());
            assert_echo(&mut io, b"through the bastion \x00\xff", host).await;
        }

        // No ipRule: loopback is not reachable, by IP or by a name that maps to it.
        for destination in [format!("127.0.0.1:{port}"), format!("loop.internal:{port}")] {
            let header = format!("Cf-Access-Jump-Destination: {destination}");
            let (_, head, _) = upgrade_request(&edge, "strict.test", &[&header]).await;
            assert!(
                head.starts_with("http/1.1 502"),
                "{protocol:?} {destination}: {head}"
            );
            assert!(head.contains("portless-error: egress_denied"), "{head}");
        }
        // The allowed rule still refuses another port and the metadata address.
        for destination in [
            format!("127.0.0.1:{}", port.wrapping_add(1)),
            "169.254.169.254:80".to_owned(),
        ] {
            let header = format!("Cf-Access-Jump-Destination: {destination}");
            let (_, head, _) = upgrade_request(&edge, "bastion.test", &[&header]).await;
            assert!(
                head.contains("portless-error: egress_denied"),
                "{destination}: {head}"
            );
        }

        for headers in [&[][..], &["Cf-Access-Jump-Destination: no-port"][..]] {
            let (_, head, _) = upgrade_request(&edge, "bastion.test", headers).await;
            assert!(
                head.starts_with("http/1.1 400"),
                "{protocol:?} {headers:?}: {head}"
            );
            assert!(head.contains("portless-error: bad_request"), "{head}");
        }

        let metrics = encode_metrics(connector.metrics_registry());
        assert!(
            metrics.contains("portless_tunnel_egress_denied_total 4"),
            "{metrics}"
        );
        assert!(
            metrics.contains("portless_tunnel_request_errors_total{class=\"bad_request\"} 2"),
            "{metrics}"
        );
    }
}

/// A SOCKS5 CONNECT request (after the no-auth greeting) for `address` (ATYP and bytes).
fn connect_request(command: u8, atyp: u8, address: &[u8], port: u16) -> Vec<u8> {
    let mut bytes = vec![5, 1, 0, 5, command, 0, atyp];
    bytes.extend_from_slice(address);
    bytes.extend_from_slice(&port.to_be_bytes());
    bytes
}

/// Opens a `socks-proxy` stream to `host`, sends `request` (greeting included) in one write,
/// and returns the stream and the reply code (after checking the method selection).
async fn socks(
    edge: &TestEdge,
    host: &str,
    request: &[u8],
) -> (impl AsyncRead + AsyncWrite + Unpin + use<>, u8) {
    let (mut io, head, rest) = upgrade_request(edge, host, &[]).await;
    assert!(head.starts_with("http/1.1 101"), "{host}: {head}");
    assert!(rest.is_empty(), "the server spoke before the client");
    io.write_all(request).await.unwrap();
    let mut reply = [0u8; 6];
    tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut reply))
        .await
        .expect("no SOCKS reply")
        .unwrap();
    assert_eq!(reply[..2], [5, 0], "method selection: no authentication");
    assert_eq!(reply[2], 5, "reply version");
    // The bound address: IPv4 or IPv6, then the port.
    let rest = match reply[5] {
        1 => 4 + 2,
        4 => 16 + 2,
        other => panic!("bound address type {other}"),
    };
    let mut bound = vec![0u8; rest];
    io.read_exact(&mut bound).await.unwrap();
    (io, reply[3])
}

#[tokio::test]
async fn socks_proxy_connects_where_ip_rules_allow_and_answers_refusals_with_their_codes() {
    for protocol in [ProtocolChoice::Quic, ProtocolChoice::Tcp] {
        let port = echo_server().await;
        let rules = format!(
            "ingress:\n  - hostname: socks.test\n    service: socks-proxy\n{}  \
             - hostname: strict-socks.test\n    service: socks-proxy\n  - service: http_status:404\n",
            allow_loopback(port),
        );
        let (edge, connector) = start(protocol, &["socks.test", "strict-socks.test"], &rules).await;

        let (mut io, code) = socks(
            &edge,
            "socks.test",
            &connect_request(1, 1, &[127, 0, 0, 1], port),
        )
        .await;
        assert_eq!(code, 0, "{protocol:?}: CONNECT to the allowed echo server");
        assert_echo(&mut io, b"socks bytes \x00\xff", "socks echo").await;

        let metadata = connect_request(1, 1, &[169, 254, 169, 254], 80);
        let (_, code) = socks(&edge, "socks.test", &metadata).await;
        assert_eq!(
            code, 2,
            "{protocol:?}: metadata is not allowed by the ruleset"
        );

        let mut name = vec![13u8];
        name.extend_from_slice(b"loop.internal");
        let by_name = connect_request(1, 3, &name, port);
        let (_, code) = socks(&edge, "strict-socks.test", &by_name).await;
        assert_eq!(
            code, 2,
            "{protocol:?}: a name mapped to ::ffff:127.0.0.1, no ipRule"
        );
        let (_, code) = socks(
            &edge,
            "strict-socks.test",
            &connect_request(1, 1, &[127, 0, 0, 1], port),
        )
        .await;
        assert_eq!(code, 2, "{protocol:?}: loopback without an ipRule");

        for command in [2, 3] {
            let (_, code) = socks(
                &edge,
                "socks.test",
                &connect_request(command, 1, &[127, 0, 0, 1], port),
            )
            .await;
            assert_eq!(code, 7, "{protocol:?}: command {command} is not supported");
        }

        let metrics = encode_metrics(connector.metrics_registry());
        assert!(
            metrics.contains("portless_tunnel_egress_denied_total 3"),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn a_plain_request_to_socks_or_bastion_is_a_bad_request() {
    let rules = "ingress:\n  - hostname: socks.test\n    service: socks-proxy\n  \
                 - hostname: bastion.test\n    service: bastion\n  - service: http_status:404\n";
    let (edge, _connector) =
        start(ProtocolChoice::Quic, &["socks.test", "bastion.test"], rules).await;
    for host in ["socks.test", "bastion.test"] {
        let (status, headers, _) = edge.client(false).get(host, "/").await;
        assert_eq!(status, http::StatusCode::BAD_REQUEST, "{host}");
        assert_eq!(headers["portless-error"], "bad_request", "{host}");
    }
}

#[tokio::test]
async fn proxy_type_socks_turns_any_rule_into_a_socks_proxy() {
    let port = echo_server().await;
    let rules = format!(
        "ingress:\n  - hostname: proxied.test\n    service: http://127.0.0.1:9\n{}      proxyType: socks\n  - service: http_status:404\n",
        allow_loopback(port),
    );
    let (edge, _connector) = start(ProtocolChoice::Quic, &["proxied.test"], &rules).await;
    let (mut io, code) = socks(
        &edge,
        "proxied.test",
        &connect_request(1, 1, &[127, 0, 0, 1], port),
    )
    .await;
    assert_eq!(code, 0, "CONNECT through a rule with proxyType: socks");
    assert_echo(&mut io, b"via proxyType", "proxyType socks echo").await;
}
