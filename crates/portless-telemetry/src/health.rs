//! The metrics and health endpoint.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// What `/ready` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Registered tunnel connections.
    pub ready_connections: usize,
    /// The connector's id (connector role) or the edge's name (edge role).
    pub id_field: (&'static str, String),
    /// More detail for operators (e.g. origin health), added to the JSON as is.
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// Computes readiness on each request.
pub type ReadinessProbe = Arc<dyn Fn() -> Readiness + Send + Sync>;

/// Serves `/metrics` (Prometheus text), `/ready` (200 with
/// `{"status":200,"readyConnections":N,...}` when at least one connection is registered,
/// else 503), `/healthz` and `/healthcheck` (200 while the process runs).
pub struct HealthServer {
    registry: Arc<Registry>,
    readiness: ReadinessProbe,
}

impl HealthServer {
    /// A server for `registry` with the given readiness probe.
    pub fn new(registry: Arc<Registry>, readiness: ReadinessProbe) -> Self {
        Self {
            registry,
            readiness,
        }
    }

    /// Serves on `listener` until `shutdown`; connection tasks run on `tasks`.
    pub async fn run(self, listener: TcpListener, tasks: TaskTracker, shutdown: CancellationToken) {
        let this = Arc::new(self);
        loop {
            let (socket, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        debug!(error = %e, "metrics listener accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let this = this.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, Infallible>(this.respond(&req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service);
                tokio::select! {
                    _ = conn => {}
                    () = shutdown.cancelled() => {}
                }
            });
        }
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        }
        match req.uri().path() {
            "/metrics" => {
                let mut body = String::new();
                if prometheus_client::encoding::text::encode(&mut body, &self.registry).is_err() {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "metrics encoding failed\n",
                    );
                }
                let mut response = Response::new(Full::new(Bytes::from(body)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            "/ready" => self.ready(),
            "/healthz" | "/healthcheck" => text(StatusCode::OK, "OK\n"),
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /ready or /healthz\n",
            ),
        }
    }

    fn ready(&self) -> Response<Full<Bytes>> {
        let readiness = (self.readiness)();
        let status = if readiness.ready_connections > 0 {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut body = serde_json::Map::new();
        body.insert("status".into(), status.as_u16().into());
        body.insert(
            "readyConnections".into(),
            readiness.ready_connections.into(),
        );
        body.insert(readiness.id_field.0.into(), readiness.id_field.1.into());
        body.extend(readiness.detail);
        let mut response = Response::new(Full::new(Bytes::from(
            serde_json::Value::Object(body).to_string(),
        )));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
