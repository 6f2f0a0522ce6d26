//! Real TLS handshakes over real loopback TCP sockets, through tokio-rustls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portless_tls::rustls::{self, ClientConfig, NamedGroup, ProtocolVersion, ServerConfig};
use portless_tls::rustls_pki_types::{CertificateDer, ServerName};
use portless_tls::{
    EdgeTrust, KxCounters, LocalCa, LocalCaResolver, OriginTls, TUNNEL_ALPN, TlsError,
    origin_client_config, provider, public_server_config, tunnel_client_config,
    tunnel_server_config, tunnel_server_config_with_counters,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const EDGE: &str = "edge.example.com";

/// What the server saw of a completed handshake.
#[derive(Debug)]
struct ServerView {
    group: Option<NamedGroup>,
    alpn: Option<Vec<u8>>,
    sni: Option<String>,
}

/// What the client saw of a completed handshake.
#[derive(Debug)]
struct ClientView {
    group: Option<NamedGroup>,
    version: Option<ProtocolVersion>,
    alpn: Option<Vec<u8>>,
    leaf: CertificateDer<'static>,
}

/// Accepts one TLS connection on `127.0.0.1:0`, writes `hello` and reports what it negotiated.
async fn serve_once(config: Arc<ServerConfig>) -> (SocketAddr, JoinHandle<io::Result<ServerView>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TlsAcceptor::from(config).accept(tcp).await?;
        tls.write_all(b"hello").await?;
        tls.shutdown().await?;
        let (_, conn) = tls.get_ref();
        Ok(ServerView {
            group: conn.negotiated_key_exchange_group().map(|g| g.name()),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            sni: conn.server_name().map(str::to_owned),
        })
    });
    (addr, task)
}

/// Connects, reads the server's `hello`, and reports what it negotiated; the error is the
/// rustls error that failed the handshake.
async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> Result<ClientView, rustls::Error> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(rustls_error)?;
    let mut greeting = Vec::new();
    tls.read_to_end(&mut greeting).await.unwrap();
    assert_eq!(greeting, b"hello");
    let (_, conn) = tls.get_ref();
    Ok(ClientView {
        group: conn.negotiated_key_exchange_group().map(|g| g.name()),
        version: conn.protocol_version(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        leaf: conn.peer_certificates().unwrap()[0].clone().into_owned(),
    })
}

fn rustls_error(err: io::Error) -> rustls::Error {
    let inner = err
        .into_inner()
        .expect("handshake error carries the rustls error");
    *inner.downcast::<rustls::Error>().expect("a rustls error")
}

/// Runs one handshake against a server that is expected to fail it, returning the client error
/// (our own message when the failure came from one of our verifiers).
async fn expect_rejected(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> String {
    let (addr, server_task) = serve_once(server).await;
    let err = connect(addr, client, name).await.unwrap_err();
    assert!(
        server_task.await.unwrap().is_err(),
        "server must see the handshake fail"
    );
    match TlsError::in_rustls_error(&err) {
        Some(ours) => ours.to_string(),
        None => err.to_string(),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A tunnel client whose provider offers only `groups`.
fn client_with_groups(ca: &LocalCa, groups: &[NamedGroup]) -> Arc<ClientConfig> {
    let base = provider();
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        kx_groups: rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
            .iter()
            .copied()
            .filter(|g| groups.contains(&g.name()))
            .collect(),
        ..(*base).clone()
    });
    let verifier = EdgeTrust::Pinned(ca.pin())
        .verifier(provider.clone())
        .unwrap();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
    Arc::new(config)
}

// === tunnel: pinned trust and post-quantum key exchange ===

#[tokio::test]
async fn pinned_tunnel_negotiates_x25519mlkem768() {
    let ca = LocalCa::generate("edge CA").unwrap();
    let counters = KxCounters::new();
    let server =
        tunnel_server_config_with_counters(ca.issue(&names(&[EDGE])).unwrap(), &counters).unwrap();
    let client = tunnel_client_config(EdgeTrust::Pinned(ca.pin())).unwrap();

    let (addr, server_task) = serve_once(server).await;
    let seen = connect(addr, client, EDGE).await.unwrap();
    let server_seen = server_task.await.unwrap().unwrap();

    assert_eq!(seen.group, Some(NamedGroup::X25519MLKEM768));
    assert_eq!(server_seen.group, Some(NamedGroup::X25519MLKEM768));
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(seen.alpn.as_deref(), Some(TUNNEL_ALPN));
    assert_eq!(server_seen.alpn.as_deref(), Some(TUNNEL_ALPN));
    assert_eq!(counters.get("X25519MLKEM768"), 1);
    assert_eq!(counters.total(), 1, "{counters:?}");
}

#[tokio::test]
async fn classical_only_client_falls_back_to_x25519() {
    let ca = LocalCa::generate("edge CA").unwrap();
    let counters = KxCounters::new();
    let server =
        tunnel_server_config_with_counters(ca.issue(&names(&[EDGE])).unwrap(), &counters).unwrap();
    let client = client_with_groups(&ca, &[NamedGroup::X25519]);

    let (addr, server_task) = serve_once(server).await;
    let seen = connect(addr, client, EDGE).await.unwrap();
    server_task.await.unwrap().unwrap();

    assert_eq!(seen.group, Some(NamedGroup::X25519));
    assert_eq!(counters.get("X25519"), 1);
    assert_eq!(counters.get("X25519MLKEM768"), 0);
}

#[tokio::test]
async fn hello_retry_request_counts_once() {
    // The client's first share is for P-384, which the server does not offer, so the server
    // answers with a HelloRetryRequest for P-256 before any key exchange happens.
    let ca = LocalCa::generate("edge CA").unwrap();
    let counters = KxCounters::new();
    let server =
        tunnel_server_config_with_counters(ca.issue(&names(&[EDGE])).unwrap(), &counters).unwrap();
    let client = client_with_groups(&ca, &[NamedGroup::secp384r1, NamedGroup::secp256r1]);

    let (addr, server_task) = serve_once(server).await;
    let seen = connect(addr, client, EDGE).await.unwrap();
    server_task.await.unwrap().unwrap();

    assert_eq!(seen.group, Some(NamedGroup::secp256r1));
    assert_eq!(counters.get("secp256r1"), 1);
    assert_eq!(counters.total(), 1, "{counters:?}");
}

#[tokio::test]
async fn pinned_trust_rejects_another_ca_with_the_same_names() {
    let trusted = LocalCa::generate("edge CA").unwrap();
    let impostor = LocalCa::generate("edge CA").unwrap();
    let server = tunnel_server_config(impostor.issue(&names(&[EDGE])).unwrap()).unwrap();
    let client = tunnel_client_config(EdgeTrust::Pinned(trusted.pin())).unwrap();
    let err = expect_rejected(server, client, EDGE).await;
    assert!(err.contains("does not contain the pinned CA"), "{err}");
    assert!(err.contains(&trusted.pin().to_string()), "{err}");
}

#[tokio::test]
async fn pinned_trust_checks_the_chain_not_just_the_hash() {
    // The impostor shows the trusted CA certificate (it is public) next to its own leaf: the
    // pin matches, but the leaf was not signed by that CA, so webpki refuses it.
    let trusted = LocalCa::generate("edge CA").unwrap();
    let impostor = LocalCa::generate("edge CA").unwrap();
    let leaf = impostor.issue(&names(&[EDGE])).unwrap();
    let forged = rustls::sign::CertifiedKey::new(
        vec![leaf.cert[0].clone(), trusted.cert_der().clone()],
        leaf.key.clone(),
    );
    let server = tunnel_server_config(Arc::new(forged)).unwrap();
    let client = tunnel_client_config(EdgeTrust::Pinned(trusted.pin())).unwrap();
    let err = expect_rejected(server, client, EDGE).await;
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn pinned_trust_rejects_a_wrong_server_name() {
    let ca = LocalCa::generate("edge CA").unwrap();
    let server = tunnel_server_config(ca.issue(&names(&[EDGE])).unwrap()).unwrap();
    let client = tunnel_client_config(EdgeTrust::Pinned(ca.pin())).unwrap();
    let err = expect_rejected(server, client, "other.example.com").await;
    assert!(err.contains("not valid for name"), "{err}");
}

#[tokio::test]
async fn pinned_trust_rejects_an_expired_leaf() {
    let ca = LocalCa::generate("edge CA").unwrap();
    let day = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let expired = ca
        .issue_valid_between(&names(&[EDGE]), now - 10 * day, now - day)
        .unwrap();
    let server = tunnel_server_config(expired).unwrap();
    let client = tunnel_client_config(EdgeTrust::Pinned(ca.pin())).unwrap();
    let err = expect_rejected(server, client, EDGE).await;
    assert!(err.contains("expired"), "{err}");
}

#[tokio::test]
async fn ip_address_names_are_verified() {
    let ca = LocalCa::generate("edge CA").unwrap();
    let server = tunnel_server_config(ca.issue(&names(&[EDGE, "127.0.0.1"])).unwrap()).unwrap();
    let client = tunnel_client_config(EdgeTrust::Pinned(ca.pin())).unwrap();
    let (addr, server_task) = serve_once(server).await;
    connect(addr, client, "127.0.0.1").await.unwrap();
    server_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn ca_certificate_trust_accepts_its_ca_only() {
    let ca = LocalCa::generate("edge CA").unwrap();
    let other = LocalCa::generate("edge CA").unwrap();
    let server = tunnel_server_config(ca.issue(&names(&[EDGE])).unwrap()).unwrap();

    let client = tunnel_client_config(EdgeTrust::CaCertificate(ca.cert_der().clone())).unwrap();
    let (addr, server_task) = serve_once(server.clone()).await;
    connect(addr, client, EDGE).await.unwrap();
    server_task.await.unwrap().unwrap();

    let client = tunnel_client_config(EdgeTrust::CaCertificate(other.cert_der().clone())).unwrap();
    let err = expect_rejected(server, client, EDGE).await;
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn tunnel_refuses_tls12_clients() {
    let ca = LocalCa::generate("edge CA").unwrap();
    let server = tunnel_server_config(ca.issue(&names(&[EDGE])).unwrap()).unwrap();
    let verifier = EdgeTrust::Pinned(ca.pin()).verifier(provider()).unwrap();
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    client.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
    let err = expect_rejected(server, Arc::new(client), EDGE).await;
    assert!(err.contains("ProtocolVersion"), "{err}");
}

#[test]
fn tunnel_server_config_suits_quinn() {
    // quinn's `QuicServerConfig::try_from` wants TLS 1.3 and 0-RTT either off or unlimited.
    let ca = LocalCa::generate("edge CA").unwrap();
    let config = tunnel_server_config(ca.issue(&names(&[EDGE])).unwrap()).unwrap();
    assert_eq!(config.max_early_data_size, 0);
    assert!(
        config
            .crypto_provider()
            .cipher_suites
            .iter()
            .any(|s| s.tls13().is_some())
    );
    assert_eq!(config.alpn_protocols, [TUNNEL_ALPN.to_vec()]);
}

// === public listener: SNI resolver ===

#[tokio::test]
async fn resolver_serves_issued_leaf_for_served_names_and_default_otherwise() {
    let ca = Arc::new(LocalCa::generate("public CA").unwrap());
    let default = ca.issue(&names(&["default.invalid"])).unwrap();
    let default_der = default.cert[0].clone();
    let resolver = Arc::new(LocalCaResolver::new(ca.clone(), default, |name| {
        name == "app.example.com"
    }));
    let server = public_server_config(resolver.clone()).unwrap();

    // A verifying origin-style client trusting the CA through a PEM file (the `ca_pool` path).
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let verifying = origin_client_config(OriginTls {
        ca_pool: Some(ca_file),
        no_verify: false,
        alpn_h2: true,
    })
    .unwrap();

    let (addr, server_task) = serve_once(server.clone()).await;
    let seen = connect(addr, verifying.clone(), "app.example.com")
        .await
        .unwrap();
    let server_seen = server_task.await.unwrap().unwrap();
    assert_ne!(seen.leaf, default_der);
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(server_seen.sni.as_deref(), Some("app.example.com"));
    assert_eq!(resolver.cached(), 1);

    // A name without a route gets the default certificate: the verifying client refuses it,
    // and a non-verifying one shows it is the default.
    let err = expect_rejected(server.clone(), verifying, "other.example.com").await;
    assert!(err.contains("not valid for name"), "{err}");

    let permissive = origin_client_config(OriginTls {
        ca_pool: None,
        no_verify: true,
        alpn_h2: false,
    })
    .unwrap();
    let (addr, server_task) = serve_once(server).await;
    let seen = connect(addr, permissive, "other.example.com")
        .await
        .unwrap();
    server_task.await.unwrap().unwrap();
    assert_eq!(seen.leaf, default_der);
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(resolver.cached(), 1);
}

#[tokio::test]
async fn public_listener_still_speaks_tls12() {
    let ca = Arc::new(LocalCa::generate("public CA").unwrap());
    let default = ca.issue(&names(&["app.example.com"])).unwrap();
    let resolver = Arc::new(LocalCaResolver::new(ca.clone(), default, |_| false));
    let server = public_server_config(resolver).unwrap();
    let verifier = EdgeTrust::CaCertificate(ca.cert_der().clone())
        .verifier(provider())
        .unwrap();
    let client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let (addr, server_task) = serve_once(server).await;
    let seen = connect(addr, Arc::new(client), "app.example.com")
        .await
        .unwrap();
    server_task.await.unwrap().unwrap();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(seen.group, Some(NamedGroup::X25519));
}

#[test]
fn origin_ca_pool_errors_name_the_file() {
    let err = origin_client_config(OriginTls {
        ca_pool: Some("/nonexistent/origin-ca.pem".into()),
        ..OriginTls::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("/nonexistent/origin-ca.pem"), "{err}");
}
