//! The upstream OpenID client against a real, certified provider: `oidc-provider` from npm,
//! run with the machine's Node.js on a free loopback port (tests-oidc/provider.mjs).
//!
//! The test plays the browser with a cookie-keeping HTTP client: it follows the provider's
//! redirects (authorization, the auto-login interaction page, consent) until the provider
//! redirects to the portal's callback URL, then hands `code` and `state` to the client.
//! Skips (with the reason printed) when node or tests-oidc/node_modules is missing, unless
//! PORTLESS_REQUIRE_OIDC=1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, SystemTime};

use portless_access::oidc::{
    AuthRequest, OidcClient, OidcError, OidcHttpClient, ProviderConfig, ProviderConfigRaw,
};
use portless_test_support::peers::OidcPeer;
use secrecy::ExposeSecret as _;
use serde_json::json;

const PORTAL: (&str, &str) = ("portal", "portal-secret-0123456789");
const OTHER: (&str, &str) = ("other-app", "other-secret-0123456789");

/// The provider, and the callback URL its clients are registered with.
struct Peer {
    provider: OidcPeer,
    issuer: String,
    redirect_url: String,
    _callback_port: TcpListener,
}

/// Starts the provider, or returns None (after printing why) when node or the package is missing.
fn start_peer() -> Option<Peer> {
    // A loopback port the test owns for the callback; nothing needs to answer there because
    // the test reads the provider's redirect instead of following it.
    let callback_port = TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_url = format!(
        "http://127.0.0.1:{}/oidc/testidp/callback",
        callback_port.local_addr().unwrap().port()
    );
    let config = json!({
        "clients": [
            {"client_id": PORTAL.0, "client_secret": PORTAL.1, "redirect_uris": [redirect_url]},
            {"client_id": OTHER.0, "client_secret": OTHER.1, "redirect_uris": [redirect_url]},
        ],
        "accounts": {
            "alice": {"email": "Alice@Example.com", "email_verified": true,
                      "name": "Alice Example", "groups": ["admins", "dev"]},
            "bob": {"email": "bob@example.com", "email_verified": false,
                    "name": "Bob Unverified", "groups": []},
        },
    });
    let provider = OidcPeer::start(&config.to_string())?;
    Some(Peer {
        issuer: provider.issuer.clone(),
        provider,
        redirect_url,
        _callback_port: callback_port,
    })
}

fn config(peer: &Peer, client: (&str, &str)) -> ProviderConfig {
    let raw: ProviderConfigRaw = serde_json::from_value(json!({
        "name": "testidp",
        "display_name": "Test IdP",
        "issuer": peer.issuer,
        "client_id": client.0,
        "client_secret": client.1,
        "scopes": ["openid", "email", "profile", "groups"],
        "redirect_url": peer.redirect_url,
        // Plain http on loopback: this suite checks the OpenID protocol, not TLS.
        "allow_insecure_loopback": true,
    }))
    .unwrap();
    ProviderConfig::from_raw(raw, Path::new("/"), None).unwrap()
}

async fn client(peer: &Peer, which: (&str, &str)) -> OidcClient {
    let http = OidcHttpClient::new(None).unwrap();
    OidcClient::discover(config(peer, which), http, SystemTime::now())
        .await
        .unwrap()
}

/// Plays the browser at the provider; returns the callback's `code` and `state`.
async fn browser_login(peer: &Peer, pending: &AuthRequest, account: &str) -> (String, String) {
    let location = peer.provider.authorize(&pending.url, account).await;
    let query = location
        .strip_prefix(&format!("{}?", peer.redirect_url))
        .unwrap_or_else(|| panic!("not sent to the callback: {location}"));
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert!(
        !params.contains_key("error"),
        "provider refused: {params:?}"
    );
    (params["code"].clone(), params["state"].clone())
}

#[tokio::test]
async fn login_maps_email_name_and_groups() {
    let Some(peer) = start_peer() else { return };
    let portal = client(&peer, PORTAL).await;
    let pending = portal.begin(SystemTime::now());
    assert!(
        pending.url.contains("code_challenge_method=S256"),
        "{}",
        pending.url
    );
    assert!(pending.url.starts_with(&format!("{}/auth?", peer.issuer)));
    let (code, state) = browser_login(&peer, &pending, "alice").await;
    let id = portal
        .finish(&pending, &code, &state, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(id.provider, "testidp");
    assert_eq!(id.subject, "alice");
    assert_eq!(id.email.as_deref(), Some("alice@example.com"));
    assert!(id.email_verified);
    assert_eq!(id.name.as_deref(), Some("Alice Example"));
    assert_eq!(id.groups, ["admins", "dev"]);

    // The code is single-use at the provider: replaying the callback fails.
    let replay = portal
        .finish(&pending, &code, &state, SystemTime::now())
        .await;
    assert!(
        matches!(replay, Err(OidcError::TokenExchange(_))),
        "{replay:?}"
    );
}

#[tokio::test]
async fn tampered_state_is_refused_before_the_code_is_spent() {
    let Some(peer) = start_peer() else { return };
    let portal = client(&peer, PORTAL).await;
    let pending = portal.begin(SystemTime::now());
    let (code, state) = browser_login(&peer, &pending, "alice").await;
    let mut tampered = state.clone();
    tampered.push('x');
    let e = portal
        .finish(&pending, &code, &tampered, SystemTime::now())
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::StateMismatch), "{e}");
    assert!(e.to_string().contains("start the login again"));
    let e = portal
        .finish(&pending, &code, "", SystemTime::now())
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::StateMismatch), "{e}");
    // The refusal happened before the exchange: the honest callback still works.
    let id = portal
        .finish(&pending, &code, &state, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(id.subject, "alice");
}

#[tokio::test]
async fn another_flows_code_or_nonce_is_refused() {
    let Some(peer) = start_peer() else { return };
    let portal = client(&peer, PORTAL).await;
    let now = SystemTime::now();
    let first = portal.begin(now);
    let second = portal.begin(now);
    assert_ne!(first.nonce.expose_secret(), second.nonce.expose_secret());
    let (code, state) = browser_login(&peer, &first, "alice").await;

    // A code from one flow injected into another browser session's flow: PKCE stops it.
    let injected = portal
        .finish(&second, &code, second.state.expose_secret(), now)
        .await
        .unwrap_err();
    assert!(
        matches!(injected, OidcError::TokenExchange(_)),
        "{injected}"
    );

    // The first flow's token checked against the second flow's nonce: refused.
    let crossed = AuthRequest {
        nonce: second.nonce.clone(),
        ..first.clone()
    };
    let e = portal
        .finish(&crossed, &code, &state, now)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::WrongNonce), "{e}");
}

#[tokio::test]
async fn unverified_email_is_refused() {
    let Some(peer) = start_peer() else { return };
    let portal = client(&peer, PORTAL).await;
    let pending = portal.begin(SystemTime::now());
    let (code, state) = browser_login(&peer, &pending, "bob").await;
    let e = portal
        .finish(&pending, &code, &state, SystemTime::now())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, OidcError::EmailNotVerified(m) if m == "bob@example.com"),
        "{e}"
    );
}

#[tokio::test]
async fn token_for_another_audience_expired_or_forged_is_refused() {
    let Some(peer) = start_peer() else { return };
    let portal = client(&peer, PORTAL).await;
    let other = client(&peer, OTHER).await;
    let now = SystemTime::now();

    // A genuine ID token, but issued to another application at the same provider.
    let pending = other.begin(now);
    let (code, _) = browser_login(&peer, &pending, "alice").await;
    let foreign = other.exchange_code(&pending, &code).await.unwrap();
    let e = portal
        .verify_id_token(&foreign, pending.nonce.expose_secret(), now)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::WrongAudience(_)), "{e}");
    // The same token is fine for the application it was issued to.
    let id = other
        .verify_id_token(&foreign, pending.nonce.expose_secret(), now)
        .await
        .unwrap();
    assert_eq!(id.subject, "alice");

    // The portal's own token, checked two hours later: expired.
    let pending = portal.begin(now);
    let (code, _) = browser_login(&peer, &pending, "alice").await;
    let token = portal.exchange_code(&pending, &code).await.unwrap();
    let nonce = pending.nonce.expose_secret();
    let later = now + Duration::from_secs(2 * 3600);
    let e = portal
        .verify_id_token(&token, nonce, later)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::Expired(_)), "{e}");

    // The payload altered (another subject) with the signature kept: bad signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
            .unwrap(),
    )
    .unwrap()
    .replace("\"sub\":\"alice\"", "\"sub\":\"admin\"");
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload);
    let forged = parts.join(".");
    let e = portal
        .verify_id_token(&forged, nonce, now)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::BadSignature(_)), "{e}");

    // A key id the provider does not publish: refused; a JWKS refetch is allowed only once
    // per interval (the first try is right after discovery, so no refetch; a minute later one).
    let header = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[0])
            .unwrap(),
    )
    .unwrap()
    .replace("test-key-1", "rotated-away");
    parts[0] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header);
    let unknown_kid = parts.join(".");
    for at in [
        now,
        now + Duration::from_secs(61),
        now + Duration::from_secs(62),
    ] {
        let e = portal
            .verify_id_token(&unknown_kid, nonce, at)
            .await
            .unwrap_err();
        assert!(matches!(e, OidcError::UnknownSigningKey), "{e}");
    }

    // A flow that outlived its lifetime is refused before anything is exchanged.
    let e = portal
        .finish(&pending, "whatever", pending.state.expose_secret(), later)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::FlowExpired), "{e}");
}

#[tokio::test]
async fn discovery_refuses_a_wrong_issuer_and_plain_http_by_default() {
    let Some(peer) = start_peer() else { return };
    let mut cfg = config(&peer, PORTAL);
    cfg.issuer = format!("{}/", peer.issuer);
    let http = OidcHttpClient::new(None).unwrap();
    let e = OidcClient::discover(cfg, http, SystemTime::now())
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::Discovery { .. }), "{e}");

    let raw: ProviderConfigRaw = serde_json::from_value(json!({
        "name": "testidp", "issuer": peer.issuer, "client_id": PORTAL.0,
        "client_secret": PORTAL.1, "redirect_url": peer.redirect_url,
    }))
    .unwrap();
    let e = ProviderConfig::from_raw(raw, Path::new("/"), None).unwrap_err();
    assert!(e.to_string().contains("must use https://"), "{e}");
}
