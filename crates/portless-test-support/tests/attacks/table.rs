//! Attack tables: one row is one request described once — class, name, the request, the
//! expected outcome — and sent five ways: to the application host through the edge
//! (integrated) and, expressed in forwarded headers, to each forward-auth endpoint on the
//! portal host.
//!
//! | via | the original request is described by |
//! |---|---|
//! | integrated | the request itself, to the application host |
//! | forward-auth | `X-Forwarded-Proto/Host/Uri/Method` on `GET /api/authz/forward-auth` |
//! | auth-request | `X-Original-URL` + `X-Original-Method` on `GET /api/authz/auth-request` |
//! | ext-authz | the call's method, `Host` and `/api/authz/ext-authz<path>`; the host is the portal's (see below) |
//! | verify | `X-Original-URL` + `X-Forwarded-Method` on `GET /api/verify` |
//!
//! ext-authz takes the target host from the call's own `Host`, and at the edge `Host` is also
//! what routes (and must match the TLS server name), so a call naming an application host is
//! routed to that application, not to the portal. The ext-authz rendering therefore names the
//! portal host wherever the row names `app` or `www` (the suite's rules treat the portal host's
//! paths like `app`'s); rows about another host are not rendered for ext-authz.
//!
//! Every answer is checked against the row's [`Want`], and always: an integrated request that
//! is not a `Pass` control never reaches the origin; a forward-auth `2xx` for an anonymous row
//! carries an empty `Remote-User`; a `Location` never leaves the configured domain (class E).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use portless_test_support::access::{DOMAIN, PORTAL};

use super::setup::{APP, Setup, WWW};
use super::wire::Reply;

/// What a row expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Malformed: exactly 400.
    Bad,
    /// Denied: 401, 302, 303 or 403.
    Deny,
    /// Either of the above: the reference accepts both for this case.
    Refused,
    /// The host has no route: 404, or the TLS handshake refused for want of a certificate
    /// (integrated only; forward-auth judges such a host by the default policy).
    NoRoute,
    /// A control row: 200 (and the origin saw it, for integrated). Proves the row's target is
    /// really reachable, so a refusal of its attack variants means something.
    Pass,
}

/// How a row is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Integrated,
    ForwardAuth,
    AuthRequest,
    ExtAuthz,
    Verify,
}

/// Every way.
pub const ALL: &[Via] = &[
    Via::Integrated,
    Via::ForwardAuth,
    Via::AuthRequest,
    Via::ExtAuthz,
    Via::Verify,
];
/// The four forward-auth endpoints.
pub const FORWARD: &[Via] = &[
    Via::ForwardAuth,
    Via::AuthRequest,
    Via::ExtAuthz,
    Via::Verify,
];
/// Forward-auth endpoints that read `X-Original-URL`.
pub const ORIGINAL_URL: &[Via] = &[Via::AuthRequest, Via::Verify];

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Integrated => "integrated",
            Via::ForwardAuth => "forward-auth",
            Via::AuthRequest => "auth-request",
            Via::ExtAuthz => "ext-authz",
            Via::Verify => "verify",
        })
    }
}

/// The request of a row. `{port}` and the placeholders of [`Table::with`] are replaced in the
/// host, the target and every header line.
#[derive(Clone, Debug)]
pub struct Req {
    method: &'static str,
    host: String,
    target: String,
    /// Extra header lines, sent as is (obs-fold continuation lines are lines too).
    lines: Vec<String>,
    body: Option<String>,
    /// Line ending of the whole head.
    eol: &'static str,
    /// The default `Host` line is left out (the row writes its own, or none).
    no_host: bool,
    /// TLS server name, when it cannot be derived from the host.
    sni: Option<String>,
    /// Client address (default 127.0.0.1, the fixture's trusted proxy).
    source: Option<IpAddr>,
    /// Header overrides for the forward-auth renderings: (name, value or removal).
    fwd_set: Vec<(String, Option<String>)>,
    /// Content-Length is left to the row.
    raw_framing: bool,
}

impl Req {
    fn new(method: &'static str, host: &str, target: &str) -> Self {
        Self {
            method,
            host: host.to_owned(),
            target: target.to_owned(),
            lines: Vec::new(),
            body: None,
            eol: "\r\n",
            no_host: false,
            sni: None,
            source: None,
            fwd_set: Vec::new(),
            raw_framing: false,
        }
    }

    /// A header line (`Name: value`), sent as is.
    pub fn h(mut self, line: &str) -> Self {
        self.lines.push(line.to_owned());
        self
    }

    /// A body; `Content-Length` is added unless [`Req::framing`] says otherwise.
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    /// The row writes its own framing headers (no automatic `Content-Length`).
    pub fn framing(mut self) -> Self {
        self.raw_framing = true;
        self
    }

    /// Every line ends with `eol` instead of CRLF.
    pub fn eol(mut self, eol: &'static str) -> Self {
        self.eol = eol;
        self
    }

    /// No default `Host` line.
    pub fn no_host(mut self) -> Self {
        self.no_host = true;
        self
    }

    /// TLS server name.
    pub fn sni(mut self, sni: &str) -> Self {
        self.sni = Some(sni.to_owned());
        self
    }

    /// Client address.
    pub fn from(mut self, ip: IpAddr) -> Self {
        self.source = Some(ip);
        self
    }

    /// For forward-auth renderings: replace (or add) a generated header.
    pub fn fwd(mut self, name: &str, value: &str) -> Self {
        self.fwd_set.push((name.to_owned(), Some(value.to_owned())));
        self
    }

    /// For forward-auth renderings: leave a generated header out.
    pub fn fwd_without(mut self, name: &str) -> Self {
        self.fwd_set.push((name.to_owned(), None));
        self
    }
}

/// `GET` of `target` on `host`.
pub fn get(host: &str, target: &str) -> Req {
    Req::new("GET", host, target)
}

/// Any method.
pub fn req(method: &'static str, host: &str, target: &str) -> Req {
    Req::new(method, host, target)
}

/// One row.
pub struct Row {
    pub class: char,
    pub name: &'static str,
    pub req: Req,
    pub want: Want,
    /// Expected outcome on the forward-auth endpoints, when it differs.
    pub fwd_want: Option<Want>,
    /// Where the row is sent (default: everywhere it can be).
    pub only: &'static [Via],
    /// The row presents a session: a forward-auth `2xx` may carry a `Remote-User`.
    pub session: bool,
}

/// A row sent every way, expecting `want`.
pub fn row(class: char, name: &'static str, req: Req, want: Want) -> Row {
    Row {
        class,
        name,
        req,
        want,
        fwd_want: None,
        only: ALL,
        session: false,
    }
}

impl Row {
    /// Only these ways.
    pub fn only(mut self, vias: &'static [Via]) -> Self {
        self.only = vias;
        self
    }

    /// Another expectation on the forward-auth endpoints.
    pub fn fwd(mut self, want: Want) -> Self {
        self.fwd_want = Some(want);
        self
    }

    /// The row carries a session cookie.
    pub fn session(mut self) -> Self {
        self.session = true;
        self
    }
}

/// A named table and the values of its placeholders.
pub struct Table<'a> {
    name: &'static str,
    setup: &'a Setup,
    values: HashMap<String, String>,
}

/// One result line.
struct Outcome {
    class: char,
    name: &'static str,
    via: Via,
    want: Want,
    got: String,
    problem: Option<String>,
}

impl<'a> Table<'a> {
    pub fn new(name: &'static str, setup: &'a Setup) -> Self {
        let mut values = HashMap::new();
        values.insert("port".to_owned(), setup.port().to_string());
        Self {
            name,
            setup,
            values,
        }
    }

    /// `{key}` is replaced by `value`.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.values.insert(key.to_owned(), value.to_owned());
        self
    }

    fn fill(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (key, value) in &self.values {
            out = out.replace(&format!("{{{key}}}"), value);
        }
        out
    }

    /// Sends every row every way it applies; prints the table; panics naming the table and
    /// each failed row.
    pub async fn run(self, rows: Vec<Row>) {
        let mut outcomes = Vec::new();
        for row in &rows {
            for via in row.only {
                let want = match via {
                    Via::Integrated => row.want,
                    _ => row.fwd_want.unwrap_or(row.want),
                };
                let Some((sni, bytes)) = self.render(&row.req, *via) else {
                    continue;
                };
                let before = self.setup.origin.seen().len();
                let reply = self.setup.wire.exchange(row.req.source, &sni, &bytes).await;
                let reached = self.setup.origin.seen().len() - before;
                let problem = self.check(row, *via, want, &reply, reached);
                outcomes.push(Outcome {
                    class: row.class,
                    name: row.name,
                    via: *via,
                    want,
                    got: reply.summary(),
                    problem,
                });
            }
        }
        self.report(&rows, &outcomes);
    }

    fn report(&self, rows: &[Row], outcomes: &[Outcome]) {
        let mut text = format!(
            "=== attack table {:?}: {} rows ===\n",
            self.name,
            rows.len()
        );
        for o in outcomes {
            text.push_str(&format!(
                "{} | {:<48} | {:<12} | want {:<8} | got {}{}\n",
                o.class,
                o.name,
                o.via.to_string(),
                format!("{:?}", o.want),
                o.got,
                o.problem
                    .as_ref()
                    .map(|p| format!("   <-- FAIL: {p}"))
                    .unwrap_or_default()
            ));
        }
        println!("{text}");
        let failed: Vec<String> = outcomes
            .iter()
            .filter_map(|o| {
                o.problem
                    .as_ref()
                    .map(|p| format!("  {} {} via {}: {p}", o.class, o.name, o.via))
            })
            .collect();
        assert!(
            failed.is_empty(),
            "attack table {:?}: {} of {} checks failed:\n{}\n\n{text}",
            self.name,
            failed.len(),
            outcomes.len(),
            failed.join("\n")
        );
    }

    fn check(
        &self,
        row: &Row,
        via: Via,
        want: Want,
        reply: &Reply,
        reached: usize,
    ) -> Option<String> {
        let status = reply.status;
        let denied = matches!(status, 401 | 302 | 303 | 403);
        let ok = match want {
            Want::Bad => status == 400,
            Want::Deny => denied,
            Want::Refused => status == 400 || denied,
            // No route: a 404, or no certificate for the name at all.
            Want::NoRoute => status == 404 || reply.tls_refused,
            Want::Pass => status == 200,
        };
        if !ok {
            return Some(format!("expected {want:?}, got {}", reply.summary()));
        }
        if via == Via::Integrated {
            match (want, reached) {
                (Want::Pass, 1) | (Want::Bad | Want::Deny | Want::Refused | Want::NoRoute, 0) => {}
                (_, n) => return Some(format!("the origin saw {n} request(s)")),
            }
        } else if (200..300).contains(&status) && !row.session {
            let user = reply.header("remote-user").unwrap_or_default();
            if !user.is_empty() {
                return Some(format!("anonymous, yet Remote-User: {user}"));
            }
        }
        if (200..300).contains(&status) && via == Via::Integrated && reply.body != "ok" {
            return Some(format!("a 200 that is not the origin's: {:?}", reply.body));
        }
        check_location(reply.location(), self.setup.port())
    }

    /// The TLS server name and the bytes of `req` sent `via`; `None` when the row cannot be
    /// expressed that way.
    fn render(&self, req: &Req, via: Via) -> Option<(String, Vec<u8>)> {
        let host = self.fill(&req.host);
        let target = self.fill(&req.target);
        let lines: Vec<String> = req.lines.iter().map(|l| self.fill(l)).collect();
        let port = self.setup.port();
        let portal_host = format!("{PORTAL}:{port}");
        let Call {
            method,
            sni,
            host_line,
            target: call_target,
            mut generated,
        } = match via {
            Via::Integrated => Call {
                method: req.method,
                sni: req.sni.clone().unwrap_or_else(|| sni_for(&host)),
                host_line: Some(host.clone()),
                target: target.clone(),
                generated: Vec::new(),
            },
            Via::ForwardAuth => Call {
                method: "GET",
                sni: PORTAL.to_owned(),
                host_line: Some(portal_host),
                target: "/api/authz/forward-auth".to_owned(),
                generated: vec![
                    ("X-Forwarded-Proto".into(), "https".into()),
                    ("X-Forwarded-Host".into(), host.clone()),
                    ("X-Forwarded-Uri".into(), target.clone()),
                    ("X-Forwarded-Method".into(), req.method.into()),
                ],
            },
            Via::AuthRequest => Call {
                method: "GET",
                sni: PORTAL.to_owned(),
                host_line: Some(portal_host),
                target: "/api/authz/auth-request".to_owned(),
                generated: vec![
                    ("X-Original-URL".into(), format!("https://{host}{target}")),
                    ("X-Original-Method".into(), req.method.into()),
                ],
            },
            Via::Verify => Call {
                method: "GET",
                sni: PORTAL.to_owned(),
                host_line: Some(portal_host),
                target: "/api/verify".to_owned(),
                generated: vec![
                    ("X-Original-URL".into(), format!("https://{host}{target}")),
                    ("X-Forwarded-Method".into(), req.method.into()),
                ],
            },
            Via::ExtAuthz => {
                let host = ext_authz_host(&host)?;
                Call {
                    method: req.method,
                    sni: sni_for(&host),
                    host_line: Some(host),
                    target: format!("/api/authz/ext-authz{target}"),
                    generated: vec![("X-Forwarded-Proto".into(), "https".into())],
                }
            }
        };
        if via != Via::Integrated {
            for (name, value) in &req.fwd_set {
                let value = value.as_ref().map(|v| self.fill(v));
                match generated
                    .iter()
                    .position(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    Some(at) => match value {
                        Some(value) => generated[at].1 = value,
                        None => {
                            generated.remove(at);
                        }
                    },
                    None => {
                        if let Some(value) = value {
                            generated.push((name.clone(), value));
                        }
                    }
                }
            }
        }
        let eol = req.eol;
        let mut head = format!("{method} {call_target} HTTP/1.1{eol}");
        let integrated_host = via == Via::Integrated || via == Via::ExtAuthz;
        if !(req.no_host && integrated_host)
            && let Some(host) = host_line
        {
            head.push_str(&format!("Host: {host}{eol}"));
        }
        let has = |name: &str| {
            lines
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
        };
        if !has("accept") {
            head.push_str(&format!("Accept: text/html{eol}"));
        }
        if !has("connection") {
            head.push_str(&format!("Connection: close{eol}"));
        }
        for (name, value) in &generated {
            head.push_str(&format!("{name}: {value}{eol}"));
        }
        for line in &lines {
            head.push_str(line);
            head.push_str(eol);
        }
        let body = req
            .body
            .as_deref()
            .map(|b| self.fill(b))
            .unwrap_or_default();
        if !req.raw_framing && !body.is_empty() {
            head.push_str(&format!("Content-Length: {}{eol}", body.len()));
        }
        head.push_str(eol);
        head.push_str(&body);
        Some((sni, head.into_bytes()))
    }
}

/// The call a row becomes on one way: request line, server name, `Host`, generated headers.
struct Call {
    method: &'static str,
    sni: String,
    host_line: Option<String>,
    target: String,
    generated: Vec<(String, String)>,
}

/// The host ext-authz names for a row about `app` or `www`: the portal's, in the same spelling.
fn ext_authz_host(host: &str) -> Option<String> {
    let lower = host.to_ascii_lowercase();
    for name in [APP, WWW] {
        if let Some(at) = lower.find(name) {
            let written = &host[at..at + name.len()];
            let portal = if written.chars().any(|c| c.is_ascii_uppercase()) {
                PORTAL.to_ascii_uppercase()
            } else {
                PORTAL.to_owned()
            };
            return Some(format!(
                "{}{portal}{}",
                &host[..at],
                &host[at + name.len()..]
            ));
        }
    }
    None
}

/// The server name a client would send for `host`: lowercase, without port and trailing
/// dot; the application host when that is no DNS name.
fn sni_for(host: &str) -> String {
    let bare = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let bare = bare.trim_end_matches('.').to_ascii_lowercase();
    let valid = !bare.is_empty()
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && rustls_name_ok(&bare);
    if valid { bare } else { APP.to_owned() }
}

fn rustls_name_ok(name: &str) -> bool {
    portless_tls::rustls::pki_types::ServerName::try_from(name.to_owned()).is_ok()
}

/// A `Location` must stay on the portal or the same host, and an `rd` in it must name a host
/// of the configured domain (no open redirect, class E).
pub fn check_location(location: Option<&str>, port: u16) -> Option<String> {
    let location = location?;
    let portal = format!("https://{PORTAL}:{port}/");
    let local =
        location.starts_with('/') && !location.starts_with("//") && !location.contains('\\');
    let on_domain = location
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .is_some_and(in_domain);
    if !(location.starts_with(&portal) || local || on_domain) {
        return Some(format!("redirect off the domain: {location}"));
    }
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    for (key, value) in form_urlencoded_pairs(query) {
        if key == "rd" {
            let host_ok = value
                .strip_prefix("https://")
                .or_else(|| value.strip_prefix("http://"))
                .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
                .is_some_and(in_domain);
            if !host_ok {
                return Some(format!("rd off the domain: {value}"));
            }
        }
    }
    None
}

/// Whether `authority` (`host[:port]`, any case, maybe a trailing dot) names the configured
/// domain or a host under it, without userinfo.
fn in_domain(authority: &str) -> bool {
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    !authority.contains('@') && (host == DOMAIN || host.ends_with(&format!(".{DOMAIN}")))
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match u8::from_str_radix(text.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
