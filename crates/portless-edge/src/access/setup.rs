//! Building the access parts from the configuration, and keeping them current.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use portless_access::assertion::KeyRing;
use portless_access::audit::AuditLog;
use portless_access::config::AccessConfig;
use portless_access::passkey::{PasskeyRegistry, RelyingParty};
use portless_access::policy::AccessControl;
use portless_access::redirect::RedirectPolicy;
use portless_access::regulation::Regulator;
use portless_access::secretbox::SecretBox;
use portless_access::service_token::ServiceTokens;
use portless_access::session::{SessionLimits, SessionStore};
use portless_access::totp::{TotpAlgorithm, TotpParams, TotpRegistry};
use portless_access::users::{ReloadOutcome, UsersFile};
use portless_store::Store;
use prometheus_client::registry::Registry as MetricsRegistry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::sign_in::SignIn;
use crate::EdgeError;

/// How access is set up at an edge.
#[derive(Debug, Clone)]
pub struct AccessOptions {
    /// The access configuration file: `access_control`, `session`, `regulation`, `totp` and
    /// `authentication_backend.file.path`, in the format of the SSO portal people already use.
    pub config: PathBuf,
    /// Key that encrypts secrets at rest (TOTP secrets); created (mode 0600) if missing.
    pub secret_key_file: PathBuf,
    /// Lifetime of the signed assertion sent to origins (at most 5 minutes).
    pub assertion_ttl: Duration,
    /// Lifetime of the tokens `portless access login` gets (at most 30 days).
    pub cli_token_ttl: Duration,
    /// Proxies whose forwarded headers the forward-auth endpoints trust.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often the configuration and users files are checked for changes.
    pub reload_interval: Duration,
    /// The least time a first-factor attempt takes to answer, so that unknown users, wrong
    /// passwords and bans look alike from outside.
    pub login_floor: Duration,
}

impl AccessOptions {
    /// Options for `config`, with the secret key beside it and default timings.
    pub fn new(config: PathBuf, secret_key_file: PathBuf) -> Self {
        Self {
            config,
            secret_key_file,
            assertion_ttl: Duration::from_secs(120),
            cli_token_ttl: portless_access::assertion::CLI_DEFAULT_TTL,
            trusted_proxies: Vec::new(),
            reload_interval: Duration::from_secs(1),
            login_floor: Duration::from_millis(350),
        }
    }
}

/// One portal: the auth host people log in on, for the applications under its domain.
#[derive(Debug, Clone)]
pub(crate) struct PortalSite {
    /// The cookie domain it serves (`example.com` covers `*.example.com`).
    pub(crate) domain: String,
    /// The portal's canonical host.
    pub(crate) host: String,
    /// The portal's base URL (`https://auth.example.com[:port]`), no trailing slash.
    pub(crate) base_url: String,
}

/// The access parts of a running edge.
pub(crate) struct EdgeAccess {
    pub(crate) options: AccessOptions,
    policy: RwLock<Arc<AccessControl>>,
    pub(crate) portals: Vec<PortalSite>,
    pub(crate) redirects: RedirectPolicy,
    pub(crate) users: UsersFile,
    pub(crate) sessions: SessionStore,
    pub(crate) regulator: Regulator,
    pub(crate) totp: TotpRegistry,
    pub(crate) totp_issuer: String,
    pub(crate) tokens: ServiceTokens,
    pub(crate) keys: KeyRing,
    pub(crate) audit: AuditLog,
    pub(crate) secretbox: Arc<SecretBox>,
    pub(crate) store: Store,
    /// Upstream providers and the email PIN (read at start, like `session`).
    pub(crate) sign_in: SignIn,
    /// Passkeys, one relying party per portal host; empty when `webauthn.disable` is set.
    pub(crate) passkeys: HashMap<String, PasskeyRegistry>,
    /// Content hash of the configuration file last applied.
    config_hash: RwLock<Vec<u8>>,
    /// The published key set (JWKS), sent to connectors when it changes.
    keys_published: watch::Sender<Option<Arc<str>>>,
}

// === impl EdgeAccess ===

impl EdgeAccess {
    /// Loads everything; any error stops the edge from starting (fail closed).
    pub(crate) async fn load(
        options: AccessOptions,
        store: Store,
        metrics: &mut MetricsRegistry,
    ) -> Result<Arc<Self>, EdgeError> {
        let access = |detail: String| EdgeError::Access { detail };
        let text = std::fs::read(&options.config).map_err(|e| {
            access(format!(
                "cannot read the access configuration {}: {e}; pass an existing file with --access-config",
                options.config.display()
            ))
        })?;
        let loaded = AccessConfig::from_yaml(&String::from_utf8_lossy(&text), &options.config)
            .map_err(|e| access(e.to_string()))?;
        for warning in &loaded.warnings {
            warn!("{warning}");
        }
        let config = loaded.config;
        let portals = portal_sites(&config).map_err(access)?;
        let users_path = config.users_file.clone().ok_or_else(|| {
            access(format!(
                "{}: no users file; set authentication_backend.file.path to your users_database.yml",
                options.config.display()
            ))
        })?;
        let users = UsersFile::open(&users_path).map_err(|e| access(e.to_string()))?;
        let secretbox = Arc::new(
            SecretBox::load_or_create(&options.secret_key_file)
                .map_err(|e| access(e.to_string()))?,
        );
        let now = SystemTime::now();
        // A retired key keeps verifying for as long as a CLI token it signed may live (an
        // application assertion needs only minutes), so a rotation never cuts tokens short.
        let overlap = Duration::from_secs(3600).max(
            options
                .cli_token_ttl
                .min(portless_access::assertion::CLI_MAX_TTL)
                + Duration::from_secs(120),
        );
        let keys = KeyRing::load_or_create(&store, now, Duration::from_secs(24 * 3600), overlap)
            .await
            .map_err(|e| access(e.to_string()))?;
        let sessions = SessionStore::new(SessionLimits {
            inactivity: config.session.inactivity,
            expiration: config.session.expiration,
            remember_me: config.session.remember_me,
        });
        let regulator = Regulator::new(
            config.regulation.max_retries,
            config.regulation.find_time,
            config.regulation.ban_time,
        );
        let totp_params = totp_params(&config.totp);
        let totp = TotpRegistry::new(
            store.clone(),
            secretbox.clone(),
            totp_params,
            &config.totp.issuer,
        )
        .map_err(|e| access(format!("totp: {e}")))?;
        let redirects = RedirectPolicy::new(portals.iter().map(|p| p.domain.clone()).collect())
            .map_err(|e| access(format!("session.cookies: {e}")))?;
        let audit = AuditLog::new(Some(store.clone()), metrics);
        let passkeys = passkey_registries(&config, &portals, &store).map_err(access)?;
        let sign_in =
            SignIn::new(config.oidc, config.notifier.as_ref(), config.email_pin).map_err(access)?;
        let hash = digest(&text);
        let (keys_published, _) = watch::channel(Some(Arc::from(keys.jwks_json(now))));
        info!(
            rules = config.access_control.rule_count(),
            portals = portals.len(),
            "access control loaded"
        );
        Ok(Arc::new(Self {
            policy: RwLock::new(Arc::new(config.access_control)),
            portals,
            redirects,
            users,
            sessions,
            regulator,
            totp,
            totp_issuer: config.totp.issuer.clone(),
            tokens: ServiceTokens::new(store.clone()),
            keys,
            audit,
            secretbox,
            store,
            sign_in,
            passkeys,
            options,
            config_hash: RwLock::new(hash),
            keys_published,
        }))
    }

    /// Whether `user` has a second factor; when the store cannot tell, `true`, so the portal
    /// asks for a code (which then fails) rather than skipping the factor.
    pub(crate) async fn totp_enrolled(&self, user: &str) -> bool {
        self.totp.is_enrolled(user).await.unwrap_or(true)
    }

    /// The key set connectors verify assertions with, following rotations.
    pub(crate) fn keys_watch(&self) -> watch::Receiver<Option<Arc<str>>> {
        self.keys_published.subscribe()
    }

    /// The policy in force now.
    pub(crate) fn policy(&self) -> Arc<AccessControl> {
        match self.policy.read() {
            Ok(policy) => policy.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The portal for an application host: the one whose cookie domain covers it.
    pub(crate) fn portal_for(&self, host: &str) -> Option<&PortalSite> {
        self.portals.iter().find(|p| covers(&p.domain, host))
    }

    /// The portal served on `host`, if `host` is a portal.
    pub(crate) fn portal_at(&self, host: &str) -> Option<&PortalSite> {
        self.portals.iter().find(|p| p.host == host)
    }

    /// Re-reads the configuration if it changed. A valid new policy applies to the next
    /// request; an invalid one is logged, error by error, and the old policy stays.
    pub(crate) fn reload_if_changed(&self) {
        let Ok(text) = std::fs::read(&self.options.config) else {
            warn!(file = %self.options.config.display(), "access configuration unreadable; keeping the current policy");
            return;
        };
        let hash = digest(&text);
        if self.config_hash.read().is_ok_and(|h| *h == hash) {
            return;
        }
        match AccessConfig::from_yaml(&String::from_utf8_lossy(&text), &self.options.config) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    warn!("{warning}");
                }
                let rules = loaded.config.access_control.rule_count();
                if let Ok(mut policy) = self.policy.write() {
                    *policy = Arc::new(loaded.config.access_control);
                }
                info!(rules, "access control reloaded");
            }
            Err(errors) => {
                warn!("access configuration refused, keeping the current policy:\n{errors}");
            }
        }
        if let Ok(mut current) = self.config_hash.write() {
            *current = hash;
        }
    }

    /// Background upkeep until `cancel`: reloads, session sweeps, key rotation.
    pub(crate) async fn maintain(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.options.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => break,
            }
            self.reload_if_changed();
            self.reload_users();
            let now = SystemTime::now();
            self.sessions.sweep(now);
            self.regulator.sweep(now);
            self.sign_in.sweep(now);
            for passkeys in self.passkeys.values() {
                passkeys.sweep(now);
            }
            match self.keys.rotate_if_due(&self.store, now).await {
                Ok(true) => {
                    self.keys_published
                        .send_replace(Some(Arc::from(self.keys.jwks_json(now))));
                    info!(kid = %self.keys.current_kid(), "assertion keys rotated");
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, "assertion key rotation failed; keeping the current key")
                }
            }
        }
        self.sign_in.shutdown().await;
    }
}

impl EdgeAccess {
    /// Re-reads the users file; a user removed, disabled or given a new password loses every
    /// session at once (re-enabling them later does not bring an old session back).
    fn reload_users(&self) {
        let before = self.users.current();
        if !matches!(self.users.check_now(), ReloadOutcome::Reloaded { .. }) {
            return;
        }
        let after = self.users.current();
        for user in before.users() {
            let still_valid = after.get(user.name()).is_some_and(|now| {
                !now.is_disabled() && now.password_hash().as_str() == user.password_hash().as_str()
            });
            if !still_valid {
                let ended = self.sessions.revoke_user(user.name());
                if ended > 0 {
                    info!(
                        user = user.name(),
                        sessions = ended,
                        "sessions ended: user removed, disabled or given a new password"
                    );
                }
            }
        }
    }
}

/// Whether cookie domain `domain` covers `host` (itself or any subdomain).
pub(crate) fn covers(domain: &str, host: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// The portal of each cookie domain, from `session.cookies`.
fn portal_sites(config: &AccessConfig) -> Result<Vec<PortalSite>, String> {
    let mut sites = Vec::new();
    for cookie in &config.session.cookies {
        let url = cookie.portal_url.trim_end_matches('/');
        let authority = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("session.cookies: portal URL {url} must start with https://"))?;
        let authority = authority.split('/').next().unwrap_or(authority);
        let host = portless_proto::canonical_host(authority)
            .map_err(|e| format!("session.cookies: portal URL {url}: {e}"))?;
        if !covers(&cookie.domain, &host) {
            return Err(format!(
                "session.cookies: the portal {host} is not under the cookie domain {}; \
                 put the portal on a subdomain of {}",
                cookie.domain, cookie.domain
            ));
        }
        sites.push(PortalSite {
            domain: cookie.domain.clone(),
            host,
            base_url: format!("https://{authority}"),
        });
    }
    if sites.is_empty() {
        return Err(
            "no portal configured: add session.cookies with `domain` and \
                    `authelia_url` (the login portal's https URL)"
                .to_owned(),
        );
    }
    Ok(sites)
}

/// TOTP parameters from the configuration's `totp` section.
fn totp_params(config: &portless_access::config::TotpConfig) -> TotpParams {
    TotpParams {
        algorithm: match config.algorithm {
            portless_access::config::TotpAlgorithm::Sha1 => TotpAlgorithm::Sha1,
            portless_access::config::TotpAlgorithm::Sha256 => TotpAlgorithm::Sha256,
            portless_access::config::TotpAlgorithm::Sha512 => TotpAlgorithm::Sha512,
        },
        digits: u8::try_from(config.digits).unwrap_or(6),
        period: config.period.as_secs(),
        skew: u8::try_from(config.skew).unwrap_or(1),
    }
}

impl EdgeAccess {
    /// The passkeys of the portal on `host`, unless passkeys are turned off.
    pub(crate) fn passkeys_at(&self, host: &str) -> Option<&PasskeyRegistry> {
        self.passkeys.get(host)
    }

    /// Whether `user` has a passkey (the store is shared by every portal); when the store
    /// cannot tell, `true`, so a second factor is asked for rather than skipped.
    pub(crate) async fn passkey_enrolled(&self, user: &str) -> bool {
        match self.passkeys.values().next() {
            Some(passkeys) => passkeys.is_enrolled(user).await.unwrap_or(true),
            None => false,
        }
    }

    /// Whether `user` has any second factor (TOTP or a passkey).
    pub(crate) async fn has_second_factor(&self, user: &str) -> bool {
        self.totp_enrolled(user).await || self.passkey_enrolled(user).await
    }
}

/// One passkey registry per portal (rpId = its host, origin = its base URL).
fn passkey_registries(
    config: &AccessConfig,
    portals: &[PortalSite],
    store: &Store,
) -> Result<HashMap<String, PasskeyRegistry>, String> {
    if config.webauthn.disabled {
        return Ok(HashMap::new());
    }
    let mut registries = HashMap::new();
    for portal in portals {
        let relying_party = RelyingParty {
            origin: portal.base_url.clone(),
            display_name: config.webauthn.display_name.clone(),
            timeout: config.webauthn.timeout,
        };
        let registry = PasskeyRegistry::new(store.clone(), relying_party)
            .map_err(|e| format!("webauthn: {e}"))?;
        registries.insert(portal.host.clone(), registry);
    }
    Ok(registries)
}
