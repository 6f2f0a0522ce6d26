//! An HTTPS client for tests: trusts the test CA and sends every hostname to the edge.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use portless_tls::rustls;

/// Request bodies the test client sends.
pub type ClientBody = BoxBody<Bytes, std::io::Error>;

/// Resolves every name to loopback: tests use real hostnames without touching DNS.
#[derive(Clone)]
struct Loopback;

impl tower_service::Service<Name> for Loopback {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Box::pin(async move { Ok(vec![addr].into_iter()) })
    }
}

/// HTTPS client toward an edge's public port.
#[derive(Clone)]
pub struct TestClient {
    client: Client<HttpsConnector<HttpConnector<Loopback>>, ClientBody>,
    port: u16,
}

impl TestClient {
    /// A client trusting `ca`, for the edge public `port`; `http2` picks ALPN h2.
    pub fn new(ca: rustls::pki_types::CertificateDer<'static>, port: u16, http2: bool) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).expect("CA certificate");
        let config = rustls::ClientConfig::builder_with_provider(portless_tls::provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(Loopback);
        http.enforce_http(false);
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only();
        let connector = if http2 {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        let mut client = Client::builder(TokioExecutor::new());
        if http2 {
            client.http2_only(true);
        }
        Self {
            client: client.build(connector),
            port,
        }
    }

    /// `https://HOST:PORT/PATH` at the edge.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    /// Sends a request; the response body is left to stream.
    pub async fn send(&self, request: Request<ClientBody>) -> Response<Incoming> {
        self.client
            .request(request)
            .await
            .expect("request to the edge")
    }

    /// GET and read the whole body.
    pub async fn get(&self, host: &str, path: &str) -> (StatusCode, HeaderMap, Bytes) {
        let request = Request::get(self.url(host, path))
            .body(empty())
            .expect("request");
        let response = self.send(request).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        (status, headers, body)
    }

    /// Like [`TestClient::get`], but a failure is an `Err` instead of a panic.
    pub async fn try_get(&self, host: &str, path: &str) -> Result<(StatusCode, Bytes), String> {
        let request = Request::get(self.url(host, path))
            .body(empty())
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

/// An empty request body.
pub fn empty() -> ClientBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The CA as the harness shares it.
pub(crate) type SharedCa = Arc<portless_tls::LocalCa>;
