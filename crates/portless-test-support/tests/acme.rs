//! Public TLS end to end: certificates obtained from a real ACME CA (Debian's pebble, which
//! validates HTTP-01 and TLS-ALPN-01 against the edge's own listeners), served over real TLS,
//! renewed under load; the port-80 listener; HSTS; static certificate files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use portless_connector::ProtocolChoice;
use portless_edge::{AcmeOptions, ChallengeKind, Directory, Eab, Hsts, StaticCertificate};
use portless_test_support::peers_acme::{PEBBLE_EAB_HMAC, PEBBLE_EAB_KID, PebblePeer, PebbleSetup};
use portless_test_support::{
    EdgeSetup, TestClient, TestEdge, TestOrigin, fast_edge_options, init_test_logging, wait_for,
};
use portless_tls::LocalCa;
use portless_tls::rustls;
use portless_tls::rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const APP: &str = "app.test";
const DEEP: &str = "a.b.c.app.test";

/// An edge whose listeners pebble validates against, with ACME at `pebble`.
struct AcmeEdge {
    edge: TestEdge,
    pebble: PebblePeer,
    _origin: TestOrigin,
    _connector: portless_connector::ConnectorHandle,
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn acme_edge(kind: ChallengeKind, eab: bool) -> Option<AcmeEdge> {
    init_test_logging();
    let public = bind().await;
    let http = bind().await;
    let pebble = PebblePeer::start(PebbleSetup {
        http_port: http.local_addr().unwrap().port(),
        tls_port: public.local_addr().unwrap().port(),
        eab_required: eab,
    })?;
    let mut acme = AcmeOptions::new(Directory::Url(pebble.directory.clone()));
    acme.ca_file = Some(pebble.ca_file.clone());
    acme.email = Some("ops@app.test".to_owned());
    acme.challenges = vec![kind];
    acme.retry_base = Duration::from_millis(200);
    acme.retry_cap = Duration::from_secs(2);
    acme.check_interval = Duration::from_secs(1);
    if eab {
        acme.eab = Some(Eab::new(PEBBLE_EAB_KID.to_owned(), PEBBLE_EAB_HMAC).unwrap());
    }
    let mut options = fast_edge_options();
    options.tls.acme = Some(acme);
    let edge = TestEdge::start_with(EdgeSetup {
        options,
        public_listener: Some(public),
        http_listener: Some(http),
        ..EdgeSetup::default()
    })
    .await;
    let origin = TestOrigin::start("acme-origin").await;
    let tunnel = edge.add_tunnel("acme", &[APP, DEEP]).await;
    let rules = format!("ingress:\n  - service: {}\n", origin.url());
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    Some(AcmeEdge {
        edge,
        pebble,
        _origin: origin,
        _connector: connector,
    })
}

impl AcmeEdge {
    async fn wait_for_certificates(&self, names: &[&str]) {
        let acme = self.edge.handle.acme().unwrap().clone();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let logs = || self.pebble.logs();
        let all_in = || names.iter().all(|n| acme.certificates().contains(n));
        let start = std::time::Instant::now();
        while !all_in() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "certificates for {names:?} not obtained; {}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn client(&self) -> TestClient {
        TestClient::new(
            self.pebble.issuing_root(),
            self.edge.handle.public_addr().port(),
            false,
        )
    }
}

/// The leaf the edge serves for `name`, verified against `root` (so its SAN matches).
async fn served_leaf(
    port: u16,
    name: &str,
    root: &CertificateDer<'static>,
) -> Result<CertificateDer<'static>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(portless_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    Ok(leaf.into_owned())
}

async fn obtains_and_serves(kind: ChallengeKind, eab: bool) {
    let Some(acme) = acme_edge(kind, eab).await else {
        return;
    };
    acme.wait_for_certificates(&[APP, DEEP]).await;
    let client = acme.client();
    for name in [APP, DEEP] {
        let (status, _, body) = client.get(name, "/hello").await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(body, "hello from acme-origin");
    }
    // The CA's root verifies the served chain for the routed names only: an unrouted name
    // gets the fallback certificate, which it does not.
    let root = acme.pebble.issuing_root();
    let port = acme.edge.handle.public_addr().port();
    assert!(served_leaf(port, DEEP, &root).await.is_ok());
    assert!(served_leaf(port, "other.test", &root).await.is_err());
    // Account and certificates are in the store, for other edges.
    let stored = acme.edge.store.certificates().await.unwrap();
    let names: Vec<&str> = stored.iter().map(|c| c.hostname.as_str()).collect();
    assert_eq!(names, [DEEP, APP]);
    acme.edge.handle.shutdown().await;
}

#[tokio::test]
async fn http01_obtains_certificates_at_any_depth_and_serves_them() {
    obtains_and_serves(ChallengeKind::Http01, false).await;
}

#[tokio::test]
async fn tls_alpn01_with_external_account_binding_obtains_and_serves() {
    obtains_and_serves(ChallengeKind::TlsAlpn01, true).await;
}

#[tokio::test]
async fn renewal_under_load_drops_no_request_and_changes_the_certificate() {
    let Some(acme) = acme_edge(ChallengeKind::TlsAlpn01, false).await else {
        return;
    };
    // Both routed names first: the issued count below must not move for the other name's
    // first certificate while the test waits for this one's renewal.
    acme.wait_for_certificates(&[APP, DEEP]).await;
    let root = acme.pebble.issuing_root();
    let port = acme.edge.handle.public_addr().port();
    let before = served_leaf(port, APP, &root).await.unwrap();
    let manager = acme.edge.handle.acme().unwrap().clone();
    let issued = manager.issued();

    let stop = tokio_util::sync::CancellationToken::new();
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        // A fresh client per request: every request makes a new TLS handshake, so the
        // switch of certificates happens under them.
        let (stop, ok, failed, root) = (stop.clone(), ok.clone(), failed.clone(), root.clone());
        load.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let client = TestClient::new(root.clone(), port, false);
                match client.try_get(APP, "/hello").await {
                    Ok((StatusCode::OK, _)) => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    wait_for(
        "requests before the renewal",
        Duration::from_secs(10),
        || ok.load(Ordering::SeqCst) >= 20,
    )
    .await;
    manager.force_renewal(APP);
    wait_for("the renewed certificate", Duration::from_secs(60), || {
        manager.issued() > issued
    })
    .await;
    let after_ok = ok.load(Ordering::SeqCst);
    wait_for(
        "requests after the renewal",
        Duration::from_secs(10),
        || ok.load(Ordering::SeqCst) >= after_ok + 20,
    )
    .await;
    stop.cancel();
    for task in load {
        task.await.unwrap();
    }
    let after = served_leaf(port, APP, &root).await.unwrap();
    assert_ne!(before, after, "the served certificate did not change");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed during renewal"
    );
    assert!(ok.load(Ordering::SeqCst) >= 40);
    acme.edge.handle.shutdown().await;
}

/// Sends one raw HTTP/1.1 request to `port` and returns the response text.
async fn raw_http(port: u16, request: &str) -> String {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn port80_redirects_to_https_passes_challenges_to_origins_and_refuses_bad_hosts() {
    init_test_logging();
    let mut options = fast_edge_options();
    options.http.acme_challenge_to_origin = vec!["legacy.test".to_owned()];
    let edge = TestEdge::start_with(EdgeSetup {
        options,
        http_listener: Some(bind().await),
        ..EdgeSetup::default()
    })
    .await;
    let origin = TestOrigin::start("legacy").await;
    let tunnel = edge
        .add_tunnel("legacy", &["legacy.test", "app.test"])
        .await;
    let rules = format!("ingress:\n  - service: {}\n", origin.url());
    let _connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    let port = edge.handle.http_addr().unwrap().port();

    let redirect = raw_http(
        port,
        "GET /some/path?x=1&y=2 HTTP/1.1\r\nHost: App.Test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(redirect.starts_with("HTTP/1.1 308"), "{redirect}");
    assert!(
        redirect
            .to_ascii_lowercase()
            .contains("location: https://app.test/some/path?x=1&y=2\r\n"),
        "{redirect}"
    );

    for bad in [
        "Host: \r\n",
        "Host: a b\r\n",
        "Host: app.test\r\nHost: other.test\r\n",
        "",
    ] {
        let response = raw_http(
            port,
            &format!("GET / HTTP/1.1\r\n{bad}Connection: close\r\n\r\n"),
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 400"), "{bad:?}: {response}");
        assert!(
            !response.to_ascii_lowercase().contains("location:"),
            "{response}"
        );
    }

    // This edge has no order pending, so its own challenges are unknown...
    let unknown = raw_http(
        port,
        "GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert_eq!(origin.requests(), 0);
    // ...while a passthrough hostname's challenge reaches its origin through the tunnel.
    let passed = raw_http(
        port,
        "GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: legacy.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        passed.contains("origin legacy has no /.well-known/acme-challenge/abc"),
        "{passed}"
    );
    assert_eq!(origin.requests(), 1);
    edge.handle.shutdown().await;
}

#[tokio::test]
async fn hsts_is_sent_on_https_responses() {
    init_test_logging();
    let mut options = fast_edge_options();
    options.tls.hsts = Some(Hsts {
        max_age: Duration::from_secs(365 * 24 * 3600),
        include_subdomains: true,
        preload: false,
    });
    let edge = TestEdge::start_with(EdgeSetup {
        options,
        ..EdgeSetup::default()
    })
    .await;
    let origin = TestOrigin::start("hsts").await;
    let tunnel = edge.add_tunnel("hsts", &["hsts.test"]).await;
    // Routed, but no connector: the edge answers with its own error page.
    edge.add_tunnel("down", &["down.test"]).await;
    let rules = format!("ingress:\n  - service: {}\n", origin.url());
    let _connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    for http2 in [false, true] {
        let (status, headers, _) = edge.client(http2).get("hsts.test", "/hello").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get("strict-transport-security").unwrap(),
            "max-age=31536000; includeSubDomains"
        );
        // Error pages from the edge itself carry it too.
        let (status, headers, _) = edge.client(http2).get("down.test", "/").await;
        assert!(status.is_server_error(), "{status}");
        assert!(headers.contains_key("strict-transport-security"));
    }
    edge.handle.shutdown().await;
}

#[tokio::test]
async fn static_certificate_files_are_served_first_and_reloaded_on_change() {
    init_test_logging();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("static.pem");
    let key = dir.path().join("static-key.pem");
    let write = |ca: &LocalCa| {
        let (chain, private) = ca.issue_pem(&["*.static.test".to_owned()]).unwrap();
        // Key first: the watcher may look between the two writes and must not pair a new
        // key with the old certificate for good (a failed load keeps the previous set).
        std::fs::write(&key, private).unwrap();
        std::fs::write(&cert, chain).unwrap();
    };
    let first = LocalCa::generate("static one").unwrap();
    write(&first);
    let mut options = fast_edge_options();
    options.tls.certificates = vec![StaticCertificate {
        hostnames: vec!["*.static.test".to_owned()],
        cert: cert.clone(),
        key: key.clone(),
    }];
    options.tls.reload_interval = Duration::from_millis(100);
    let edge = TestEdge::start_with(EdgeSetup {
        options,
        ..EdgeSetup::default()
    })
    .await;
    let origin = TestOrigin::start("static").await;
    let tunnel = edge.add_tunnel("static", &["www.static.test"]).await;
    let rules = format!("ingress:\n  - service: {}\n", origin.url());
    let _connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules,
        )
        .await;
    let port = edge.handle.public_addr().port();
    let client = TestClient::new(first.cert_der().clone(), port, false);
    let (status, _, _) = client.get("www.static.test", "/hello").await;
    assert_eq!(status, StatusCode::OK);
    // The file beats the local CA, which the edge would otherwise use for a routed name.
    assert!(
        served_leaf(port, "www.static.test", edge.ca.cert_der())
            .await
            .is_err()
    );

    let second = LocalCa::generate("static two").unwrap();
    write(&second);
    let mut reloaded = false;
    for _ in 0..200 {
        if served_leaf(port, "www.static.test", second.cert_der())
            .await
            .is_ok()
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "the changed certificate file was not picked up");
    edge.handle.shutdown().await;
}
