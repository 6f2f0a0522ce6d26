//! Tests of signing, the key ring (rotation, overlap, several edges on one store), the JWKS
//! and verification, including the hand-crafted tokens of attack class G.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portless_store::Store;
use serde_json::{Value, json};

use super::*;
use crate::{AuthLevel, Identity, Subject};

const ISSUER: &str = "https://auth.test";
const APP: &str = "app.test";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const HOUR: Duration = Duration::from_secs(60 * 60);

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn alice() -> Identity {
    Identity {
        subject: Subject::User {
            name: "alice".into(),
            level: AuthLevel::TwoFactor,
            source: crate::Source::UsersFile,
        },
        display_name: "Alice Doe".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["admins".into(), "dev".into()],
    }
}

async fn ring_at(store: &Store, now: SystemTime) -> KeyRing {
    KeyRing::load_or_create(store, now, DAY, HOUR)
        .await
        .unwrap()
}

async fn new_ring() -> (Store, KeyRing) {
    let store = Store::open_in_memory().await.unwrap();
    let ring = ring_at(&store, t0()).await;
    (store, ring)
}

fn token_for(ring: &KeyRing, now: SystemTime) -> String {
    let claims = AssertionClaims::for_identity(&alice(), APP, ISSUER, now, MAX_TTL);
    ring.sign(&claims).unwrap()
}

fn apps() -> Vec<String> {
    vec![APP.to_owned()]
}

/// The claims an edge would sign at `now`, as JSON to tamper with.
fn claims_json(now: SystemTime) -> Value {
    serde_json::to_value(AssertionClaims::for_identity(
        &alice(),
        APP,
        ISSUER,
        now,
        MAX_TTL,
    ))
    .unwrap()
}

fn es256_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    header
}

/// A compact token from raw JSON header and payload and raw signature bytes.
fn raw_token(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A P-256 key that is not the ring's: PKCS#8 and uncompressed public key.
fn attacker_p256() -> (Vec<u8>, Vec<u8>) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    (pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
}

fn verify(ring: &KeyRing, token: &str, now: SystemTime) -> Result<AssertionClaims, VerifyError> {
    ring.verifier(now).verify(token, ISSUER, &apps(), now)
}

// === Claims ===

#[test]
fn claims_for_a_user_carry_the_identity_and_a_short_life() {
    let claims = AssertionClaims::for_identity(&alice(), APP, ISSUER, t0(), DAY);
    assert_eq!(claims.aud, vec![APP.to_owned()]);
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.name.as_deref(), Some("Alice Doe"));
    assert_eq!(claims.groups, vec!["admins", "dev"]);
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.iat, secs(t0()));
    assert_eq!(claims.nbf, claims.iat);
    // A day was asked for; five minutes is the most an assertion lives.
    assert_eq!(claims.exp, claims.iat + 300);
    assert_eq!(claims.r#type, "app");
    assert_eq!(claims.common_name, None);
    let text = serde_json::to_value(&claims).unwrap();
    assert_eq!(text["type"], "app");
    assert!(text["aud"].is_array());
    assert!(text.get("common_name").is_none());
}

#[test]
fn claims_for_a_service_token_name_its_client_id() {
    let token = Identity {
        subject: Subject::ServiceToken {
            name: "ci".into(),
            client_id: "abc123.access".into(),
        },
        display_name: String::new(),
        email: None,
        groups: vec![],
    };
    let claims = AssertionClaims::for_identity(&token, APP, ISSUER, t0(), Duration::from_secs(60));
    assert_eq!(claims.sub, "abc123.access");
    assert_eq!(claims.common_name.as_deref(), Some("abc123.access"));
    assert_eq!(claims.name, None);
    assert_eq!(claims.email, None);
    assert_eq!(claims.exp, claims.iat + 60);
}

#[test]
fn team_names_map_to_https_issuers() {
    assert_eq!(issuer_for_team("auth.test"), "https://auth.test");
    assert_eq!(
        issuer_for_team("Auth.Example.COM"),
        "https://auth.example.com"
    );
    assert_eq!(issuer_for_team("https://auth.test/"), "https://auth.test");
    assert_eq!(issuer_for_team(" auth.test "), "https://auth.test");
}

// === Signing, JWKS ===

#[tokio::test]
async fn a_signed_assertion_verifies_against_the_published_keys() {
    let (_store, ring) = new_ring().await;
    let token = token_for(&ring, t0());
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], ring.current_kid().as_str());
    let claims = verify(&ring, &token, t0()).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.groups, vec!["admins", "dev"]);
    // Through the JSON form too, as a connector receives it.
    let verifier = AssertionVerifier::from_jwks_json(&ring.jwks_json(t0())).unwrap();
    assert_eq!(
        verifier.verify(&token, ISSUER, &[], t0()).unwrap().sub,
        "alice"
    );
}

#[tokio::test]
async fn the_jwks_has_the_published_shape() {
    let (_store, ring) = new_ring().await;
    let jwks: Value = serde_json::from_str(&ring.jwks_json(t0())).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut names: Vec<&str> = key.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    for coordinate in ["x", "y"] {
        let bytes = URL_SAFE_NO_PAD
            .decode(key[coordinate].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 32, "{coordinate}");
    }
    // 16 bytes of SHA-256, base64url: 22 characters.
    assert_eq!(key["kid"].as_str().unwrap().len(), 22);
    assert_eq!(key["kid"], ring.current_kid().as_str());
}

#[tokio::test]
async fn debug_output_shows_key_ids_not_keys() {
    let (store, ring) = new_ring().await;
    let text = format!("{ring:?}");
    assert!(text.contains(&ring.current_kid()), "{text}");
    let stored = store.signing_keys().await.unwrap();
    let private = URL_SAFE_NO_PAD.encode(&stored[0].pkcs8);
    assert!(!text.contains(&private[..20]), "{text}");
}

// === Key ring: persistence, rotation, overlap ===

#[tokio::test]
async fn every_edge_on_a_store_signs_with_the_same_key() {
    let (store, first) = new_ring().await;
    let second = ring_at(&store, t0() + Duration::from_secs(10)).await;
    assert_eq!(first.current_kid(), second.current_kid());
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    // What one edge signs, the other's JWKS verifies.
    let token = token_for(&first, t0());
    verify(&second, &token, t0()).unwrap();
}

#[tokio::test]
async fn no_rotation_before_it_is_due() {
    let (store, ring) = new_ring().await;
    let kid = ring.current_kid();
    assert!(
        !ring
            .rotate_if_due(&store, t0() + DAY - Duration::from_secs(1))
            .await
            .unwrap()
    );
    assert_eq!(ring.current_kid(), kid);
}

#[tokio::test]
async fn rotation_keeps_the_previous_key_for_the_overlap_only() {
    let (store, ring) = new_ring().await;
    let old_kid = ring.current_kid();
    let rotated_at = t0() + DAY;
    let before = token_for(&ring, rotated_at - Duration::from_secs(10));

    assert!(ring.rotate_if_due(&store, rotated_at).await.unwrap());
    let new_kid = ring.current_kid();
    assert_ne!(new_kid, old_kid);
    let published: Vec<String> = ring
        .jwks(rotated_at)
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        published,
        vec![new_kid.clone(), old_kid.clone()],
        "current key first"
    );
    // A token signed just before the rotation still verifies.
    verify(&ring, &before, rotated_at).unwrap();
    // The previous key signs on while the new key set reaches every verifier...
    let during = token_for(&ring, rotated_at + PUBLISH_LEAD - Duration::from_secs(1));
    assert!(during.starts_with(&es256_prefix(&old_kid)));
    // ...then new tokens use the new key.
    let after = token_for(&ring, rotated_at + PUBLISH_LEAD);
    assert!(after.starts_with(&es256_prefix(&new_kid)));

    // Nothing changes again until the overlap ends...
    assert!(
        !ring
            .rotate_if_due(&store, rotated_at + HOUR - Duration::from_secs(1))
            .await
            .unwrap()
    );
    // ...then the old key is no longer published, and gone from the store.
    let later = rotated_at + HOUR;
    assert!(ring.rotate_if_due(&store, later).await.unwrap());
    let published: Vec<String> = ring.jwks(later).keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(published, vec![new_kid]);
    assert!(
        store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.kid != old_kid)
    );
    // The key is looked up before anything else: the token names a key no longer published.
    assert_eq!(
        verify(&ring, &before, later).unwrap_err(),
        VerifyError::UnknownKey { kid: old_kid }
    );
}

/// The start of a token whose header is exactly `{"typ":"JWT","alg":"ES256","kid":kid}`.
fn es256_prefix(kid: &str) -> String {
    let header = serde_json::to_string(&es256_header(kid)).unwrap();
    URL_SAFE_NO_PAD.encode(header)
}

#[tokio::test]
async fn a_rotation_by_one_edge_is_adopted_by_the_others() {
    let (store, a) = new_ring().await;
    let b = ring_at(&store, t0()).await;
    let rotated_at = t0() + DAY;
    let before_b = token_for(&b, rotated_at - Duration::from_secs(5));
    assert!(a.rotate_if_due(&store, rotated_at).await.unwrap());
    // b has not looked yet: it still signs with the old key, which a's JWKS still holds.
    verify(&a, &token_for(&b, rotated_at), rotated_at).unwrap();
    // b looks a minute later: it adopts a's key instead of making its own.
    assert!(
        b.rotate_if_due(&store, rotated_at + Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(a.current_kid(), b.current_kid());
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    verify(&b, &before_b, rotated_at).unwrap();
}

#[tokio::test]
async fn edges_that_create_keys_at_once_settle_on_one() {
    let store = Store::open_in_memory().await.unwrap();
    // Two edges each stored a key before seeing the other's.
    let (first, first_pub) = attacker_p256();
    let (second, second_pub) = attacker_p256();
    let kid = |public: &[u8]| {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public);
        URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16])
    };
    let at = i64::try_from(secs(t0())).unwrap();
    store
        .put_signing_key(&kid(&first_pub), &first, at)
        .await
        .unwrap();
    store
        .put_signing_key(&kid(&second_pub), &second, at)
        .await
        .unwrap();
    let a = ring_at(&store, t0()).await;
    let b = ring_at(&store, t0()).await;
    assert_eq!(a.current_kid(), b.current_kid());
    let winner = kid(&first_pub).max(kid(&second_pub));
    assert_eq!(a.current_kid(), winner);
    // The loser is retired in the store, still published for the overlap.
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.iter().filter(|k| k.retired_at.is_none()).count(), 1);
    assert_eq!(a.jwks(t0()).keys.len(), 2);
    assert_eq!(a.jwks(t0() + HOUR).keys.len(), 1);
}

#[tokio::test]
async fn a_stale_current_key_is_rotated_at_load() {
    let store = Store::open_in_memory().await.unwrap();
    let first = ring_at(&store, t0()).await;
    let later = ring_at(&store, t0() + 2 * DAY).await;
    assert_ne!(first.current_kid(), later.current_kid());
}

#[tokio::test]
async fn an_unreadable_current_key_is_reported() {
    let store = Store::open_in_memory().await.unwrap();
    store
        .put_signing_key("bogus", b"not a key", 1)
        .await
        .unwrap();
    let error = KeyRing::load_or_create(&store, t0(), DAY, HOUR)
        .await
        .unwrap_err();
    assert!(matches!(error, AssertionError::BadStoredKey { ref kid, .. } if kid == "bogus"));
    assert!(error.to_string().contains("delete that row"), "{error}");
}

// === Verification: claims ===

#[tokio::test]
async fn expiry_is_checked_with_thirty_seconds_of_leeway() {
    let (_store, ring) = new_ring().await;
    let token = token_for(&ring, t0());
    let exp = t0() + MAX_TTL;
    verify(&ring, &token, exp + LEEWAY).unwrap();
    let late = exp + LEEWAY + Duration::from_secs(1);
    assert!(matches!(
        verify(&ring, &token, late),
        Err(VerifyError::Expired { .. })
    ));
}

#[tokio::test]
async fn a_token_from_the_future_is_refused() {
    let (_store, ring) = new_ring().await;
    let token = token_for(&ring, t0() + Duration::from_secs(120));
    verify(&ring, &token, t0() + Duration::from_secs(90)).unwrap();
    assert!(matches!(
        verify(&ring, &token, t0()),
        Err(VerifyError::NotYetValid { .. })
    ));
    // nbf alone in the future (iat now) is refused as well: jsonwebtoken skips nbf by default.
    let mut claims = claims_json(t0());
    claims["nbf"] = json!(secs(t0()) + 3600);
    let token = ring
        .sign_raw(&es256_header(&ring.current_kid()), &claims)
        .unwrap();
    assert!(matches!(
        verify(&ring, &token, t0()),
        Err(VerifyError::NotYetValid { .. })
    ));
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let (_store, ring) = new_ring().await;
    let token = token_for(&ring, t0());
    let verifier = ring.verifier(t0());
    for issuer in [
        "https://auth.test.evil",
        "https://AUTH.test",
        "auth.test",
        "",
    ] {
        assert!(
            matches!(
                verifier.verify(&token, issuer, &apps(), t0()),
                Err(VerifyError::Issuer { .. })
            ),
            "{issuer}"
        );
    }
    let other = vec!["other.test".to_owned()];
    assert!(matches!(
        verifier.verify(&token, ISSUER, &other, t0()),
        Err(VerifyError::Audience { .. })
    ));
    let either = vec!["other.test".to_owned(), APP.to_owned()];
    verifier.verify(&token, ISSUER, &either, t0()).unwrap();
    // No accepted audiences: any.
    verifier.verify(&token, ISSUER, &[], t0()).unwrap();
}

#[tokio::test]
async fn a_single_string_audience_is_read() {
    let (_store, ring) = new_ring().await;
    let mut claims = claims_json(t0());
    claims["aud"] = json!(APP);
    let token = ring
        .sign_raw(&es256_header(&ring.current_kid()), &claims)
        .unwrap();
    assert_eq!(verify(&ring, &token, t0()).unwrap().aud, vec![APP]);
}

#[tokio::test]
async fn the_type_must_be_app() {
    let (_store, ring) = new_ring().await;
    let mut claims = claims_json(t0());
    claims["type"] = json!("org");
    let token = ring
        .sign_raw(&es256_header(&ring.current_kid()), &claims)
        .unwrap();
    assert_eq!(
        verify(&ring, &token, t0()).unwrap_err(),
        VerifyError::Type {
            got: "org".into(),
            expected: "app"
        }
    );
}

// === Verification: attack class G ===

#[tokio::test]
async fn alg_none_is_refused() {
    let (_store, ring) = new_ring().await;
    let kid = ring.current_kid();
    for alg in ["none", "None", "NONE", ""] {
        let token = raw_token(&json!({"alg": alg, "kid": kid}), &claims_json(t0()), b"");
        assert_eq!(
            verify(&ring, &token, t0()).unwrap_err(),
            VerifyError::Algorithm { alg: alg.into() },
            "{alg}"
        );
        // Also with no signature part at all, as some libraries emit it.
        let token = token.trim_end_matches('.').to_owned() + ".";
        assert!(verify(&ring, &token, t0()).is_err());
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let (_store, ring) = new_ring().await;
    let kid = ring.current_kid();
    let jwks = ring.jwks_json(t0());
    let jwk = &ring.jwks(t0()).keys[0];
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.y).unwrap());
    // Every form of the public key an attacker might use as the HMAC secret.
    for secret in [point, jwks.into_bytes(), jwk.x.clone().into_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &claims_json(t0()),
            &EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verify(&ring, &token, t0()).unwrap_err(),
            VerifyError::Algorithm {
                alg: "HS256".into()
            }
        );
    }
}

#[tokio::test]
async fn rs256_eddsa_and_other_curves_are_refused() {
    let (_store, ring) = new_ring().await;
    let kid = ring.current_kid();
    // A real EdDSA signature.
    let ed = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let token = jsonwebtoken::encode(
        &header,
        &claims_json(t0()),
        &EncodingKey::from_ed_der(ed.as_ref()),
    )
    .unwrap();
    assert_eq!(
        verify(&ring, &token, t0()).unwrap_err(),
        VerifyError::Algorithm {
            alg: "EdDSA".into()
        }
    );
    // The algorithm is refused before any key is used: the signature does not matter.
    for alg in ["RS256", "PS256", "ES384", "ES512", "es256"] {
        let token = raw_token(
            &json!({"alg": alg, "kid": kid}),
            &claims_json(t0()),
            &[7; 64],
        );
        assert_eq!(
            verify(&ring, &token, t0()).unwrap_err(),
            VerifyError::Algorithm { alg: alg.into() }
        );
    }
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let (_store, ring) = new_ring().await;
    let (pkcs8, public) = attacker_p256();
    let key = EncodingKey::from_ec_der(&pkcs8);
    // Naming the ring's key: the signature does not match.
    let forged =
        jsonwebtoken::encode(&es256_header(&ring.current_kid()), &claims_json(t0()), &key).unwrap();
    assert_eq!(
        verify(&ring, &forged, t0()).unwrap_err(),
        VerifyError::BadSignature
    );
    // Naming its own key, even embedded in the header: not a published key.
    let mut header = es256_header("attacker");
    header.jwk = Some(
        serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "kid": "attacker",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&public[33..]),
        }))
        .unwrap(),
    );
    header.jku = Some("https://evil.example/jwks.json".into());
    let forged = jsonwebtoken::encode(&header, &claims_json(t0()), &key).unwrap();
    assert_eq!(
        verify(&ring, &forged, t0()).unwrap_err(),
        VerifyError::UnknownKey {
            kid: "attacker".into()
        }
    );
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let (_store, ring) = new_ring().await;
    let token = token_for(&ring, t0());
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = claims_json(t0());
    claims["sub"] = json!("admin");
    claims["groups"] = json!(["admins", "root"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        verify(&ring, &tampered, t0()).unwrap_err(),
        VerifyError::BadSignature
    );
}

#[tokio::test]
async fn time_claims_must_be_integers() {
    let (_store, ring) = new_ring().await;
    let header = es256_header(&ring.current_kid());
    let far = secs(t0()) + 10_000;
    let bad: [(&str, Value); 6] = [
        ("exp", json!(far.to_string())),
        ("exp", json!(null)),
        ("exp", json!(-1)),
        ("exp", json!(1.7e9)),
        ("nbf", json!("0")),
        ("iat", json!([1])),
    ];
    for (claim, value) in bad {
        let mut claims = claims_json(t0());
        claims[claim] = value.clone();
        let token = ring.sign_raw(&header, &claims).unwrap();
        assert_eq!(
            verify(&ring, &token, t0()).unwrap_err(),
            VerifyError::ClaimType(claim),
            "{claim} = {value}"
        );
    }
}

#[tokio::test]
async fn required_claims_must_be_present() {
    let (_store, ring) = new_ring().await;
    let header = es256_header(&ring.current_kid());
    for claim in ["exp", "nbf", "iat", "iss", "aud", "sub", "type"] {
        let mut claims = claims_json(t0());
        claims.as_object_mut().unwrap().remove(claim);
        let token = ring.sign_raw(&header, &claims).unwrap();
        assert_eq!(
            verify(&ring, &token, t0()).unwrap_err(),
            VerifyError::MissingClaim(claim),
            "{claim}"
        );
    }
}

#[tokio::test]
async fn headers_without_kid_or_with_crit_are_refused() {
    let (_store, ring) = new_ring().await;
    let token = ring
        .sign_raw(&Header::new(Algorithm::ES256), &claims_json(t0()))
        .unwrap();
    assert_eq!(
        verify(&ring, &token, t0()).unwrap_err(),
        VerifyError::MissingKeyId
    );
    let token = raw_token(
        &json!({"alg": "ES256", "kid": ring.current_kid(), "crit": ["exp"]}),
        &claims_json(t0()),
        &[0; 64],
    );
    assert!(matches!(
        verify(&ring, &token, t0()),
        Err(VerifyError::CriticalHeader(_))
    ));
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let (_store, ring) = new_ring().await;
    let good = token_for(&ring, t0());
    let huge = "a".repeat(20_000);
    let cases = [
        String::new(),
        "abc".to_owned(),
        "a.b".to_owned(),
        format!("{good}.extra"),
        "!!!.!!!.!!!".to_owned(),
        format!("{}.e30.", URL_SAFE_NO_PAD.encode("[1,2]")),
        huge,
    ];
    for token in cases {
        assert!(
            matches!(verify(&ring, &token, t0()), Err(VerifyError::Malformed(_))),
            "{token:.40}"
        );
    }
}

#[test]
fn key_sets_are_read_leniently_but_keys_strictly() {
    // Other key types are skipped; an empty set refuses everything.
    let verifier = AssertionVerifier::from_jwks_json(
        r#"{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","kid":"e","x":"AA"}]}"#,
    )
    .unwrap();
    assert!(verifier.kids().is_empty());
    assert!(matches!(
        AssertionVerifier::from_jwks_json(
            r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"AA","y":"AA"}]}"#
        ),
        Err(JwksError::BadKey { .. })
    ));
    assert!(matches!(
        AssertionVerifier::from_jwks_json("not json"),
        Err(JwksError::Json(_))
    ));
}

#[tokio::test]
async fn verifiers_join_key_sets() {
    let (_s1, one) = new_ring().await;
    let (_s2, two) = new_ring().await;
    let joined = AssertionVerifier::union([&one.verifier(t0()), &two.verifier(t0())]);
    assert_eq!(joined.kids().len(), 2);
    for ring in [&one, &two] {
        joined
            .verify(&token_for(ring, t0()), ISSUER, &apps(), t0())
            .unwrap();
    }
}

// === Access-client tokens ===

fn cli_token_for(ring: &KeyRing, now: SystemTime, ttl: Duration) -> String {
    let claims = CliClaims::for_identity(&alice(), APP, ISSUER, now, ttl).unwrap();
    ring.sign_cli(&claims).unwrap()
}

#[tokio::test]
async fn a_cli_token_verifies_as_one_and_carries_the_identity() {
    let (_store, ring) = new_ring().await;
    let token = cli_token_for(&ring, t0(), DAY);
    let later = t0() + DAY - Duration::from_secs(60);
    let claims = ring
        .verifier(later)
        .verify_cli(&token, ISSUER, &apps(), later)
        .unwrap();
    assert_eq!(claims.r#type, "cli");
    assert_eq!(claims.exp, claims.iat + DAY.as_secs());
    assert_eq!(claims.amr, vec!["pwd", "mfa"]);
    assert_eq!(claims.identity(), Some(alice()));
    // Expired a day later (past the leeway).
    let after = t0() + DAY + Duration::from_secs(120);
    assert!(matches!(
        ring.verifier(after)
            .verify_cli(&token, ISSUER, &apps(), after),
        Err(VerifyError::Expired { .. })
    ));
}

#[tokio::test]
async fn cli_tokens_and_assertions_are_not_interchangeable() {
    let (_store, ring) = new_ring().await;
    let cli = cli_token_for(&ring, t0(), DAY);
    assert_eq!(
        verify(&ring, &cli, t0()).unwrap_err(),
        VerifyError::Type {
            got: "cli".into(),
            expected: "app"
        }
    );
    let assertion = token_for(&ring, t0());
    assert_eq!(
        ring.verifier(t0())
            .verify_cli(&assertion, ISSUER, &apps(), t0())
            .unwrap_err(),
        VerifyError::Type {
            got: "app".into(),
            expected: "cli"
        }
    );
}

#[tokio::test]
async fn a_cli_token_is_for_one_host_and_a_bounded_time() {
    let (_store, ring) = new_ring().await;
    let token = cli_token_for(&ring, t0(), DAY);
    assert!(matches!(
        ring.verifier(t0())
            .verify_cli(&token, ISSUER, &["other.test".to_owned()], t0()),
        Err(VerifyError::Audience { .. })
    ));
    // Asking for a year gets the most an edge signs.
    let claims = CliClaims::for_identity(&alice(), APP, ISSUER, t0(), 365 * DAY).unwrap();
    assert_eq!(claims.exp - claims.iat, CLI_MAX_TTL.as_secs());
    // A hand-made token living longer is refused even with a valid signature.
    let mut long = serde_json::to_value(&claims).unwrap();
    long["exp"] = json!(claims.iat + 365 * DAY.as_secs());
    let token = ring
        .sign_raw(&es256_header(&ring.current_kid()), &long)
        .unwrap();
    assert!(matches!(
        ring.verifier(t0())
            .verify_cli(&token, ISSUER, &apps(), t0()),
        Err(VerifyError::Lifetime { .. })
    ));
}

#[test]
fn no_cli_token_for_a_service_token() {
    let machine = Identity {
        subject: Subject::ServiceToken {
            name: "ci".into(),
            client_id: "abc.access".into(),
        },
        display_name: String::new(),
        email: None,
        groups: vec![],
    };
    assert_eq!(
        CliClaims::for_identity(&machine, APP, ISSUER, t0(), DAY),
        None
    );
}
