//! Bytes on the wire: a TLS connection to the edge's public port from a chosen loopback
//! address, exactly the request bytes a case describes (however malformed), and the answer
//! read back whole. [`Agent`] adds a cookie jar and forms on top, for login flows that must
//! come from their own client address (brute-force counters are per address too).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portless_test_support::TestEdge;
use portless_test_support::access::PORTAL;
use portless_tls::rustls;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpSocket;

/// How long one exchange may take before the case is reported as "no answer".
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(8);

/// A loopback address no other case in this process uses (127.1.x.y), so login failures of
/// one case never count against another's address.
pub fn fresh_ip() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    IpAddr::V4(Ipv4Addr::new(127, 1, (n >> 8) as u8, (n & 0xff) as u8))
}

/// Where and how to reach the edge.
#[derive(Clone)]
pub struct Wire {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

/// One answer, read whole.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Status; 0 when the connection closed (or timed out) before a response head.
    pub status: u16,
    /// Header names lowercased, values as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked), as text.
    pub body: String,
    /// The host the request was sent to (for relative redirects).
    pub host: String,
    /// The TLS handshake failed (the edge has no certificate for the name).
    pub tls_refused: bool,
}

impl Wire {
    /// The public port of `edge`, trusting its CA, speaking HTTP/1.1.
    pub fn new(edge: &TestEdge) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(edge.ca.cert_der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(portless_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            addr: edge.handle.public_addr(),
            tls: Arc::new(config),
        }
    }

    /// The edge's public port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sends `request` as is over TLS with server name `sni`, from `source` (default
    /// 127.0.0.1), and reads the answer.
    pub async fn exchange(&self, source: Option<IpAddr>, sni: &str, request: &[u8]) -> Reply {
        let work = self.exchange_inner(source, sni, request);
        let mut reply = tokio::time::timeout(EXCHANGE_TIMEOUT, work)
            .await
            .unwrap_or_default();
        reply.host = sni.to_owned();
        reply
    }

    /// Sends `request` (several pipelined requests, the last with `Connection: close`) and
    /// returns the status of every response read until the connection closes.
    pub async fn exchange_all(&self, sni: &str, request: &[u8]) -> Vec<u16> {
        let work = async {
            let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
            let mut io = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .unwrap();
            io.write_all(request).await.unwrap();
            let mut buf = Vec::new();
            let _ = io.read_to_end(&mut buf).await;
            buf
        };
        let buf = tokio::time::timeout(EXCHANGE_TIMEOUT, work)
            .await
            .unwrap_or_default();
        let mut statuses = Vec::new();
        let mut rest = &buf[..];
        while let Some((reply, used)) = parse_one(rest, false) {
            statuses.push(reply.status);
            rest = &rest[used..];
        }
        statuses
    }

    async fn exchange_inner(&self, source: Option<IpAddr>, sni: &str, request: &[u8]) -> Reply {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0)).unwrap();
        }
        let tcp = socket.connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
        let Ok(mut io) = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
        else {
            return Reply {
                tls_refused: true,
                ..Reply::default()
            };
        };
        if io.write_all(request).await.is_err() {
            return Reply::default();
        }
        let _ = io.flush().await;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(reply) = complete(&buf) {
                return reply;
            }
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return parse(&buf, true).unwrap_or_default(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The reply in `buf` if it is complete (by `Content-Length`, chunked end, or a 1xx/204/304).
fn complete(buf: &[u8]) -> Option<Reply> {
    parse(buf, false)
}

/// Parses a response; with `eof`, a body without framing ends at the end of `buf`.
fn parse(buf: &[u8], eof: bool) -> Option<Reply> {
    parse_one(buf, eof).map(|(reply, _)| reply)
}

/// Parses the first response in `buf`, and how many bytes it took.
fn parse_one(buf: &[u8], eof: bool) -> Option<(Reply, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = &buf[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()?
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let (body, used) = if status < 200 || status == 204 || status == 304 {
        (Vec::new(), 0)
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < length && !eof {
            return None;
        }
        let length = length.min(rest.len());
        (rest[..length].to_vec(), length)
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        match dechunk(rest) {
            Some(done) => done,
            None if eof => (rest.to_vec(), rest.len()),
            None => return None,
        }
    } else if eof {
        (rest.to_vec(), rest.len())
    } else {
        return None;
    };
    let reply = Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        host: String::new(),
        tls_refused: false,
    };
    Some((reply, end + 4 + used))
}

/// A chunked body and the bytes it took, if it is complete.
fn dechunk(all: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut data = all;
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            // No trailers from the edge: the final CRLF.
            let used = all.len() - data.len() + 2.min(data.len());
            return Some((out, used));
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

impl Reply {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `Location`.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The value of form input `name` in the page.
    pub fn input(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(
            self.body[start..end]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    }

    /// A short description for failure messages.
    pub fn summary(&self) -> String {
        let location = self
            .location()
            .map(|l| format!(" -> {l}"))
            .unwrap_or_default();
        let error = self
            .header("portless-error")
            .map(|e| format!(" [{e}]"))
            .unwrap_or_default();
        if self.tls_refused {
            return "TLS refused".to_owned();
        }
        if self.status == 0 {
            return "no answer".to_owned();
        }
        format!("{}{error}{location}", self.status)
    }
}

/// A browser-like client over [`Wire`]: one client address, host-only cookies, forms.
#[derive(Clone)]
pub struct Agent {
    wire: Wire,
    source: Option<IpAddr>,
    jar: Arc<Mutex<HashMap<String, HashMap<String, String>>>>,
}

impl Agent {
    /// A client connecting from `source` (default 127.0.0.1).
    pub fn new(wire: &Wire, source: Option<IpAddr>) -> Self {
        Self {
            wire: wire.clone(),
            source,
            jar: Arc::default(),
        }
    }

    /// The cookie `name` held for `host`.
    pub fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(host)?.get(name).cloned()
    }

    /// Sets a cookie for `host` (as a script or an attacker could).
    pub fn set_cookie(&self, host: &str, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .entry(host.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    /// GET `target` on `host`.
    pub async fn get(&self, host: &str, target: &str) -> Reply {
        self.send("GET", host, target, &[], None).await
    }

    /// POSTs a form to `target` on `host`.
    pub async fn post_form(&self, host: &str, target: &str, fields: &[(&str, &str)]) -> Reply {
        let body = portless_test_support::form_body(fields);
        self.send(
            "POST",
            host,
            target,
            &["Content-Type: application/x-www-form-urlencoded".to_owned()],
            Some(body),
        )
        .await
    }

    /// Sends a request with extra header lines (`Name: value`) and an optional body.
    pub async fn send(
        &self,
        method: &str,
        host: &str,
        target: &str,
        lines: &[String],
        body: Option<String>,
    ) -> Reply {
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}:{}\r\nAccept: text/html\r\nConnection: close\r\n",
            self.wire.port()
        );
        let cookies = self
            .jar
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .unwrap_or_default();
        if !cookies.is_empty() {
            let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request.push_str(&format!("Cookie: {}\r\n", line.join("; ")));
        }
        for line in lines {
            request.push_str(line);
            request.push_str("\r\n");
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        let reply = self
            .wire
            .exchange(self.source, host, request.as_bytes())
            .await;
        self.store_cookies(host, &reply);
        reply
    }

    /// Follows redirects from `reply` (at most `limit`), returning every reply on the way.
    pub async fn follow(&self, mut reply: Reply, limit: usize) -> Vec<Reply> {
        let mut replies = vec![reply.clone()];
        for _ in 0..limit {
            if !(300..400).contains(&reply.status) {
                break;
            }
            let Some(location) = reply.location().map(str::to_owned) else {
                break;
            };
            let (host, target) = split_url(&location, &reply.host);
            reply = self.get(&host, &target).await;
            replies.push(reply.clone());
        }
        replies
    }

    fn store_cookies(&self, host: &str, reply: &Reply) {
        let mut jar = self.jar.lock().unwrap();
        let cookies = jar.entry(host.to_owned()).or_default();
        for text in reply.all("set-cookie") {
            let first = text.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            if text.contains("Max-Age=0") || value.is_empty() {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }
}

/// (host, path) of an absolute `https://host:port/path` URL, or of a path on `current`.
pub fn split_url(location: &str, current: &str) -> (String, String) {
    match location.strip_prefix("https://") {
        Some(rest) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once(':')
                .map_or(authority, |(h, _)| h)
                .to_owned();
            let path = if path.is_empty() { "/" } else { path };
            (host, path.to_owned())
        }
        None => (current.to_owned(), location.to_owned()),
    }
}

/// The portal's base URL at `port`.
pub fn portal_base(port: u16) -> String {
    format!("https://{PORTAL}:{port}")
}
