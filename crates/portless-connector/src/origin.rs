//! Pooled HTTP(S) clients toward origins, one per rule (each rule has its own options).

use std::error::Error as _;
use std::io;
use std::sync::OnceLock;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, Uri, header};
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use portless_ingress::{IngressRule, OriginRequest, Service};
use portless_proto::{ErrorClass, RequestHead, StreamError};
use portless_tls::rustls::pki_types::ServerName;
use portless_tls::{OriginTls, origin_client_config};
use portless_transport::{FramedRecv, RecvHalf, TunnelBody, to_header_map};

use crate::unix::UnixConnector;

type OriginBody = TunnelBody<RecvHalf>;

/// One rule's client.
enum OriginClient {
    Tcp(Client<HttpsConnector<HttpConnector>, OriginBody>),
    Unix(Client<HttpsConnector<UnixConnector>, OriginBody>),
}

/// Clients built on first use, by rule index.
pub(crate) struct OriginPool {
    clients: Vec<OnceLock<Result<OriginClient, String>>>,
}

impl OriginPool {
    pub(crate) fn new(rules: usize) -> Self {
        Self {
            clients: (0..rules).map(|_| OnceLock::new()).collect(),
        }
    }

    fn client(&self, index: usize, rule: &IngressRule) -> Result<&OriginClient, StreamError> {
        let slot = self
            .clients
            .get(index)
            .ok_or_else(|| internal("rule index out of range"))?;
        slot.get_or_init(|| build_client(rule))
            .as_ref()
            .map_err(|e| StreamError {
                class: ErrorClass::OriginUnreachable,
                message: e.clone(),
            })
    }
}

fn internal(message: &str) -> StreamError {
    StreamError {
        class: ErrorClass::Internal,
        message: message.to_owned(),
    }
}

fn https_builder(
    options: &OriginRequest,
    tls: bool,
) -> Result<HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols1>, String> {
    let config = origin_client_config(OriginTls {
        ca_pool: options.ca_pool.clone(),
        no_verify: options.no_tls_verify,
        alpn_h2: options.http2_origin && tls,
    })
    .map_err(|e| e.to_string())?;
    // hyper-rustls sets ALPN itself from the enabled HTTP versions.
    let mut config = (*config).clone();
    config.alpn_protocols.clear();
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    let builder = match &options.origin_server_name {
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|e| format!("originServerName {name:?} is invalid: {e}"))?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    Ok(builder)
}

/// Wraps `connector` speaking HTTP/1.1 to origins unless the rule says `http2Origin` (then
/// HTTP/2 only: ALPN `h2` over TLS, prior knowledge (h2c) over plain TCP).
fn wrap<H>(
    builder: HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols1>,
    options: &OriginRequest,
    connector: H,
) -> HttpsConnector<H> {
    if options.http2_origin {
        builder.enable_http2().wrap_connector(connector)
    } else {
        builder.enable_http1().wrap_connector(connector)
    }
}

fn pooled(options: &OriginRequest) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(options.keep_alive_timeout)
        .pool_max_idle_per_host(options.keep_alive_connections as usize);
    if options.http2_origin {
        builder.http2_only(true);
    }
    builder
}

fn build_client(rule: &IngressRule) -> Result<OriginClient, String> {
    let options = rule.origin_request();
    match rule.service() {
        Service::Http { tls, .. } => {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(options.connect_timeout));
            http.set_keepalive(Some(options.tcp_keep_alive));
            http.set_happy_eyeballs_timeout(if options.no_happy_eyeballs {
                None
            } else {
                Some(std::time::Duration::from_millis(300))
            });
            let connector = wrap(https_builder(options, *tls)?, options, http);
            Ok(OriginClient::Tcp(pooled(options).build(connector)))
        }
        Service::Unix { path, tls } => {
            let connector = wrap(
                https_builder(options, *tls)?,
                options,
                UnixConnector::new(path.clone()),
            );
            Ok(OriginClient::Unix(pooled(options).build(connector)))
        }
        other => Err(format!("service {other} is not an HTTP origin")),
    }
}

/// Sends the request to the rule's origin and returns its response head (the body streams
/// afterwards). For an upgrade, the tunnel stream's receiving half is kept by the caller.
pub(crate) async fn send(
    pool: &OriginPool,
    index: usize,
    rule: &IngressRule,
    head: &RequestHead,
    body: OriginBody,
) -> Result<Response<Incoming>, StreamError> {
    let client = pool.client(index, rule)?;
    let request = build_request(rule, head, body)?;
    let result = match client {
        OriginClient::Tcp(client) => client.request(request).await,
        OriginClient::Unix(client) => client.request(request).await,
    };
    result.map_err(classify)
}

fn build_request(
    rule: &IngressRule,
    head: &RequestHead,
    body: OriginBody,
) -> Result<Request<OriginBody>, StreamError> {
    let bad = |message: String| StreamError {
        class: ErrorClass::BadRequest,
        message,
    };
    let (scheme, authority) = match rule.service() {
        Service::Http { origin, tls } => (
            if *tls { Scheme::HTTPS } else { Scheme::HTTP },
            origin
                .authority()
                .cloned()
                .ok_or_else(|| internal("origin without authority"))?,
        ),
        Service::Unix { tls, .. } => (
            if *tls { Scheme::HTTPS } else { Scheme::HTTP },
            Authority::from_static("localhost"),
        ),
        _ => return Err(internal("not an HTTP origin")),
    };
    let path = PathAndQuery::try_from(head.path.as_str()).map_err(|e| bad(e.to_string()))?;
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let method = Method::from_bytes(head.method.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let mut headers = to_header_map(&head.headers).map_err(|e| bad(e.to_string()))?;
    let host = rule
        .origin_request()
        .http_host_header
        .as_deref()
        .unwrap_or(&head.host);
    let host = HeaderValue::from_str(host).map_err(|e| bad(e.to_string()))?;
    headers.insert(header::HOST, host);
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Maps a client error to the class the visitor sees: connect timeouts are `origin_timeout`,
/// every other failure to get an answer is `origin_unreachable`.
fn classify(error: hyper_util::client::legacy::Error) -> StreamError {
    let mut timed_out = false;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            timed_out |= io.kind() == io::ErrorKind::TimedOut;
        }
        source = cause.source();
    }
    let class = if timed_out {
        ErrorClass::OriginTimeout
    } else {
        ErrorClass::OriginUnreachable
    };
    let mut message = error.to_string();
    if let Some(cause) = error.source() {
        message.push_str(": ");
        message.push_str(&cause.to_string());
    }
    StreamError { class, message }
}

/// A body-less value of the origin body type, for requests without a body.
pub(crate) fn no_body() -> OriginBody {
    TunnelBody::empty()
}

/// A request body streamed from the tunnel, with the length the request declares.
pub(crate) fn tunnel_body(recv: FramedRecv<RecvHalf>, head: &RequestHead) -> OriginBody {
    let mut lengths = head
        .headers
        .iter()
        .filter(|(name, _)| name == "content-length")
        .map(|(_, value)| {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
    let length = match (lengths.next(), lengths.next()) {
        (Some(length), None) => length,
        _ => None,
    };
    TunnelBody::new(recv, length)
}
