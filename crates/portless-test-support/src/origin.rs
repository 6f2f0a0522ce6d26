//! A test origin: endpoints for every streaming shape the tunnel must carry.
//!
//! * `GET /hello` → `hello from NAME`
//! * `GET /headers` → the request headers, one `name: value` per line
//! * `POST /count` → `bytes=N sum=S` after reading the whole body (S: wrapping byte sum)
//! * `GET /bytes/N` → N pattern bytes in 64 KiB chunks, with `Content-Length`
//! * `GET /nolength/N` → the same without `Content-Length` (chunked)
//! * `GET /sse/N/MS` → N server-sent events, one every MS milliseconds
//! * `GET /slow/MS` → `slow done` after MS milliseconds
//! * `GET /slowbytes/MS/N` → N pattern bytes after MS milliseconds
//! * `GET /ws` → WebSocket upgrade; echoes text frames

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ws;

type Body = BoxBody<Bytes, Infallible>;

/// The byte at offset `i` of every generated body.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// A running test origin.
pub struct TestOrigin {
    addr: SocketAddr,
    name: String,
    requests: Arc<AtomicUsize>,
    last_headers: Arc<Mutex<Option<HeaderMap>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

struct Shared {
    name: String,
    requests: Arc<AtomicUsize>,
    last_headers: Arc<Mutex<Option<HeaderMap>>>,
}

impl TestOrigin {
    /// Starts an origin named `name` on `127.0.0.1:0`.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        Self::serve(listener, name)
    }

    /// Serves on an existing listener (to restart on the same address).
    pub fn serve(listener: TcpListener, name: &str) -> Self {
        let addr = listener.local_addr().expect("origin address");
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            requests: Arc::new(AtomicUsize::new(0)),
            last_headers: Arc::new(Mutex::new(None)),
        });
        let origin = Self {
            addr,
            name: name.to_owned(),
            requests: shared.requests.clone(),
            last_headers: shared.last_headers.clone(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
        };
        let conn_tasks = tasks.clone();
        tasks.spawn(async move {
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(_) => continue,
                    },
                    () = shutdown.cancelled() => return,
                };
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                conn_tasks.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(route(&shared, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = connection => {}
                        () = shutdown.cancelled() => {}
                    }
                });
            }
        });
        origin
    }

    /// The origin's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for ingress rules.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The origin's name (in `/hello` answers).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The headers of the last request received.
    pub fn last_headers(&self) -> Option<HeaderMap> {
        self.last_headers.lock().ok().and_then(|h| h.clone())
    }

    /// Stops accepting and closes open connections.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
}

fn generated(len: u64, with_length: bool) -> Response<Body> {
    const CHUNK: u64 = 64 * 1024;
    let stream = futures_util::stream::unfold(0u64, move |offset| async move {
        if offset >= len {
            return None;
        }
        let n = CHUNK.min(len - offset);
        let chunk: Vec<u8> = (offset..offset + n).map(pattern_byte).collect();
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from(chunk))),
            offset + n,
        ))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    if with_length {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, len.into());
    }
    response
}

fn sse(count: u32, every: Duration) -> Response<Body> {
    let stream = futures_util::stream::unfold(0u32, move |n| async move {
        if n >= count {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(every).await;
        }
        let event = Bytes::from(format!("data: event {n}\n\n"));
        Some((Ok::<_, Infallible>(Frame::data(event)), n + 1))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    response
}

async fn count(body: Incoming) -> Response<Body> {
    let mut body = body;
    let (mut bytes, mut sum) = (0u64, 0u64);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    bytes += data.len() as u64;
                    sum = data.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                }
            }
            Err(e) => return full(StatusCode::BAD_REQUEST, format!("body error: {e}")),
        }
    }
    full(StatusCode::OK, format!("bytes={bytes} sum={sum}"))
}

/// Shared with `probe`, whose origins echo WebSockets the same way.
pub(crate) fn websocket(request: &mut Request<Incoming>) -> Response<Body> {
    let Some(key) = request
        .headers()
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return full(StatusCode::BAD_REQUEST, "missing sec-websocket-key");
    };
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some((opcode, payload, used)) = ws::decode_frame(&buf) {
                buf.drain(..used);
                if opcode == 0x8 {
                    let _ = io.shutdown().await;
                    return;
                }
                let mut reply = b"echo: ".to_vec();
                reply.extend_from_slice(&payload);
                if io.write_all(&ws::text_frame(&reply, None)).await.is_err() {
                    return;
                }
            }
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    let mut response = full(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
    let headers = response.headers_mut();
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    if let Ok(accept) = header::HeaderValue::from_str(&ws::accept_key(&key)) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

async fn route(shared: &Shared, mut request: Request<Incoming>) -> Response<Body> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut last) = shared.last_headers.lock() {
        *last = Some(request.headers().clone());
    }
    let path = request.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match parts.first().copied().unwrap_or("") {
        "hello" => full(StatusCode::OK, format!("hello from {}", shared.name)),
        "headers" => {
            let mut text = String::new();
            for (name, value) in request.headers() {
                text.push_str(&format!(
                    "{name}: {}\n",
                    value.to_str().unwrap_or("<binary>")
                ));
            }
            full(StatusCode::OK, text)
        }
        "count" => count(request.into_body()).await,
        "bytes" => generated(number(1), true),
        "nolength" => generated(number(1), false),
        "sse" => sse(number(1) as u32, Duration::from_millis(number(2))),
        "slow" => {
            tokio::time::sleep(Duration::from_millis(number(1))).await;
            full(StatusCode::OK, "slow done")
        }
        "slowbytes" => {
            tokio::time::sleep(Duration::from_millis(number(1))).await;
            generated(number(2), true)
        }
        "ws" => websocket(&mut request),
        _ => full(
            StatusCode::NOT_FOUND,
            format!("origin {} has no {path}", shared.name),
        ),
    }
}
