//! The public HTTPS listener: TLS, then HTTP/1.1 or HTTP/2, each request into the proxy.
//! HTTP/1 connections (ALPN other than `h2`) go through `strict_head` first.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing::{debug, info, warn};

use crate::context::ConnectionInfo;
use crate::edge::EdgeState;
use crate::executor::TrackedExecutor;
use crate::raw;
use crate::stack;
use crate::strict_head::StrictHttp1;

/// Accepts public connections until shutdown, then lets in-flight requests finish for the
/// grace period.
pub(crate) async fn serve_public(
    listener: TcpListener,
    tls: Arc<portless_tls::rustls::ServerConfig>,
    state: Arc<EdgeState>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let builder = http_builder(&state);
    loop {
        let (socket, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, "public accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = state.public_shutdown.cancelled() => break,
        };
        let _ = socket.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state2 = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        state.tasks.spawn(async move {
            let deadline = tokio::time::Instant::now() + state2.options.client_header_timeout;
            // TLS passthrough: a passthrough SNI is relayed and never reaches the handshake.
            let Some(socket) = raw::passthrough::divert(socket, client, &state2, deadline).await
            else {
                return;
            };
            let handshake = tokio::time::timeout_at(deadline, acceptor.accept(socket));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    debug!(%client, error = %e, "public TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            if stream.get_ref().1.alpn_protocol() == Some(portless_tls::ACME_TLS_ALPN) {
                // A TLS-ALPN-01 validation: the handshake (with the challenge certificate)
                // was the whole answer (RFC 8737 §3).
                return;
            }
            // HTTP/2 is framed by the h2 crate; HTTP/1 heads are checked before hyper parses
            // them (request smuggling, attack class J).
            let info = ConnectionInfo {
                server_name: stream
                    .get_ref()
                    .1
                    .server_name()
                    .and_then(|name| portless_proto::canonical_host(name).ok()),
            };
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                serve_connection(stream, client, info, builder, watcher, state2).await;
            } else {
                let timeout = state2.options.client_header_timeout;
                let stream = StrictHttp1::new(stream, client, timeout);
                serve_connection(stream, client, info, builder, watcher, state2).await;
            }
        });
    }
    drop(listener);
    let grace = state.options.grace_period;
    tokio::select! {
        () = graceful.shutdown() => info!("public connections drained"),
        () = tokio::time::sleep(grace) => warn!(?grace, "grace period over; closing remaining public connections"),
    }
}

fn http_builder(state: &EdgeState) -> auto::Builder<TrackedExecutor> {
    let mut builder = auto::Builder::new(TrackedExecutor(state.tasks.clone()));
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.options.client_header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024)
        .initial_stream_window_size(1024 * 1024)
        .initial_connection_window_size(4 * 1024 * 1024);
    builder
}

async fn serve_connection(
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    client: SocketAddr,
    info: ConnectionInfo,
    builder: auto::Builder<TrackedExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    state: Arc<EdgeState>,
) {
    let hsts = state.hsts.clone();
    let pipeline = stack::pipeline(state, client);
    let service = hyper::service::service_fn(move |mut request| {
        request.extensions_mut().insert(info.clone());
        let response = pipeline.clone().oneshot(request);
        let hsts = hsts.clone();
        async move {
            let mut response = response.await?;
            if let Some(hsts) = hsts {
                // An origin that sends its own policy keeps it.
                response
                    .headers_mut()
                    .entry(http::header::STRICT_TRANSPORT_SECURITY)
                    .or_insert(hsts);
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        debug!(%client, error = %e, "public connection ended with an error");
    }
}
