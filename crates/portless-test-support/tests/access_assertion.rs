//! `originRequest.access` through the real edge and tunnel: the edge sends its assertion keys
//! to the connector, and the connector refuses (403 `access_denied`, origin never dialled)
//! every request to a protected rule without a valid assertion: none, forged, expired, or
//! signed by a key rotated out of the overlap.
//!
//! The edge does not yet strip client-supplied assertion headers or set its own, so these
//! tests put the assertion in the request themselves and it reaches the connector as sent.
//! Once the edge sets its own assertion on protected hostnames, the forged and expired cases
//! below (which pose as what a client sends) move to a hostname the edge does not protect,
//! and the valid case is the edge's own assertion.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

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

/// Repeats `get` until it answers `want` (the keys reach the connector asynchronously).
async fn wait_for_status(edge: &TestEdge, token: &str, want: StatusCode) {
    let start = Instant::now();
    loop {
        let (status, _, body) = get(edge, APP, Some(token)).await;
        if status == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {status} (not {want}) after 10 s: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
async fn the_connector_refuses_requests_without_a_valid_assertion() {
    let s = setup(true).await;
    let valid = s.ring.sign(&claims_at(SystemTime::now())).unwrap();
    // (d) A valid assertion is served (waiting for the keys to reach the connector).
    wait_for_status(&s.edge, &valid, StatusCode::OK).await;
    let served = s.origin.requests();
    let seen = s.origin.last_headers().unwrap();
    assert_eq!(seen["cf-access-jwt-assertion"], valid.as_str());

    // (a) No assertion.
    assert_denied(&get(&s.edge, APP, None).await);
    assert_eq!(denied_count(&s.connector, "missing"), 1);
    // (b) Forged: signed by another key.
    assert_denied(&get(&s.edge, APP, Some(&forged_token(&s.ring))).await);
    assert_eq!(denied_count(&s.connector, "bad_signature"), 1);
    // (c) Signed by the edge's key, but expired (issued ten minutes ago, valid five).
    let expired = s
        .ring
        .sign(&claims_at(SystemTime::now() - Duration::from_secs(600)))
        .unwrap();
    assert_denied(&get(&s.edge, APP, Some(&expired)).await);
    assert_eq!(denied_count(&s.connector, "expired"), 1);
    // For another application: the audience does not match.
    let mut other = claims_at(SystemTime::now());
    other.aud = vec![OPEN.to_owned()];
    assert_denied(&get(&s.edge, APP, Some(&s.ring.sign(&other).unwrap())).await);
    assert_eq!(denied_count(&s.connector, "audience"), 1);
    // Garbage.
    assert_denied(&get(&s.edge, APP, Some("not.a.jwt")).await);
    // The origin saw none of the refused requests.
    assert_eq!(s.origin.requests(), served);

    // A rule without `access` needs no assertion.
    let (status, _, _) = get(&s.edge, OPEN, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.origin.requests(), served + 1);
    drop(s.keys);
}

#[tokio::test]
async fn without_keys_from_the_edge_every_assertion_is_refused() {
    let s = setup(false).await;
    let valid = s.ring.sign(&claims_at(SystemTime::now())).unwrap();
    assert_denied(&get(&s.edge, APP, Some(&valid)).await);
    assert_eq!(denied_count(&s.connector, "no_keys"), 1);
    assert_eq!(s.origin.requests(), 0);
    // Keys turned on later reach the running connector.
    s.keys
        .send(Some(s.ring.jwks_json(SystemTime::now()).into()))
        .unwrap();
    wait_for_status(&s.edge, &valid, StatusCode::OK).await;
}

#[tokio::test]
async fn rotated_keys_reach_the_connector_and_the_previous_key_verifies_during_the_overlap() {
    let s = setup(true).await;
    let now = SystemTime::now();
    let old = s.ring.sign(&claims_at(now)).unwrap();
    wait_for_status(&s.edge, &old, StatusCode::OK).await;
    let old_kid = s.ring.current_kid();

    // A day later (on the ring's clock) the key rotates; the edge re-sends the key set.
    let rotated = now + DAY;
    assert!(s.ring.rotate_if_due(&s.store, rotated).await.unwrap());
    assert_ne!(s.ring.current_kid(), old_kid);
    s.keys.send(Some(s.ring.jwks_json(rotated).into())).unwrap();
    let new = s.ring.sign(&claims_at(now)).unwrap();
    wait_for_status(&s.edge, &new, StatusCode::OK).await;
    // The previous key is still in the overlap: its token still verifies.
    let (status, _, _) = get(&s.edge, APP, Some(&old)).await;
    assert_eq!(status, StatusCode::OK);

    // Once the overlap is over, the previous key is dropped and its tokens refused.
    let after = rotated + HOUR;
    assert!(s.ring.rotate_if_due(&s.store, after).await.unwrap());
    s.keys.send(Some(s.ring.jwks_json(after).into())).unwrap();
    wait_for_status(&s.edge, &old, StatusCode::FORBIDDEN).await;
    assert!(denied_count(&s.connector, "unknown_key") >= 1);
    let (status, _, _) = get(&s.edge, APP, Some(&new)).await;
    assert_eq!(status, StatusCode::OK);
}
