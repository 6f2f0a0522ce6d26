//! Upstream OpenID Connect login: the portal sends a person to their company's (or Google's,
//! Keycloak's, ...) provider and gets back a verified identity.
//!
//! Built on the `openidconnect` crate (default features off, so no reqwest and no `ring`) with
//! the workspace's own hyper + rustls client ([`OidcHttpClient`]). The flow is the authorization
//! code flow with PKCE (S256):
//! 1. [`OidcClient::discover`] reads the provider's discovery document and JWKS once;
//! 2. [`OidcClient::begin`] makes the authorization URL and an [`AuthRequest`] (state, nonce,
//!    PKCE verifier) that the caller keeps server-side, bound to the browser session;
//! 3. [`OidcClient::finish`] checks the returned `state` (constant time), exchanges the code with
//!    the verifier, validates the ID token (signature with the provider's JWKS, `iss`, `aud`
//!    and `azp`, `exp`, `iat`, `nonce`), honours `email_verified` and maps the configured claims
//!    to an [`UpstreamIdentity`].
//!
//! An ID token signed with a key id the cached JWKS lacks triggers one JWKS refetch (provider key
//! rotation), at most once per [`JWKS_REFETCH_INTERVAL`], so forged tokens cannot make the edge
//! hammer the provider. Claims are read from the ID token only (not the userinfo endpoint): the
//! provider must put email/name/groups in the ID token (all common providers do for these scopes).

mod config;
mod http;
#[cfg(test)]
mod tests;

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JwsSigningAlgorithm as _, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

pub use config::{
    ClaimNames, ClaimNamesRaw, ProviderConfig, ProviderConfigError, ProviderConfigRaw,
};
pub use http::{DEFAULT_MAX_RESPONSE, DEFAULT_TIMEOUT, HttpClientError, HttpError, OidcHttpClient};

/// How long a started login may take before its callback is refused.
pub const AUTH_REQUEST_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Minimum time between two JWKS fetches triggered by an unknown key id.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How far in the future an ID token's `iat` may be (clock skew between edge and provider).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A started login: send the browser to `url`; keep the rest server-side with the session.
#[derive(Clone)]
pub struct AuthRequest {
    /// The provider's authorization URL to redirect the browser to.
    pub url: String,
    /// The `state` sent; the callback must return it.
    pub state: SecretString,
    /// The `nonce` sent; the ID token must carry it.
    pub nonce: SecretString,
    /// The PKCE verifier whose S256 challenge was sent.
    pub pkce_verifier: SecretString,
    /// After this instant the callback is refused.
    pub expires: SystemTime,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Who the provider says logged in, after every check passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamIdentity {
    /// The provider's configured name.
    pub provider: String,
    /// The provider's stable subject (`sub`); unique per provider only.
    pub subject: String,
    /// Email (lowercased), if the token carries one.
    pub email: Option<String>,
    /// Whether the provider vouched for the email (`email_verified: true`).
    pub email_verified: bool,
    /// Display name, if any.
    pub name: Option<String>,
    /// Groups from the configured groups claim (empty if absent).
    pub groups: Vec<String>,
}

/// Why discovery or a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The discovery document or JWKS could not be fetched or is invalid.
    #[error(
        "provider {provider}: discovery at {issuer} failed: {reason}: check the issuer URL (it must match the document's \"issuer\" exactly) and that the edge can reach it"
    )]
    Discovery {
        /// Provider name.
        provider: String,
        /// Issuer URL.
        issuer: String,
        /// What failed.
        reason: String,
    },
    /// The discovery document names an endpoint that is not https.
    #[error(
        "provider {provider}: the discovery document's {endpoint} {url} is not https: fix the provider's public URL settings"
    )]
    InsecureEndpoint {
        /// Provider name.
        provider: String,
        /// Which endpoint.
        endpoint: &'static str,
        /// Its URL.
        url: String,
    },
    /// The login took longer than [`AUTH_REQUEST_LIFETIME`].
    #[error("the login at the provider took too long: start again")]
    FlowExpired,
    /// The `state` returned does not match the one sent (forged or crossed callback).
    #[error(
        "the login response does not belong to this browser session (state mismatch): start the login again from the portal"
    )]
    StateMismatch,
    /// The code exchange at the token endpoint failed.
    #[error("the provider refused the code exchange: {0}: start the login again")]
    TokenExchange(String),
    /// The token response carries no ID token.
    #[error("the provider returned no ID token: make sure the scopes include \"openid\"")]
    NoIdToken,
    /// The ID token is not a well-formed signed JWT.
    #[error("the ID token is malformed: {0}")]
    MalformedIdToken(String),
    /// The ID token's signature does not verify.
    #[error("the ID token's signature is not valid: {0}")]
    BadSignature(String),
    /// The ID token is signed with a key the provider's JWKS does not have.
    #[error(
        "the ID token is signed with a key the provider does not publish: retry in a minute if the provider just rotated its keys"
    )]
    UnknownSigningKey,
    /// `iss` is not this provider's issuer.
    #[error("the ID token was issued by someone else: {0}")]
    WrongIssuer(String),
    /// `aud`/`azp` do not name this client.
    #[error("the ID token was issued for another application: {0}")]
    WrongAudience(String),
    /// `exp` is past.
    #[error("the ID token has expired: {0}: check the edge's clock, then log in again")]
    Expired(String),
    /// `iat` is in the future beyond the allowed skew.
    #[error("the ID token is issued in the future: {0}: check the edge's clock")]
    IssuedInFuture(String),
    /// `nonce` is missing or not the one sent (replayed token).
    #[error("the ID token does not belong to this login (nonce mismatch): start the login again")]
    WrongNonce,
    /// The ID token is otherwise invalid.
    #[error("the ID token is not valid: {0}")]
    InvalidIdToken(String),
    /// The email is present but the provider did not verify it.
    #[error(
        "the provider has not verified the email address {0}: verify it at the provider, then log in again"
    )]
    EmailNotVerified(String),
}

/// The cached JWKS and when it was last fetched.
struct JwksCache {
    keys: CoreJsonWebKeySet,
    fetched_at: SystemTime,
}

/// One upstream provider, discovered and ready for logins.
pub struct OidcClient {
    config: ProviderConfig,
    http: OidcHttpClient,
    metadata: CoreProviderMetadata,
    jwks: Mutex<JwksCache>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("provider", &self.config.name)
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Fetches the provider's discovery document and JWKS and checks its endpoints are https.
    pub async fn discover(
        config: ProviderConfig,
        http: OidcHttpClient,
        now: SystemTime,
    ) -> Result<Self, OidcError> {
        let fail = |reason: String| OidcError::Discovery {
            provider: config.name.clone(),
            issuer: config.issuer.to_string(),
            reason,
        };
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| fail(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| fail(discovery_reason(&e)))?;
        check_endpoints(&config, &metadata)?;
        let keys = metadata.jwks().clone();
        Ok(Self {
            config,
            http,
            metadata,
            jwks: Mutex::new(JwksCache {
                keys,
                fetched_at: now,
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Starts a login: the authorization URL (code flow, PKCE S256, fresh state and nonce).
    pub fn begin(&self, now: SystemTime) -> AuthRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = self
            .config
            .scopes
            .iter()
            .filter(|s| s.as_str() != "openid")
            .map(|s| Scope::new(s.clone()));
        let (url, state, nonce) = self
            .client()
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(scopes)
            .set_pkce_challenge(challenge)
            .url();
        AuthRequest {
            url: url.to_string(),
            state: SecretString::from(state.into_secret()),
            nonce: SecretString::from(nonce.secret().clone()),
            pkce_verifier: SecretString::from(verifier.into_secret()),
            expires: now + AUTH_REQUEST_LIFETIME,
        }
    }

    /// Completes a login from the callback's `code` and `state`: every check, then claim mapping.
    pub async fn finish(
        &self,
        pending: &AuthRequest,
        code: &str,
        returned_state: &str,
        now: SystemTime,
    ) -> Result<UpstreamIdentity, OidcError> {
        if now > pending.expires {
            return Err(OidcError::FlowExpired);
        }
        let sent = pending.state.expose_secret().as_bytes();
        if !bool::from(sent.ct_eq(returned_state.as_bytes())) {
            return Err(OidcError::StateMismatch);
        }
        let id_token = self.exchange_code(pending, code).await?;
        self.verify_id_token(&id_token, pending.nonce.expose_secret(), now)
            .await
    }

    /// Exchanges `code` (with the PKCE verifier) at the token endpoint; returns the raw ID token.
    ///
    /// A building block of [`OidcClient::finish`], which also checks `state`; use `finish`.
    pub async fn exchange_code(
        &self,
        pending: &AuthRequest,
        code: &str,
    ) -> Result<String, OidcError> {
        let client = self.client();
        let verifier = PkceCodeVerifier::new(pending.pkce_verifier.expose_secret().to_owned());
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::TokenExchange(e.to_string()))?
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::TokenExchange(token_error_reason(&e)))?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        Ok(id_token.to_string())
    }

    /// Validates a raw ID token for this client and `nonce`, then maps its claims.
    ///
    /// Refetches the JWKS once (rate-limited) when the token's key id is unknown.
    pub async fn verify_id_token(
        &self,
        raw: &str,
        nonce: &str,
        now: SystemTime,
    ) -> Result<UpstreamIdentity, OidcError> {
        let token: CoreIdToken = raw
            .parse()
            .map_err(|e: serde_json::Error| OidcError::MalformedIdToken(e.to_string()))?;
        let keys = self.cached_keys();
        match self.verify_with(&token, raw, nonce, now, keys) {
            Err(OidcError::UnknownSigningKey) if self.refetch_due(now) => {
                let keys = self.refetch_jwks(now).await?;
                self.verify_with(&token, raw, nonce, now, keys)
            }
            result => result,
        }
    }

    fn verify_with(
        &self,
        token: &CoreIdToken,
        raw: &str,
        nonce: &str,
        now: SystemTime,
        keys: CoreJsonWebKeySet,
    ) -> Result<UpstreamIdentity, OidcError> {
        let now_chrono: DateTime<Utc> = now.into();
        let latest_iat = now_chrono + MAX_CLOCK_SKEW;
        // Asymmetric signatures only (the provider's JWKS): a MAC keyed with the client secret
        // would let anyone holding that secret mint identities; `none` is never accepted.
        let verifier = openidconnect::IdTokenVerifier::new_public_client(
            ClientId::new(self.config.client_id.clone()),
            self.metadata.issuer().clone(),
            keys,
        )
        .set_allowed_algs(self.allowed_algs())
        .set_time_fn(move || now_chrono)
        .set_issue_time_verifier_fn(move |iat| {
            if iat > latest_iat {
                Err(format!("iat {iat} is after {latest_iat}"))
            } else {
                Ok(())
            }
        });
        let expected = Nonce::new(nonce.to_owned());
        token
            .claims(&verifier, &expected)
            .map_err(map_claims_error)?;
        let claims = payload_claims(raw)?;
        check_authorized_party(&claims, &self.config.client_id)?;
        map_identity(&self.config, &claims)
    }

    /// The provider's advertised ID-token algorithms, less `none` and the shared-secret ones.
    fn allowed_algs(&self) -> Vec<CoreJwsSigningAlgorithm> {
        self.metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| **alg != CoreJwsSigningAlgorithm::None && !alg.uses_shared_secret())
            .cloned()
            .collect()
    }

    fn cached_keys(&self) -> CoreJsonWebKeySet {
        match self.jwks.lock() {
            Ok(cache) => cache.keys.clone(),
            Err(poisoned) => poisoned.into_inner().keys.clone(),
        }
    }

    /// Whether an unknown key id may trigger a JWKS fetch now (rate limit).
    fn refetch_due(&self, now: SystemTime) -> bool {
        let fetched_at = match self.jwks.lock() {
            Ok(cache) => cache.fetched_at,
            Err(poisoned) => poisoned.into_inner().fetched_at,
        };
        now.duration_since(fetched_at)
            .is_ok_and(|age| age >= JWKS_REFETCH_INTERVAL)
    }

    async fn refetch_jwks(&self, now: SystemTime) -> Result<CoreJsonWebKeySet, OidcError> {
        // Mark the attempt first: a failing provider is not retried on every request either.
        self.store_keys(None, now);
        let keys = CoreJsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| OidcError::Discovery {
                provider: self.config.name.clone(),
                issuer: self.config.issuer.to_string(),
                reason: format!("JWKS refetch: {}", discovery_reason(&e)),
            })?;
        self.store_keys(Some(keys.clone()), now);
        Ok(keys)
    }

    fn store_keys(&self, keys: Option<CoreJsonWebKeySet>, now: SystemTime) {
        let mut cache = match self.jwks.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(keys) = keys {
            cache.keys = keys;
        }
        cache.fetched_at = now;
    }

    fn client(
        &self,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.config.redirect_url.clone()))
    }
}

fn check_endpoints(
    config: &ProviderConfig,
    metadata: &CoreProviderMetadata,
) -> Result<(), OidcError> {
    let mut endpoints = vec![
        (
            "authorization_endpoint",
            metadata.authorization_endpoint().url().clone(),
        ),
        ("jwks_uri", metadata.jwks_uri().url().clone()),
    ];
    match metadata.token_endpoint() {
        Some(t) => endpoints.push(("token_endpoint", t.url().clone())),
        None => {
            return Err(OidcError::Discovery {
                provider: config.name.clone(),
                issuer: config.issuer.to_string(),
                reason: "the document has no token_endpoint".to_owned(),
            });
        }
    }
    for (endpoint, url) in endpoints {
        if !config.url_allowed(&url) {
            return Err(OidcError::InsecureEndpoint {
                provider: config.name.clone(),
                endpoint,
                url: url.to_string(),
            });
        }
    }
    Ok(())
}

fn discovery_reason<E: std::error::Error>(e: &openidconnect::DiscoveryError<E>) -> String {
    match e {
        openidconnect::DiscoveryError::Request(inner) => inner.to_string(),
        openidconnect::DiscoveryError::Response(status, _, msg) => {
            format!("HTTP {status}: {msg}")
        }
        openidconnect::DiscoveryError::Parse(p) => format!("invalid JSON: {p}"),
        other => other.to_string(),
    }
}

fn token_error_reason<E: std::error::Error + 'static>(
    e: &openidconnect::RequestTokenError<
        E,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> String {
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => r.to_string(),
        openidconnect::RequestTokenError::Request(inner) => inner.to_string(),
        openidconnect::RequestTokenError::Parse(p, _) => format!("invalid token response: {p}"),
        other => other.to_string(),
    }
}

fn map_claims_error(e: ClaimsVerificationError) -> OidcError {
    match e {
        ClaimsVerificationError::Expired(m) => OidcError::Expired(m),
        ClaimsVerificationError::InvalidAudience(m) => OidcError::WrongAudience(m),
        ClaimsVerificationError::InvalidIssuer(m) => OidcError::WrongIssuer(m),
        ClaimsVerificationError::InvalidNonce(_) => OidcError::WrongNonce,
        ClaimsVerificationError::InvalidAuthTime(m) => OidcError::IssuedInFuture(m),
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => OidcError::UnknownSigningKey,
        ClaimsVerificationError::SignatureVerification(s) => OidcError::BadSignature(s.to_string()),
        other => OidcError::InvalidIdToken(other.to_string()),
    }
}

/// `azp` (OpenID Connect Core 3.1.3.7 steps 4-5), which `openidconnect` leaves to the caller:
/// with several audiences it must be present, and when present it must be this client.
fn check_authorized_party(claims: &Map<String, Value>, client_id: &str) -> Result<(), OidcError> {
    let several = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(other) => Err(OidcError::WrongAudience(format!(
            "authorized party (azp) is {other}, not this client {client_id}"
        ))),
        None if several => Err(OidcError::WrongAudience(
            "several audiences but no authorized party (azp)".to_owned(),
        )),
        None => Ok(()),
    }
}

/// The (already verified) token's payload as a JSON object, for configurable claim names.
fn payload_claims(raw: &str) -> Result<Map<String, Value>, OidcError> {
    let payload = raw
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::MalformedIdToken("no payload".to_owned()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| OidcError::MalformedIdToken(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::MalformedIdToken(e.to_string()))
}

/// Maps verified claims to an identity; refuses an unverified email when required.
fn map_identity(
    config: &ProviderConfig,
    claims: &Map<String, Value>,
) -> Result<UpstreamIdentity, OidcError> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OidcError::InvalidIdToken("no \"sub\" claim".to_owned()))?
        .to_owned();
    let email = claims
        .get(&config.claims.email)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let email_verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
    if let Some(email) = &email
        && config.require_email_verified
        && !email_verified
    {
        return Err(OidcError::EmailNotVerified(email.clone()));
    }
    let name = claims
        .get(&config.claims.name)
        .and_then(Value::as_str)
        .map(str::to_owned);
    let groups = match claims.get(&config.claims.groups) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    Ok(UpstreamIdentity {
        provider: config.name.clone(),
        subject,
        email,
        email_verified,
        name,
        groups,
    })
}
