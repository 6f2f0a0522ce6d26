//! Pooled HTTP(S) clients toward origins, one per origin of each rule (each rule has its own
//! options), and the choice of origin: the next healthy one in turn (see `health`). Every
//! TCP dial resolves names through the egress guard (see `egress`).

use std::error::Error as _;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, Uri, header};
use http_body::Body as _;
use http_body_util::{BodyExt as _, Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use portless_ingress::{IngressRule, OriginRequest, Service};
use portless_proto::{ErrorClass, RequestHead, StreamError};
use portless_tls::rustls::pki_types::ServerName;
use portless_tls::{OriginTls, origin_client_config};
use portless_transport::{FramedRecv, RecvHalf, TunnelBody, to_header_map};

use crate::connector::Shared;
use crate::egress::{self, EgressError, EgressPolicy, EgressResolver, TcpDialError};
use crate::health::{self, Health, Probe};
use crate::metrics::OriginLabel;
use crate::origin_connect::{OriginConnector, OriginTlsDial};
use crate::unix::UnixConnector;

/// A request body toward an origin: streamed from the tunnel, or read whole first
/// (`disableChunkedEncoding`, see [`with_length`]).
type OriginBody = Either<TunnelBody<RecvHalf>, Full<Bytes>>;

/// Largest request body of unknown length read into memory for `disableChunkedEncoding`:
/// enough for the form posts and API calls of the WSGI-style origins that need the option,
/// small enough that a few concurrent uploads cannot exhaust the connector's memory. Larger
/// bodies are refused with `413 Payload Too Large`.
pub(crate) const MAX_BUFFERED_BODY: usize = 16 * 1024 * 1024;

/// One origin's clients.
enum OriginClient {
    Tcp(RuleClients<HttpConnector<EgressResolver>>),
    Unix(RuleClients<UnixConnector>),
    /// A raw TCP origin (`ssh://`, `tcp://`...): dialed per stream, through the guard.
    Raw(RawTcp),
}

/// Where a raw TCP origin is and how long a dial may take.
struct RawTcp {
    egress: EgressPolicy,
    /// 1-based rule number, for the guard's log line.
    rule: usize,
    host: String,
    port: u16,
    timeout: std::time::Duration,
}

/// A rule's client, and with `http2Origin` an HTTP/1.1 twin for upgrade requests
/// (WebSocket): HTTP/2 has no `Upgrade`, and the incumbent sends them over HTTP/1.1 too.
struct RuleClients<D> {
    main: Client<OriginConnector<D>, OriginBody>,
    upgrades: Option<Client<OriginConnector<D>, OriginBody>>,
}

impl<D> RuleClients<D>
where
    D: Clone,
    OriginConnector<D>: Connect + Clone,
{
    fn new(
        dial: D,
        origin: Uri,
        options: &OriginRequest,
        tls: bool,
        host: &str,
    ) -> Result<Self, String> {
        let connector =
            OriginConnector::new(dial.clone(), origin.clone(), tls_dial(options, tls, host)?);
        let main = pooled(options, options.http2_origin && !tls).build(connector);
        if !options.http2_origin {
            return Ok(Self {
                main,
                upgrades: None,
            });
        }
        let mut http1 = options.clone();
        http1.http2_origin = false;
        let connector = OriginConnector::new(dial, origin, tls_dial(&http1, tls, host)?);
        let upgrades = Some(pooled(&http1, false).build(connector));
        Ok(Self { main, upgrades })
    }

    fn pick(&self, upgrade: bool) -> &Client<OriginConnector<D>, OriginBody> {
        match &self.upgrades {
            Some(http1) if upgrade => http1,
            _ => &self.main,
        }
    }
}

/// Each rule's origins, built on first use, by rule index.
pub(crate) struct OriginPool {
    clients: Vec<OnceLock<Result<RuleOrigins, String>>>,
    /// Stops this rule set's health checkers when it is replaced (dropped).
    checks: tokio_util::sync::CancellationToken,
}

impl Drop for OriginPool {
    fn drop(&mut self) {
        self.checks.cancel();
    }
}

impl OriginPool {
    pub(crate) fn new(rules: usize) -> Self {
        Self {
            clients: (0..rules).map(|_| OnceLock::new()).collect(),
            checks: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Health of every tracked origin of the rules used so far, for `/ready`:
    /// `(rule number, origin, up)`.
    pub(crate) fn health_report(&self) -> Vec<(usize, String, bool)> {
        self.clients
            .iter()
            .filter_map(|slot| slot.get().and_then(|built| built.as_ref().ok()))
            .flat_map(|rule| {
                rule.origins.iter().filter_map(move |origin| {
                    let health = origin.health.as_ref()?;
                    Some((rule.rule, origin.service.to_string(), health.is_up()))
                })
            })
            .collect()
    }

    /// The origins of rule `index`; the first call builds their clients and starts the
    /// rule's health checker, if it has one.
    fn origins(
        &self,
        index: usize,
        rule: &IngressRule,
        shared: &Shared,
    ) -> Result<&RuleOrigins, StreamError> {
        let slot = self
            .clients
            .get(index)
            .ok_or_else(|| internal("rule index out of range"))?;
        slot.get_or_init(|| RuleOrigins::build(index, rule, shared, &self.checks))
            .as_ref()
            .map_err(|e| StreamError {
                class: ErrorClass::OriginUnreachable,
                message: e.clone(),
            })
    }
}

// === RuleOrigins ===

/// One origin of a rule: its client and, when the rule tracks health, its state.
pub(crate) struct Origin {
    service: Service,
    /// The rule's options (health checks send what its requests send).
    options: OriginRequest,
    client: OriginClient,
    health: Option<Health>,
}

/// A rule's origins (one, or a `service:` list); requests take turns over the healthy ones.
struct RuleOrigins {
    /// 1-based rule number, for messages.
    rule: usize,
    origins: Arc<[Origin]>,
    next: AtomicUsize,
}

impl RuleOrigins {
    /// Builds every origin's client. Health is tracked when the rule has a `healthCheck`
    /// block or several origins (spreading load means knowing which ones are up); a single
    /// origin without one is dialed for every request, as the incumbent does.
    fn build(
        index: usize,
        rule: &IngressRule,
        shared: &Shared,
        checks: &tokio_util::sync::CancellationToken,
    ) -> Result<Self, String> {
        let several = rule.services().nth(1).is_some();
        let check = match &rule.origin_request().health_check {
            Some(check) => Some(check.clone()),
            None => several.then(portless_ingress::HealthCheck::default),
        };
        let origins = rule
            .services()
            .map(|service| {
                let client = build_client(index, rule, service, &shared.options.egress)?;
                let health = check.as_ref().map(|check| {
                    let label = OriginLabel {
                        origin: service.to_string(),
                    };
                    let gauge = shared.metrics.origin_up.get_or_create(&label).clone();
                    Health::new(service.to_string(), check, gauge)
                });
                Ok(Origin {
                    service: service.clone(),
                    options: rule.origin_request().clone(),
                    client,
                    health,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let origins: Arc<[Origin]> = Arc::from(origins);
        if let Some(check) = check {
            shared.tasks.spawn(health::run_checks(
                origins.clone(),
                check,
                checks.clone(),
                shared.hard.clone(),
            ));
        }
        Ok(Self {
            rule: index + 1,
            origins,
            next: AtomicUsize::new(0),
        })
    }

    /// The origins to try for one request, healthy ones only, starting with the next in turn.
    fn in_turn(&self) -> Result<Vec<&Origin>, StreamError> {
        let count = self.origins.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count.max(1);
        let turn: Vec<&Origin> = self
            .origins
            .iter()
            .cycle()
            .skip(start)
            .take(count)
            .filter(|origin| origin.health.as_ref().is_none_or(Health::is_up))
            .collect();
        if turn.is_empty() {
            return Err(StreamError {
                class: ErrorClass::OriginDown,
                message: format!(
                    "every origin of rule #{} is marked down by health checks",
                    self.rule
                ),
            });
        }
        Ok(turn)
    }
}

impl Origin {
    fn failed(&self, why: &str) {
        if let Some(health) = &self.health {
            health.failed(why);
        }
    }

    fn answered(&self) {
        if let Some(health) = &self.health {
            health.answered();
        }
    }

    async fn request(
        &self,
        request: Request<OriginBody>,
        upgrade: bool,
    ) -> Result<Result<Response<Incoming>, hyper_util::client::legacy::Error>, StreamError> {
        Ok(match &self.client {
            OriginClient::Tcp(clients) => clients.pick(upgrade).request(request).await,
            OriginClient::Unix(clients) => clients.pick(upgrade).request(request).await,
            OriginClient::Raw(_) => return Err(internal("a TCP origin cannot take HTTP")),
        })
    }
}

impl Probe for Origin {
    async fn probe(&self, check: &portless_ingress::HealthCheck) -> Result<(), String> {
        if let OriginClient::Raw(raw) = &self.client {
            return raw.connect().await.map(drop).map_err(|e| e.to_string());
        }
        let host = match &self.service {
            Service::Http { origin, .. } => origin.authority().map_or("localhost", |a| a.as_str()),
            _ => "localhost",
        };
        let mut head = RequestHead::new("GET", &check.path, host);
        head.headers
            .push(("user-agent".into(), b"portless-health-check".to_vec()));
        // Checks use the rule's own options (Host header, TLS name), like its requests.
        let request =
            build_request(&self.service, &self.options, &head, no_body()).map_err(|e| e.message)?;
        let response = self
            .request(request, false)
            .await
            .map_err(|e| e.message)?
            .map_err(|e| classify(e).message)?;
        let status = response.status().as_u16();
        if check.accepts(status) {
            Ok(())
        } else {
            Err(format!("health check answered {status}"))
        }
    }

    fn health(&self) -> Option<&Health> {
        self.health.as_ref()
    }
}

impl RawTcp {
    async fn connect(&self) -> Result<tokio::net::TcpStream, TcpDialError> {
        self.egress
            .connect_tcp(self.rule, &self.host, self.port, self.timeout)
            .await
    }
}

fn internal(message: &str) -> StreamError {
    StreamError {
        class: ErrorClass::Internal,
        message: message.to_owned(),
    }
}

/// The rule's TLS toward its origin, `None` for plain HTTP. `origin_host` is the server
/// name unless `originServerName` or `matchSNItoHost` says otherwise.
fn tls_dial(
    options: &OriginRequest,
    tls: bool,
    origin_host: &str,
) -> Result<Option<OriginTlsDial>, String> {
    if !tls {
        return Ok(None);
    }
    // ALPN offers `h2` (then `http/1.1`) only with `http2Origin`; the client speaks whatever
    // the origin picks, so an HTTP/1.1-only origin still works, as with the incumbent.
    let config = origin_client_config(OriginTls {
        ca_pool: options.ca_pool.clone(),
        no_verify: options.no_tls_verify,
        alpn_h2: options.http2_origin,
    })
    .map_err(|e| e.to_string())?;
    let server_name = match (&options.origin_server_name, options.match_sni_to_host) {
        (Some(name), _) => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| format!("originServerName {name:?} is invalid: {e}"))?,
        ),
        (None, true) => None,
        (None, false) => {
            let host = origin_host.trim_start_matches('[').trim_end_matches(']');
            Some(
                ServerName::try_from(host.to_owned())
                    .map_err(|e| format!("origin host {host:?} is not a TLS name: {e}"))?,
            )
        }
    };
    Ok(Some(OriginTlsDial::new(
        config,
        server_name,
        options.tls_timeout,
    )))
}

/// The pooled client of one rule. `h2c`: HTTP/2 by prior knowledge (`http2Origin` on a
/// plain origin, where there is no ALPN to negotiate it).
fn pooled(options: &OriginRequest, h2c: bool) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(options.keep_alive_timeout)
        .pool_max_idle_per_host(options.keep_alive_connections as usize);
    if h2c {
        builder.http2_only(true);
    }
    builder
}

fn build_client(
    index: usize,
    rule: &IngressRule,
    service: &Service,
    egress: &EgressPolicy,
) -> Result<OriginClient, String> {
    let options = rule.origin_request();
    match service {
        Service::Http { tls, origin } => {
            // Every name goes through the egress guard; hyper never resolves one itself.
            let host = origin.host().ok_or("origin without host")?;
            let resolver = EgressResolver::new(egress.clone(), index + 1, host);
            let mut http = HttpConnector::new_with_resolver(resolver);
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(options.connect_timeout));
            http.set_keepalive(Some(options.tcp_keep_alive));
            http.set_happy_eyeballs_timeout(if options.no_happy_eyeballs {
                None
            } else {
                Some(std::time::Duration::from_millis(300))
            });
            let clients = RuleClients::new(http, origin.clone(), options, *tls, host)?;
            Ok(OriginClient::Tcp(clients))
        }
        Service::Unix { path, tls } => {
            // The socket's server name is `localhost` (the name a local certificate carries).
            let dial = UnixConnector::new(path.clone());
            let origin = Uri::from_static("http://localhost/");
            let clients = RuleClients::new(dial, origin, options, *tls, "localhost")?;
            Ok(OriginClient::Unix(clients))
        }
        Service::Tcp { authority, .. } => Ok(OriginClient::Raw(RawTcp {
            egress: egress.clone(),
            rule: index + 1,
            host: authority.host().to_owned(),
            port: authority.port_u16().ok_or("TCP origin without a port")?,
            timeout: options.connect_timeout,
        })),
        other => Err(format!("service {other} is not an HTTP origin")),
    }
}

/// Sends the request to the rule's origin (the next healthy one in turn) and returns its
/// response head (the body streams afterwards). For an upgrade, the tunnel stream's
/// receiving half is kept by the caller.
///
/// A request without a body that could not reach an origin (connect failure: nothing of it
/// was sent) goes to the rule's next healthy origin; one with a body cannot be replayed.
pub(crate) async fn send(
    pool: &OriginPool,
    shared: &Shared,
    index: usize,
    rule: &IngressRule,
    head: &RequestHead,
    body: OriginBody,
) -> Result<Response<Incoming>, StreamError> {
    let origins = pool.origins(index, rule, shared)?;
    let upgrade = head.upgrade.is_some();
    let mut body = Some(body);
    let mut failure = None;
    for origin in origins.in_turn()? {
        let Some(body) = body.take().or_else(|| (!head.has_body).then(no_body)) else {
            break;
        };
        let request = build_request(&origin.service, rule.origin_request(), head, body)?;
        let error = match origin.request(request, upgrade).await? {
            Ok(response) => {
                origin.answered();
                return Ok(response);
            }
            Err(error) => error,
        };
        let unreached = error.is_connect();
        let broke_off = unreached || connection_broke(&error);
        let error = classify(error);
        if broke_off && error.class != ErrorClass::EgressDenied {
            origin.failed(&error.message);
        }
        if !unreached {
            return Err(error);
        }
        failure = Some(error);
    }
    Err(failure.unwrap_or_else(|| internal("no origin was tried")))
}

/// Opens a raw TCP connection to the rule's next healthy origin, trying the others in turn
/// when one cannot be reached.
pub(crate) async fn connect_tcp(
    pool: &OriginPool,
    shared: &Shared,
    index: usize,
    rule: &IngressRule,
) -> Result<tokio::net::TcpStream, StreamError> {
    let origins = pool.origins(index, rule, shared)?;
    let mut failure = None;
    for origin in origins.in_turn()? {
        let OriginClient::Raw(raw) = &origin.client else {
            return Err(internal("an HTTP origin cannot take raw TCP"));
        };
        match raw.connect().await {
            Ok(stream) => {
                origin.answered();
                return Ok(stream);
            }
            Err(error) => {
                let error = tcp_dial_failed(error);
                if error.class != ErrorClass::EgressDenied {
                    origin.failed(&error.message);
                }
                failure = Some(error);
            }
        }
    }
    Err(failure.unwrap_or_else(|| internal("no origin was tried")))
}

fn tcp_dial_failed(error: TcpDialError) -> StreamError {
    let class = match &error {
        TcpDialError::Egress(EgressError::Denied { .. }) => ErrorClass::EgressDenied,
        TcpDialError::TimedOut { .. } => ErrorClass::OriginTimeout,
        TcpDialError::Egress(EgressError::Lookup { .. }) | TcpDialError::Connect { .. } => {
            ErrorClass::OriginUnreachable
        }
    };
    StreamError {
        class,
        message: error.to_string(),
    }
}

/// Whether an established origin connection broke (reset, closed mid-message): for passive
/// health, as telling as a refused connect.
fn connection_broke(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<io::Error>()
            && matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        source = cause.source();
    }
    false
}

fn build_request(
    service: &Service,
    options: &OriginRequest,
    head: &RequestHead,
    body: OriginBody,
) -> Result<Request<OriginBody>, StreamError> {
    let bad = |message: String| StreamError {
        class: ErrorClass::BadRequest,
        message,
    };
    let scheme = match service {
        Service::Http { tls, .. } | Service::Unix { tls, .. } => {
            if *tls {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            }
        }
        _ => return Err(internal("not an HTTP origin")),
    };
    let host = options.http_host_header.as_deref().unwrap_or(&head.host);
    // The URI names the Host sent, not the origin (`OriginConnector` dials the rule's origin
    // whatever the URI says): HTTP/2 sends it as `:authority`, which must agree with Host,
    // and the pool keys connections by it, so a `matchSNItoHost` connection, whose server
    // name is this host, never serves another host.
    let authority = Authority::try_from(host).map_err(|e| bad(e.to_string()))?;
    let path = PathAndQuery::try_from(head.path.as_str()).map_err(|e| bad(e.to_string()))?;
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let method = Method::from_bytes(head.method.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let mut headers = to_header_map(&head.headers).map_err(|e| bad(e.to_string()))?;
    let host = HeaderValue::from_str(host).map_err(|e| bad(e.to_string()))?;
    headers.insert(header::HOST, host);
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Maps a client error to the class the visitor sees: an egress refusal is `egress_denied`,
/// connect timeouts are `origin_timeout`, every other failure to get an answer is
/// `origin_unreachable`.
fn classify(error: hyper_util::client::legacy::Error) -> StreamError {
    if let Some(denied) = egress::denied_in(&error) {
        return StreamError {
            class: ErrorClass::EgressDenied,
            message: denied.to_string(),
        };
    }
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
    Either::Left(TunnelBody::empty())
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
    Either::Left(TunnelBody::new(recv, length))
}

/// Why [`with_length`] produced no body.
pub(crate) enum BufferError {
    /// Longer than [`MAX_BUFFERED_BODY`]: the visitor gets `413`.
    TooLarge,
    /// The body broke off on its way through the tunnel.
    Broken(StreamError),
}

/// With `disableChunkedEncoding`, a body of unknown length is read whole, so that it goes out
/// with a `Content-Length` (hyper sets it from the exact size); otherwise `body` is unchanged.
pub(crate) async fn with_length(
    rule: &IngressRule,
    body: OriginBody,
) -> Result<OriginBody, BufferError> {
    let unknown = !body.is_end_stream() && body.size_hint().exact().is_none();
    if !rule.origin_request().disable_chunked_encoding || !unknown {
        return Ok(body);
    }
    match Limited::new(body, MAX_BUFFERED_BODY).collect().await {
        Ok(collected) => Ok(Either::Right(Full::new(collected.to_bytes()))),
        Err(e) if e.is::<LengthLimitError>() => Err(BufferError::TooLarge),
        Err(e) => Err(BufferError::Broken(StreamError {
            class: ErrorClass::BadRequest,
            message: format!("the request body broke off: {e}"),
        })),
    }
}
