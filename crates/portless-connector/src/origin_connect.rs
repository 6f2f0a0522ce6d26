//! Opening one connection to an origin: dial the rule's origin (TCP or Unix socket), then TLS
//! when the rule's service says so.
//!
//! hyper-rustls's `HttpsConnector` would do the TLS step, but it takes the server name from the
//! request URI, dials whatever the URI names and gives the handshake no deadline. Origins need
//! all three under the rule's control:
//! * the URI names the `Host` sent (HTTP/2 takes `:authority` from it, and the pool keys
//!   connections by it), so the connector dials the rule's origin whatever the URI says;
//! * the server name is `originServerName`, else the request's host with `matchSNItoHost`,
//!   else the origin's host;
//! * `tlsTimeout` bounds the handshake, as `connectTimeout` bounds the dial.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, Write};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::TokioIo;
use portless_tls::rustls::ClientConfig;
use portless_tls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a rule's connections speak TLS.
pub(crate) struct OriginTlsDial {
    connector: TlsConnector,
    /// `None`: the request URI's host (`matchSNItoHost`).
    server_name: Option<ServerName<'static>>,
    timeout: Duration,
}

impl OriginTlsDial {
    /// TLS with `config`, naming the origin `server_name` (or the request's host when
    /// `None`), the handshake bounded by `timeout`.
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        server_name: Option<ServerName<'static>>,
        timeout: Duration,
    ) -> Self {
        Self {
            connector: TlsConnector::from(config),
            server_name,
            timeout,
        }
    }

    async fn handshake<T>(&self, uri: &Uri, io: T) -> Result<MaybeHttpsStream<T>, BoxError>
    where
        T: Read + Write + Connection + Unpin + Send + 'static,
    {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => request_server_name(uri)?,
        };
        let handshake = self.connector.connect(name, TokioIo::new(io));
        // `TimedOut` makes the visitor's answer `origin_timeout` (see `origin::classify`).
        let stream = tokio::time::timeout(self.timeout, handshake)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no TLS handshake with the origin within {:?} (tlsTimeout)",
                        self.timeout
                    ),
                )
            })??;
        Ok(MaybeHttpsStream::Https(TokioIo::new(stream)))
    }
}

/// The request URI's host as a server name, without the brackets of an IPv6 literal.
fn request_server_name(uri: &Uri) -> Result<ServerName<'static>, BoxError> {
    let host = uri.host().unwrap_or_default();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("the request host {host:?} is not a TLS server name: {e}").into())
}

/// A connector for hyper's pooled client: dials `origin` with `dial`, then TLS if set.
#[derive(Clone)]
pub(crate) struct OriginConnector<D> {
    dial: D,
    origin: Uri,
    tls: Option<Arc<OriginTlsDial>>,
}

impl<D> OriginConnector<D> {
    /// Connections to `origin` (a URI `dial` understands), through `tls` when given.
    pub(crate) fn new(dial: D, origin: Uri, tls: Option<OriginTlsDial>) -> Self {
        Self {
            dial,
            origin,
            tls: tls.map(Arc::new),
        }
    }
}

impl<D> tower_service::Service<Uri> for OriginConnector<D>
where
    D: tower_service::Service<Uri>,
    D::Response: Read + Write + Connection + Unpin + Send + 'static,
    D::Future: Send + 'static,
    D::Error: Into<BoxError>,
{
    type Response = MaybeHttpsStream<D::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.dial.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dialing = self.dial.call(self.origin.clone());
        let tls = self.tls.clone();
        Box::pin(async move {
            let io = dialing.await.map_err(Into::into)?;
            match tls {
                Some(tls) => tls.handshake(&uri, io).await,
                None => Ok(MaybeHttpsStream::Http(io)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_request_host_becomes_the_server_name_without_brackets_or_port() {
        let name = |uri: &str| request_server_name(&uri.parse().unwrap()).unwrap();
        assert_eq!(
            name("https://app.example.com:8443/"),
            ServerName::try_from("app.example.com").unwrap()
        );
        assert_eq!(
            name("https://[::1]:8443/"),
            ServerName::try_from("::1").unwrap()
        );
        assert!(request_server_name(&"https://bad_name!/".parse().unwrap()).is_err());
    }
}
