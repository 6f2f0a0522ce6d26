//! The HTTP client the OpenID client talks to providers with: hyper 1 over rustls (aws-lc-rs),
//! implementing `openidconnect`'s async client trait.
//!
//! `openidconnect`'s bundled clients pull reqwest and, with it, `ring`; this one reuses the
//! workspace's TLS stack instead. Every call has a deadline and a response size cap, so a slow or
//! hostile provider cannot hold a portal request or fill memory. Redirects are never followed
//! (OAuth 2.0 security advice: a token endpoint that redirects is an error).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Default deadline for one request to a provider.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a provider's response body (discovery documents and JWKS are a few KiB).
pub const DEFAULT_MAX_RESPONSE: usize = 256 * 1024;

/// Why a request to a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The provider did not answer within the deadline.
    #[error("the provider did not answer within {0:?}: check that it is reachable from the edge")]
    Timeout(Duration),
    /// The response body was larger than the cap.
    #[error("the provider's response is larger than {0} bytes: check the issuer URL")]
    TooLarge(usize),
    /// Connecting, TLS or HTTP failed.
    #[error(
        "request to the provider failed: {0}: check the issuer URL, DNS and the provider's certificate"
    )]
    Transport(String),
    /// The request could not be built (a bad URL from the discovery document).
    #[error("bad request to the provider: {0}")]
    Request(String),
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    /// The CA file could not be read or holds no certificate.
    #[error(
        "cannot use ca_file {path}: {reason}: give a PEM file with the provider's CA certificates"
    )]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// TLS settings were refused by rustls.
    #[error("TLS client settings refused: {0}")]
    Tls(String),
}

/// HTTP(S) client for one provider; cheap to clone.
#[derive(Clone)]
pub struct OidcHttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_response: usize,
}

impl std::fmt::Debug for OidcHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcHttpClient")
            .field("timeout", &self.timeout)
            .field("max_response", &self.max_response)
            .finish_non_exhaustive()
    }
}

impl OidcHttpClient {
    /// A client trusting the system roots, or only the certificates in `ca_file` when given.
    ///
    /// Plain `http://` is possible at this layer; which URLs are allowed is decided by the
    /// provider configuration (https unless `allow_insecure_loopback`).
    pub fn new(ca_file: Option<&Path>) -> Result<Self, HttpClientError> {
        let roots = match ca_file {
            Some(path) => roots_from_file(path)?,
            None => system_roots(),
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: DEFAULT_TIMEOUT,
            max_response: DEFAULT_MAX_RESPONSE,
        })
    }

    /// The same client with another deadline and response cap.
    pub fn with_limits(mut self, timeout: Duration, max_response: usize) -> Self {
        self.timeout = timeout;
        self.max_response = max_response;
        self
    }

    /// Sends one request and reads the whole (capped) response, within the deadline.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.send_inner(request))
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    async fn send_inner(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| HttpError::Transport(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let max = self.max_response;
        let collected = Limited::new(body, max).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                HttpError::TooLarge(max)
            } else {
                HttpError::Transport(e.to_string())
            }
        })?;
        Ok(http::Response::from_parts(
            parts,
            collected.to_bytes().to_vec(),
        ))
    }
}

impl<'c> AsyncHttpClient<'c> for OidcHttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "could not load a system CA certificate");
    }
    let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
    roots
}

fn roots_from_file(path: &Path) -> Result<rustls::RootCertStore, HttpClientError> {
    let fail = |reason: String| HttpClientError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no certificate in the file".to_owned()));
    }
    Ok(roots)
}

/// The error with its sources, so "connection refused" or the TLS alert is not lost.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    fn get(port: u16) -> HttpRequest {
        http::Request::get(format!("http://127.0.0.1:{port}/jwks"))
            .body(Vec::new())
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let client = OidcHttpClient::new(None)
            .unwrap()
            .with_limits(Duration::from_secs(3), 1024);
        let e = client.send(get(port)).await.unwrap_err();
        assert!(matches!(e, HttpError::Timeout(_)), "{e}");
    }

    #[tokio::test]
    async fn an_oversized_response_is_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let body = vec![b'x'; 64 * 1024];
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        });
        let client = OidcHttpClient::new(None)
            .unwrap()
            .with_limits(Duration::from_secs(10), 1000);
        let e = client.send(get(port)).await.unwrap_err();
        assert!(matches!(e, HttpError::TooLarge(1000)), "{e}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = OidcHttpClient::new(Some(&path)).unwrap_err();
        assert!(e.to_string().contains("ca_file"), "{e}");
    }
}
