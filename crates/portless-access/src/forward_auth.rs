//! The forward-auth endpoints: what a reverse proxy asks, and the status contract it relies on.
//!
//! Traefik, Caddy, HAProxy, nginx and Envoy ask the edge "may this request through?" by
//! describing the original request in headers; the edge answers with a status the proxy
//! understands. The endpoints (reference `access-control.md`):
//!
//! | endpoint | target from | method from |
//! |---|---|---|
//! | `/api/authz/forward-auth` (GET, HEAD) | `X-Forwarded-Proto` + `X-Forwarded-Host` (+ `X-Forwarded-Port`) + `X-Forwarded-Uri` | `X-Forwarded-Method` |
//! | `/api/authz/auth-request` (GET, HEAD) | `X-Original-URL` | `X-Original-Method` |
//! | `/api/authz/ext-authz/<path>` | `X-Forwarded-Proto` + `Host` + the sub-path and query | the request's method |
//! | `/api/verify` | `X-Original-URL`, else as forward-auth | `X-Forwarded-Method` |
//!
//! Parsing fails closed (attack class A: a malformed URL once answered 200 elsewhere): every
//! header is single-valued, the target is canonicalized with the same functions routing uses
//! (class B/C), a path whose meaning could change at the origin (`..;/`, `%2F..%2F`, `\..\`)
//! is refused, and the method comes only from the endpoint's documented source (class D:
//! override headers are never read). The caller answers a [`ForwardAuthError`] with its
//! [`status`](ForwardAuthError::status), never 200.
//!
//! **Trusted proxies.** The target of a forward-auth call is *only* known from forwarded
//! headers, and "forwarded headers are trusted only from configured trusted proxies": a call
//! from any other peer is refused with **403** ([`ForwardAuthError::UntrustedPeer`]) before a
//! header is read. 403 rather than 400 because the request is not malformed — the caller has
//! no standing to describe someone else's request — and because a denial status is what a
//! misconfigured proxy must pass on (fail closed, never the origin). The default is no trusted
//! proxy, so the endpoints answer nobody until `trusted_proxies` is configured. From a trusted
//! peer the client address is found by walking `X-Forwarded-For` from the right past trusted
//! addresses (class F).

use std::fmt::Write as _;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use ipnet::IpNet;
use portless_proto::{canonical_host, canonical_path};

use crate::authority::{self, AuthorityError};
use crate::headers::set_identity_headers;
use crate::{AccessRequest, Identity};

/// Methods accepted as the original request's method (uppercased first): the HTTP ones and
/// the WebDAV ones file-sync clients use. Anything else is refused as garbage.
pub const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "MKCALENDAR",
];

const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PORT: &str = "x-forwarded-port";
const X_FORWARDED_URI: &str = "x-forwarded-uri";
const X_FORWARDED_METHOD: &str = "x-forwarded-method";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_ORIGINAL_URL: &str = "x-original-url";
const X_ORIGINAL_METHOD: &str = "x-original-method";
const HOST: &str = "host";

/// One of the forward-auth endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/api/authz/forward-auth` (Traefik, Caddy, HAProxy).
    ForwardAuth,
    /// `/api/authz/auth-request` (nginx `auth_request`).
    AuthRequest,
    /// `/api/authz/ext-authz/...` (Envoy).
    ExtAuthz,
    /// `/api/verify` (legacy set-ups).
    Verify,
}

/// `http` or `https`: the scheme of the original request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`.
    Http,
    /// `https`.
    Https,
}

/// Addresses whose forwarded headers are believed. Default: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// The original request a proxy asks about, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuthRequest {
    /// The endpoint asked.
    pub endpoint: Endpoint,
    /// Scheme of the original request.
    pub scheme: Scheme,
    /// Canonical host (lowercase, no port, no trailing dot).
    pub host: String,
    /// Port of the original request (explicit, or the scheme's default).
    pub port: u16,
    /// Canonical path, without the query.
    pub path: String,
    /// The query, without `?`, if any.
    pub query: Option<String>,
    /// The original method, uppercase, one of [`KNOWN_METHODS`].
    pub method: String,
    /// The client's address: the peer, or what trusted proxies reported.
    pub client_ip: IpAddr,
    /// `X-Requested-With: XMLHttpRequest` was sent.
    pub is_xhr: bool,
    /// An `Accept` header names `text/html`.
    pub accepts_html: bool,
}

/// What the edge decided about a forward-auth request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardAuthOutcome {
    /// Let it through, with this identity (none for `bypass`).
    Allowed(Option<Identity>),
    /// Not logged in (or not strongly enough): send the user to the portal.
    LoginRequired {
        /// The portal's login URL, e.g. `https://auth.example.com/`.
        portal_login_url: String,
    },
    /// Logged in but not allowed, or refused outright.
    Forbidden,
    /// The request could not be understood.
    Malformed,
}

/// Why a forward-auth call is refused before any policy is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardAuthError {
    /// The caller is not a configured trusted proxy, so its forwarded headers mean nothing.
    #[error("forward-auth call from {0}, which is not a trusted proxy; add it to trusted_proxies")]
    UntrustedPeer(IpAddr),
    /// The path is not one of the endpoints.
    #[error("{0:?} is not a forward-auth endpoint")]
    NotAnEndpoint(String),
    /// The endpoint is asked with a method it does not serve.
    #[error("this forward-auth endpoint answers GET and HEAD only, not {0}")]
    EndpointMethod(String),
    /// A header the endpoint needs is missing.
    #[error("the {0} header is missing; configure the proxy to send it")]
    MissingHeader(&'static str),
    /// A single-valued header was sent more than once.
    #[error("the {0} header was sent more than once")]
    DuplicateHeader(&'static str),
    /// A header holds characters outside visible ASCII.
    #[error("the {0} header holds a control or non-ASCII character")]
    InvalidHeader(&'static str),
    /// The scheme is neither `http` nor `https`.
    #[error("the {0} header names a scheme other than http or https")]
    InvalidScheme(&'static str),
    /// `X-Original-URL` is not an absolute `http(s)://host/path` URL.
    #[error("the X-Original-URL header is not an absolute http(s) URL")]
    InvalidUrl,
    /// The authority holds `user@`.
    #[error("the original request's authority holds userinfo (user@host)")]
    Userinfo,
    /// The host does not canonicalize.
    #[error("the original request's host is not a valid hostname")]
    InvalidHost,
    /// The host in `Host` and in the request URI disagree.
    #[error("the Host header and the request's authority disagree")]
    ConflictingHost,
    /// The port is not a number from 1 to 65535.
    #[error("the original request's port is not a number from 1 to 65535")]
    InvalidPort,
    /// Bad percent-encoding, a control character, `#`, or no leading `/`.
    #[error("the original request's path or query is malformed")]
    InvalidPath,
    /// A path that an origin could resolve to somewhere else (`..;/`, `%2F..%2F`, `\..\`).
    #[error("the original request's path hides a dot segment (..;/, %2F.., \\..)")]
    AmbiguousPath,
    /// The method is not one of [`KNOWN_METHODS`].
    #[error("the original request's method {0:?} is not an HTTP method")]
    InvalidMethod(String),
    /// An `X-Forwarded-For` entry is not an address.
    #[error("the X-Forwarded-For header holds something other than addresses")]
    InvalidForwardedFor,
}

/// Why a trusted-proxy list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustedProxiesError {
    /// An entry is neither an address nor a CIDR.
    #[error("trusted proxy {0:?} is not an address or CIDR (e.g. 10.0.0.0/8 or 127.0.0.1)")]
    Invalid(String),
}

// === impl Endpoint ===

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::ForwardAuth,
        Endpoint::AuthRequest,
        Endpoint::ExtAuthz,
        Endpoint::Verify,
    ];

    /// The endpoint's path (for ext-authz, the prefix before the original path).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ForwardAuth => "/api/authz/forward-auth",
            Endpoint::AuthRequest => "/api/authz/auth-request",
            Endpoint::ExtAuthz => "/api/authz/ext-authz",
            Endpoint::Verify => "/api/verify",
        }
    }

    /// The endpoint a request path (without its query) names, and for ext-authz the
    /// original path after the prefix (empty for the others, and for ext-authz called on its
    /// bare prefix). Exact: `/api/verify/` or `/api/authz/forward-authx` name nothing.
    pub fn from_path(path: &str) -> Option<(Endpoint, &str)> {
        Endpoint::ALL.into_iter().find_map(|endpoint| {
            let rest = path.strip_prefix(endpoint.path())?;
            match (endpoint, rest) {
                (_, "") => Some((endpoint, "")),
                (Endpoint::ExtAuthz, sub) if sub.starts_with('/') => Some((endpoint, sub)),
                _ => None,
            }
        })
    }

    /// Where the original method is read: a header, or (`None`) the call's own method.
    pub fn method_header(self) -> Option<&'static str> {
        match self {
            Endpoint::ForwardAuth | Endpoint::Verify => Some(X_FORWARDED_METHOD),
            Endpoint::AuthRequest => Some(X_ORIGINAL_METHOD),
            Endpoint::ExtAuthz => None,
        }
    }
}

// === impl Scheme ===

impl Scheme {
    fn parse(text: &str, header: &'static str) -> Result<Self, ForwardAuthError> {
        if text.eq_ignore_ascii_case("https") {
            Ok(Scheme::Https)
        } else if text.eq_ignore_ascii_case("http") {
            Ok(Scheme::Http)
        } else {
            Err(ForwardAuthError::InvalidScheme(header))
        }
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

// === impl TrustedProxies ===

impl TrustedProxies {
    /// Trusts the given networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    /// Parses addresses (`127.0.0.1`, `::1`) and CIDRs (`10.0.0.0/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, TrustedProxiesError> {
        let nets = entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| TrustedProxiesError::Invalid(entry.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer` itself unless it is trusted; then the right-most
    /// `X-Forwarded-For` entry that is not a trusted proxy (or the left-most entry when all
    /// are trusted). Entries left of the first untrusted one are never read, so a client
    /// cannot claim an address by sending its own `X-Forwarded-For`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, ForwardAuthError> {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return Ok(peer);
        }
        let mut entries = Vec::new();
        for value in headers.get_all(X_FORWARDED_FOR) {
            let text = value
                .to_str()
                .map_err(|_| ForwardAuthError::InvalidForwardedFor)?;
            entries.extend(text.split(',').map(|entry| entry.trim_matches([' ', '\t'])));
        }
        let mut client = peer;
        for entry in entries.iter().rev() {
            let ip = forwarded_address(entry).ok_or(ForwardAuthError::InvalidForwardedFor)?;
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        Ok(client)
    }
}

/// An `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = entry.parse::<std::net::SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let v6 = entry.strip_prefix('[')?.strip_suffix(']')?;
    v6.parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

// === impl ForwardAuthRequest ===

/// The original request's scheme, authority and path-with-query, before canonicalization.
struct RawTarget<'a> {
    scheme: Scheme,
    authority: &'a str,
    /// The port, when given apart from the authority (`X-Forwarded-Port`).
    port: Option<&'a str>,
    path_and_query: String,
}

impl ForwardAuthRequest {
    /// Parses a call to `endpoint` from `peer`. See the module doc for what each endpoint
    /// reads; every refusal is an error the caller answers with its status (400, or 403 for
    /// an untrusted peer), never 200.
    pub fn parse(
        endpoint: Endpoint,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        peer: IpAddr,
        trusted_proxies: &TrustedProxies,
    ) -> Result<ForwardAuthRequest, ForwardAuthError> {
        if !trusted_proxies.contains(peer) {
            return Err(ForwardAuthError::UntrustedPeer(peer.to_canonical()));
        }
        if matches!(endpoint, Endpoint::ForwardAuth | Endpoint::AuthRequest)
            && !matches!(*method, Method::GET | Method::HEAD)
        {
            return Err(ForwardAuthError::EndpointMethod(method.to_string()));
        }
        let raw = raw_target(endpoint, uri, headers)?;
        let (host, port) = host_and_port(raw.authority, raw.port, raw.scheme)?;
        let (path, query) = canonical_target_path(&raw.path_and_query)?;
        let method = match endpoint.method_header() {
            Some(name) => parse_method(required(headers, name)?)?,
            None => parse_method(method.as_str())?,
        };
        Ok(ForwardAuthRequest {
            endpoint,
            scheme: raw.scheme,
            host,
            port,
            path,
            query,
            method,
            client_ip: trusted_proxies.client_ip(peer, headers)?,
            is_xhr: is_xhr(headers),
            accepts_html: accepts_html(headers),
        })
    }

    /// The original request's URL, canonical: `scheme://host[:port]/path[?query]` (the port
    /// only when not the scheme's default). This is the `rd` of a login redirect.
    pub fn url(&self) -> String {
        let mut url = format!("{}://", self.scheme.as_str());
        if self.host.contains(':') {
            let _ = write!(url, "[{}]", self.host);
        } else {
            url.push_str(&self.host);
        }
        if self.port != self.scheme.default_port() {
            let _ = write!(url, ":{}", self.port);
        }
        url.push_str(&self.path);
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The request the policy judges.
    pub fn access_request<'a>(&'a self, identity: Option<&'a Identity>) -> AccessRequest<'a> {
        AccessRequest {
            host: &self.host,
            path: &self.path,
            query: self.query.as_deref(),
            method: &self.method,
            client_ip: self.client_ip,
            identity,
        }
    }
}

/// Where each endpoint finds the original request.
fn raw_target<'h>(
    endpoint: Endpoint,
    uri: &'h Uri,
    headers: &'h HeaderMap,
) -> Result<RawTarget<'h>, ForwardAuthError> {
    match endpoint {
        Endpoint::AuthRequest => original_url(required(headers, X_ORIGINAL_URL)?),
        Endpoint::Verify => match single(headers, X_ORIGINAL_URL)? {
            Some(url) => original_url(url),
            None => forwarded_target(headers),
        },
        Endpoint::ForwardAuth => forwarded_target(headers),
        Endpoint::ExtAuthz => ext_authz_target(uri, headers),
    }
}

/// `X-Forwarded-Proto` + `X-Forwarded-Host` (+ `X-Forwarded-Port`) + `X-Forwarded-Uri`.
fn forwarded_target(headers: &HeaderMap) -> Result<RawTarget<'_>, ForwardAuthError> {
    let scheme = Scheme::parse(required(headers, X_FORWARDED_PROTO)?, X_FORWARDED_PROTO)?;
    let authority = required(headers, X_FORWARDED_HOST)?;
    let port = single(headers, X_FORWARDED_PORT)?;
    let path_and_query = required(headers, X_FORWARDED_URI)?.to_owned();
    Ok(RawTarget {
        scheme,
        authority,
        port,
        path_and_query,
    })
}

/// `X-Original-URL: https://host[:port]/path?query`.
fn original_url(url: &str) -> Result<RawTarget<'_>, ForwardAuthError> {
    let (scheme, rest) = url.split_once("://").ok_or(ForwardAuthError::InvalidUrl)?;
    let scheme = Scheme::parse(scheme, X_ORIGINAL_URL)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(end);
    let path_and_query = match path_and_query.chars().next() {
        None => "/".to_owned(),
        Some('/') => path_and_query.to_owned(),
        Some(_) => format!("/{path_and_query}"),
    };
    Ok(RawTarget {
        scheme,
        authority,
        port: None,
        path_and_query,
    })
}

/// Envoy: `X-Forwarded-Proto` + `Host` (or the HTTP/2 authority) + the path after the
/// endpoint's prefix + the query.
fn ext_authz_target<'h>(
    uri: &'h Uri,
    headers: &'h HeaderMap,
) -> Result<RawTarget<'h>, ForwardAuthError> {
    let scheme = Scheme::parse(required(headers, X_FORWARDED_PROTO)?, X_FORWARDED_PROTO)?;
    let authority = match (single(headers, HOST)?, uri.authority()) {
        (Some(host), Some(authority)) => {
            let same = canonical_host(host).ok() == canonical_host(authority.as_str()).ok();
            if !same {
                return Err(ForwardAuthError::ConflictingHost);
            }
            host
        }
        (Some(host), None) => host,
        (None, Some(authority)) => authority.as_str(),
        (None, None) => return Err(ForwardAuthError::MissingHeader("Host")),
    };
    let sub_path = match Endpoint::from_path(uri.path()) {
        Some((Endpoint::ExtAuthz, "")) => "/",
        Some((Endpoint::ExtAuthz, sub)) => sub,
        _ => return Err(ForwardAuthError::NotAnEndpoint(uri.path().to_owned())),
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{sub_path}?{query}"),
        None => sub_path.to_owned(),
    };
    Ok(RawTarget {
        scheme,
        authority,
        port: None,
        path_and_query,
    })
}

/// A header sent at most once, as visible ASCII, trimmed.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, ForwardAuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ForwardAuthError::DuplicateHeader(name));
    }
    let text = value
        .to_str()
        .map_err(|_| ForwardAuthError::InvalidHeader(name))?
        .trim_matches([' ', '\t']);
    if text.contains('\t') {
        return Err(ForwardAuthError::InvalidHeader(name));
    }
    Ok(Some(text))
}

/// A header that must be sent exactly once.
fn required<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, ForwardAuthError> {
    single(headers, name)?.ok_or(ForwardAuthError::MissingHeader(name))
}

/// Canonical host and port from an authority (and a separate port, if any).
fn host_and_port(
    authority: &str,
    separate_port: Option<&str>,
    scheme: Scheme,
) -> Result<(String, u16), ForwardAuthError> {
    let (host, port) = authority::host_and_port(authority).map_err(authority_error)?;
    let port = match (port, separate_port) {
        (Some(port), _) => port,
        (None, Some(text)) => authority::port(text).map_err(authority_error)?,
        (None, None) => scheme.default_port(),
    };
    Ok((host, port))
}

fn authority_error(e: AuthorityError) -> ForwardAuthError {
    match e {
        AuthorityError::Userinfo => ForwardAuthError::Userinfo,
        AuthorityError::Encoded | AuthorityError::InvalidHost => ForwardAuthError::InvalidHost,
        AuthorityError::InvalidPort => ForwardAuthError::InvalidPort,
    }
}

/// Canonical path and query, refusing paths whose meaning an origin could change.
fn canonical_target_path(
    path_and_query: &str,
) -> Result<(String, Option<String>), ForwardAuthError> {
    let canonical = canonical_path(path_and_query).map_err(|_| ForwardAuthError::InvalidPath)?;
    let (path, query) = match canonical.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (canonical, None),
    };
    if hides_dot_segment(&path) {
        return Err(ForwardAuthError::AmbiguousPath);
    }
    Ok((path, query))
}

/// Whether a canonical path still holds a `.` or `..` segment once an origin splits it the
/// ways some do: at `\`, at `%2F`/`%5C` after decoding, dropping `;params` (Tomcat's `..;/`),
/// and after a second round of decoding (`%252e%252e`), and with the overlong UTF-8 forms of
/// `.`, `/` and `\` (`%C0%AE`, `%C0%AF`, `%C1%9C`, which old decoders still turn into those
/// characters) read as the characters. The canonical path has no real dot segment left, so
/// any found here was hidden from the policy.
pub fn hides_dot_segment(path: &str) -> bool {
    let mut text = fold_overlong(path);
    for _ in 0..3 {
        if has_dot_segment(&text) {
            return true;
        }
        match percent_decode(&text) {
            Some(decoded) if decoded != text => text = fold_overlong(&decoded),
            _ => return false,
        }
    }
    has_dot_segment(&text)
}

/// Overlong UTF-8 encodings (never valid, so never a real name) of `.`, `/` and `\`,
/// percent-encoded, and the characters lenient decoders make of them.
const OVERLONG: [(&str, &str); 6] = [
    ("%C0%AE", "."),
    ("%C0%AF", "/"),
    ("%C1%9C", "\\"),
    ("%E0%80%AE", "."),
    ("%E0%80%AF", "/"),
    ("%E0%81%9C", "\\"),
];

/// `text` with the [`OVERLONG`] forms (any case) replaced by their characters.
fn fold_overlong(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    for (encoded, plain) in OVERLONG {
        while let Some(at) = out.to_ascii_uppercase().find(encoded) {
            out.replace_range(at..at + encoded.len(), plain);
        }
    }
    out
}

fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\']).any(|segment| {
        let name = segment.split(';').next().unwrap_or(segment);
        matches!(name, "." | "..")
    })
}

/// Decodes every `%XX` once; `None` when the result is not UTF-8 (then nothing more to find).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The original method, uppercase, from the known list.
fn parse_method(text: &str) -> Result<String, ForwardAuthError> {
    let upper = text.to_ascii_uppercase();
    if KNOWN_METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(ForwardAuthError::InvalidMethod(
            text.chars().take(32).collect(),
        ))
    }
}

fn is_xhr(headers: &HeaderMap) -> bool {
    headers.get_all("x-requested-with").iter().any(|v| {
        v.as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"XMLHttpRequest")
    })
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("text/html"))
    })
}

// === impl ForwardAuthError ===

impl ForwardAuthError {
    /// The status to answer: 403 for an untrusted peer, 400 for everything else.
    pub fn status(&self) -> StatusCode {
        match self {
            ForwardAuthError::UntrustedPeer(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The outcome to answer with [`response`].
    pub fn outcome(&self) -> ForwardAuthOutcome {
        match self {
            ForwardAuthError::UntrustedPeer(_) => ForwardAuthOutcome::Forbidden,
            _ => ForwardAuthOutcome::Malformed,
        }
    }
}

// === responses ===

/// The portal login URL that sends the user back afterwards:
/// `portal_login_url?rd=<target>&rm=<method>` (`&` instead of `?` when the portal URL has a
/// query already), both values percent-encoded.
pub fn login_redirect_url(portal_login_url: &str, target_url: &str, method: &str) -> String {
    let separator = if portal_login_url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!(
        "{portal_login_url}{separator}rd={}&rm={}",
        percent_encode(target_url),
        percent_encode(method)
    )
}

/// Percent-encodes everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The answer to a forward-auth call (status and headers; no body):
/// * allowed → 200 with all four `Remote-*` headers (empty when anonymous); an identity whose
///   values cannot be headers → 403;
/// * login required → `Location: <login_redirect_url>` and 401 for `auth-request`, for XHR
///   and for clients not accepting HTML, else 302 for GET/HEAD/OPTIONS and 303 otherwise
///   (401 without `Location` when there is no parsed request to return to);
/// * forbidden → 403; malformed → 400.
///
/// Every answer carries `Cache-Control: no-store`: a proxy must never reuse a decision.
pub fn response(
    endpoint: Endpoint,
    request: Option<&ForwardAuthRequest>,
    outcome: &ForwardAuthOutcome,
) -> Response<()> {
    let mut response = Response::new(());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let status = match outcome {
        ForwardAuthOutcome::Allowed(identity) => {
            match set_identity_headers(response.headers_mut(), identity.as_ref(), None) {
                Ok(()) => StatusCode::OK,
                Err(_) => StatusCode::FORBIDDEN,
            }
        }
        ForwardAuthOutcome::LoginRequired { portal_login_url } => {
            login_required(endpoint, request, portal_login_url, response.headers_mut())
        }
        ForwardAuthOutcome::Forbidden => StatusCode::FORBIDDEN,
        ForwardAuthOutcome::Malformed => StatusCode::BAD_REQUEST,
    };
    *response.status_mut() = status;
    response
}

/// Sets `Location` and picks the status for a login redirect.
fn login_required(
    endpoint: Endpoint,
    request: Option<&ForwardAuthRequest>,
    portal_login_url: &str,
    headers: &mut HeaderMap,
) -> StatusCode {
    let Some(request) = request else {
        return StatusCode::UNAUTHORIZED;
    };
    let location = login_redirect_url(portal_login_url, &request.url(), &request.method);
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            headers.insert(header::LOCATION, value);
        }
        // A portal URL that is no header value is a configuration error: deny.
        Err(_) => return StatusCode::FORBIDDEN,
    }
    if endpoint == Endpoint::AuthRequest || request.is_xhr || !request.accepts_html {
        StatusCode::UNAUTHORIZED
    } else if matches!(request.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
        StatusCode::FOUND
    } else {
        StatusCode::SEE_OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_path_names_exact_endpoints() {
        assert_eq!(
            Endpoint::from_path("/api/authz/forward-auth"),
            Some((Endpoint::ForwardAuth, ""))
        );
        assert_eq!(
            Endpoint::from_path("/api/authz/ext-authz/admin/x"),
            Some((Endpoint::ExtAuthz, "/admin/x"))
        );
        assert_eq!(
            Endpoint::from_path("/api/authz/ext-authz"),
            Some((Endpoint::ExtAuthz, ""))
        );
        for other in [
            "/api/authz/forward-auth/",
            "/api/authz/forward-authx",
            "/api/authz/ext-authzx",
            "/api/verify/x",
            "/api/authz",
            "/",
        ] {
            assert_eq!(Endpoint::from_path(other), None, "{other}");
        }
    }

    #[test]
    fn hidden_dot_segments_are_found() {
        for path in [
            "/public/..;/admin",
            "/public/.;/admin",
            "/public/..;jsessionid=x/admin",
            "/public%2F..%2Fadmin",
            "/public%5C..%5Cadmin",
            "/public\\..\\admin",
            "/public/%252e%252e/admin",
            "/public%252F..%252Fadmin",
            "/public/%c0%ae%c0%ae/admin",
            "/public/%C0%AE%C0%AE%C0%AFadmin",
            "/public/..%c0%afadmin",
            "/public/%e0%80%ae%e0%80%ae/admin",
            "/public/%25c0%25ae%25c0%25ae/admin",
        ] {
            assert!(hides_dot_segment(path), "{path}");
        }
        for path in [
            "/",
            "/admin",
            "/a%2Fb",
            "/a..b/c",
            "/...",
            "/a;b=c/d",
            "/%7e",
            "/caf%C3%A9",
            "/%C0",
        ] {
            assert!(!hides_dot_segment(path), "{path}");
        }
    }

    #[test]
    fn redirect_urls_encode_target_and_method() {
        assert_eq!(
            login_redirect_url(
                "https://auth.example.com/",
                "https://app.example.com/a?b=c&d",
                "GET"
            ),
            "https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc%26d&rm=GET"
        );
        assert_eq!(
            login_redirect_url(
                "https://auth.example.com/login?x=1",
                "https://a.example.com/",
                "POST"
            ),
            "https://auth.example.com/login?x=1&rd=https%3A%2F%2Fa.example.com%2F&rm=POST"
        );
    }
}
