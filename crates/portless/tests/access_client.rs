//! The access client end to end: the real `portless` binary as edge (with access control),
//! connector and client (`portless access ...`), with the real OpenSSH client and Debian's
//! `sshd` on loopback, curl as the browser through the real portal forms, and curl again for
//! `access curl`.
//!
//! * SSH with `ProxyCommand='portless access tcp ...'` runs a command with a service token
//!   from the environment, and is refused without one (with the client's message saying why);
//! * `access tcp --url` carries connections to a plain TCP echo service;
//! * `access login` (the browser started through `$BROWSER`, driven through the portal's
//!   login form) stores a token (mode 0600) that `access token` prints and `access curl`
//!   uses; the token is refused on another host, and an application assertion is not
//!   accepted as a CLI token.
//!
//! OpenSSH comes from the system (`openssh-server`, `openssh-client`). When it is missing
//! the SSH test is skipped with a message, unless `PORTLESS_REQUIRE_SSH=1` (CI) makes it a
//! failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(test)]
mod support;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::origin::Origin;
use support::{
    Connector, Edge, Output, Proc, Response, curl, free_tcp_port, portless, run_captured,
    run_portless, wait_until,
};

const DOMAIN: &str = "access.test";
const PORTAL: &str = "auth.access.test";
/// An HTTP application for people.
const APP: &str = "app.access.test";
/// Another HTTP application alice may use (a token for APP must not open it).
const OTHER: &str = "other.access.test";
/// SSH behind the connector's `ssh://` rule.
const SSH: &str = "ssh.access.test";
/// A TCP echo behind the connector's `tcp://` rule.
const ECHO: &str = "echo.access.test";

const TIMEOUT: Duration = Duration::from_secs(20);

/// alice (argon2id with small parameters, as in the other end-to-end tests).
const USERS: &str = r#"users:
  alice:
    displayname: Alice Doe
    password: "$argon2id$v=19$m=1024,t=1,p=1$bkYIsLU4Pn5/m6iCnqm3dw$lD7R0FzMSOCrVonCFhn2xR/KPGqNTXVONcxVnxUogIs"
    email: alice@example.test
    groups: [admins, dev]
"#;
const ALICE_PASSWORD: &str = "alice-password";

/// The machine token opens the raw services; alice opens everything.
const RULES: &str = r"access_control:
  default_policy: deny
  rules:
    - domain: [ssh.access.test, echo.access.test]
      subject: ['token:machine']
      policy: one_factor
    - domain: [app.access.test, other.access.test, ssh.access.test, echo.access.test]
      subject: ['user:alice']
      policy: one_factor
";

/// The edge with access control, one connector serving every hostname, the origin and
/// the raw services behind it, and the machine's service token.
struct World {
    edge: Edge,
    origin: Origin,
    _connector: Connector,
    files: tempfile::TempDir,
    token_id: String,
    token_secret: String,
}

impl World {
    /// Starts everything; `ssh` is the port of an `sshd` (or any TCP service) for [`SSH`].
    fn start(ssh: u16, echo: u16) -> World {
        let edge = Edge::start_with(|dir, port| {
            let users = dir.join("users_database.yml");
            std::fs::write(&users, USERS).unwrap();
            let config = dir.join("configuration.yml");
            std::fs::write(
                &config,
                format!(
                    "authentication_backend:\n  file:\n    path: {users}\n\
                     session:\n  cookies:\n    - domain: {DOMAIN}\n      authelia_url: https://{PORTAL}:{port}\n\
                     {RULES}",
                    users = users.display()
                ),
            )
            .unwrap();
            vec![
                "--access-config".to_owned(),
                config.display().to_string(),
                "--cli-token-lifetime".to_owned(),
                "2h".to_owned(),
            ]
        });
        let (credentials, _) = edge.create_tunnel("web");
        for host in [APP, OTHER, SSH, ECHO] {
            edge.route(host, "web");
        }
        let origin = Origin::start("app");
        let config = edge.path("connector.yml");
        std::fs::write(
            &config,
            format!(
                "credentials-file: {}\ningress:\n  - hostname: {SSH}\n    service: ssh://127.0.0.1:{ssh}\n  - hostname: {ECHO}\n    service: tcp://127.0.0.1:{echo}\n  - hostname: {APP}\n    service: {url}\n  - hostname: {OTHER}\n    service: {url}\n  - service: http_status:404\n",
                credentials.display(),
                url = origin.url()
            ),
        )
        .unwrap();
        let config_arg = config.display().to_string();
        let connector = Connector::start_with(&edge, "connector", &["--config", &config_arg], 4);
        let state = edge.state_dir().display().to_string();
        let created = run_portless(
            edge.state_dir(),
            &["token", "create", "machine", "--state-dir", &state],
            TIMEOUT,
        );
        assert_eq!(created.code(), Some(0), "token create: {created:?}");
        let value = |label: &str| {
            created
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {label:?} in {}", created.stdout))
        };
        let token_id = value("Client id:");
        let token_secret = value("Client secret:");
        let world = World {
            edge,
            origin,
            _connector: connector,
            files: tempfile::tempdir().unwrap(),
            token_id,
            token_secret,
        };
        // Routed: anonymous requests reach the policy (and get 401), not `no_route`.
        let routed = wait_until(TIMEOUT, || {
            world
                .edge
                .get(APP, "/", TIMEOUT)
                .ok()
                .filter(|r| r.status == 401)
        });
        assert!(
            routed.is_some(),
            "{APP} never reached its policy:\n{}",
            world.edge.process.stderr_tail(20)
        );
        world
    }

    /// Where the client keeps its tokens (`XDG_CONFIG_HOME`).
    fn config_home(&self) -> PathBuf {
        self.files.path().join("config")
    }

    fn token_file(&self, host: &str) -> PathBuf {
        self.config_home().join("portless/tokens").join(host)
    }

    /// `portless ARGS` as the client: its own config directory, the edge's CA.
    fn client(&self, args: &[&str]) -> Command {
        let mut command = portless(self.files.path());
        command
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("PORTLESS_ACCESS_CA_FILE", self.edge.ca())
            .args(args);
        command
    }

    /// `--edge 127.0.0.1:PORT`.
    fn edge_addr(&self) -> String {
        format!("127.0.0.1:{}", self.edge.public)
    }

    /// The application URL as the client names it (the edge listens on a test port).
    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.edge.public)
    }

    /// curl's arguments that make the test hostnames resolve to the edge and trust its CA.
    fn curl_args(&self) -> Vec<String> {
        let mut args = vec!["--cacert".to_owned(), self.edge.ca()];
        for host in [PORTAL, APP, OTHER, ECHO] {
            args.push("--resolve".to_owned());
            args.push(format!("{host}:{}:127.0.0.1", self.edge.public));
        }
        args
    }
}

// === SSH ===

/// The OpenSSH programs, or `None` after saying why the test is skipped (a failure
/// instead when `PORTLESS_REQUIRE_SSH=1`).
fn openssh() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let find = |name: &str| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/bin".into()])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    match (find("sshd"), find("ssh"), find("ssh-keygen")) {
        (Some(sshd), Some(ssh), Some(keygen)) => Some((sshd, ssh, keygen)),
        _ => {
            let required = std::env::var("PORTLESS_REQUIRE_SSH").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "OpenSSH is not installed and PORTLESS_REQUIRE_SSH=1: apt-get install openssh-server openssh-client"
            );
            eprintln!(
                "SKIPPED: OpenSSH is not installed (apt-get install openssh-server openssh-client); \
                 set PORTLESS_REQUIRE_SSH=1 to make this a failure"
            );
            None
        }
    }
}

/// A running `sshd -D -e` on 127.0.0.1 with a throw-away host key and one authorized key.
struct Sshd {
    port: u16,
    dir: tempfile::TempDir,
    _process: Proc,
}

impl Sshd {
    fn start(sshd: &Path, keygen: &Path) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        for key in ["host_key", "user_key"] {
            let status = Command::new(keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(key))
                .status()
                .unwrap();
            assert!(status.success(), "ssh-keygen failed");
        }
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        if is_root() {
            // sshd run by root wants its privilege separation directory, which Debian's
            // service unit creates at boot (RuntimeDirectory=sshd); a container has none.
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let d = dir.path().display();
        let mut last = String::new();
        for attempt in 0..5 {
            let port = free_tcp_port();
            let config = dir.path().join(format!("sshd_config{attempt}"));
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                     PidFile {d}/sshd{attempt}.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
                ),
            )
            .unwrap();
            let mut command = Command::new(sshd);
            command.arg("-D").arg("-e").arg("-f").arg(&config);
            let mut process = Proc::spawn("sshd", command, dir.path());
            let up = wait_until(Duration::from_secs(10), || {
                if !process.running() {
                    return Some(false);
                }
                TcpStream::connect(("127.0.0.1", port)).ok().map(|_| true)
            });
            match up {
                Some(true) => {
                    return Sshd {
                        port,
                        dir,
                        _process: process,
                    };
                }
                Some(false) if process.stderr().contains("Address already in use") => {
                    last = process.stderr();
                }
                _ => panic!("sshd did not start:\n{}", process.stderr_tail(30)),
            }
        }
        panic!("sshd could not bind a free port after 5 tries:\n{last}");
    }

    /// `known_hosts` naming the tunnel hostname with this server's key, so the client
    /// checks that the key it gets through the edge is this sshd's.
    fn known_hosts(&self) -> PathBuf {
        let key = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let path = self.dir.path().join("known_hosts");
        std::fs::write(&path, format!("{SSH} {key}")).unwrap();
        path
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A TCP echo on 127.0.0.1: each connection gets its bytes back, and its write side closed
/// after the client's.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buffer[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// `ssh -o ProxyCommand='portless access tcp ...' user@SSH echo hello`, with `env` set.
fn ssh_echo(world: &World, ssh: &Path, server: &Sshd, env: &[(&str, &str)]) -> Output {
    let proxy = format!(
        "{} access tcp --hostname {SSH} --edge {} --ca-file {}",
        support::PORTLESS,
        world.edge_addr(),
        world.edge.ca()
    );
    let mut command = Command::new(ssh);
    command
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!("ProxyCommand={proxy}"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            server.known_hosts().display()
        ))
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-i")
        .arg(server.dir.path().join("user_key"))
        .arg(format!("{}@{SSH}", user_name()))
        .args(["echo", "hello"])
        .env("XDG_CONFIG_HOME", world.config_home());
    for key in [
        "PORTLESS_SERVICE_TOKEN_ID",
        "PORTLESS_SERVICE_TOKEN_SECRET",
        "TUNNEL_SERVICE_TOKEN_ID",
        "TUNNEL_SERVICE_TOKEN_SECRET",
    ] {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    run_captured(command, TIMEOUT)
}

#[test]
fn ssh_through_the_edge_with_a_service_token_and_refused_without() {
    let Some((sshd, ssh, keygen)) = openssh() else {
        return;
    };
    let server = Sshd::start(&sshd, &keygen);
    let world = World::start(server.port, echo_server());

    let with_token = ssh_echo(
        &world,
        &ssh,
        &server,
        &[
            ("PORTLESS_SERVICE_TOKEN_ID", &world.token_id),
            ("PORTLESS_SERVICE_TOKEN_SECRET", &world.token_secret),
        ],
    );
    assert_eq!(
        with_token.code(),
        Some(0),
        "ssh with a service token: {with_token:?}"
    );
    assert_eq!(with_token.stdout, "hello\n", "{with_token:?}");

    // The incumbent's variable names work too.
    let incumbent = ssh_echo(
        &world,
        &ssh,
        &server,
        &[
            ("TUNNEL_SERVICE_TOKEN_ID", &world.token_id),
            ("TUNNEL_SERVICE_TOKEN_SECRET", &world.token_secret),
        ],
    );
    assert_eq!(incumbent.stdout, "hello\n", "{incumbent:?}");

    let without = ssh_echo(&world, &ssh, &server, &[]);
    assert_ne!(without.code(), Some(0), "ssh without a token: {without:?}");
    assert!(!without.stdout.contains("hello"), "{without:?}");
    assert!(
        without.stderr.contains("sign-in required")
            && without.stderr.contains("portless access login")
            && without.stderr.contains("service token"),
        "the client says why and how to fix it: {without:?}"
    );

    let wrong = ssh_echo(
        &world,
        &ssh,
        &server,
        &[
            ("PORTLESS_SERVICE_TOKEN_ID", &world.token_id),
            ("PORTLESS_SERVICE_TOKEN_SECRET", "not-the-secret"),
        ],
    );
    assert_ne!(wrong.code(), Some(0), "ssh with a wrong secret: {wrong:?}");
    assert!(
        wrong.stderr.contains("403") && wrong.stderr.contains("check the service token"),
        "{wrong:?}"
    );
}

// === TCP listener ===

#[test]
fn tcp_listener_carries_each_connection_to_the_echo_service() {
    let world = World::start(free_tcp_port(), echo_server());
    let port = free_tcp_port();
    let listen = format!("127.0.0.1:{port}");
    let edge = world.edge_addr();
    let mut command = world.client(&[
        "access",
        "tcp",
        "--hostname",
        ECHO,
        "--url",
        &listen,
        "--edge",
        &edge,
    ]);
    command
        .env("PORTLESS_SERVICE_TOKEN_ID", &world.token_id)
        .env("PORTLESS_SERVICE_TOKEN_SECRET", &world.token_secret);
    let mut client = Proc::spawn("access-tcp", command, world.files.path());
    let listening = wait_until(TIMEOUT, || {
        assert!(client.running(), "access tcp exited:\n{}", client.stderr());
        client.stderr().contains("Listening on").then_some(())
    });
    assert!(listening.is_some(), "{}", client.stderr());
    for round in 0..2 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let message = format!("ping {round} through the edge\n").repeat(1000);
        stream.write_all(message.as_bytes()).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut back = String::new();
        stream.read_to_string(&mut back).unwrap();
        assert_eq!(
            back.len(),
            message.len(),
            "round {round}: {}",
            client.stderr()
        );
        assert_eq!(back, message, "round {round}");
    }
    client.signal("TERM");
    assert!(
        client.wait_exit(TIMEOUT).is_some(),
        "access tcp stops on SIGTERM"
    );
}

/// Sends `message` through the listener at `port`, finishes sending, and returns what came
/// back before the close.
fn through_listener(port: u16, message: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(message.as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    let _ = stream.read_to_string(&mut back);
    back
}

#[test]
fn a_running_tcp_listener_uses_a_login_made_after_it_started() {
    let world = World::start(free_tcp_port(), echo_server());
    let port = free_tcp_port();
    let listen = format!("127.0.0.1:{port}");
    let edge = world.edge_addr();
    let command = world.client(&[
        "access",
        "tcp",
        "--hostname",
        ECHO,
        "--url",
        &listen,
        "--edge",
        &edge,
    ]);
    let mut client = Proc::spawn("access-tcp", command, world.files.path());
    let listening = wait_until(TIMEOUT, || {
        assert!(client.running(), "access tcp exited:\n{}", client.stderr());
        client.stderr().contains("Listening on").then_some(())
    });
    assert!(listening.is_some(), "{}", client.stderr());
    // Not signed in yet: the edge refuses, the connection closes with nothing back.
    assert_eq!(through_listener(port, "before\n"), "");
    let refused = wait_until(TIMEOUT, || {
        client.stderr().contains("sign-in required").then_some(())
    });
    assert!(refused.is_some(), "{}", client.stderr());
    // Signed in while the listener runs: the next connection carries the new token.
    let browser = Browser::new(&world);
    login(&world, &browser, ECHO);
    assert_eq!(
        through_listener(port, "after\n"),
        "after\n",
        "{}",
        client.stderr()
    );
    client.signal("TERM");
    assert!(
        client.wait_exit(TIMEOUT).is_some(),
        "access tcp stops on SIGTERM"
    );
}

// === Login, token, curl ===

/// A browser for the test: curl with a cookie jar, the test names resolved to the edge.
struct Browser<'a> {
    world: &'a World,
    jar: PathBuf,
}

impl<'a> Browser<'a> {
    fn new(world: &'a World) -> Browser<'a> {
        let jar = world.files.path().join("cookies.jar");
        std::fs::write(&jar, "").unwrap();
        Browser { world, jar }
    }

    fn request(&self, url: &str, extra: &[&str]) -> Response {
        let jar = self.jar.display().to_string();
        let mut args: Vec<String> = self.world.curl_args();
        args.extend(["-b".to_owned(), jar.clone(), "-c".to_owned(), jar]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(url.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args, TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    fn navigate(&self, url: &str) -> Response {
        self.request(url, &["-H", "Accept: text/html"])
    }

    /// Follows redirects from `url` like a browser (at most 10); returns every step.
    fn follow(&self, url: &str, first: Response) -> Vec<(String, Response)> {
        let mut steps = vec![(url.to_owned(), first)];
        for _ in 0..10 {
            let (url, last) = steps.last().unwrap();
            if !(300..400).contains(&last.status) {
                break;
            }
            let next = absolute(url, last.header("location").expect("Location"));
            let response = self.navigate(&next);
            steps.push((next, response));
        }
        steps
    }
}

/// `location` made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("https://") || location.starts_with("http://") {
        return location.to_owned();
    }
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| i + after_scheme);
    format!("{}{location}", &base[..end])
}

/// The value of hidden input `name` on a portal page.
fn input(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    let end = body[start..].find('"').unwrap() + start;
    body[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// `portless access login` for `host`, its browser (a `$BROWSER` script that writes the URL
/// down) driven through the portal's login form by [`Browser`]. Returns the steps.
fn login(world: &World, browser: &Browser<'_>, host: &str) -> Vec<(String, Response)> {
    let script = world.files.path().join("browser.sh");
    let opened = world.files.path().join(format!("opened-{host}"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > {}.tmp && mv {0}.tmp {0}\n",
            opened.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = world.url(host, "/");
    let mut command = world.client(&["access", "login", &url]);
    command.env("BROWSER", &script);
    let mut cli = Proc::spawn("access-login", command, world.files.path());
    let start = wait_until(TIMEOUT, || std::fs::read_to_string(&opened).ok())
        .unwrap_or_else(|| panic!("the browser was never started:\n{}", cli.stderr()));
    assert!(
        start.starts_with(&world.url(
            host,
            "/cdn-cgi/access/cli?callback=http%3A%2F%2F127.0.0.1%3A"
        )),
        "{start}"
    );
    assert!(cli.stderr().contains(&start), "the URL is printed too");
    // A connection that sends nothing (a browser's preconnect) must not hold up the
    // callback: the client reads each connection on its own, so the login ends well before
    // its 10 s read timeout would have closed this one.
    let callback_port: u16 = start
        .split("127.0.0.1%3A")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no callback port in {start}"));
    let silent = std::net::TcpStream::connect(("127.0.0.1", callback_port)).unwrap();
    let silent_since = std::time::Instant::now();
    let first = browser.navigate(&start);
    assert_eq!(
        first.status, 302,
        "anonymous: sent to the portal: {first:?}"
    );
    let portal = absolute(&start, first.header("location").unwrap());
    assert!(portal.starts_with(&world.url(PORTAL, "/")), "{portal}");
    let page = browser.navigate(&portal);
    assert_eq!(page.status, 200, "the login page: {page:?}");
    let origin = format!("Origin: {}", world.url(PORTAL, ""));
    let fields = [
        "username=alice".to_owned(),
        format!("password={ALICE_PASSWORD}"),
        format!("csrf={}", input(&page.body, "csrf")),
        format!("rd={}", input(&page.body, "rd")),
    ];
    let mut extra: Vec<&str> = vec!["-H", origin.as_str()];
    for field in &fields {
        extra.extend(["--data-urlencode", field.as_str()]);
    }
    let login_url = world.url(PORTAL, "/login");
    let posted = browser.request(&login_url, &extra);
    let steps = browser.follow(&login_url, posted);
    let (last_url, last) = steps.last().unwrap();
    assert!(
        last_url.starts_with("http://127.0.0.1:") && last.status == 200,
        "the browser ends on the client's callback: {steps:#?}"
    );
    assert!(last.body.contains("Signed in"), "{last:?}");
    let status = cli.wait_exit(TIMEOUT).expect("access login exits");
    assert!(status.success(), "access login: {}", cli.stderr());
    assert!(cli.stdout().contains("token saved to"), "{}", cli.stdout());
    assert!(
        silent_since.elapsed() < std::time::Duration::from_secs(8),
        "the callback waited behind a silent connection"
    );
    drop(silent);
    steps
}

/// The claims of a JWT, read without checking it (the edge checks it).
fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn client_output(world: &World, args: &[&str]) -> Output {
    run_captured(world.client(args), TIMEOUT)
}

#[test]
fn login_stores_a_token_that_token_and_curl_use() {
    let world = World::start(free_tcp_port(), echo_server());
    let app = world.url(APP, "/whoami");

    // Before login: a clear error, no request.
    let before = client_output(&world, &["access", "token", &app]);
    assert_ne!(before.code(), Some(0));
    assert!(
        before.stderr.contains("portless access login"),
        "{before:?}"
    );

    let browser = Browser::new(&world);
    let steps = login(&world, &browser, APP);
    let minted = steps
        .iter()
        .find(|(url, _)| url.contains("/cdn-cgi/access/cli?"))
        .map(|(_, r)| r)
        .expect("the mint step");
    assert_eq!(
        minted.header("cache-control"),
        Some("no-store"),
        "{minted:?}"
    );

    let file = world.token_file(APP);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600, "the token file is private");
    assert_eq!(mode(file.parent().unwrap()), 0o700, "so is its directory");
    let stored = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let claims = jwt_claims(&stored);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        7200,
        "the edge's --cli-token-lifetime: {claims}"
    );

    let printed = client_output(&world, &["access", "token", &app]);
    assert_eq!(printed.code(), Some(0), "{printed:?}");
    assert_eq!(printed.stdout.trim(), stored);

    // `access curl`: curl's own arguments pass through; the origin sees alice, not the token.
    let mut args: Vec<&str> = vec![
        "access",
        "curl",
        &app,
        "-sS",
        "-o",
        "-",
        "-w",
        "\\n%{http_code}",
    ];
    let curl_args = world.curl_args();
    args.extend(curl_args.iter().map(String::as_str));
    let fetched = client_output(&world, &args);
    assert_eq!(fetched.code(), Some(0), "{fetched:?}");
    assert!(fetched.stdout.ends_with("\n200"), "{fetched:?}");
    let seen = world
        .origin
        .seen()
        .into_iter()
        .rfind(|s| s.path == "/whoami")
        .expect("the origin was reached");
    assert_eq!(seen.header("remote-user"), Some("alice"), "{seen:?}");
    assert_eq!(
        seen.header("cf-access-token"),
        None,
        "the token never reaches the origin"
    );
    let assertion = seen
        .header("cf-access-jwt-assertion")
        .expect("the origin gets an assertion")
        .to_owned();

    // curl's exit code is passed on (22: --fail on an HTTP error).
    let mut failing: Vec<&str> = vec![
        "access",
        "curl",
        &app,
        "--fail",
        "-sS",
        "-o",
        "/dev/null",
        "-H",
        "cf-access-token: x",
    ];
    failing.extend(curl_args.iter().map(String::as_str));
    let failed = client_output(&world, &failing);
    assert_eq!(failed.code(), Some(22), "{failed:?}");

    // The token is for APP only: on OTHER (which alice may use) it is refused.
    let other_dir = world.token_file(OTHER);
    std::fs::copy(&file, &other_dir).unwrap();
    let other = world.url(OTHER, "/whoami");
    let mut on_other: Vec<&str> = vec![
        "access",
        "curl",
        &other,
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ];
    on_other.extend(curl_args.iter().map(String::as_str));
    let refused = client_output(&world, &on_other);
    assert_eq!(
        refused.stdout, "403",
        "a token for {APP} on {OTHER}: {refused:?}"
    );
    assert!(
        world
            .origin
            .seen()
            .iter()
            .all(|s| s.header("host") != Some(OTHER)),
        "{OTHER} was never reached"
    );

    // An application assertion (what the origin received) is not a CLI token.
    let header = format!("cf-access-token: {assertion}");
    let mut replay: Vec<&str> = vec![
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &header,
    ];
    replay.extend(curl_args.iter().map(String::as_str));
    replay.push(&app);
    let response = Command::new("curl").args(&replay).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&response.stdout),
        "403",
        "an assertion presented as a CLI token"
    );

    // And the CLI token is not an assertion: the edge never forwards it, and the type
    // check refuses it (the unit tests of the verifier show this one directly).
    let header = format!("cf-access-token: {stored}");
    let mut direct: Vec<&str> = vec![
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &header,
    ];
    direct.extend(curl_args.iter().map(String::as_str));
    direct.push(&app);
    let response = Command::new("curl").args(&direct).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&response.stdout),
        "200",
        "the stored token works with plain curl"
    );

    // The mint endpoint, for the signed-in browser: only loopback callbacks, a real state,
    // and never for a request that brings a CLI token itself.
    let state = "s".repeat(32);
    let mint = |callback: &str, state: &str, extra: &[&str]| {
        let url = format!(
            "{}?callback={}&state={state}",
            world.url(APP, "/cdn-cgi/access/cli"),
            form_encode(callback)
        );
        let mut args: Vec<&str> = vec!["-H", "Accept: text/html"];
        args.extend_from_slice(extra);
        browser.request(&url, &args)
    };
    for callback in [
        "https://127.0.0.1:8080/cb",
        "http://evil.test:8080/cb",
        "http://127.0.0.1:8080@evil.test/cb",
        "http://127.0.0.1/cb",
    ] {
        let response = mint(callback, &state, &[]);
        assert_eq!(response.status, 400, "{callback}: {response:?}");
        assert!(response.body.contains("bad_callback"), "{response:?}");
        assert_eq!(response.header("location"), None);
    }
    let short = mint("http://127.0.0.1:8080/cb", "short", &[]);
    assert_eq!(short.status, 400, "{short:?}");
    assert!(short.body.contains("bad_state"), "{short:?}");
    let renewal = mint("http://127.0.0.1:8080/cb", &state, &["-H", &header]);
    assert_eq!(
        renewal.status, 403,
        "a token cannot mint another: {renewal:?}"
    );
    let good = mint("http://[::1]:8080/cb", &state, &[]);
    assert_eq!(good.status, 302, "{good:?}");
    let location = good.header("location").unwrap();
    assert!(
        location.starts_with("http://[::1]:8080/cb?token=")
            && location.ends_with(&format!("&state={state}")),
        "{location}"
    );
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
