//! [`ProbeOrigin`]: an origin that records what reached it, over plain TCP, TLS or a Unix
//! socket, speaking HTTP/1.1 and HTTP/2 (h2c by prior knowledge on plain sockets, ALPN `h2`
//! over TLS); plus [`StalledOrigin`]s that never answer, for timeout tests.
//!
//! Every path answers `200 ok` after reading the whole request body, except `GET /ws`, a
//! WebSocket echo (the same as [`TestOrigin`](crate::TestOrigin)'s).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use portless_tls::LocalCa;
use portless_tls::rustls::ServerConfig;
use portless_tls::rustls::sign::SingleCertAndKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a [`ProbeOrigin`] saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    /// HTTP version of the request.
    pub version: Version,
    /// TLS server name the client sent (SNI), if TLS and any.
    pub sni: Option<String>,
    /// The request URI's authority: HTTP/2's `:authority` (HTTP/1.1 requests have none).
    pub authority: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Bytes of request body read.
    pub body_len: u64,
}

/// Where a [`ProbeOrigin`] listens.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Shared between the origin's handle and its connection tasks.
#[derive(Default)]
struct Record {
    accepted: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// A running recording origin; stops when dropped.
pub struct ProbeOrigin {
    addr: Option<SocketAddr>,
    record: Arc<Record>,
    shutdown: CancellationToken,
    _tasks: TaskTracker,
}

impl ProbeOrigin {
    /// Plain HTTP on `127.0.0.1:0` (HTTP/1.1, or h2c when the client starts with the preface).
    pub async fn http() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe");
        Self::serve(Listener::Tcp(listener), None)
    }

    /// HTTPS on `127.0.0.1:0` with a certificate from `ca` for `names` (DNS names or IPs);
    /// ALPN offers `h2` then `http/1.1`.
    pub async fn https(ca: &LocalCa, names: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe");
        Self::serve(Listener::Tcp(listener), Some(server_config(ca, names)))
    }

    /// HTTP on a Unix socket at `path`; over TLS when `tls` gives a CA and names.
    pub fn unix(path: &Path, tls: Option<(&LocalCa, &[&str])>) -> Self {
        let listener = UnixListener::bind(path).expect("bind probe socket");
        let config = tls.map(|(ca, names)| server_config(ca, names));
        Self::serve(Listener::Unix(listener), config)
    }

    fn serve(listener: Listener, tls: Option<Arc<ServerConfig>>) -> Self {
        let addr = match &listener {
            Listener::Tcp(tcp) => Some(tcp.local_addr().expect("probe address")),
            Listener::Unix(_) => None,
        };
        let record = Arc::new(Record::default());
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let acceptor = tls.map(TlsAcceptor::from);
        tasks.spawn(accept_loop(
            listener,
            acceptor,
            record.clone(),
            shutdown.clone(),
            tasks.clone(),
        ));
        Self {
            addr,
            record,
            shutdown,
            _tasks: tasks,
        }
    }

    /// The TCP address (panics for a Unix-socket origin).
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("a TCP probe origin")
    }

    /// Connections accepted so far (TCP or Unix, before any TLS).
    pub fn accepted(&self) -> usize {
        self.record.accepted.load(Ordering::SeqCst)
    }

    /// Every request seen so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.record.seen.lock().expect("probe record").clone()
    }

    /// The last request seen (panics if none).
    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the origin saw no request")
    }
}

impl Drop for ProbeOrigin {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn server_config(ca: &LocalCa, names: &[&str]) -> Arc<ServerConfig> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let key = ca.issue(&names).expect("issue probe certificate");
    portless_tls::public_server_config(Arc::new(SingleCertAndKey::from(key)))
        .expect("probe TLS config")
}

async fn accept_loop(
    listener: Listener,
    tls: Option<TlsAcceptor>,
    record: Arc<Record>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = shutdown.cancelled() => return,
        };
        let Ok(io) = accepted else { continue };
        record.accepted.fetch_add(1, Ordering::SeqCst);
        let (tls, record, shutdown) = (tls.clone(), record.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = serve_io(io, tls, record) => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// An accepted connection of either listener kind.
type Accepted = Box<dyn Io>;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    Ok(match listener {
        Listener::Tcp(tcp) => Box::new(tcp.accept().await?.0),
        Listener::Unix(unix) => Box::new(unix.accept().await?.0),
    })
}

async fn serve_io(io: Accepted, tls: Option<TlsAcceptor>, record: Arc<Record>) {
    match tls {
        None => serve_http(io, None, record).await,
        Some(acceptor) => {
            let Ok(stream) = acceptor.accept(io).await else {
                return;
            };
            let sni = stream.get_ref().1.server_name().map(str::to_owned);
            serve_http(stream, sni, record).await;
        }
    }
}

async fn serve_http<I>(io: I, sni: Option<String>, record: Arc<Record>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let (sni, record) = (sni.clone(), record.clone());
        async move { Ok::<_, Infallible>(respond(request, sni, &record).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await;
}

async fn respond(
    mut request: Request<Incoming>,
    sni: Option<String>,
    record: &Record,
) -> Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    let mut seen = Seen {
        version: request.version(),
        sni,
        authority: request.uri().authority().map(|a| a.to_string()),
        headers: request.headers().clone(),
        body_len: 0,
    };
    if request.uri().path() == "/ws" {
        record.seen.lock().expect("probe record").push(seen);
        return crate::origin::websocket(&mut request);
    }
    let status = match request.into_body().collect().await {
        Ok(body) => {
            seen.body_len = body.to_bytes().len() as u64;
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    };
    record.seen.lock().expect("probe record").push(seen);
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")).boxed());
    *response.status_mut() = status;
    response
}

/// An origin that never answers: kept alive until dropped.
pub struct StalledOrigin {
    addr: SocketAddr,
    shutdown: CancellationToken,
    // Held so the sockets stay open and silent.
    _held: Vec<TcpStream>,
    _listener: Option<TcpListener>,
}

impl StalledOrigin {
    /// A listener that accepts TCP connections but never sends a byte (a TLS client waits
    /// for the server's hello forever).
    pub async fn silent() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind silent");
        let addr = listener.local_addr().expect("silent address");
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((socket, _)) = accepted {
                            open.push(socket);
                        }
                    }
                    () = stop.cancelled() => return,
                }
            }
        });
        Self {
            addr,
            shutdown,
            _held: Vec::new(),
            _listener: None,
        }
    }

    /// A listener that never accepts, with its queue filled by our own connections: a new
    /// SYN goes unanswered, so a client's connect hangs until its own timeout.
    pub async fn unaccepting() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind unaccepting");
        let addr = socket.local_addr().expect("unaccepting address");
        let listener = socket.listen(0).expect("listen");
        let mut held = Vec::new();
        // Linux admits backlog + 1 connections; a few tries fill it whatever the kernel.
        for _ in 0..4 {
            let connect = TcpStream::connect(addr);
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(200), connect).await
            {
                held.push(stream);
            }
        }
        Self {
            addr,
            shutdown: CancellationToken::new(),
            _held: held,
            // Open but never accepting.
            _listener: Some(listener),
        }
    }

    /// The address to put in a rule.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for StalledOrigin {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
