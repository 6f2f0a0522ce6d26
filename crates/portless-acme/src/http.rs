//! The HTTPS client instant-acme talks to the directory with: hyper on the workspace's rustls
//! config (aws-lc-rs, system roots plus the optional `ca_file`), so the ACME client brings no
//! TLS stack of its own.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use portless_tls::{OriginTls, origin_client_config};

use crate::AcmeError;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The client; cheap to clone.
#[derive(Clone)]
pub(crate) struct AcmeHttp(Client<Https, BodyWrapper<Bytes>>);

impl AcmeHttp {
    /// A client trusting the system roots and, when given, the certificates in `ca_file`.
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<Self, AcmeError> {
        let config = origin_client_config(OriginTls {
            ca_pool: ca_file.map(Path::to_path_buf),
            no_verify: false,
            alpn_h2: false,
        })?;
        let mut config = (*config).clone();
        // hyper-rustls sets ALPN itself from the enabled HTTP versions.
        config.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(Self(Client::builder(TokioExecutor::new()).build(connector)))
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let response = self.0.request(req);
        Box::pin(async move {
            match response.await {
                Ok(response) => Ok(BytesResponse::from(response)),
                Err(e) => Err(instant_acme::Error::Other(Box::new(e))),
            }
        })
    }
}
