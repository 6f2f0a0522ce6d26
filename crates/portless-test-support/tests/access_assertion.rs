//! `originRequest.access` through the real edge and tunnel: a connector rule that requires the
//! edge's assertion refuses (403 `access_denied`, origin never dialled) every request that
//! does not carry one — and an assertion a client writes into its request never reaches the
//! connector, because the edge strips client-supplied identity headers. The edge's own
//! assertion being admitted, and key rotation, are tested in `access.rs`; forged, expired,
//! foreign and unknown-key tokens are refused by the connector's `access::tests`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use portless_access::assertion::{AssertionClaims, KeyRing};
use portless_access::{AuthLevel, Identity, Subject};
use portless_connector::{ConnectorHandle, ProtocolChoice};
use portless_store::Store;
use portless_test_support::{
    ClientBody, EdgeSetup, TestEdge, TestOrigin, encode_metrics, fast_edge_options,
    init_test_logging,
};
use tokio::sync::watch;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const HOUR: Duration = Duration::from_secs(60 * 60);
const APP: &str = "app.access.test";
const OPEN: &str = "open.access.test";
const ISSUER: &str = "https://auth.test";

struct Setup {
    edge: TestEdge,
    origin: TestOrigin,
    connector: ConnectorHandle,
    ring: KeyRing,
    store: Store,
    keys: watch::Sender<Option<Arc<str>>>,
}

fn rules(origin: &TestOrigin) -> String {
    format!(
        "ingress:
  - hostname: {APP}
    service: {url}
    originRequest:
      access:
        required: true
        teamName: auth.test
        audTag: [{APP}]
  - hostname: {OPEN}
    service: {url}
  - service: http_status:404
",
        url = origin.url()
    )
}

/// An edge whose store holds a key ring, given that ring's JWKS (when `send_keys`), and a
/// connector with a protected and an open rule toward one origin.
async fn setup(send_keys: bool) -> Setup {
    init_test_logging();
    let store = Store::open_in_memory().await.unwrap();
    let ring = KeyRing::load_or_create(&store, SystemTime::now(), DAY, HOUR)
        .await
        .unwrap();
    let initial = send_keys.then(|| Arc::from(ring.jwks_json(SystemTime::now())));
    let (keys, access_keys) = watch::channel(initial);
    let mut options = fast_edge_options();
    options.access_keys = access_keys;
    let edge = TestEdge::start_with(EdgeSetup {
        store: Some(store.clone()),
        options,
        ..EdgeSetup::default()
    })
    .await;
    let origin = TestOrigin::start("protected").await;
    let tunnel = edge.add_tunnel("access", &[APP, OPEN]).await;
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &rules(&origin),
        )
        .await;
    Setup {
        edge,
        origin,
        connector,
        ring,
        store,
        keys,
    }
}

fn alice() -> Identity {
    Identity {
        subject: Subject::User {
            name: "alice".into(),
            level: AuthLevel::TwoFactor,
            source: portless_access::Source::UsersFile,
        },
        display_name: "Alice".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["dev".into()],
    }
}

fn claims_at(at: SystemTime) -> AssertionClaims {
    AssertionClaims::for_identity(&alice(), APP, ISSUER, at, Duration::from_secs(300))
}

/// GET `host/hello` with `token` in `Cf-Access-Jwt-Assertion`.
async fn get(edge: &TestEdge, host: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Bytes) {
    let client = edge.client(false);
    let mut request = Request::get(client.url(host, "/hello"));
    if let Some(token) = token {
        request = request.header("cf-access-jwt-assertion", token);
    }
    let request = request.body(ClientBody::default()).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client.send(request))
        .await
        .expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

fn assert_denied(answer: &(StatusCode, HeaderMap, Bytes)) {
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{:?}", answer.2);
    assert_eq!(answer.1["portless-error"], "access_denied");
    let page = String::from_utf8_lossy(&answer.2);
    assert!(page.contains("Access denied"), "{page}");
}

fn denied_count(connector: &ConnectorHandle, reason: &str) -> u64 {
    let text = encode_metrics(connector.metrics_registry());
    let prefix = format!("portless_tunnel_access_denied_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

/// A token for the application signed by a P-256 key the edge never had, naming the edge's
/// current key id (so it is the signature, not the key id, that gives it away).
fn forged_token(ring: &KeyRing) -> String {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(ring.current_kid());
    jsonwebtoken::encode(
        &header,
        &claims_at(SystemTime::now()),
        &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap()
}

#[tokio::test]
async fn client_supplied_assertions_never_reach_the_connector_which_refuses_the_request() {
    // An edge without access control still strips identity headers a client made up; the
    // connector's rule requires an assertion, so every such request is refused there (and
    // the refusal of forged, expired, foreign and unknown-key tokens that would reach it
    // from a compromised edge is covered by the connector's own tests, `access::tests`).
    let s = setup(true).await;
    let valid = s.ring.sign(&claims_at(SystemTime::now())).unwrap();
    let expired = s
        .ring
        .sign(&claims_at(SystemTime::now() - Duration::from_secs(600)))
        .unwrap();
    for token in [
        Some(valid.as_str()),
        Some(&forged_token(&s.ring)),
        Some(&expired),
        Some("not.a.jwt"),
        None,
    ] {
        assert_denied(&get(&s.edge, APP, token).await);
    }
    assert_eq!(denied_count(&s.connector, "missing"), 5);
    assert_eq!(s.origin.requests(), 0, "the origin saw none of them");
    // A rule without `access` needs no assertion.
    let (status, _, _) = get(&s.edge, OPEN, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.origin.requests(), 1);
    drop((s.keys, s.store));
}
