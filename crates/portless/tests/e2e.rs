//! End-to-end tests: the real `portless` binary (edge, connector, demo, CLI commands) with
//! `curl` as the client and a small origin server in the test.
//!
//! Every port comes from the OS, every process is killed and reaped by a guard, every wait
//! has a deadline.

#[cfg(test)]
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use support::origin::{Origin, SLOW};
use support::{
    Connector, Edge, Proc, curl, free_tcp_port, get_local, portless, ready_connections,
    run_portless, wait_until,
};

const HOST: &str = "app.e2e.test";
const SECOND: Duration = Duration::from_secs(1);

/// An edge with tunnel `web` routed from `HOST`, and the credentials file.
fn edge_with_tunnel() -> (Edge, std::path::PathBuf, String) {
    let edge = Edge::start();
    let (credentials, stdout) = edge.create_tunnel("web");
    edge.route(HOST, "web");
    (edge, credentials, stdout)
}

/// Test 1: `portless demo`: the printed curl command works as printed; SIGTERM stops it cleanly.
#[test]
fn demo_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let mut command = portless(dir.path());
    command
        .args(["demo", "--port", &port.to_string()])
        .env("TMPDIR", dir.path());
    let mut demo = Proc::spawn("demo", command, dir.path());

    let try_line = wait_until(Duration::from_secs(20), || {
        assert!(demo.running(), "the demo exited early");
        demo.stdout()
            .lines()
            .find_map(|l| l.trim().strip_prefix("Try:").map(|c| c.trim().to_owned()))
    })
    .expect("the demo printed no `Try:` line within 20 s");
    assert!(
        try_line.starts_with("curl "),
        "Try: line is not a curl command: {try_line}"
    );

    // Run the line exactly as printed; the status and a time limit come from a curlrc so
    // the command line stays untouched.
    let curl_home = dir.path().join("curl-home");
    std::fs::create_dir_all(&curl_home).unwrap();
    std::fs::write(
        curl_home.join(".curlrc"),
        "write-out = \"\\nE2E-STATUS=%{http_code}\\n\"\nmax-time = 15\nsilent\nshow-error\n",
    )
    .unwrap();
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(&try_line).env("CURL_HOME", &curl_home);
    let out = support::run_captured(sh, Duration::from_secs(20));
    assert!(out.status.success(), "`{try_line}` failed: {out:?}");
    assert!(
        out.stdout.contains("E2E-STATUS=200"),
        "`{try_line}` did not answer 200: {out:?}"
    );
    assert!(
        out.stdout.contains("Hello from the Portless demo origin"),
        "unexpected body: {}",
        out.stdout
    );

    // The protected hostname sends a browser to the demo's login portal.
    let protected = demo
        .stdout()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Protected:")
                .map(|r| r.trim().to_owned())
        })
        .expect("the demo printed a `Protected:` line");
    let url = protected.split_whitespace().next().unwrap().to_owned();
    let cacert = try_line
        .split_whitespace()
        .skip_while(|w| *w != "--cacert")
        .nth(1)
        .unwrap()
        .to_owned();
    let host = url
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let mut curl = std::process::Command::new("curl");
    curl.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "-H",
        "Accept: text/html",
        "--cacert",
        &cacert,
        "--resolve",
        &format!("{host}:{port}:127.0.0.1"),
        &url,
    ]);
    let out = support::run_captured(curl, Duration::from_secs(20));
    assert!(
        out.stdout
            .starts_with(&format!("302 https://auth.portless.localhost:{port}/?rd=")),
        "the protected demo page should redirect to the portal: {out:?}"
    );
    assert!(demo.stdout().contains("Sign in:   user demo, password "));

    let stopping = Instant::now();
    demo.signal("TERM");
    let status = demo
        .wait_exit(Duration::from_secs(8))
        .expect("the demo did not exit within 8 s of SIGTERM");
    eprintln!("demo exited {:?} after SIGTERM", stopping.elapsed());
    assert_eq!(status.code(), Some(0), "demo exit status after SIGTERM");
}

/// Test 2: Edge, `tunnel create|route|list|run` through the CLI, and a request through it all.
#[test]
fn edge_and_tunnel_via_cli() {
    let edge = Edge::start();
    let (credentials, stdout) = edge.create_tunnel("web");
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400, "credentials file mode is {mode:o}");
    let token = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Token"))
        .nth(1)
        .unwrap_or_default()
        .trim();
    assert!(
        token.len() > 40
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)),
        "no token in `tunnel create` output:\n{stdout}"
    );
    edge.route(HOST, "web");
    let list = edge.tunnel_cmd(&["list"]);
    assert_eq!(list.code(), Some(0), "{list:?}");
    assert!(
        list.stdout
            .lines()
            .any(|l| l.contains("web") && l.contains(HOST)),
        "`tunnel list` does not show the route:\n{}",
        list.stdout
    );

    let origin = Origin::start("o1");
    let connector = Connector::start(&edge, "connector", &credentials, &origin.url(), &[], 1);
    let ready = get_local(connector.metrics, "/ready").unwrap();
    assert_eq!(ready.status, 200);
    let json: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert!(json["readyConnections"].as_u64().unwrap() >= 1, "{json}");
    assert!(
        json["connectorId"].as_str().is_some_and(|s| !s.is_empty()),
        "{json}"
    );

    edge.wait_routed(HOST);
    let response = edge.get(HOST, "/hello", 10 * SECOND).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "hello from origin o1 path /hello\n");
    let request_id = response.header("x-request-id").expect("x-request-id");
    let seen = origin
        .seen()
        .into_iter()
        .find(|s| s.path == "/hello")
        .expect("the origin saw /hello");
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert!(
        seen.header("x-forwarded-host")
            .is_some_and(|v| v == HOST || v.starts_with(&format!("{HOST}:"))),
        "X-Forwarded-Host: {:?}",
        seen.headers
    );
    assert_eq!(seen.header("x-request-id"), Some(request_id));

    // Unknown hostnames: the edge has no certificate for them (curl -k), and `localhost`
    // (its default certificate, so this one is fully verified).
    let resolve = format!("unknown.e2e.test:{}:127.0.0.1", edge.public);
    let url = format!("https://unknown.e2e.test:{}/", edge.public);
    let unknown = curl(&["-k", "--resolve", &resolve, &url], 10 * SECOND).unwrap();
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.header("portless-error"), Some("no_route"));
    let localhost = edge.get("localhost", "/", 10 * SECOND).unwrap();
    assert_eq!(localhost.status, 404, "{localhost:?}");
    assert_eq!(localhost.header("portless-error"), Some("no_route"));

    let edge_metrics = get_local(edge.metrics, "/metrics").unwrap();
    assert_eq!(edge_metrics.status, 200);
    assert!(
        edge_metrics.body.contains("portless_edge_requests_total"),
        "{}",
        edge_metrics.body
    );
    let all_up = wait_until(5 * SECOND, || {
        let body = get_local(connector.metrics, "/metrics").ok()?.body;
        body.lines()
            .any(|l| l.trim() == "portless_tunnel_ha_connections 4")
            .then_some(())
    });
    assert!(
        all_up.is_some(),
        "connector metrics lack `portless_tunnel_ha_connections 4`:\n{}",
        get_local(connector.metrics, "/metrics").unwrap().body
    );
}

/// Test 3: Who failed: the origin (502 `origin_unreachable`) or the tunnel (503 `tunnel_down`).
#[test]
fn origin_down_then_tunnel_down() {
    let (edge, credentials, _) = edge_with_tunnel();
    let mut origin = Origin::start("o1");
    let mut connector = Connector::start(&edge, "connector", &credentials, &origin.url(), &[], 1);
    edge.wait_routed(HOST);
    let ok = edge.get(HOST, "/", 10 * SECOND).unwrap();
    assert_eq!(ok.status, 200, "{ok:?}");

    origin.stop();
    let down = edge.get(HOST, "/", 15 * SECOND).unwrap();
    assert_eq!(down.status, 502, "{down:?}");
    assert_eq!(down.header("portless-error"), Some("origin_unreachable"));

    connector.process.signal("TERM");
    connector
        .process
        .wait_exit(10 * SECOND)
        .expect("the connector did not exit within 10 s of SIGTERM");
    let tunnel_down = edge.get(HOST, "/", 15 * SECOND).unwrap();
    assert_eq!(tunnel_down.status, 503, "{tunnel_down:?}");
    assert_eq!(tunnel_down.header("portless-error"), Some("tunnel_down"));
}

/// Test 4: Two replicas; one is SIGKILLed; every following GET still succeeds.
#[test]
fn one_of_two_replicas_killed() {
    let (edge, credentials, _) = edge_with_tunnel();
    let origin_a = Origin::start("a");
    let origin_b = Origin::start("b");
    let mut a = Connector::start(&edge, "replica-a", &credentials, &origin_a.url(), &[], 4);
    let _b = Connector::start(&edge, "replica-b", &credentials, &origin_b.url(), &[], 4);
    let both = wait_until(10 * SECOND, || {
        ready_connections(edge.metrics).filter(|&(_, n)| n >= 8)
    });
    assert!(both.is_some(), "the edge never had 8 connections");
    edge.wait_routed(HOST);

    a.process.signal("KILL");
    a.process.wait_exit(5 * SECOND).expect("SIGKILL not reaped");
    let killed = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let response = edge
            .get(HOST, &format!("/r{i}"), 15 * SECOND)
            .unwrap_or_else(|e| panic!("request {i} after the kill: {e}"));
        assert_eq!(
            response.status, 200,
            "request {i} after the kill: {response:?}"
        );
        assert_eq!(response.header("x-origin"), Some("b"), "request {i}");
        slowest = slowest.max(response.elapsed);
    }
    eprintln!(
        "50 GETs after SIGKILL of one replica: all 200 in {:?}, slowest {slowest:?}",
        killed.elapsed()
    );
    // The edge has dropped the dead replica's connections by now.
    let dropped = wait_until(10 * SECOND, || {
        ready_connections(edge.metrics).filter(|&(_, n)| n == 4)
    });
    assert!(
        dropped.is_some(),
        "edge /ready still counts the killed replica: {:?}",
        ready_connections(edge.metrics)
    );
}

/// Test 5: SIGTERM drains: the in-flight request completes, new requests go to the other replica,
/// the connector exits by itself.
#[test]
fn graceful_shutdown_finishes_in_flight() {
    let (edge, credentials, _) = edge_with_tunnel();
    let origin_a = Origin::start("a");
    let origin_b = Origin::start("b");
    let grace = ["--grace-period", "10s"];
    let mut a = Connector::start(&edge, "replica-a", &credentials, &origin_a.url(), &grace, 4);
    let mut b = Connector::start(&edge, "replica-b", &credentials, &origin_b.url(), &grace, 4);
    edge.wait_routed(HOST);

    let started = Instant::now();
    let slow = {
        let resolve = format!("{HOST}:{}:127.0.0.1", edge.public);
        let url = format!("https://{HOST}:{}/slow", edge.public);
        let ca = edge.ca();
        std::thread::spawn(move || {
            curl(&["--cacert", &ca, "--resolve", &resolve, &url], 15 * SECOND)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // SIGTERM the replica whose origin is serving /slow.
    let serving = wait_until(2 * SECOND, || {
        if origin_a.seen().iter().any(|s| s.path == "/slow") {
            Some("a")
        } else if origin_b.seen().iter().any(|s| s.path == "/slow") {
            Some("b")
        } else {
            None
        }
    })
    .expect("no origin received /slow");
    let (draining, other, other_name) = if serving == "a" {
        (&mut a, &mut b, "b")
    } else {
        (&mut b, &mut a, "a")
    };
    draining.process.signal("TERM");
    let terminated = Instant::now();

    for i in 0..10 {
        let response = edge
            .get(HOST, &format!("/after{i}"), 10 * SECOND)
            .unwrap_or_else(|e| panic!("request {i} after SIGTERM: {e}"));
        assert_eq!(
            response.status, 200,
            "request {i} after SIGTERM: {response:?}"
        );
        assert_eq!(
            response.header("x-origin"),
            Some(other_name),
            "request {i} sent {:?} after SIGTERM went to the draining replica",
            terminated.elapsed()
        );
    }

    let slow = slow.join().unwrap().expect("the slow request failed");
    assert_eq!(slow.status, 200, "{slow:?}");
    let slow_seen = |o: &Origin| -> Vec<Duration> {
        o.seen()
            .iter()
            .filter(|s| s.path == "/slow")
            .map(|s| s.at.duration_since(started))
            .collect()
    };
    assert_eq!(
        slow.header("x-origin"),
        Some(serving),
        "the in-flight /slow answer must come from the draining replica, not a replay (answered after {:?}; /slow reached origin a at {:?}, origin b at {:?})",
        slow.elapsed,
        slow_seen(&origin_a),
        slow_seen(&origin_b)
    );
    assert!(slow.body.contains("path /slow"), "{slow:?}");
    assert!(started.elapsed() >= SLOW);
    let status = draining
        .process
        .wait_exit(10 * SECOND)
        .expect("the draining connector did not exit within 10 s after its last request");
    eprintln!(
        "slow request took {:?}; draining connector exited {:?} after SIGTERM",
        slow.elapsed,
        terminated.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    assert!(other.process.running(), "the other replica stopped");
}

/// Test 5b: the same with a single replica and a 4 MiB answer: everything the origin sends
/// before the grace period ends reaches the client.
#[test]
fn graceful_shutdown_delivers_whole_response() {
    const SIZE: usize = 4 << 20;
    let (edge, credentials, _) = edge_with_tunnel();
    let origin = Origin::start("a");
    let mut connector = Connector::start(
        &edge,
        "replica",
        &credentials,
        &origin.url(),
        &["--grace-period", "10s"],
        4,
    );
    edge.wait_routed(HOST);
    let slow = {
        let resolve = format!("{HOST}:{}:127.0.0.1", edge.public);
        let url = format!("https://{HOST}:{}/slow?bytes={SIZE}", edge.public);
        let ca = edge.ca();
        std::thread::spawn(move || {
            curl(&["--cacert", &ca, "--resolve", &resolve, &url], 15 * SECOND)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    connector.process.signal("TERM");
    let slow = slow.join().unwrap();
    let status = connector.process.wait_exit(10 * SECOND);
    let slow = slow.expect("the in-flight download failed during graceful shutdown");
    assert_eq!(slow.status, 200, "{slow:?}");
    assert_eq!(slow.body.len(), SIZE, "the download was truncated");
    let status = status.expect("the connector did not exit within 10 s");
    assert_eq!(status.code(), Some(0));
}

/// Test 6: Secrets: a group/world-readable credentials file is refused; `--token` works but warns.
#[test]
fn credentials_hygiene() {
    let (edge, credentials, stdout) = edge_with_tunnel();

    let readable = edge.path("readable.json");
    std::fs::copy(&credentials, &readable).unwrap();
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let metrics = format!("127.0.0.1:{}", free_tcp_port());
    let readable_arg = readable.display().to_string();
    let refused = run_portless(
        edge.state_dir(),
        &[
            "tunnel",
            "run",
            "--credentials-file",
            &readable_arg,
            "--url",
            "http://127.0.0.1:9",
            "--metrics",
            &metrics,
        ],
        15 * SECOND,
    );
    assert_ne!(refused.code(), Some(0), "{refused:?}");
    assert!(refused.stderr.contains("chmod 400"), "{refused:?}");

    let token = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Token"))
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    let origin = Origin::start("o1");
    let url = origin.url();
    let connector = Connector::start_with(
        &edge,
        "token-connector",
        &["--token", &token, "--url", &url],
        1,
    );
    edge.wait_routed(HOST);
    let response = edge.get(HOST, "/t", 10 * SECOND).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    let stderr = connector.process.stderr();
    assert!(
        stderr.contains("visible to every user"),
        "no warning about --token:\n{stderr}"
    );
    assert!(!stderr.contains(&token), "the token was logged:\n{stderr}");
}

/// Test 7: `tunnel ingress validate` and `tunnel ingress rule`.
#[test]
fn ingress_commands() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "ingress:\n  - hostname: x.example.com\n    service: http://127.0.0.1:8000\n  - hostname: y.example.com\n    path: ^/a\n    service: http://127.0.0.1:8001\n",
    )
    .unwrap();
    let bad_arg = bad.display().to_string();
    let out = run_portless(
        dir.path(),
        &["tunnel", "ingress", "validate", "--config", &bad_arg],
        10 * SECOND,
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    let message = format!("{}{}", out.stderr, out.stdout);
    // The last rule (line 4) has a hostname: it is not a catch-all.
    assert!(
        message.contains(&format!("{bad_arg}:4")),
        "no file:line in: {message}"
    );
    assert!(message.contains("must match all URLs"), "{message}");
    assert!(!out.stdout.contains("OK"), "{out:?}");

    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "ingress:\n  - hostname: x.example.com\n    path: ^/b\n    service: http://127.0.0.1:8000\n  - hostname: \"*.example.com\"\n    path: ^/a\n    service: http://127.0.0.1:8001\n  - service: http_status:404\n",
    )
    .unwrap();
    let good_arg = good.display().to_string();
    let out = run_portless(
        dir.path(),
        &["tunnel", "ingress", "validate", "--config", &good_arg],
        10 * SECOND,
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "OK", "{out:?}");

    let out = run_portless(
        dir.path(),
        &[
            "tunnel",
            "ingress",
            "rule",
            "https://x.example.com/a",
            "--config",
            &good_arg,
        ],
        10 * SECOND,
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("Matched rule #2"), "{out:?}");
    assert!(out.stdout.contains("http://127.0.0.1:8001"), "{out:?}");
}

/// Flag-style keys of the config format act: `pidfile`, `logfile`, `post-quantum`,
/// `edge-ip-version`, `loglevel` (from the config file, no flags).
#[test]
fn flag_style_keys_from_the_config_file_take_effect() {
    let (edge, credentials, _) = edge_with_tunnel();
    let origin = Origin::start("o1");
    let pidfile = edge.path("connector.pid");
    let logfile = edge.path("logs/connector.log");
    let config = edge.path("config.yml");
    std::fs::write(
        &config,
        format!(
            "credentials-file: {}\npidfile: {}\nlogfile: {}\npost-quantum: true\nedge-ip-version: \"4\"\ningress:\n  - service: {}\n",
            credentials.display(),
            pidfile.display(),
            logfile.display(),
            origin.url()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let mut connector = Connector::start_with(&edge, "flags", &["--config", &config_arg], 4);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, connector.process.pid());
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(log.contains("Registered tunnel connection"), "{log}");
    assert!(log.contains("post-quantum key agreement required"), "{log}");
    assert!(!log.contains("\u{1b}["), "no colour codes in the log file");
    edge.wait_routed(HOST);
    let response = edge.get(HOST, "/", 15 * SECOND).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    connector.process.signal("TERM");
    assert!(connector.process.wait_exit(15 * SECOND).is_some());
    assert!(!pidfile.exists(), "the pid file is removed at exit");

    // `loglevel` from the file applies: at warn, the registration lines are not written.
    let quiet_log = edge.path("quiet.log");
    let quiet = edge.path("quiet.yml");
    std::fs::write(
        &quiet,
        format!(
            "credentials-file: {}\nlogfile: {}\nloglevel: warn\ningress:\n  - service: {}\n",
            credentials.display(),
            quiet_log.display(),
            origin.url()
        ),
    )
    .unwrap();
    let quiet_arg = quiet.display().to_string();
    let mut connector = Connector::start_with(&edge, "quiet", &["--config", &quiet_arg], 4);
    let log = std::fs::read_to_string(&quiet_log).unwrap();
    assert!(
        !log.contains("INFO"),
        "loglevel: warn from the file applies: {log}"
    );
    connector.process.signal("TERM");
    assert!(connector.process.wait_exit(15 * SECOND).is_some());

    // `loglevel` from the file applies: at warn, the registration lines are not written.
    let quiet_log = edge.path("quiet.log");
    let quiet = edge.path("quiet.yml");
    std::fs::write(
        &quiet,
        format!(
            "credentials-file: {}\nlogfile: {}\nloglevel: warn\ningress:\n  - service: {}\n",
            credentials.display(),
            quiet_log.display(),
            origin.url()
        ),
    )
    .unwrap();
    let quiet_arg = quiet.display().to_string();
    let mut connector = Connector::start_with(&edge, "quiet", &["--config", &quiet_arg], 4);
    let log = std::fs::read_to_string(&quiet_log).unwrap();
    assert!(
        !log.contains("INFO"),
        "loglevel: warn from the file applies: {log}"
    );
    connector.process.signal("TERM");
    assert!(connector.process.wait_exit(15 * SECOND).is_some());

    // An edge reachable only over IPv4, asked for over IPv6: a clear refusal at start.
    let six = run_portless(
        edge.state_dir(),
        &[
            "tunnel",
            "run",
            "--credentials-file",
            &credentials.display().to_string(),
            "--url",
            &origin.url(),
            "--edge-ip-version",
            "6",
            "--metrics",
            &format!("127.0.0.1:{}", free_tcp_port()),
        ],
        15 * SECOND,
    );
    assert_ne!(six.code(), Some(0), "{six:?}");
    assert!(six.stderr.contains("has no 6 address"), "{six:?}");
}

/// `portless user add` writes an argon2id user the edge can read, and `portless policy test`
/// explains decisions for that user against the seed rules.
#[test]
fn user_add_then_policy_test_explains_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users_database.yml");
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse battery\n").unwrap();
    let mut add = portless(dir.path());
    add.args([
        "user",
        "add",
        "alice",
        "--email",
        "alice@example.com",
        "--group",
        "admins",
    ])
    .args(["--password-stdin", "--users-file"])
    .arg(&users)
    .stdin(std::fs::File::open(&password).unwrap());
    let out = support::run_captured(add, 30 * SECOND);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("added user alice (argon2id)"),
        "{out:?}"
    );
    let written = std::fs::read_to_string(&users).unwrap();
    assert!(
        written.contains("$argon2id$v=19$m=65536,t=3,p=4$"),
        "{written}"
    );
    assert!(
        !written.contains("correct horse"),
        "the password itself is never written"
    );

    let config = dir.path().join("configuration.yml");
    std::fs::write(
        &config,
        "authentication_backend:\n  file:\n    path: users_database.yml\n\
         access_control:\n  default_policy: deny\n  rules:\n\
         \x20   - domain: www.example.com\n      policy: bypass\n\
         \x20   - domain: [git.example.com, metrics.example.com, ci.example.com]\n      policy: two_factor\n\
         \x20   - domain: admin.example.com\n      policy: two_factor\n      subject: [\"group:admins\"]\n",
    )
    .unwrap();
    let test = |args: &[&str]| {
        let mut command = portless(dir.path());
        command
            .args(["policy", "test"])
            .args(args)
            .arg("--config")
            .arg(&config);
        let out = support::run_captured(command, 30 * SECOND);
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    let admin = test(&["https://ADMIN.example.com./settings", "--user", "alice"]);
    assert!(admin.contains("decision: allow"), "{admin}");
    assert!(admin.contains("by:       rule #3"), "{admin}");
    assert!(
        admin.contains("rule #2 (domain [git.example.com"),
        "{admin}"
    );
    let one_factor = test(&[
        "https://admin.example.com/",
        "--user",
        "alice",
        "--one-factor",
    ]);
    assert!(one_factor.contains("second factor"), "{one_factor}");
    let anonymous = test(&["https://git.example.com/"]);
    assert!(
        anonymous.contains("login required (two factors)"),
        "{anonymous}"
    );
    let other = test(&["https://other.example.com/", "--user", "alice"]);
    assert!(other.contains("decision: deny"), "{other}");
    assert!(other.contains("default_policy deny"), "{other}");
    // A provider's account in the provider's admins group: the group rule admits it; a
    // rule that names nobody (git) does not (fail closed for identities from elsewhere).
    let corp = test(&[
        "https://admin.example.com/",
        "--email",
        "Carol@Example.com",
        "--provider",
        "corp",
        "--group",
        "admins",
    ]);
    // No provider `corp` is configured: judged as one factor (with a warning), so the
    // two-factor admin rule matches on the group and asks for more.
    assert!(corp.contains("decision: second factor required"), "{corp}");
    assert!(corp.contains("by:       rule #3"), "{corp}");
    assert!(
        corp.contains("as user carol@example.com from provider corp (one factor, groups: admins)"),
        "{corp}"
    );
    let pin = test(&[
        "https://git.example.com/",
        "--email",
        "carol@example.com",
        "--provider",
        "email",
    ]);
    assert!(pin.contains("decision: deny"), "{pin}");
    assert!(pin.contains("admits users-file users only"), "{pin}");
}
