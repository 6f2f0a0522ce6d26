//! Helpers for the end-to-end tests: child processes that are always reaped, free ports,
//! `curl` as the HTTP client, a tiny origin server, and an edge/connector built from the
//! real `portless` binary.

#![allow(dead_code, missing_docs)]

pub mod origin;

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The `portless` binary under test.
pub const PORTLESS: &str = env!("CARGO_BIN_EXE_portless");

/// Polls `check` every 50 ms until it returns `Some`, or gives up after `timeout`.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1 (the OS picks it; the listener is dropped at once).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// A port that is free on 127.0.0.1 for both TCP and UDP (the tunnel listener needs both).
pub fn free_tcp_udp_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP after 50 tries");
}

/// A `portless` command with a clean environment: no inherited `TUNNEL_*`/`PORTLESS_*`
/// settings, `HOME` inside the test's directory, plain log lines.
pub fn portless(home: &Path) -> Command {
    let mut command = Command::new(PORTLESS);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("TUNNEL_") || key.starts_with("PORTLESS_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Runs a short `portless` command to completion (at most `timeout`), capturing its output.
pub fn run_portless(home: &Path, args: &[&str], timeout: Duration) -> Output {
    let mut command = portless(home);
    command.args(args);
    run_captured(command, timeout)
}

/// The outcome of a finished command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `command` with stdout/stderr in files, killing it after `timeout`.
pub fn run_captured(mut command: Command, timeout: Duration) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    command
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let mut process = Proc::spawn_command("command", command);
    let status = process.wait_exit(timeout).unwrap_or_else(|| {
        panic!("{:?} did not finish within {timeout:?}", process.name);
    });
    Output {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// A child process started by a test; killed (SIGKILL, by its PID) and reaped on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    stdout: Option<PathBuf>,
    stderr: Option<PathBuf>,
    exited: Option<ExitStatus>,
}

static SPAWNED: AtomicUsize = AtomicUsize::new(0);

impl Proc {
    /// Spawns `command` with stdout and stderr written to files in `log_dir`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Proc {
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let stdout = log_dir.join(format!("{name}-{n}.stdout"));
        let stderr = log_dir.join(format!("{name}-{n}.stderr"));
        command
            .stdout(File::create(&stdout).expect("stdout log"))
            .stderr(File::create(&stderr).expect("stderr log"));
        let mut process = Proc::spawn_command(name, command);
        process.stdout = Some(stdout);
        process.stderr = Some(stderr);
        process
    }

    fn spawn_command(name: &str, mut command: Command) -> Proc {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            stdout: None,
            stderr: None,
            exited: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to this process only, by PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -s {signal} {} failed", self.pid());
    }

    /// Whether the process is still running (reaps it if it exited).
    pub fn running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exited = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || if self.running() { None } else { self.exited })
    }

    pub fn stdout(&self) -> String {
        self.stdout
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The last `lines` lines of stderr, for failure messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = self.stderr();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() && (self.stdout.is_some() || self.stderr.is_some()) {
            eprintln!(
                "---- {} (pid {}) stdout ----\n{}\n---- {} stderr (tail) ----\n{}",
                self.name,
                self.pid(),
                self.stdout(),
                self.name,
                self.stderr_tail(40)
            );
        }
    }
}

/// What `curl` got back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub elapsed: Duration,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Runs `curl -sS --max-time MAX ARGS...`; `Err` holds curl's error when it got no response.
pub fn curl(args: &[&str], max_time: Duration) -> Result<Response, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let headers_path = dir.path().join("headers");
    let body_path = dir.path().join("body");
    let mut command = Command::new("curl");
    command
        .arg("-sS")
        .arg("--max-time")
        .arg(format!("{:.1}", max_time.as_secs_f64()))
        .arg("-D")
        .arg(&headers_path)
        .arg("-o")
        .arg(&body_path)
        .args(args)
        .stdin(Stdio::null());
    let started = Instant::now();
    let output = run_captured(command, max_time + Duration::from_secs(5));
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "curl {args:?} failed ({}): {}",
            output.status,
            output.stderr.trim()
        ));
    }
    let head = std::fs::read_to_string(&headers_path).unwrap_or_default();
    let body = std::fs::read_to_string(&body_path).unwrap_or_default();
    parse_head(&head, body, elapsed)
        .ok_or_else(|| format!("curl {args:?}: cannot parse the response head {head:?}"))
}

/// Parses the last header block written by `curl -D` (1xx blocks come first).
fn parse_head(head: &str, body: String, elapsed: Duration) -> Option<Response> {
    let block = head
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()?;
    let mut lines = block.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Response {
        status,
        headers,
        body,
        elapsed,
    })
}

/// Plain-HTTP GET on 127.0.0.1:`port` (metrics and health endpoints).
pub fn get_local(port: u16, path: &str) -> Result<Response, String> {
    curl(
        &[&format!("http://127.0.0.1:{port}{path}")],
        Duration::from_secs(5),
    )
}

/// A running `portless edge` with its own state directory and ports.
pub struct Edge {
    pub dir: tempfile::TempDir,
    pub process: Proc,
    pub public: u16,
    pub tunnel: u16,
    pub metrics: u16,
}

impl Edge {
    /// Starts an edge on free ports (picking new ones if another process took them first)
    /// and waits until its health endpoint answers.
    pub fn start() -> Edge {
        Edge::start_with(|_, _| Vec::new())
    }

    /// Like [`Edge::start`], with more arguments: `extra(state_dir, public_port)` runs
    /// before each attempt (to write files naming the port) and returns them.
    pub fn start_with(extra: impl Fn(&Path, u16) -> Vec<String>) -> Edge {
        let dir = tempfile::tempdir().expect("state dir");
        let mut last_error = String::new();
        for _ in 0..5 {
            let public = free_tcp_port();
            let tunnel = free_tcp_udp_port();
            let metrics = free_tcp_port();
            let mut command = portless(dir.path());
            command
                .arg("edge")
                .arg("--state-dir")
                .arg(dir.path())
                .arg("--listen")
                .arg(format!("127.0.0.1:{public}"))
                .arg("--tunnel-listen")
                .arg(format!("127.0.0.1:{tunnel}"))
                .arg("--metrics")
                .arg(format!("127.0.0.1:{metrics}"))
                .arg("--grace-period")
                .arg("5s")
                .args(extra(dir.path(), public));
            let mut process = Proc::spawn("edge", command, dir.path());
            let up = wait_until(Duration::from_secs(10), || {
                if !process.running() {
                    return Some(false);
                }
                get_local(metrics, "/healthz")
                    .ok()
                    .filter(|r| r.status == 200)
                    .map(|_| true)
            });
            match up {
                Some(true) => {
                    return Edge {
                        dir,
                        process,
                        public,
                        tunnel,
                        metrics,
                    };
                }
                Some(false) if process.stderr().contains("cannot listen") => {
                    // A port was taken between picking and binding: try other ports.
                    last_error = process.stderr();
                }
                _ => panic!(
                    "the edge did not start within 10 s:\n{}",
                    process.stderr_tail(30)
                ),
            }
        }
        panic!("the edge could not bind free ports after 5 tries:\n{last_error}");
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca(&self) -> String {
        self.path("ca.pem").display().to_string()
    }

    /// Runs `portless tunnel ARGS... --state-dir D`.
    pub fn tunnel_cmd(&self, args: &[&str]) -> Output {
        let state = self.state_dir().display().to_string();
        let mut all: Vec<&str> = vec!["tunnel"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--state-dir", &state]);
        run_portless(self.state_dir(), &all, Duration::from_secs(20))
    }

    /// `tunnel create NAME --credentials-file D/NAME.json`: returns the file and stdout.
    pub fn create_tunnel(&self, name: &str) -> (PathBuf, String) {
        let credentials = self.path(&format!("{name}.json"));
        let cred = credentials.display().to_string();
        let out = self.tunnel_cmd(&["create", name, "--credentials-file", &cred]);
        assert_eq!(out.code(), Some(0), "tunnel create failed: {out:?}");
        (credentials, out.stdout)
    }

    /// `tunnel route HOST NAME`.
    pub fn route(&self, host: &str, tunnel: &str) {
        let out = self.tunnel_cmd(&["route", host, tunnel]);
        assert_eq!(out.code(), Some(0), "tunnel route failed: {out:?}");
    }

    /// `curl --cacert D/ca.pem --resolve HOST:PORT:127.0.0.1 https://HOST:PORT{path}`.
    pub fn get(&self, host: &str, path: &str, max_time: Duration) -> Result<Response, String> {
        let resolve = format!("{host}:{}:127.0.0.1", self.public);
        let url = format!("https://{host}:{}{path}", self.public);
        curl(
            &["--cacert", &self.ca(), "--resolve", &resolve, &url],
            max_time,
        )
    }

    /// Waits until the edge has loaded the route for `host` (it re-reads routes every
    /// second): the request completes with something other than `no_route`.
    pub fn wait_routed(&self, host: &str) {
        let routed = wait_until(Duration::from_secs(10), || {
            self.get(host, "/", Duration::from_secs(5))
                .ok()
                .filter(|r| r.header("portless-error") != Some("no_route"))
        });
        assert!(
            routed.is_some(),
            "the edge never served a route for {host}:\n{}",
            self.process.stderr_tail(20)
        );
    }
}

/// A running `portless tunnel run`.
pub struct Connector {
    pub process: Proc,
    pub metrics: u16,
}

impl Connector {
    /// Starts `portless tunnel run --credentials-file F --url URL EXTRA...` and waits until
    /// `/ready` reports `min_ready` registered connections.
    pub fn start(
        edge: &Edge,
        name: &str,
        credentials: &Path,
        url: &str,
        extra: &[&str],
        min_ready: u64,
    ) -> Connector {
        let credentials = credentials.display().to_string();
        let mut args = vec!["--credentials-file", credentials.as_str(), "--url", url];
        args.extend_from_slice(extra);
        Connector::start_with(edge, name, &args, min_ready)
    }

    /// Starts `portless tunnel run ARGS... --metrics 127.0.0.1:M` (M free) and waits until
    /// `/ready` reports `min_ready` registered connections.
    pub fn start_with(edge: &Edge, name: &str, args: &[&str], min_ready: u64) -> Connector {
        let mut last_error = String::new();
        for _ in 0..5 {
            let metrics = free_tcp_port();
            let mut command = portless(edge.state_dir());
            command
                .args(["tunnel", "run"])
                .args(args)
                .args(["--metrics", &format!("127.0.0.1:{metrics}")]);
            let mut process = Proc::spawn(name, command, edge.state_dir());
            let ready = wait_until(Duration::from_secs(15), || {
                if !process.running() {
                    return Some(false);
                }
                let (status, n) = ready_connections(metrics)?;
                (status == 200 && n >= min_ready).then_some(true)
            });
            match ready {
                Some(true) => return Connector { process, metrics },
                Some(false) if process.stderr().contains("cannot serve metrics") => {
                    last_error = process.stderr();
                }
                _ => panic!(
                    "connector {name} not ready with {min_ready} connections within 15 s:\n{}\n-- edge --\n{}",
                    process.stderr_tail(30),
                    edge.process.stderr_tail(20)
                ),
            }
        }
        panic!("connector {name} could not bind a metrics port after 5 tries:\n{last_error}");
    }
}

/// `GET /ready` on 127.0.0.1:`port`: the status and `readyConnections`.
pub fn ready_connections(port: u16) -> Option<(u16, u64)> {
    let response = get_local(port, "/ready").ok()?;
    let json: serde_json::Value = serde_json::from_str(&response.body).ok()?;
    Some((response.status, json.get("readyConnections")?.as_u64()?))
}
