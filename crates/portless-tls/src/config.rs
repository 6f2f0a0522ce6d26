//! The four rustls configs Portless needs: tunnel server and client, public server, origin client.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};

use crate::verify::{AcceptAnyServerCert, system_roots, webpki_verifier};
use crate::{EdgeTrust, KxCounters, TlsError, pem, provider};

/// ALPN protocol of the edge ↔ connector tunnel, over QUIC and over TLS-over-TCP alike.
pub const TUNNEL_ALPN: &[u8] = b"portless-tunnel/1";

/// ALPN protocols the public listener offers, most preferred first.
const PUBLIC_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Edge and connector are both ours, so the tunnel needs no TLS 1.2 compatibility; TLS 1.3 is
/// also what QUIC requires.
const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12_AND_13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The edge's tunnel listener config: TLS 1.3 only, ALPN [`TUNNEL_ALPN`], no client
/// certificates (connectors authenticate inside the tunnel), no 0-RTT.
///
/// Works for tokio-rustls as is and for quinn through `QuicServerConfig::try_from` (which
/// requires TLS 1.3 and `max_early_data_size` of 0 or `u32::MAX`; it is left at 0 because
/// registration must not be replayable).
pub fn tunnel_server_config(key: Arc<CertifiedKey>) -> Result<Arc<ServerConfig>, TlsError> {
    tunnel_server_config_for(key, provider())
}

/// [`tunnel_server_config`] whose key exchanges are counted in `counters`.
pub fn tunnel_server_config_with_counters(
    key: Arc<CertifiedKey>,
    counters: &Arc<KxCounters>,
) -> Result<Arc<ServerConfig>, TlsError> {
    tunnel_server_config_for(key, counters.counting_provider())
}

fn tunnel_server_config_for(
    key: Arc<CertifiedKey>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13_ONLY)
        .map_err(config_err("tunnel server config"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
    config.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}

/// The connector's tunnel config: TLS 1.3 only, ALPN [`TUNNEL_ALPN`], edge verified by `trust`.
pub fn tunnel_client_config(trust: EdgeTrust) -> Result<Arc<ClientConfig>, TlsError> {
    tunnel_client_config_for(trust, provider())
}

/// [`tunnel_client_config`] offering only X25519MLKEM768: the handshake fails rather than
/// fall back to a classical key exchange (`post-quantum: true`).
pub fn tunnel_client_config_post_quantum(trust: EdgeTrust) -> Result<Arc<ClientConfig>, TlsError> {
    let mut pq = (*provider()).clone();
    pq.kx_groups
        .retain(|group| group.name() == rustls::NamedGroup::X25519MLKEM768);
    tunnel_client_config_for(trust, Arc::new(pq))
}

fn tunnel_client_config_for(
    trust: EdgeTrust,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = trust.verifier(provider.clone())?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13_ONLY)
        .map_err(config_err("tunnel client config"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The edge's public HTTPS listener: TLS 1.2 and 1.3 (browsers and old clients), ALPN `h2` then
/// `http/1.1`, certificates chosen per SNI by `resolver`.
pub fn public_server_config(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS12_AND_13)
        .map_err(config_err("public server config"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = PUBLIC_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// [`public_server_config`] that also accepts `acme-tls/1` (TLS-ALPN-01 challenges, RFC 8737),
/// listed last so a client offering it next to `h2` or `http/1.1` still gets HTTP; the caller
/// closes a connection that negotiated `acme-tls/1` right after its handshake.
pub fn public_server_config_with_acme(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = Arc::unwrap_or_clone(public_server_config(resolver)?);
    config
        .alpn_protocols
        .push(crate::public::ACME_TLS_ALPN.to_vec());
    Ok(Arc::new(config))
}

/// TLS options of one HTTPS origin, as the connector's ingress rules give them.
#[derive(Clone, Debug, Default)]
pub struct OriginTls {
    /// Extra CA certificates (PEM) trusted in addition to the system roots.
    pub ca_pool: Option<PathBuf>,
    /// Accept any origin certificate (handshake signatures are still checked).
    pub no_verify: bool,
    /// Offer HTTP/2 (`h2`) before `http/1.1` in ALPN.
    pub alpn_h2: bool,
}

/// The connector's client config for one HTTPS origin: TLS 1.2 and 1.3, system roots plus
/// `ca_pool`. Missing system roots are fatal only when there is no `ca_pool` to fall back on.
pub fn origin_client_config(origin: OriginTls) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if origin.no_verify {
        tracing::warn!("origin certificate verification is disabled (no_verify)");
        Arc::new(AcceptAnyServerCert {
            provider: provider.clone(),
        })
    } else {
        let mut roots = system_roots(origin.ca_pool.is_none())?;
        if let Some(path) = &origin.ca_pool {
            for cert in pem::load_pem_certs(path)? {
                roots.add(cert).map_err(|source| TlsError::BadTrustAnchor {
                    what: format!("a certificate in {}", path.display()),
                    source,
                })?;
            }
        }
        webpki_verifier(roots, provider.clone())?
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS12_AND_13)
        .map_err(config_err("origin client config"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = if origin.alpn_h2 {
        PUBLIC_ALPN.iter().map(|p| p.to_vec()).collect()
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

fn config_err(what: &'static str) -> impl FnOnce(rustls::Error) -> TlsError {
    move |source| TlsError::Config { what, source }
}
