//! TOTP enrolment and verification against a real (in-memory) store: sealed seeds, replay
//! refusal across edges (attack class I).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use portless_access::secretbox::SecretBox;
use portless_access::totp::{self, TotpError, TotpParams, TotpRegistry, TotpSecret};
use portless_store::Store;

const NOW: u64 = 1_700_000_000;

async fn registry() -> (Store, TotpRegistry) {
    let store = Store::open_in_memory().await.unwrap();
    let secretbox = Arc::new(SecretBox::from_key_bytes(&[42; 32]).unwrap());
    let registry = TotpRegistry::new(
        store.clone(),
        secretbox,
        TotpParams::default(),
        "auth.example.com",
    )
    .unwrap();
    (store, registry)
}

/// The code an authenticator app holding `secret` shows at `at` (SHA1, 6 digits, 30 s).
fn code_at(secret: &TotpSecret, at: u64) -> String {
    totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .unwrap()
        .generate(at)
        .to_string()
}

async fn enrolled(registry: &TotpRegistry, user: &str) -> TotpSecret {
    let pending = registry.enrol(user).unwrap();
    let code = code_at(&pending.secret, NOW - 60);
    registry
        .confirm(user, &pending.secret, &code, NOW - 60)
        .await
        .unwrap();
    pending.secret
}

#[tokio::test]
async fn an_enrolment_is_active_only_once_confirmed() {
    let (_, registry) = registry().await;
    let pending = registry.enrol("alice").unwrap();
    assert!(
        pending
            .uri
            .starts_with("otpauth://totp/auth.example.com:alice?secret=")
    );
    assert!(pending.uri.contains(&pending.secret.to_base32()));
    assert!(!format!("{pending:?}").contains(&pending.secret.to_base32()));
    assert!(!registry.is_enrolled("alice").await.unwrap());
    let code = code_at(&pending.secret, NOW);
    assert!(matches!(
        registry.verify("alice", &code, NOW).await,
        Err(TotpError::NotEnrolled)
    ));

    // A wrong confirmation code stores nothing.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert!(matches!(
        registry.confirm("alice", &pending.secret, wrong, NOW).await,
        Err(TotpError::Wrong)
    ));
    assert!(!registry.is_enrolled("alice").await.unwrap());

    registry
        .confirm("alice", &pending.secret, &code, NOW)
        .await
        .unwrap();
    assert!(registry.is_enrolled("alice").await.unwrap());
    // The confirming code is used up: it cannot also log in.
    assert!(matches!(
        registry.verify("alice", &code, NOW).await,
        Err(TotpError::Replayed)
    ));
    let next = code_at(&pending.secret, NOW + 30);
    registry.verify("alice", &next, NOW + 30).await.unwrap();
}

#[tokio::test]
async fn the_same_code_is_accepted_once() {
    let (_, registry) = registry().await;
    let secret = enrolled(&registry, "alice").await;
    let code = code_at(&secret, NOW);
    registry.verify("alice", &code, NOW).await.unwrap();
    assert!(matches!(
        registry.verify("alice", &code, NOW).await,
        Err(TotpError::Replayed)
    ));
    // Still inside the skew window a moment later: still a replay.
    assert!(matches!(
        registry.verify("alice", &code, NOW + 20).await,
        Err(TotpError::Replayed)
    ));
}

#[tokio::test]
async fn two_edges_verifying_the_same_code_accept_it_once() {
    let (store, edge_a) = registry().await;
    let secret = enrolled(&edge_a, "alice").await;
    // A second edge: its own registry and box (same key file contents), the same store.
    let edge_b = TotpRegistry::new(
        store,
        Arc::new(SecretBox::from_key_bytes(&[42; 32]).unwrap()),
        TotpParams::default(),
        "auth.example.com",
    )
    .unwrap();
    let code = code_at(&secret, NOW);
    let (a, b) = tokio::join!(
        edge_a.verify("alice", &code, NOW),
        edge_b.verify("alice", &code, NOW)
    );
    let accepted = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 1, "{a:?} {b:?}");
    assert!(matches!(a.err().or(b.err()), Some(TotpError::Replayed)));
}

#[tokio::test]
async fn codes_outside_one_step_of_skew_are_refused() {
    let (_, registry) = registry().await;
    let secret = enrolled(&registry, "alice").await;
    let in_two_steps = code_at(&secret, NOW + 60);
    assert!(matches!(
        registry.verify("alice", &in_two_steps, NOW).await,
        Err(TotpError::Wrong)
    ));
    let two_steps_ago = code_at(&secret, NOW - 60);
    assert!(registry.verify("alice", &two_steps_ago, NOW).await.is_err());
    let next = code_at(&secret, NOW + 30);
    registry.verify("alice", &next, NOW).await.unwrap();
}

#[tokio::test]
async fn seeds_are_sealed_in_the_store_and_bound_to_the_user() {
    let (store, registry) = registry().await;
    let secret = enrolled(&registry, "alice").await;
    let stored = store.totp("alice").await.unwrap().unwrap();
    assert!(
        !stored
            .sealed
            .windows(secret.as_bytes().len())
            .any(|w| w == secret.as_bytes()),
        "the seed is stored in the clear"
    );
    // Copy alice's sealed seed onto bob's row: it does not open for bob.
    store
        .put_totp("bob", &stored.sealed, None, 0)
        .await
        .unwrap();
    let code = code_at(&secret, NOW);
    assert!(matches!(
        registry.verify("bob", &code, NOW).await,
        Err(TotpError::Unseal(_))
    ));
    // An edge with another key cannot open alice's seed either.
    let other = TotpRegistry::new(
        store,
        Arc::new(SecretBox::from_key_bytes(&[7; 32]).unwrap()),
        TotpParams::default(),
        "auth.example.com",
    )
    .unwrap();
    assert!(matches!(
        other.verify("alice", &code, NOW).await,
        Err(TotpError::Unseal(_))
    ));
}

#[tokio::test]
async fn re_enrolment_replaces_the_seed_only_when_confirmed() {
    let (_, registry) = registry().await;
    let old = enrolled(&registry, "alice").await;
    let pending = registry.enrol("alice").unwrap();
    // Not confirmed yet: the old seed still works, the new one does not.
    let new_code = code_at(&pending.secret, NOW);
    if new_code != code_at(&old, NOW) {
        assert!(registry.verify("alice", &new_code, NOW).await.is_err());
    }
    registry
        .verify("alice", &code_at(&old, NOW), NOW)
        .await
        .unwrap();
    let confirm_code = code_at(&pending.secret, NOW + 30);
    registry
        .confirm("alice", &pending.secret, &confirm_code, NOW + 30)
        .await
        .unwrap();
    let later = NOW + 60;
    if code_at(&old, later) != code_at(&pending.secret, later) {
        assert!(
            registry
                .verify("alice", &code_at(&old, later), later)
                .await
                .is_err()
        );
    }
    registry
        .verify("alice", &code_at(&pending.secret, later), later)
        .await
        .unwrap();
    assert!(registry.remove("alice").await.unwrap());
    assert!(!registry.is_enrolled("alice").await.unwrap());
}

#[tokio::test]
async fn an_8_digit_configuration_wants_8_digits() {
    let store = Store::open_in_memory().await.unwrap();
    let params = TotpParams {
        digits: 8,
        ..TotpParams::default()
    };
    let registry = TotpRegistry::new(
        store,
        Arc::new(SecretBox::from_key_bytes(&[1; 32]).unwrap()),
        params,
        "Portless",
    )
    .unwrap();
    let pending = registry.enrol("alice").unwrap();
    assert!(pending.uri.contains("digits=8"), "{}", pending.uri);
    let six = code_at(&pending.secret, NOW);
    assert!(matches!(
        registry.confirm("alice", &pending.secret, &six, NOW).await,
        Err(TotpError::Malformed { digits: 8 })
    ));
    let eight = totp_rs::Builder::new()
        .with_digits(8)
        .with_secret(pending.secret.as_bytes().to_vec())
        .build()
        .unwrap()
        .generate(NOW)
        .to_string();
    assert_eq!(
        totp::verify(&params, &pending.secret, &eight, NOW, None).unwrap(),
        NOW / 30
    );
    registry
        .confirm("alice", &pending.secret, &eight, NOW)
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_settings_or_issuer_are_refused_at_construction() {
    let store = Store::open_in_memory().await.unwrap();
    let secretbox = Arc::new(SecretBox::from_key_bytes(&[1; 32]).unwrap());
    let wide = TotpParams {
        skew: 5,
        ..TotpParams::default()
    };
    assert!(TotpRegistry::new(store.clone(), secretbox.clone(), wide, "Portless").is_err());
    assert!(TotpRegistry::new(store, secretbox, TotpParams::default(), "a:b").is_err());
}
