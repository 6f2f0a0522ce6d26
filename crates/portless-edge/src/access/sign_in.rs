//! The sign-in methods beside the users file, as the edge runs them: upstream OpenID
//! providers (discovered on first use, logins in flight kept server-side) and the email PIN
//! (a PIN book and the mailer, mail sent off the request path).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use portless_access::email_pin::{Mailer, PinBook, PinPolicy, SmtpConfig};
use portless_access::oidc::{AuthRequest, OidcClient, OidcError, OidcHttpClient, ProviderConfig};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Logins in flight kept at most (one per browser session; the oldest go first).
const MAX_FLOWS: usize = 10_000;
/// After a failed discovery, clicks within this long fail at once instead of hammering the
/// provider (or hanging on it) again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(10);

/// One upstream provider, discovered the first time someone picks it.
pub(crate) struct Provider {
    pub(crate) config: ProviderConfig,
    /// The portal host the provider's callback returns to: the only portal that offers it.
    pub(crate) portal_host: String,
    state: tokio::sync::Mutex<Discovery>,
}

enum Discovery {
    NotYet,
    Ready(Arc<OidcClient>),
    Failed { at: SystemTime, reason: String },
}

/// A login started at a provider, waiting for its callback in the browser that started it.
pub(crate) struct PendingFlow {
    pub(crate) provider: String,
    pub(crate) request: AuthRequest,
    /// Where to go after the login (validated again when used).
    pub(crate) rd: Option<String>,
}

/// The email PIN: who may get one, and how it is mailed.
pub(crate) struct PinLogin {
    pub(crate) book: PinBook,
    mailer: Arc<Mailer>,
    /// Mail being sent: owned, so shutdown waits for none and cancels all.
    tasks: TaskTracker,
}

/// Every sign-in method beside the users file.
pub(crate) struct SignIn {
    pub(crate) providers: Vec<Provider>,
    flows: Mutex<HashMap<String, PendingFlow>>,
    pub(crate) pin: Option<PinLogin>,
}

/// Why a provider cannot be used right now.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProviderUnavailable {
    /// Discovery failed (now, or moments ago).
    #[error("{0}")]
    Discovery(String),
}

// === impl SignIn ===

impl SignIn {
    /// The methods of a loaded configuration; the mailer is built now (a bad TLS set-up stops
    /// the edge), providers are discovered on first use (a provider that is down must not
    /// keep the edge from starting).
    pub(crate) fn new(
        providers: Vec<ProviderConfig>,
        notifier: Option<&SmtpConfig>,
        email_pin: bool,
    ) -> Result<Self, String> {
        let providers = providers
            .into_iter()
            .map(|config| Provider {
                portal_host: config
                    .redirect_url
                    .host_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                config,
                state: tokio::sync::Mutex::new(Discovery::NotYet),
            })
            .collect();
        let pin = match (email_pin, notifier) {
            (true, Some(smtp)) => Some(PinLogin {
                book: PinBook::new(PinPolicy::default()),
                mailer: Arc::new(Mailer::new(smtp).map_err(|e| format!("notifier.smtp: {e}"))?),
                tasks: TaskTracker::new(),
            }),
            _ => None,
        };
        Ok(Self {
            providers,
            flows: Mutex::new(HashMap::new()),
            pin,
        })
    }

    /// The provider called `name` that the portal on `portal_host` offers.
    pub(crate) fn provider(&self, name: &str, portal_host: &str) -> Option<&Provider> {
        self.providers
            .iter()
            .find(|p| p.config.name == name && p.portal_host == portal_host)
    }

    /// Keeps a started login for the browser session `session`, replacing an earlier one.
    pub(crate) fn start_flow(&self, session: &str, flow: PendingFlow, now: SystemTime) {
        let mut flows = self.flows.lock().unwrap_or_else(PoisonError::into_inner);
        if flows.len() >= MAX_FLOWS {
            flows.retain(|_, f| f.request.expires > now);
        }
        if flows.len() >= MAX_FLOWS
            && let Some(oldest) = flows
                .iter()
                .min_by_key(|(_, f)| f.request.expires)
                .map(|(k, _)| k.clone())
        {
            flows.remove(&oldest);
        }
        flows.insert(session.to_owned(), flow);
    }

    /// Takes the login started by browser session `session` (single use).
    pub(crate) fn take_flow(&self, session: &str) -> Option<PendingFlow> {
        self.flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session)
    }

    /// Drops expired logins and PINs.
    pub(crate) fn sweep(&self, now: SystemTime) {
        self.flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, f| f.request.expires > now);
        if let Some(pin) = &self.pin {
            pin.book.sweep(now);
        }
    }

    /// Stops taking mail and waits for the mail being sent (each send has its own timeout).
    pub(crate) async fn shutdown(&self) {
        if let Some(pin) = &self.pin {
            pin.tasks.close();
            pin.tasks.wait().await;
        }
    }
}

// === impl Provider ===

impl Provider {
    /// The discovered client, discovering it now if needed.
    pub(crate) async fn client(
        &self,
        now: SystemTime,
    ) -> Result<Arc<OidcClient>, ProviderUnavailable> {
        let mut state = self.state.lock().await;
        match &*state {
            Discovery::Ready(client) => return Ok(client.clone()),
            Discovery::Failed { at, reason }
                if now.duration_since(*at).unwrap_or_default() < DISCOVERY_RETRY =>
            {
                return Err(ProviderUnavailable::Discovery(reason.clone()));
            }
            _ => {}
        }
        match self.discover(now).await {
            Ok(client) => {
                info!(provider = %self.config.name, issuer = %self.config.issuer, "OIDC provider discovered");
                let client = Arc::new(client);
                *state = Discovery::Ready(client.clone());
                Ok(client)
            }
            Err(e) => {
                let reason = e.to_string();
                warn!(provider = %self.config.name, error = %reason, "OIDC provider unavailable");
                *state = Discovery::Failed {
                    at: now,
                    reason: reason.clone(),
                };
                Err(ProviderUnavailable::Discovery(reason))
            }
        }
    }

    async fn discover(&self, now: SystemTime) -> Result<OidcClient, OidcError> {
        let http = OidcHttpClient::new(self.config.ca_file.as_deref()).map_err(|e| {
            OidcError::Discovery {
                provider: self.config.name.clone(),
                issuer: self.config.issuer.clone(),
                reason: e.to_string(),
            }
        })?;
        OidcClient::discover(self.config.clone(), http, now).await
    }
}

// === impl PinLogin ===

impl PinLogin {
    /// Mails `pin` in the background, so the answer takes as long whether or not a PIN was
    /// sent; a failure is logged (the person can ask again).
    pub(crate) fn send(&self, pin: portless_access::email_pin::IssuedPin) {
        let mailer = self.mailer.clone();
        let valid_for = self.book.policy().lifetime;
        self.tasks.spawn(async move {
            match mailer.send_pin(&pin, valid_for).await {
                Ok(()) => info!(to = %pin.address().as_str(), "email PIN sent"),
                Err(e) => warn!(to = %pin.address().as_str(), error = %e, "email PIN not sent"),
            }
        });
    }
}
