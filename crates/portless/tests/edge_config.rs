//! `portless edge --config FILE` (and `PORTLESS_EDGE_CONFIG`): a wrong file stops the edge
//! before it binds anything, with every problem at its line and column; a right one opens
//! what it names (the port-80 listener, HSTS, a public UDP port), checked with curl and a
//! UDP socket against the real binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

#[cfg(test)]
mod support;

use std::cell::Cell;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use support::origin::Origin;
use support::{Connector, Edge, curl, free_tcp_port, wait_until};

const PORTLESS: &str = env!("CARGO_BIN_EXE_portless");

#[test]
fn a_wrong_edge_config_is_refused_with_positions_and_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.yml");
    std::fs::write(
        &file,
        "passthrough: [secure.test]\nports:\n  - listen: 127.0.0.1:0\n    protocol: tcp\n    hostname: a.test\n    alow: [10.0.0.0/8]\n",
    )
    .unwrap();
    for via_env in [false, true] {
        let mut command = Command::new(PORTLESS);
        command
            .arg("edge")
            .arg("--state-dir")
            .arg(dir.path().join("state"));
        if via_env {
            command.env("PORTLESS_EDGE_CONFIG", &file);
        } else {
            command.arg("--config").arg(&file);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        let expected = format!(
            "{}:6:5: error: unknown key `alow` in ports entry #1",
            file.display()
        );
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(stderr.contains("fix: did you mean `allow`?"), "{stderr}");
    }
    // Values are checked once the keys are right.
    std::fs::write(
        &file,
        "ports:\n  - listen: 127.0.0.1:0\n    protocol: udp\n    hostname: a.test\n    proxy_protocol: v2\n",
    )
    .unwrap();
    let output = Command::new(PORTLESS)
        .arg("edge")
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(":2:13: error: `listen` of ports entry #1: port 0 is not a fixed port"),
        "{stderr}"
    );
    assert!(stderr.contains(":5:21: error: `proxy_protocol` of ports entry #1: the PROXY protocol header is sent on TCP ports only"), "{stderr}");
}

/// A UDP echo on 127.0.0.1 (a thread that answers each datagram with "echo:" + it).
fn udp_echo() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let mut answer = b"echo:".to_vec();
            answer.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&answer, from);
        }
    });
    port
}

/// A UDP port free on 127.0.0.1 at the moment of asking.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

#[test]
fn the_config_file_opens_port_80_hsts_and_a_udp_port() {
    const APP: &str = "app.test";
    const GAME: &str = "game.test";
    let picked = Cell::new((0u16, 0u16));
    let edge = Edge::start_with(|dir, _public| {
        // Fresh ports on every attempt (the edge retries when one was taken meanwhile).
        let (http, udp) = (free_tcp_port(), free_udp_port());
        picked.set((http, udp));
        let file = dir.join("edge.yml");
        std::fs::write(
            &file,
            format!(
                "tls:\n  hsts:\n    max_age: 1y\n    include_subdomains: true\nhttp:\n  listen: 127.0.0.1:{http}\nports:\n  - listen: 127.0.0.1:{udp}\n    protocol: udp\n    hostname: {GAME}\n    idle_timeout: 30s\n"
            ),
        )
        .unwrap();
        vec!["--config".to_owned(), file.display().to_string()]
    });
    let (http, udp) = picked.get();
    let origin = Origin::start("origin");
    let echo = udp_echo();
    let (credentials, _) = edge.create_tunnel("t");
    edge.route(APP, "t");
    edge.route(GAME, "t");
    let config = edge.path("connector.yml");
    std::fs::write(
        &config,
        format!(
            "credentials-file: {}\ningress:\n  - hostname: {GAME}\n    service: udp://127.0.0.1:{echo}\n  - hostname: {APP}\n    service: {}\n  - service: http_status:404\n",
            credentials.display(),
            origin.url()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let _connector = Connector::start_with(&edge, "connector", &["--config", &config_arg], 1);
    edge.wait_routed(APP);

    // Port 80: a permanent redirect to the same URL on the HTTPS listener, nothing proxied.
    let seen_before = origin.seen().len();
    let resolve = format!("{APP}:{http}:127.0.0.1");
    let plain = curl(
        &[
            "--resolve",
            &resolve,
            &format!("http://{APP}:{http}/some/page?q=1"),
        ],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(plain.status, 308, "{plain:?}");
    assert_eq!(
        plain.header("location"),
        Some(format!("https://{APP}:{}/some/page?q=1", edge.public).as_str()),
        "{plain:?}"
    );
    assert!(
        plain.header("strict-transport-security").is_none(),
        "{plain:?}"
    );
    assert_eq!(
        origin.seen().len(),
        seen_before,
        "port 80 reached the origin"
    );

    // HTTPS: the origin's answer, with the configured HSTS header.
    let secure = edge.get(APP, "/some/page", Duration::from_secs(5)).unwrap();
    assert_eq!(secure.status, 200, "{secure:?}");
    assert_eq!(
        secure.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains"),
        "{secure:?}"
    );

    // The UDP port: datagrams through the tunnel to the echo and back.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let answered = wait_until(Duration::from_secs(10), || {
        client.send_to(b"ping", ("127.0.0.1", udp)).ok()?;
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    });
    assert_eq!(
        answered.as_deref(),
        Some(&b"echo:ping"[..]),
        "no echo through the UDP port:\n{}",
        edge.process.stderr_tail(20)
    );
    let mut buf = [0u8; 64];
    for i in 0..20 {
        let message = format!("datagram {i}");
        client
            .send_to(message.as_bytes(), ("127.0.0.1", udp))
            .unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("echo:{message}").as_bytes());
    }
}
