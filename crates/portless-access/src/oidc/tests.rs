//! Unit tests: configuration validation and claim mapping (the live flow is in tests/oidc_flow.rs).

use std::path::Path;

use super::*;
use crate::AuthLevel;

fn raw(issuer: &str, redirect: &str) -> ProviderConfigRaw {
    ProviderConfigRaw {
        name: "corp".to_owned(),
        display_name: None,
        issuer: issuer.to_owned(),
        client_id: "portal".to_owned(),
        client_secret: Some("s3cret".to_owned()),
        client_secret_file: None,
        scopes: None,
        redirect_url: Some(redirect.to_owned()),
        level: None,
        claims: ClaimNamesRaw::default(),
        require_email_verified: None,
        ca_file: None,
        allow_insecure_loopback: false,
    }
}

fn good() -> ProviderConfig {
    ProviderConfig::from_raw(
        raw(
            "https://id.example.com",
            "https://portal.example.com/oidc/corp/callback",
        ),
        Path::new("/"),
        None,
    )
    .unwrap()
}

#[test]
fn defaults_are_the_safe_ones() {
    let c = good();
    assert_eq!(c.scopes, ["openid", "email", "profile"]);
    assert!(c.require_email_verified);
    assert_eq!(c.claims, ClaimNames::default());
    assert_eq!(c.display_name, "corp");
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn http_issuer_is_refused_unless_loopback_is_explicitly_allowed() {
    let e = ProviderConfig::from_raw(
        raw(
            "http://127.0.0.1:8080",
            "https://p.example/oidc/corp/callback",
        ),
        Path::new("/"),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ProviderConfigError::InsecureUrl {
                setting: "issuer",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("https://"));

    let mut r = raw(
        "http://127.0.0.1:8080",
        "http://localhost:9/oidc/corp/callback",
    );
    r.allow_insecure_loopback = true;
    assert!(ProviderConfig::from_raw(r, Path::new("/"), None).is_ok());

    let mut r = raw(
        "http://id.example.com",
        "https://p.example/oidc/corp/callback",
    );
    r.allow_insecure_loopback = true;
    assert!(matches!(
        ProviderConfig::from_raw(r, Path::new("/"), None).unwrap_err(),
        ProviderConfigError::InsecureUrl { .. }
    ));
}

#[test]
fn secret_must_be_given_exactly_once_and_can_come_from_a_file() {
    let mut r = raw(
        "https://id.example.com",
        "https://p.example/oidc/corp/callback",
    );
    r.client_secret = None;
    assert!(matches!(
        ProviderConfig::from_raw(r.clone(), Path::new("/"), None).unwrap_err(),
        ProviderConfigError::SecretChoice(_)
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "from-file\n").unwrap();
    r.client_secret_file = Some(path);
    let c = ProviderConfig::from_raw(r, Path::new("/"), None).unwrap();
    assert_eq!(c.client_secret.expose_secret(), "from-file");
}

#[test]
fn scopes_need_openid_and_names_are_checked() {
    let mut r = raw(
        "https://id.example.com",
        "https://p.example/oidc/corp/callback",
    );
    r.scopes = Some(vec!["email".to_owned()]);
    assert!(matches!(
        ProviderConfig::from_raw(r, Path::new("/"), None).unwrap_err(),
        ProviderConfigError::NoOpenidScope(_)
    ));
    let mut r = raw(
        "https://id.example.com",
        "https://p.example/oidc/corp/callback",
    );
    r.name = "Corp SSO".to_owned();
    assert!(matches!(
        ProviderConfig::from_raw(r, Path::new("/"), None).unwrap_err(),
        ProviderConfigError::BadName(_)
    ));
}

#[test]
fn raw_config_parses_from_yaml() {
    let yaml = "name: kc\nissuer: https://kc.example/realms/a\nclient_id: p\nclient_secret: x\nredirect_url: https://p.example/oidc/kc/callback\nclaims:\n  groups: roles\n";
    let r: ProviderConfigRaw = serde_saphyr::from_str(yaml).unwrap();
    let c = ProviderConfig::from_raw(r, Path::new("/"), None).unwrap();
    assert_eq!(c.claims.groups, "roles");
}

#[test]
fn redirect_url_defaults_to_the_portal_callback_and_must_name_it() {
    let mut r = raw("https://id.example.com", "https://p.example/cb");
    r.redirect_url = None;
    let c = ProviderConfig::from_raw(r.clone(), Path::new("/"), Some("https://auth.example.com"))
        .unwrap();
    assert_eq!(
        c.redirect_url.as_str(),
        "https://auth.example.com/oidc/corp/callback"
    );
    assert!(matches!(
        ProviderConfig::from_raw(r.clone(), Path::new("/"), None).unwrap_err(),
        ProviderConfigError::NoRedirectUrl(_)
    ));
    r.redirect_url = Some("https://auth.example.com/callback".to_owned());
    let e = ProviderConfig::from_raw(r, Path::new("/"), None).unwrap_err();
    assert!(e.to_string().contains("/oidc/corp/callback"), "{e}");
}

#[test]
fn reserved_names_and_levels() {
    let mut r = raw(
        "https://id.example.com",
        "https://p.example/oidc/email/callback",
    );
    r.name = "email".to_owned();
    assert!(matches!(
        ProviderConfig::from_raw(r, Path::new("/"), None).unwrap_err(),
        ProviderConfigError::ReservedName(_)
    ));
    let mut r = raw(
        "https://id.example.com",
        "https://p.example/oidc/corp/callback",
    );
    assert_eq!(
        ProviderConfig::from_raw(r.clone(), Path::new("/"), None)
            .unwrap()
            .level,
        AuthLevel::OneFactor
    );
    r.level = Some("two_factor".to_owned());
    assert_eq!(
        ProviderConfig::from_raw(r.clone(), Path::new("/"), None)
            .unwrap()
            .level,
        AuthLevel::TwoFactor
    );
    r.level = Some("2fa".to_owned());
    assert!(matches!(
        ProviderConfig::from_raw(r, Path::new("/"), None).unwrap_err(),
        ProviderConfigError::BadLevel { .. }
    ));
}

fn claims(v: serde_json::Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn claims_map_with_configured_names() {
    let mut c = good();
    c.claims.groups = "roles".to_owned();
    c.claims.email = "upn".to_owned();
    let id = map_identity(
        &c,
        &claims(
            serde_json::json!({"sub": "42", "upn": "Ann@Example.COM", "email_verified": true,
            "name": "Ann", "roles": ["admins", "dev"], "groups": ["ignored"]}),
        ),
    )
    .unwrap();
    assert_eq!(id.provider, "corp");
    assert_eq!(id.subject, "42");
    assert_eq!(id.email.as_deref(), Some("ann@example.com"));
    assert_eq!(id.groups, ["admins", "dev"]);
    assert_eq!(id.name.as_deref(), Some("Ann"));
}

#[test]
fn unverified_or_unstated_email_is_refused_by_default() {
    let c = good();
    for v in [
        serde_json::json!(false),
        serde_json::json!("true"),
        Value::Null,
    ] {
        let e = map_identity(
            &c,
            &claims(serde_json::json!({"sub": "1", "email": "a@b.c", "email_verified": v})),
        )
        .unwrap_err();
        assert!(matches!(e, OidcError::EmailNotVerified(_)), "{e}");
    }
    let mut lax = good();
    lax.require_email_verified = false;
    let id = map_identity(
        &lax,
        &claims(serde_json::json!({"sub": "1", "email": "a@b.c", "email_verified": false})),
    )
    .unwrap();
    assert!(!id.email_verified);
}

#[test]
fn a_token_without_subject_is_refused() {
    let e = map_identity(&good(), &claims(serde_json::json!({"email": "a@b.c"}))).unwrap_err();
    assert!(matches!(e, OidcError::InvalidIdToken(_)));
}

#[test]
fn authorized_party_must_be_this_client() {
    let ok = claims(serde_json::json!({"aud": ["portal", "api"], "azp": "portal"}));
    assert!(check_authorized_party(&ok, "portal").is_ok());
    let single = claims(serde_json::json!({"aud": "portal"}));
    assert!(check_authorized_party(&single, "portal").is_ok());
    for bad in [
        serde_json::json!({"aud": ["portal", "api"]}),
        serde_json::json!({"aud": ["portal", "api"], "azp": "api"}),
        serde_json::json!({"aud": "portal", "azp": "other"}),
    ] {
        let e = check_authorized_party(&claims(bad), "portal").unwrap_err();
        assert!(matches!(e, OidcError::WrongAudience(_)), "{e}");
    }
}
