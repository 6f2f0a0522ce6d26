//! Tests of the passkey registry: what can be checked without an authenticator (the
//! ceremonies end to end are driven by Chromium's virtual authenticator in the browser
//! tests).

use std::time::{Duration, SystemTime};

use portless_store::{NewPasskey, Store};

use super::*;
use crate::session::{SessionLimits, SessionStore};

/// A stored credential (webauthn-rs's own test vector: an ES256 key), wrapped as a passkey.
const CREDENTIAL: &str = r#"{"cred_id":"uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ","cred":{"type_":"ES256","key":{"EC_EC2":{"curve":"SECP256R1","x":[194,126,127,109,252,23,131,21,252,6,223,99,44,254,140,27,230,17,94,5,133,28,104,41,144,69,171,149,161,26,200,243],"y":[143,123,183,156,24,178,21,248,117,159,162,69,171,52,188,252,26,59,6,47,103,92,19,58,117,103,249,0,219,8,95,196]}}},"counter":2,"user_verified":false,"backup_eligible":false,"backup_state":false,"registration_policy":"preferred","extensions":{"cred_protect":"NotRequested","hmac_create_secret":"NotRequested"},"attestation":{"data":{"Basic":["MIICvTCCAaWgAwIBAgIEK_F8eDANBgkqhkiG9w0BAQsFADAuMSwwKgYDVQQDEyNZdWJpY28gVTJGIFJvb3QgQ0EgU2VyaWFsIDQ1NzIwMDYzMTAgFw0xNDA4MDEwMDAwMDBaGA8yMDUwMDkwNDAwMDAwMFowbjELMAkGA1UEBhMCU0UxEjAQBgNVBAoMCVl1YmljbyBBQjEiMCAGA1UECwwZQXV0aGVudGljYXRvciBBdHRlc3RhdGlvbjEnMCUGA1UEAwweWXViaWNvIFUyRiBFRSBTZXJpYWwgNzM3MjQ2MzI4MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdMLHhCPIcS6bSPJZWGb8cECuTN8H13fVha8Ek5nt-pI8vrSflxb59Vp4bDQlH8jzXj3oW1ZwUDjHC6EnGWB5i6NsMGowIgYJKwYBBAGCxAoCBBUxLjMuNi4xLjQuMS40MTQ4Mi4xLjcwEwYLKwYBBAGC5RwCAQEEBAMCAiQwIQYLKwYBBAGC5RwBAQQEEgQQxe9V_62aS5-1gK3rr-Am0DAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBCwUAA4IBAQCLbpN2nXhNbunZANJxAn_Cd-S4JuZsObnUiLnLLS0FPWa01TY8F7oJ8bE-aFa4kTe6NQQfi8-yiZrQ8N-JL4f7gNdQPSrH-r3iFd4SvroDe1jaJO4J9LeiFjmRdcVa-5cqNF4G1fPCofvw9W4lKnObuPakr0x_icdVq1MXhYdUtQk6Zr5mBnc4FhN9qi7DXqLHD5G7ZFUmGwfIcD2-0m1f1mwQS8yRD5-_aDCf3vutwddoi3crtivzyromwbKklR4qHunJ75LGZLZA8pJ_mXnUQ6TTsgRqPvPXgQPbSyGMf2z_DIPbQqCD_Bmc4dj9o6LozheBdDtcZCAjSPTAd_ui"]},"metadata":"None"},"attestation_format":"Packed"}"#;
const CREDENTIAL_ID: &str =
    "uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ";
const HANDLE: &str = "6f1c3b1e-0000-4000-8000-000000000001";

fn rp(origin: &str) -> RelyingParty {
    RelyingParty {
        origin: origin.into(),
        display_name: "Portless".into(),
        timeout: Duration::from_secs(60),
    }
}

async fn registry() -> PasskeyRegistry {
    let store = Store::open_in_memory().await.unwrap();
    PasskeyRegistry::new(store, rp("https://auth.test:8443")).unwrap()
}

fn session() -> SessionId {
    SessionStore::new(SessionLimits::default())
        .create_anonymous(SystemTime::now())
        .0
}

fn t(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

async fn with_passkey(registry: &PasskeyRegistry, user: &str) {
    let passkey = format!("{{\"cred\":{CREDENTIAL}}}");
    let added = registry
        .inner
        .store
        .put_passkey(&NewPasskey {
            credential_id: CREDENTIAL_ID,
            username: user,
            user_handle: HANDLE,
            name: "Laptop",
            passkey: &passkey,
            counter: 0,
            created_at: 1_800_000_000,
        })
        .await
        .unwrap();
    assert!(added);
}

#[tokio::test]
async fn the_rp_id_is_the_portal_host_and_ports_are_kept() {
    let registry = registry().await;
    let options = registry
        .start_registration(&session(), "alice", "Alice", "Laptop", t(0))
        .await
        .unwrap();
    assert_eq!(options["publicKey"]["rp"]["id"], "auth.test");
    assert_eq!(options["publicKey"]["rp"]["name"], "Portless");
    assert_eq!(options["publicKey"]["user"]["name"], "alice");
    assert_eq!(options["publicKey"]["timeout"], 60_000);
    assert_eq!(
        registry.inner.webauthn.get_allowed_origins()[0].as_str(),
        "https://auth.test:8443/"
    );
}

#[tokio::test]
async fn origins_that_cannot_be_a_relying_party_are_refused() {
    for origin in [
        "http://auth.test",
        "https://127.0.0.1:8443",
        "https://auth.test/portal",
        "auth.test",
    ] {
        let store = Store::open_in_memory().await.unwrap();
        let refused = PasskeyRegistry::new(store, rp(origin));
        assert!(
            matches!(refused, Err(PasskeySetupError::Origin { .. })),
            "{origin}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn registration_asks_for_a_verified_discoverable_credential() {
    let registry = registry().await;
    let options = registry
        .start_registration(&session(), "alice", "Alice", "Laptop", t(0))
        .await
        .unwrap();
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    let challenge = options["publicKey"]["challenge"].as_str().unwrap();
    assert!(URL_SAFE_NO_PAD.decode(challenge).unwrap().len() >= 16);
}

#[tokio::test]
async fn registration_excludes_the_users_passkeys_and_reuses_the_user_handle() {
    let registry = registry().await;
    with_passkey(&registry, "alice").await;
    let options = registry
        .start_registration(&session(), "alice", "Alice", "Phone", t(0))
        .await
        .unwrap();
    assert_eq!(
        options["publicKey"]["excludeCredentials"][0]["id"],
        CREDENTIAL_ID
    );
    let handle = Uuid::parse_str(HANDLE).unwrap();
    assert_eq!(
        options["publicKey"]["user"]["id"],
        URL_SAFE_NO_PAD.encode(handle.as_bytes())
    );
}

#[tokio::test]
async fn a_finish_without_a_pending_challenge_is_refused() {
    let registry = registry().await;
    let id = session();
    let refused = registry.finish_registration(&id, "alice", "{}", t(0)).await;
    assert!(
        matches!(refused, Err(PasskeyError::NoChallenge)),
        "{refused:?}"
    );
    let refused = registry.finish_discoverable(&id, "{}", t(0)).await;
    assert!(
        matches!(refused, Err(PasskeyError::NoChallenge)),
        "{refused:?}"
    );
    let refused = registry
        .finish_authentication(&id, "alice", "{}", t(0))
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::NoChallenge)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_challenge_is_used_once_even_when_the_answer_fails() {
    let registry = registry().await;
    let id = session();
    registry.start_discoverable(&id, t(0)).unwrap();
    let first = registry.finish_discoverable(&id, "not json", t(1)).await;
    assert!(
        matches!(first, Err(PasskeyError::Malformed { .. })),
        "{first:?}"
    );
    let second = registry.finish_discoverable(&id, "not json", t(2)).await;
    assert!(
        matches!(second, Err(PasskeyError::NoChallenge)),
        "{second:?}"
    );
    assert_eq!(registry.pending(), 0);
}

#[tokio::test]
async fn a_challenge_expires_after_the_timeout() {
    let registry = registry().await;
    let id = session();
    registry.start_discoverable(&id, t(0)).unwrap();
    let late = registry.finish_discoverable(&id, "not json", t(60)).await;
    assert!(matches!(late, Err(PasskeyError::NoChallenge)), "{late:?}");
    registry.start_discoverable(&id, t(100)).unwrap();
    assert_eq!(registry.sweep(t(159)), 0);
    assert_eq!(registry.sweep(t(160)), 1);
}

#[tokio::test]
async fn a_challenge_belongs_to_its_session_kind_and_user() {
    let registry = registry().await;
    let (mine, other) = (session(), session());
    registry
        .start_registration(&mine, "alice", "Alice", "Laptop", t(0))
        .await
        .unwrap();
    let elsewhere = registry
        .finish_registration(&other, "alice", "{}", t(1))
        .await;
    assert!(matches!(elsewhere, Err(PasskeyError::NoChallenge)));
    let as_bob = registry.finish_registration(&mine, "bob", "{}", t(1)).await;
    assert!(
        matches!(as_bob, Err(PasskeyError::NoChallenge)),
        "{as_bob:?}"
    );
    registry
        .start_registration(&mine, "alice", "Alice", "Laptop", t(2))
        .await
        .unwrap();
    let wrong_kind = registry.finish_discoverable(&mine, "{}", t(3)).await;
    assert!(matches!(wrong_kind, Err(PasskeyError::NoChallenge)));
    let after = registry
        .finish_registration(&mine, "alice", "{}", t(3))
        .await;
    assert!(
        matches!(after, Err(PasskeyError::NoChallenge)),
        "consumed: {after:?}"
    );
}

#[tokio::test]
async fn a_new_start_replaces_the_sessions_pending_challenge() {
    let registry = registry().await;
    let id = session();
    registry.start_discoverable(&id, t(0)).unwrap();
    registry.start_discoverable(&id, t(1)).unwrap();
    assert_eq!(registry.pending(), 1);
}

#[tokio::test]
async fn pending_challenges_are_bounded_oldest_first() {
    let store = Store::open_in_memory().await.unwrap();
    let registry = PasskeyRegistry::with_capacity(store, rp("https://auth.test"), 2).unwrap();
    let (a, b, c) = (session(), session(), session());
    registry.start_discoverable(&a, t(0)).unwrap();
    registry.start_discoverable(&b, t(1)).unwrap();
    registry.start_discoverable(&c, t(2)).unwrap();
    assert_eq!(registry.pending(), 2);
    let evicted = registry.finish_discoverable(&a, "x", t(3)).await;
    assert!(matches!(evicted, Err(PasskeyError::NoChallenge)));
    let kept = registry.finish_discoverable(&b, "x", t(3)).await;
    assert!(
        matches!(kept, Err(PasskeyError::Malformed { .. })),
        "{kept:?}"
    );
}

#[tokio::test]
async fn passwordless_options_name_no_account_and_use_the_ordinary_chooser() {
    let registry = registry().await;
    let options = registry.start_discoverable(&session(), t(0)).unwrap();
    assert_eq!(options["publicKey"]["rpId"], "auth.test");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options.get("mediation").is_none(), "{options}");
    let allowed = &options["publicKey"]["allowCredentials"];
    assert!(
        allowed.is_null() || allowed.as_array().is_some_and(Vec::is_empty),
        "{allowed}"
    );
}

#[tokio::test]
async fn second_factor_options_list_the_users_passkeys() {
    let registry = registry().await;
    let none = registry
        .start_authentication(&session(), "alice", t(0))
        .await;
    assert!(matches!(none, Err(PasskeyError::NotEnrolled)), "{none:?}");
    with_passkey(&registry, "alice").await;
    let options = registry
        .start_authentication(&session(), "alice", t(0))
        .await
        .unwrap();
    assert_eq!(
        options["publicKey"]["allowCredentials"][0]["id"],
        CREDENTIAL_ID
    );
}

/// A syntactically valid assertion for [`CREDENTIAL_ID`] (its signature is not checked
/// before the credential is looked up).
fn assertion(credential_id: &str) -> String {
    let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    serde_json::json!({
        "id": credential_id,
        "rawId": credential_id,
        "type": "public-key",
        "response": {
            "authenticatorData": b(&[0; 37]),
            "clientDataJSON": b(b"{}"),
            "signature": b(&[1; 8]),
            "userHandle": b(Uuid::parse_str(HANDLE).unwrap().as_bytes()),
        },
    })
    .to_string()
}

#[tokio::test]
async fn another_users_or_an_unknown_credential_is_refused() {
    let registry = registry().await;
    with_passkey(&registry, "alice").await;
    with_passkey_for_bob(&registry).await;
    let id = session();
    registry
        .start_authentication(&id, "bob", t(0))
        .await
        .unwrap();
    let refused = registry
        .finish_authentication(&id, "bob", &assertion(CREDENTIAL_ID), t(1))
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::UnknownCredential)),
        "{refused:?}"
    );
    registry.start_discoverable(&id, t(2)).unwrap();
    let unknown = registry
        .finish_discoverable(&id, &assertion("AAAA"), t(3))
        .await;
    assert!(
        matches!(unknown, Err(PasskeyError::UnknownCredential)),
        "{unknown:?}"
    );
}

async fn with_passkey_for_bob(registry: &PasskeyRegistry) {
    let passkey = format!("{{\"cred\":{CREDENTIAL}}}").replace(CREDENTIAL_ID, "Ym9i");
    registry
        .inner
        .store
        .put_passkey(&NewPasskey {
            credential_id: "Ym9i",
            username: "bob",
            user_handle: "6f1c3b1e-0000-4000-8000-000000000002",
            name: "Key",
            passkey: &passkey,
            counter: 0,
            created_at: 1_800_000_000,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let registry = registry().await;
    with_passkey(&registry, "alice").await;
    let id = session();
    registry.start_discoverable(&id, t(0)).unwrap();
    let refused = registry
        .finish_discoverable(&id, &assertion(CREDENTIAL_ID), t(1))
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn list_and_remove_only_touch_the_owners_passkeys() {
    let registry = registry().await;
    assert!(!registry.is_enrolled("alice").await.unwrap());
    with_passkey(&registry, "alice").await;
    with_passkey_for_bob(&registry).await;
    let listed = registry.list("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str()),
        (CREDENTIAL_ID, "Laptop")
    );
    assert_eq!(listed[0].created_at, t(0));
    assert_eq!(listed[0].last_used_at, None);
    assert!(registry.is_enrolled("alice").await.unwrap());
    assert!(!registry.remove("alice", "Ym9i").await.unwrap(), "bob's");
    assert!(registry.remove("alice", CREDENTIAL_ID).await.unwrap());
    assert!(!registry.is_enrolled("alice").await.unwrap());
    assert!(registry.is_enrolled("bob").await.unwrap());
}

#[tokio::test]
async fn names_are_checked_before_a_ceremony_starts() {
    let registry = registry().await;
    for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
        let refused = registry
            .start_registration(&session(), "alice", "Alice", bad, t(0))
            .await;
        assert!(
            matches!(refused, Err(PasskeyError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(registry.pending(), 0);
    assert_eq!(check_name("  Work laptop ").unwrap(), "Work laptop");
    assert_eq!(check_name(&"é".repeat(64)).unwrap().chars().count(), 64);
}

#[test]
fn a_counter_regression_names_the_passkey_and_the_fix() {
    let error = PasskeyError::CounterRegression {
        user: "alice".into(),
        name: "Laptop".into(),
    };
    let text = error.to_string();
    assert!(text.contains("\"Laptop\" of alice"), "{text}");
    assert!(text.contains("remove it and register a new one"), "{text}");
}

// === full ceremonies, with a software authenticator ===

use super::soft_authenticator::SoftAuthenticator;

const ORIGIN: &str = "https://auth.test:8443";

/// Registers a passkey named "Laptop" for `user` with `authenticator`.
async fn register(
    registry: &PasskeyRegistry,
    authenticator: &mut SoftAuthenticator,
    user: &str,
) -> Result<PasskeyInfo, PasskeyError> {
    let id = session();
    let options = registry
        .start_registration(&id, user, user, "Laptop", t(0))
        .await
        .unwrap();
    let response = authenticator.register(&options, ORIGIN);
    registry
        .finish_registration(&id, user, &response, t(1))
        .await
}

async fn passwordless(
    registry: &PasskeyRegistry,
    authenticator: &mut SoftAuthenticator,
    origin: &str,
    at: SystemTime,
) -> Result<PasskeyLogin, PasskeyError> {
    let id = session();
    let options = registry.start_discoverable(&id, at).unwrap();
    let response = authenticator.assert(&options, "auth.test", origin);
    registry.finish_discoverable(&id, &response, at).await
}

#[tokio::test]
async fn a_registered_passkey_is_a_second_factor_and_a_passwordless_login() {
    let registry = registry().await;
    let mut authenticator = SoftAuthenticator::new();
    let added = register(&registry, &mut authenticator, "alice")
        .await
        .unwrap();
    assert_eq!(added.name, "Laptop");
    assert_eq!(
        added.id,
        URL_SAFE_NO_PAD.encode(&authenticator.credential_id)
    );
    assert_eq!(
        registry.list("alice").await.unwrap(),
        std::slice::from_ref(&added)
    );

    let id = session();
    let options = registry
        .start_authentication(&id, "alice", t(10))
        .await
        .unwrap();
    assert_eq!(options["publicKey"]["allowCredentials"][0]["id"], added.id);
    let response = authenticator.assert(&options, "auth.test", ORIGIN);
    let login = registry
        .finish_authentication(&id, "alice", &response, t(10))
        .await
        .unwrap();
    assert_eq!(login.user, "alice");
    assert!(login.user_verified);
    assert_eq!(login.passkey.last_used_at, Some(t(10)));

    let login = passwordless(&registry, &mut authenticator, ORIGIN, t(20))
        .await
        .unwrap();
    assert_eq!((login.user.as_str(), login.user_verified), ("alice", true));
    let listed = registry.list("alice").await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(t(20)));
    let stored = registry
        .inner
        .store
        .passkey(&added.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.counter, 2);
}

#[tokio::test]
async fn a_counter_that_goes_back_is_refused_and_named() {
    let registry = registry().await;
    let mut authenticator = SoftAuthenticator::new();
    register(&registry, &mut authenticator, "alice")
        .await
        .unwrap();
    passwordless(&registry, &mut authenticator, ORIGIN, t(10))
        .await
        .unwrap();
    passwordless(&registry, &mut authenticator, ORIGIN, t(11))
        .await
        .unwrap();
    // A clone made after the first login: its next signature counts 2 again.
    let live = authenticator.counter;
    authenticator.counter = 1;
    let refused = passwordless(&registry, &mut authenticator, ORIGIN, t(12)).await;
    match refused {
        Err(PasskeyError::CounterRegression { user, name }) => {
            assert_eq!((user.as_str(), name.as_str()), ("alice", "Laptop"));
        }
        other => panic!("{other:?}"),
    }
    let listed = registry.list("alice").await.unwrap();
    assert_eq!(
        listed[0].last_used_at,
        Some(t(11)),
        "the refusal was not recorded as a use"
    );
    // The original authenticator, whose counter moved on, still works.
    authenticator.counter = live;
    passwordless(&registry, &mut authenticator, ORIGIN, t(13))
        .await
        .unwrap();
}

#[tokio::test]
async fn another_origin_or_relying_party_is_refused() {
    let registry = registry().await;
    let mut authenticator = SoftAuthenticator::new();
    register(&registry, &mut authenticator, "alice")
        .await
        .unwrap();
    for origin in [
        "https://auth.test:9443",
        "https://auth.test",
        "http://auth.test:8443",
        "https://evil.test:8443",
    ] {
        let refused = passwordless(&registry, &mut authenticator, origin, t(10)).await;
        assert!(
            matches!(refused, Err(PasskeyError::Refused { .. })),
            "{origin}: {refused:?}"
        );
    }
    let id = session();
    let options = registry.start_discoverable(&id, t(10)).unwrap();
    let response = authenticator.assert(&options, "evil.test", ORIGIN);
    let refused = registry.finish_discoverable(&id, &response, t(10)).await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused { .. })),
        "{refused:?}"
    );
    // Registration from another origin too.
    let mut other = SoftAuthenticator::new();
    let id = session();
    let options = registry
        .start_registration(&id, "bob", "Bob", "Key", t(0))
        .await
        .unwrap();
    let response = other.register(&options, "https://auth.test:9443");
    let refused = registry
        .finish_registration(&id, "bob", &response, t(1))
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused { .. })),
        "{refused:?}"
    );
    assert!(registry.list("bob").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_authenticator_that_does_not_verify_the_user_is_refused() {
    let registry = registry().await;
    let mut authenticator = SoftAuthenticator::new();
    authenticator.verifies = false;
    let refused = register(&registry, &mut authenticator, "alice").await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused { .. })),
        "{refused:?}"
    );
    authenticator.verifies = true;
    register(&registry, &mut authenticator, "alice")
        .await
        .unwrap();
    authenticator.verifies = false;
    let refused = passwordless(&registry, &mut authenticator, ORIGIN, t(10)).await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_credential_is_registered_to_one_user_only() {
    let registry = registry().await;
    let mut authenticator = SoftAuthenticator::new();
    register(&registry, &mut authenticator, "alice")
        .await
        .unwrap();
    let again = register(&registry, &mut authenticator, "bob").await;
    assert!(
        matches!(again, Err(PasskeyError::AlreadyRegistered)),
        "{again:?}"
    );
    assert!(registry.list("bob").await.unwrap().is_empty());
    // And a passkey of alice's is no second factor for bob.
    let mut bobs = SoftAuthenticator::new();
    register(&registry, &mut bobs, "bob").await.unwrap();
    let id = session();
    let options = registry
        .start_authentication(&id, "bob", t(5))
        .await
        .unwrap();
    let response = authenticator.assert(&options, "auth.test", ORIGIN);
    let refused = registry
        .finish_authentication(&id, "bob", &response, t(5))
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::UnknownCredential)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_assertion_cannot_be_replayed() {
    let registry = registry().await;
    let mut authenticator = SoftAuthenticator::new();
    register(&registry, &mut authenticator, "alice")
        .await
        .unwrap();
    let id = session();
    let options = registry.start_discoverable(&id, t(10)).unwrap();
    let response = authenticator.assert(&options, "auth.test", ORIGIN);
    registry
        .finish_discoverable(&id, &response, t(10))
        .await
        .unwrap();
    let spent = registry.finish_discoverable(&id, &response, t(11)).await;
    assert!(matches!(spent, Err(PasskeyError::NoChallenge)), "{spent:?}");
    // Against a new challenge, the old answer signs the wrong one.
    registry.start_discoverable(&id, t(12)).unwrap();
    let replayed = registry.finish_discoverable(&id, &response, t(12)).await;
    assert!(
        matches!(replayed, Err(PasskeyError::Refused { .. })),
        "{replayed:?}"
    );
}
