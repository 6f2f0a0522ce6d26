//! Forward-auth with real reverse proxies: nginx (`auth_request`) and Caddy (`forward_auth`)
//! serve an application and ask a real `portless edge` about every request, with the
//! configurations of `docs/forward-auth/` exactly as documented (only the placeholders are
//! filled in). `curl`, with a cookie jar, is the browser.
//!
//! For each proxy: an anonymous visit is sent to the portal; a password login comes back
//! through the application's `/cdn-cgi/access/callback` (answered by the edge, relayed by
//! the proxy with its `Set-Cookie`) and reaches the application with `Remote-*` headers that
//! overwrite the ones the client made up; a user the policy refuses gets 403; a path with a
//! hidden dot segment and a request for another host never reach the application.
//!
//! The proxy binaries come from the system (Debian packages `nginx` and `caddy`). When one is
//! missing its test is skipped with a message, unless `PORTLESS_REQUIRE_PROXIES=1` is set
//! (CI), which makes it fail instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(test)]
mod support;

use std::fmt;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::origin::{Origin, Seen};
use support::{Edge, Proc, Response, curl, free_tcp_port, wait_until};

/// The application behind the proxy.
const APP: &str = "app.example.test";
/// The portal (the edge's auth host).
const PORTAL: &str = "auth.example.test";
/// A host the policy lets anyone into.
const OPEN: &str = "www.example.test";

/// The documented configurations, read by the tests so the docs cannot drift from them.
const NGINX_CONF: &str = include_str!("../../../docs/forward-auth/nginx.conf");
const CADDYFILE: &str = include_str!("../../../docs/forward-auth/Caddyfile");
const DOC: &str = include_str!("../../../docs/forward-auth.md");

/// The users (argon2id with small parameters, as in `portless-test-support`'s fixtures, so a
/// login stays quick): alice in admins and dev, bob in dev.
const USERS: &str = r#"users:
  alice:
    displayname: Alice Doe
    password: "$argon2id$v=19$m=1024,t=1,p=1$bkYIsLU4Pn5/m6iCnqm3dw$lD7R0FzMSOCrVonCFhn2xR/KPGqNTXVONcxVnxUogIs"
    email: alice@example.test
    groups: [admins, dev]
  bob:
    displayname: Bob Roe
    password: "$argon2id$v=19$m=1024,t=1,p=1$PbL+NzioslPsZjTsBPqktw$genY+FLysKZ6DvzCUqRKHZZUyeT3lX2enB5Ku4dAQeA"
    email: bob@example.test
    groups: [dev]
"#;
const ALICE_PASSWORD: &str = "alice-password";
const BOB_PASSWORD: &str = "bob-password";

/// `/public` is open, `/admin` is for admins, the rest for any signed-in user.
const RULES: &str = r"access_control:
  default_policy: deny
  rules:
    - domain: www.example.test
      policy: bypass
    - domain: app.example.test
      resources: ['^/public([/?].*)?$']
      policy: bypass
    - domain: app.example.test
      resources: ['^/admin([/?].*)?$']
      subject: ['group:admins']
      policy: one_factor
    - domain: app.example.test
      resources: ['^/admin([/?].*)?$']
      policy: deny
    - domain: app.example.test
      policy: one_factor
";

const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
        })
    }
}

impl Kind {
    /// The proxy's binary: on `PATH`, or in `/usr/sbin` (not on a normal user's `PATH`).
    fn binary(self) -> Option<PathBuf> {
        let name = self.to_string();
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/bin".into()])
            .map(|dir| dir.join(&name))
            .find(|candidate| candidate.is_file())
    }

    /// The binary, or `None` after saying why the test is skipped (a failure instead when
    /// `PORTLESS_REQUIRE_PROXIES=1`).
    fn binary_or_skip(self) -> Option<PathBuf> {
        let found = self.binary();
        if found.is_none() {
            let required = std::env::var("PORTLESS_REQUIRE_PROXIES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{self} is not installed and PORTLESS_REQUIRE_PROXIES=1: apt-get install {self}"
            );
            eprintln!(
                "SKIPPED: {self} is not installed (apt-get install {self}); \
                 set PORTLESS_REQUIRE_PROXIES=1 to make this a failure"
            );
        }
        found
    }
}

/// The edge with access control, the application, and the certificate the proxy serves.
struct World {
    edge: Edge,
    origin: Origin,
    files: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl World {
    fn start() -> World {
        let edge = Edge::start_with(|dir, port| {
            let users = dir.join("users_database.yml");
            std::fs::write(&users, USERS).unwrap();
            let config = dir.join("configuration.yml");
            std::fs::write(
                &config,
                format!(
                    "authentication_backend:\n  file:\n    path: {users}\n\
                     session:\n  cookies:\n    - domain: example.test\n      authelia_url: https://{PORTAL}:{port}\n\
                     {RULES}",
                    users = users.display()
                ),
            )
            .unwrap();
            vec![
                "--access-config".to_owned(),
                config.display().to_string(),
                "--trusted-proxy".to_owned(),
                "127.0.0.1".to_owned(),
            ]
        });
        let origin = Origin::start("app");
        let files = tempfile::tempdir().unwrap();
        // The proxy's certificate for the application, from the edge's own CA, so the
        // client trusts the portal and the application with one CA file.
        portless_tls::install_default_provider();
        let ca = portless_tls::LocalCa::load(&edge.path("ca.pem"), &edge.path("ca-key.pem"))
            .expect("loading the edge's CA");
        let (chain, key_pem) = ca.issue_pem(&[APP.to_owned()]).unwrap();
        let cert = files.path().join("app.pem");
        let key = files.path().join("app-key.pem");
        std::fs::write(&cert, chain).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        World {
            edge,
            origin,
            files,
            cert,
            key,
        }
    }

    fn portal(&self, path: &str) -> String {
        format!("https://{PORTAL}:{}{path}", self.edge.public)
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        self.origin
            .seen()
            .into_iter()
            .filter(|s| s.path == path)
            .collect()
    }
}

/// A running proxy for [`APP`] on `127.0.0.1:port`.
struct Proxy {
    kind: Kind,
    port: u16,
    /// Killed by its PID when the test ends (its logs are printed if the test failed).
    _process: Proc,
}

impl Proxy {
    /// Starts `kind` with its documented configuration on a free port (another port if one
    /// was taken before the proxy bound it), and waits until it accepts connections.
    fn start(kind: Kind, binary: &Path, world: &World) -> Proxy {
        let mut last = String::new();
        for attempt in 0..5 {
            let port = free_tcp_port();
            let dir = world.files.path().join(format!("{kind}-{attempt}"));
            std::fs::create_dir_all(&dir).unwrap();
            let command = match kind {
                Kind::Nginx => nginx(binary, &dir, port, world),
                Kind::Caddy => caddy(binary, &dir, port, world),
            };
            let mut process = Proc::spawn(&kind.to_string(), command, &dir);
            let up = wait_until(Duration::from_secs(10), || {
                if !process.running() {
                    return Some(false);
                }
                TcpStream::connect(("127.0.0.1", port)).ok().map(|_| true)
            });
            match up {
                Some(true) => {
                    return Proxy {
                        kind,
                        port,
                        _process: process,
                    };
                }
                Some(false) if process.stderr().contains("in use") => last = process.stderr(),
                _ => panic!(
                    "{kind} did not start within 10 s:\n{}",
                    process.stderr_tail(30)
                ),
            }
        }
        panic!("{kind} could not bind a free port after 5 tries:\n{last}");
    }

    fn origin(&self) -> String {
        format!("https://{APP}:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }
}

/// Fills the `{{NAME}}` placeholders of a documented configuration.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    assert!(
        !text.contains("{{"),
        "a placeholder was left unfilled:\n{text}"
    );
    text
}

/// Placeholders both configurations share.
fn common_values(world: &World, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("APP_ORIGIN", format!("https://{APP}:{port}")),
        ("APP_HOST", APP.to_owned()),
        ("CERT", world.cert.display().to_string()),
        ("KEY", world.key.display().to_string()),
        ("PORTAL", format!("127.0.0.1:{}", world.edge.public)),
        ("PORTAL_HOST", PORTAL.to_owned()),
        ("PORTLESS_CA", world.edge.ca()),
    ]
}

/// `nginx -p DIR -c DIR/nginx.conf` in the foreground, every path inside `dir`, the
/// documented `server` block inside a minimal `http` block.
fn nginx(binary: &Path, dir: &Path, port: u16, world: &World) -> Command {
    let mut values = common_values(world, port);
    values.push(("LISTEN", format!("127.0.0.1:{port}")));
    values.push(("UPSTREAM", world.origin.url()));
    let server = render(NGINX_CONF, &values);
    let d = dir.display();
    // One process (no workers), so killing it by its PID stops all of nginx: a killed
    // master would leave its workers serving. Without workers nginx also keeps the user it
    // was started as, so it can read the test's private files even when run as root.
    let conf = format!(
        "master_process off;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         access_log {d}/access.log;\n\
         client_body_temp_path {d}/client_body;\n\
         proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n\
         {server}\n\
         }}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut command = Command::new(binary);
    command
        .arg("-e")
        .arg("stderr")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .arg("-g")
        .arg(format!(
            "daemon off; pid {d}/nginx.pid; error_log stderr info;"
        ));
    command
}

/// `caddy run` on the documented site block, with global options that keep it on loopback,
/// off its admin port, without automatic certificates or HTTP/3, and its state inside `dir`.
fn caddy(binary: &Path, dir: &Path, port: u16, world: &World) -> Command {
    let mut values = common_values(world, port);
    values.push(("UPSTREAM", world.origin.addr.to_string()));
    let site = render(CADDYFILE, &values);
    let d = dir.display();
    let caddyfile = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n\
         \tstorage file_system {d}/data\n\tservers {{\n\t\tprotocols h1 h2\n\t}}\n}}\n\n{site}"
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile).unwrap();
    let mut command = Command::new(binary);
    command
        .arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    command
}

/// `curl` as a browser: one cookie jar, the edge's CA, both hosts resolved to loopback.
struct Browser {
    jar: PathBuf,
    base_args: Vec<String>,
}

impl Browser {
    fn new(world: &World, proxy: &Proxy, name: &str) -> Browser {
        let jar = world
            .files
            .path()
            .join(format!("{}-{name}.jar", proxy.kind));
        std::fs::write(&jar, "").unwrap();
        let jar_text = jar.display().to_string();
        let base_args = vec![
            "--cacert".to_owned(),
            world.edge.ca(),
            "--resolve".to_owned(),
            format!("{APP}:{}:127.0.0.1", proxy.port),
            "--resolve".to_owned(),
            format!("{OPEN}:{}:127.0.0.1", proxy.port),
            "--resolve".to_owned(),
            format!("{PORTAL}:{}:127.0.0.1", world.edge.public),
            "-b".to_owned(),
            jar_text.clone(),
            "-c".to_owned(),
            jar_text,
        ];
        Browser { jar, base_args }
    }

    /// One request, no redirects followed; `extra` goes before the URL.
    fn request(&self, url: &str, extra: &[&str]) -> Response {
        let mut args: Vec<&str> = self.base_args.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        args.push(url);
        curl(&args, TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A browser navigation: HTML accepted.
    fn get(&self, url: &str) -> Response {
        self.request(url, &["-H", "Accept: text/html"])
    }

    /// Follows redirects from `first` (at `url`) like a browser, at most 8; returns every
    /// (url, response), the first included.
    fn follow(&self, url: &str, first: Response) -> Vec<(String, Response)> {
        let mut steps = vec![(url.to_owned(), first)];
        for _ in 0..8 {
            let (url, last) = steps.last().unwrap();
            if !(300..400).contains(&last.status) {
                break;
            }
            let location = last
                .header("location")
                .expect("a redirect without Location");
            let next = absolute(url, location);
            let response = self.get(&next);
            steps.push((next, response));
        }
        steps
    }

    fn cookies(&self) -> String {
        std::fs::read_to_string(&self.jar).unwrap_or_default()
    }
}

/// `location` made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("https://") || location.starts_with("http://") {
        return location.to_owned();
    }
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| i + after_scheme);
    format!("{}{location}", &base[..origin_end])
}

/// The value of hidden input `name` on a portal page.
fn input(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(
        body[start..end]
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// Signs in at the portal from an anonymous visit to `path` through the proxy, following
/// every redirect; returns the steps after the login form.
fn sign_in(
    world: &World,
    proxy: &Proxy,
    browser: &Browser,
    path: &str,
    user: &str,
    password: &str,
) -> Vec<(String, Response)> {
    let start = proxy.url(path);
    let first = browser.get(&start);
    assert_eq!(
        first.status, 302,
        "{}: anonymous visit: {first:?}",
        proxy.kind
    );
    let location = first.header("location").unwrap().to_owned();
    let login = browser.get(&location);
    assert_eq!(
        login.status, 200,
        "{}: the login page: {login:?}",
        proxy.kind
    );
    let csrf = input(&login.body, "csrf").expect("csrf field");
    let rd = input(&login.body, "rd").expect("rd field");
    assert_eq!(rd, start, "the portal was told where to come back to");
    let origin = format!("Origin: {}", world.portal(""));
    let fields = [
        format!("username={user}"),
        format!("password={password}"),
        format!("csrf={csrf}"),
        format!("rd={rd}"),
    ];
    let mut extra = vec!["-H", origin.as_str()];
    for field in &fields {
        extra.push("--data-urlencode");
        extra.push(field);
    }
    let login_url = world.portal("/login");
    let posted = browser.request(&login_url, &extra);
    browser.follow(&login_url, posted)
}

/// The scenario every proxy must pass.
fn forward_auth_through(kind: Kind) {
    let Some(binary) = kind.binary_or_skip() else {
        return;
    };
    let world = World::start();
    let proxy = Proxy::start(kind, &binary, &world);

    // (a) Anonymous: sent to the portal with the way back, and the app sees nothing.
    let anonymous = Browser::new(&world, &proxy, "anonymous");
    let first = anonymous.get(&proxy.url("/hello?x=1"));
    assert_eq!(first.status, 302, "{kind}: {first:?}");
    let expected = format!(
        "{}?rd={}&rm=GET",
        world.portal("/"),
        form_encode(&proxy.url("/hello?x=1"))
    );
    assert_eq!(first.header("location"), Some(expected.as_str()), "{kind}");
    assert!(
        world.seen("/hello?x=1").is_empty(),
        "{kind}: the app was reached anonymously"
    );

    // (b) alice signs in and comes back through the callback, which the proxy relays
    // with the app's session cookie.
    let alice = Browser::new(&world, &proxy, "alice");
    let steps = sign_in(
        &world,
        &proxy,
        &alice,
        "/hello?x=1",
        "alice",
        ALICE_PASSWORD,
    );
    let (_, callback) = steps
        .iter()
        .find(|(url, _)| url.starts_with(&proxy.url("/cdn-cgi/access/callback?code=")))
        .unwrap_or_else(|| panic!("{kind}: no callback among {steps:#?}"));
    assert_eq!(callback.status, 302, "{kind}: callback {callback:?}");
    assert_eq!(
        callback.header("location"),
        Some(proxy.url("/hello?x=1").as_str()),
        "{kind}: back where alice started"
    );
    let cookie = callback.header("set-cookie").unwrap_or_default();
    assert!(
        cookie.starts_with("__Host-portless-app=")
            && ["Secure", "HttpOnly", "Path=/"]
                .iter()
                .all(|p| cookie.contains(p)),
        "{kind}: the proxy relayed the app cookie as set: {cookie:?}"
    );
    assert!(
        world.seen("/cdn-cgi/access/callback").is_empty()
            && world
                .origin
                .seen()
                .iter()
                .all(|s| !s.path.starts_with("/cdn-cgi/")),
        "{kind}: the callback is answered by Portless, not the app"
    );
    let (url, landed) = steps.last().unwrap();
    assert_eq!(url, &proxy.url("/hello?x=1"), "{kind}: {steps:#?}");
    assert_eq!(landed.status, 200, "{kind}: {landed:?}");
    assert!(
        landed
            .body
            .contains("hello from origin app path /hello?x=1"),
        "{kind}: {landed:?}"
    );
    assert!(
        alice
            .cookies()
            .lines()
            .any(|l| l.contains(APP) && l.contains("__Host-portless-app")),
        "{kind}: curl kept the app cookie:\n{}",
        alice.cookies()
    );

    // Signed in, with identity headers made up by the client: overwritten.
    let spoofed = alice.request(
        &proxy.url("/whoami"),
        &[
            "-H",
            "Remote-User: admin",
            "-H",
            "Remote-Groups: root",
            "-H",
            "Remote-Email: admin@evil.test",
        ],
    );
    assert_eq!(spoofed.status, 200, "{kind}: {spoofed:?}");
    let seen = world.seen("/whoami");
    assert_eq!(seen.len(), 1, "{kind}");
    let headers = &seen[0];
    for (name, value) in [
        ("remote-user", "alice"),
        ("remote-groups", "admins,dev"),
        ("remote-name", "Alice Doe"),
        ("remote-email", "alice@example.test"),
    ] {
        let all: Vec<&str> = headers
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(all, [value], "{kind}: {name} as the app saw it");
    }
    // alice may open /admin.
    assert_eq!(alice.get(&proxy.url("/admin")).status, 200, "{kind}");

    // A form post is judged like a GET (the proxy asks with GET, naming the method).
    let posted = alice.request(&proxy.url("/form"), &["--data", "a=1"]);
    assert_eq!(posted.status, 200, "{kind}: alice's POST: {posted:?}");
    let seen = world.seen("/form");
    assert_eq!(seen.len(), 1, "{kind}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].header("remote-user")),
        ("POST", Some("alice")),
        "{kind}"
    );
    let anonymous_post = anonymous.request(
        &proxy.url("/form"),
        &["--data", "a=1", "-H", "Accept: text/html"],
    );
    let expected = format!(
        "{}?rd={}&rm=POST",
        world.portal("/"),
        form_encode(&proxy.url("/form"))
    );
    assert!(
        [302, 303].contains(&anonymous_post.status)
            && anonymous_post.header("location") == Some(expected.as_str()),
        "{kind}: anonymous POST: {anonymous_post:?}"
    );
    assert_eq!(world.seen("/form").len(), 1, "{kind}");

    // Anonymous on a public path: the made-up identity does not reach the app either.
    let public = anonymous.request(&proxy.url("/public/info"), &["-H", "Remote-User: admin"]);
    assert_eq!(public.status, 200, "{kind}: {public:?}");
    let seen = world.seen("/public/info");
    assert_eq!(seen.len(), 1, "{kind}");
    assert_eq!(
        seen[0].header("remote-user").unwrap_or_default(),
        "",
        "{kind}: a client's Remote-User reached the app: {:?}",
        seen[0].headers
    );

    // (c) bob signs in (dev) but the policy keeps /admin for admins: 403 from the proxy.
    let bob = Browser::new(&world, &proxy, "bob");
    let steps = sign_in(&world, &proxy, &bob, "/hello?who=bob", "bob", BOB_PASSWORD);
    let (_, landed) = steps.last().unwrap();
    assert_eq!(landed.status, 200, "{kind}: {steps:#?}");
    assert_eq!(
        world.seen("/hello?who=bob")[0].header("remote-user"),
        Some("bob")
    );
    let admin_before = world.seen("/admin").len();
    let denied = bob.get(&proxy.url("/admin"));
    assert_eq!(denied.status, 403, "{kind}: {denied:?}");
    assert_eq!(
        world.seen("/admin").len(),
        admin_before,
        "{kind}: bob reached /admin"
    );

    // (d) A malformed forwarded URL: `/public/..;/admin` matches the public rule as text
    // but is /admin to some origins. Portless refuses it (400), the proxy answers an error
    // (nginx turns the unexpected 400 into 500; Caddy relays it), the app sees nothing.
    for path in ["/public/..;/admin", "/public/%2e%2e;/admin"] {
        for browser in [&anonymous, &bob] {
            let refused = browser.request(&proxy.url(path), &["--path-as-is"]);
            assert!(
                refused.status == 400 || refused.status == 500,
                "{kind}: {path}: {refused:?}"
            );
        }
        assert!(
            world.origin.seen().iter().all(|s| !s.path.contains("..")),
            "{kind}: {path} reached the app"
        );
    }
    assert_eq!(world.seen("/admin").len(), admin_before, "{kind}");

    // A client naming another host (one the policy leaves open) on the application's
    // address is still judged as the application (nginx) or not served (Caddy).
    let before = world.origin.seen().len();
    let confused = anonymous.request(&proxy.url("/hello"), &["-H", &format!("Host: {OPEN}")]);
    assert_eq!(
        world.origin.seen().len(),
        before,
        "{kind}: a request with Host: {OPEN} reached the app anonymously ({confused:?})"
    );
}

/// Percent-encoding as the edge writes `rd` (everything but unreserved characters).
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn nginx_auth_request() {
    forward_auth_through(Kind::Nginx);
}

#[test]
fn caddy_forward_auth() {
    forward_auth_through(Kind::Caddy);
}

/// `docs/forward-auth.md` shows the tested configurations verbatim.
#[test]
fn the_doc_shows_the_tested_configurations() {
    for (name, text) in [
        ("docs/forward-auth/nginx.conf", NGINX_CONF),
        ("docs/forward-auth/Caddyfile", CADDYFILE),
    ] {
        assert!(
            DOC.contains(text.trim_end()),
            "docs/forward-auth.md no longer shows {name} as it is; paste the file again"
        );
    }
}

/// `--trusted-proxy 127.0.0.1` admits exactly that address: the same forward-auth call is
/// answered from 127.0.0.1 and refused (403) from 127.0.0.2, before its headers count.
#[test]
fn only_the_trusted_proxy_may_ask() {
    let world = World::start();
    let url = world.portal("/api/authz/forward-auth");
    let resolve = format!("{PORTAL}:{}:127.0.0.1", world.edge.public);
    let ask = |source: &str| {
        curl(
            &[
                "--cacert",
                &world.edge.ca(),
                "--resolve",
                &resolve,
                "--interface",
                source,
                "-H",
                "X-Forwarded-Proto: https",
                "-H",
                &format!("X-Forwarded-Host: {APP}"),
                "-H",
                "X-Forwarded-Uri: /public/info",
                "-H",
                "X-Forwarded-Method: GET",
                &url,
            ],
            TIMEOUT,
        )
        .unwrap()
    };
    let trusted = ask("127.0.0.1");
    assert_eq!(trusted.status, 200, "{trusted:?}");
    assert_eq!(trusted.header("remote-user"), Some(""), "{trusted:?}");
    let other = ask("127.0.0.2");
    assert_eq!(other.status, 403, "{other:?}");
    assert_eq!(other.header("remote-user"), None, "{other:?}");
}
