//! The real `iperf3` (Debian package), as server and client, for throughput through public
//! TCP ports. Missing `iperf3` skips (with a message) unless `PORTLESS_REQUIRE_IPERF3=1`
//! (as `.ci/run` sets), where it fails, like the peers in [`crate::peers`].

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Whether `iperf3` runs here; panics when it does not and `PORTLESS_REQUIRE_IPERF3=1`.
pub fn available() -> bool {
    let ok = Command::new("iperf3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("PORTLESS_REQUIRE_IPERF3").as_deref() != Ok("1"),
            "PORTLESS_REQUIRE_IPERF3=1 but iperf3 is not installed (apt-get install iperf3)"
        );
        eprintln!("SKIPPED: iperf3 is not installed (apt-get install iperf3)");
    }
    ok
}

/// A running `iperf3 -s` on loopback; killed (by its PID) when dropped.
pub struct Iperf3Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Iperf3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Iperf3Server {
    /// Starts a server on a free loopback port and waits until it listens.
    pub fn start() -> Iperf3Server {
        // iperf3 takes a port number, not a socket: find a free one.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new("iperf3")
            .args([
                "-s",
                "-B",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--forceflush",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start iperf3 -s");
        let stdout = child.stdout.take().expect("iperf3 stdout");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Server listening") => break,
                Some(Ok(_)) => {}
                _ => panic!("iperf3 -s exited before listening"),
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Iperf3Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

/// What one client run reported (`-J`).
#[derive(Debug)]
pub struct Iperf3Result {
    /// Bytes the receiving side counted.
    pub bytes_received: u64,
    /// The run's `error` field, if it reported one.
    pub error: Option<String>,
}

/// Runs `iperf3 -c` against `target` sending `bytes` (server to client with `reverse`),
/// and parses its JSON report. Blocking: call it from `spawn_blocking`.
pub fn run_client(target: SocketAddr, bytes: u64, reverse: bool) -> Iperf3Result {
    let mut command = Command::new("iperf3");
    command.args([
        "-c",
        &target.ip().to_string(),
        "-p",
        &target.port().to_string(),
        "-n",
        &bytes.to_string(),
        "-J",
    ]);
    if reverse {
        command.arg("-R");
    }
    let output = command.output().expect("run iperf3 -c");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 -c printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Iperf3Result {
        bytes_received: report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0),
        error: report["error"].as_str().map(str::to_owned),
    }
}
