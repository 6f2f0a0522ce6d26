//! The demo's built-in origin: a tiny HTTP service on loopback that shows what it received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Body = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn hello(request: &Request<Incoming>) -> Response<Body> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    text(
        StatusCode::OK,
        format!(
            "Hello from the Portless demo origin!\n\n\
             You reached a service on 127.0.0.1 that has no public port: your request went\n\
             through the edge (TLS, routing by hostname) and a tunnel the connector dialed out.\n\n\
             host: {}\npath: {}\nx-forwarded-for: {}\nx-forwarded-proto: {}\nx-request-id: {}\n\
             remote-user: {}\nremote-groups: {}\ncf-access-jwt-assertion: {}\n\n\
             Also try /events (server-sent events, one per second).\n",
            header("host"),
            request.uri().path(),
            header("x-forwarded-for"),
            header("x-forwarded-proto"),
            header("x-request-id"),
            header("remote-user"),
            header("remote-groups"),
            // The assertion is long: its first characters show it is there.
            header("cf-access-jwt-assertion")
                .chars()
                .take(24)
                .collect::<String>(),
        ),
    )
}

fn events() -> Response<Body> {
    let stream = futures_stream(5);
    let mut response = Response::new(StreamBody::new(stream).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// `count` server-sent events, one per second, produced as they are due (not buffered).
fn futures_stream(
    count: u32,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    futures_util::stream::unfold(0u32, move |n| async move {
        if n >= count {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let event = Bytes::from(format!("data: event {} of {count}\n\n", n + 1));
        Some((Ok(Frame::data(event)), n + 1))
    })
}

/// Serves the demo origin on 127.0.0.1 until `shutdown`.
pub(crate) async fn start(
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let connections = tasks.clone();
    tasks.spawn(async move {
        loop {
            let socket = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(_) => continue,
                },
                () = shutdown.cancelled() => return,
            };
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    Ok::<_, Infallible>(match request.uri().path() {
                        "/events" => events(),
                        _ => hello(&request),
                    })
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service);
                tokio::select! {
                    _ = connection => {}
                    () = shutdown.cancelled() => {}
                }
            });
        }
    });
    Ok(addr)
}
