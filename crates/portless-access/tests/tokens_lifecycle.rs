//! Service tokens against a real store: create, authenticate, expiry, rotation, revocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portless_access::service_token::{ServiceTokens, TokenError, TokenRefusal};
use portless_access::{Identity, Subject};
use portless_store::Store;

const HOUR: Duration = Duration::from_secs(3600);

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const NOW: u64 = 1_800_000_000;

async fn tokens() -> ServiceTokens {
    ServiceTokens::new(Store::open_in_memory().await.unwrap())
}

#[tokio::test]
async fn a_created_token_authenticates_with_its_secret() {
    let tokens = tokens().await;
    let (info, secret) = tokens.create("CI-Runner", None, t(NOW)).await.unwrap();
    assert_eq!(info.name, "ci-runner");
    assert!(info.client_id.ends_with(".access"), "{}", info.client_id);
    assert_eq!(info.client_id.len(), 39);
    assert_eq!(info.created_at, t(NOW));
    assert_eq!(info.expires_at, None);
    assert_eq!(secret.expose().len(), 64);
    assert!(secret.expose().bytes().all(|b| b.is_ascii_hexdigit()));

    let authenticated = tokens
        .authenticate(&info.client_id, secret.expose(), t(NOW + 10))
        .await
        .unwrap();
    assert_eq!(authenticated.name, "ci-runner");
    assert_eq!(authenticated.client_id, info.client_id);
    assert_eq!(
        authenticated.identity(),
        Identity {
            subject: Subject::ServiceToken {
                name: "ci-runner".into(),
                client_id: info.client_id.clone(),
            },
            display_name: String::new(),
            email: None,
            groups: vec![],
        }
    );
    assert_eq!(authenticated.identity().name(), info.client_id);

    // Header values are case-insensitive hex and ids; both forms work.
    let upper = tokens
        .authenticate(
            &info.client_id.to_uppercase(),
            &secret.expose().to_uppercase(),
            t(NOW),
        )
        .await
        .unwrap();
    assert_eq!(upper, authenticated);
}

#[tokio::test]
async fn a_wrong_or_malformed_secret_is_refused() {
    let tokens = tokens().await;
    let (info, secret) = tokens.create("ci", None, t(NOW)).await.unwrap();
    let mut wrong = secret.expose().to_owned();
    let last = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(63.., last);
    for presented in [wrong.as_str(), "", "not-hex", &secret.expose()[..63]] {
        let refusal = tokens
            .authenticate(&info.client_id, presented, t(NOW))
            .await
            .unwrap_err();
        assert!(
            matches!(refusal, TokenRefusal::WrongSecret),
            "{presented:?}: {refusal}"
        );
        assert_eq!(refusal.as_str(), "wrong_secret");
    }
    // Another token's secret is wrong for this one.
    let (_, other) = tokens.create("other", None, t(NOW)).await.unwrap();
    assert!(matches!(
        tokens
            .authenticate(&info.client_id, other.expose(), t(NOW))
            .await,
        Err(TokenRefusal::WrongSecret)
    ));
}

#[tokio::test]
async fn an_unknown_client_id_is_refused() {
    let tokens = tokens().await;
    let (info, secret) = tokens.create("ci", None, t(NOW)).await.unwrap();
    let mut unknown = info.client_id.clone();
    let first = if unknown.starts_with('0') { "1" } else { "0" };
    unknown.replace_range(..1, first);
    for id in [unknown.as_str(), "", "ci", "x.access", "' OR 1=1 --"] {
        let refusal = tokens
            .authenticate(id, secret.expose(), t(NOW))
            .await
            .unwrap_err();
        assert!(
            matches!(refusal, TokenRefusal::UnknownClient),
            "{id:?}: {refusal}"
        );
    }
}

#[tokio::test]
async fn a_token_stops_working_when_it_expires() {
    let tokens = tokens().await;
    let (info, secret) = tokens.create("ci", Some(HOUR), t(NOW)).await.unwrap();
    assert_eq!(info.expires_at, Some(t(NOW + 3600)));
    assert!(!info.is_expired(t(NOW + 3599)));
    assert!(info.is_expired(t(NOW + 3600)));

    let at = |secs| tokens.authenticate(&info.client_id, secret.expose(), t(secs));
    assert!(at(NOW + 3599).await.is_ok());
    let refusal = at(NOW + 3600).await.unwrap_err();
    assert!(matches!(refusal, TokenRefusal::Expired), "{refusal}");
    assert_eq!(refusal.as_str(), "expired");
    // An expired token with a wrong secret reveals nothing about its state.
    assert!(matches!(
        tokens
            .authenticate(&info.client_id, &"0".repeat(64), t(NOW + 7200))
            .await,
        Err(TokenRefusal::WrongSecret)
    ));
    // A zero lifetime is refused rather than creating a dead token.
    assert!(matches!(
        tokens.create("zero", Some(Duration::ZERO), t(NOW)).await,
        Err(TokenError::ZeroLifetime)
    ));
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_its_name_is_free_again() {
    let tokens = tokens().await;
    let (info, secret) = tokens.create("ci", None, t(NOW)).await.unwrap();
    tokens.revoke("CI", t(NOW + 1)).await.unwrap();
    let refusal = tokens
        .authenticate(&info.client_id, secret.expose(), t(NOW + 2))
        .await
        .unwrap_err();
    assert!(matches!(refusal, TokenRefusal::Revoked), "{refusal}");
    assert!(tokens.list().await.unwrap().is_empty());
    assert!(matches!(
        tokens.revoke("ci", t(NOW)).await,
        Err(TokenError::NotFound { .. })
    ));

    // A new token of the same name gets a new id; the old credentials stay refused.
    let (again, new_secret) = tokens.create("ci", None, t(NOW + 3)).await.unwrap();
    assert_ne!(again.client_id, info.client_id);
    assert!(matches!(
        tokens
            .authenticate(&info.client_id, secret.expose(), t(NOW + 4))
            .await,
        Err(TokenRefusal::Revoked)
    ));
    assert!(matches!(
        tokens
            .authenticate(&info.client_id, new_secret.expose(), t(NOW + 4))
            .await,
        Err(TokenRefusal::WrongSecret)
    ));
    assert!(
        tokens
            .authenticate(&again.client_id, new_secret.expose(), t(NOW + 4))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
    let tokens = tokens().await;
    let (info, old) = tokens.create("ci", None, t(NOW)).await.unwrap();
    let (rotated, new) = tokens.rotate("ci", 24 * HOUR, t(NOW + 100)).await.unwrap();
    assert_eq!(rotated.client_id, info.client_id);
    assert_eq!(rotated.rotated_at, Some(t(NOW + 100)));
    let grace_end = NOW + 100 + 24 * 3600;
    assert_eq!(rotated.previous_valid_until, Some(t(grace_end)));
    assert_ne!(old.expose(), new.expose());

    let at = |secret: &str, secs| {
        let secret = secret.to_owned();
        let tokens = tokens.clone();
        let id = info.client_id.clone();
        async move { tokens.authenticate(&id, &secret, t(secs)).await }
    };
    assert!(at(new.expose(), NOW + 101).await.is_ok());
    assert!(at(old.expose(), NOW + 101).await.is_ok());
    assert!(at(old.expose(), grace_end - 1).await.is_ok());
    let refusal = at(old.expose(), grace_end).await.unwrap_err();
    assert!(matches!(refusal, TokenRefusal::RotatedOut), "{refusal}");
    assert!(at(new.expose(), grace_end + 1).await.is_ok());

    // A second rotation ends the first one's grace at once.
    let (_, newest) = tokens.rotate("ci", HOUR, t(NOW + 200)).await.unwrap();
    assert!(matches!(
        at(old.expose(), NOW + 201).await,
        Err(TokenRefusal::WrongSecret)
    ));
    assert!(at(new.expose(), NOW + 201).await.is_ok());
    assert!(at(newest.expose(), NOW + 201).await.is_ok());

    assert!(matches!(
        tokens.rotate("nope", HOUR, t(NOW)).await,
        Err(TokenError::NotFound { .. })
    ));
}

#[tokio::test]
async fn rotation_does_not_extend_the_expiry() {
    let tokens = tokens().await;
    let (info, _) = tokens.create("ci", Some(HOUR), t(NOW)).await.unwrap();
    let (rotated, new) = tokens.rotate("ci", HOUR, t(NOW + 10)).await.unwrap();
    assert_eq!(rotated.expires_at, info.expires_at);
    assert!(matches!(
        tokens
            .authenticate(&info.client_id, new.expose(), t(NOW + 3600))
            .await,
        Err(TokenRefusal::Expired)
    ));
}

#[tokio::test]
async fn names_are_unique_regardless_of_case_and_listed_by_name() {
    let tokens = tokens().await;
    tokens.create("zeta", None, t(NOW)).await.unwrap();
    tokens.create("Alpha", Some(HOUR), t(NOW)).await.unwrap();
    let error = tokens.create("ALPHA", None, t(NOW)).await.unwrap_err();
    assert!(
        matches!(&error, TokenError::NameTaken { name } if name == "alpha"),
        "{error}"
    );
    assert!(
        error.to_string().contains("portless token revoke alpha"),
        "{error}"
    );
    let error = tokens.create("bad name", None, t(NOW)).await.unwrap_err();
    assert!(matches!(error, TokenError::InvalidName { .. }), "{error}");

    let listed = tokens.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(listed[0].expires_at, Some(t(NOW + 3600)));
}

#[tokio::test]
async fn the_store_file_never_holds_a_plain_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = Store::open(&path).await.unwrap();
    let tokens = ServiceTokens::new(store.clone());
    let (info, first) = tokens.create("ci", None, t(NOW)).await.unwrap();
    let (_, second) = tokens.rotate("ci", HOUR, t(NOW)).await.unwrap();
    drop(tokens);
    drop(store);

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(info.client_id.as_bytes()),
        "the test reads the wrong file"
    );
    for secret in [first.expose(), second.expose()] {
        let raw: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&secret[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert!(!contains(secret.as_bytes()), "hex secret stored");
        assert!(
            !contains(secret.to_uppercase().as_bytes()),
            "hex secret stored"
        );
        assert!(!contains(&raw), "raw secret stored");
    }
}
