//! The audit log: one structured event per access decision and per login step.
//!
//! Each event goes to two places. The log line is written at once, on the request's own task,
//! so it is never lost (target `portless::audit`, fields `who`, `what`, `rule`, `result`,
//! `client`, `request_id`). The store copy, which an operator can query later, is queued on a
//! bounded channel and written in batches by a writer task the caller spawns and owns
//! ([`AuditLog::writer`]): a slow or locked database must never slow down or block a request,
//! so when the queue is full the store copy is dropped, counted in
//! `portless_audit_events_dropped_total`, and a warning is logged at most once a minute.
//!
//! Metrics: `portless_access_decisions_total{result}`, `portless_login_attempts_total{step,result}`,
//! `portless_audit_events_dropped_total`, `portless_audit_store_errors_total`.
//!
//! Events never carry secrets: `what` is the method and URL without its query (which can hold
//! one-time codes), and `detail` is a short reason such as `wrong_secret`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use portless_store::{NewAuditEvent, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::AccessRequest;

/// Events queued for the store at most; past this the store copies are dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
/// Events written per transaction at most.
const BATCH_SIZE: usize = 256;
/// Seconds between two "queue full" warnings.
const DROP_WARNING_INTERVAL_SECS: i64 = 60;

// === events ===

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: SystemTime,
    /// An access decision or a login step.
    pub kind: AuditKind,
    /// The user or service token name, if known.
    pub who: Option<String>,
    /// What was asked: `GET https://app.example.com/path` (see [`AuditEvent::what_of`]), or for a
    /// login step its [`LoginStep::what`] (`login:password`, `logout`...).
    pub what: String,
    /// The rule that decided (`rule #3`, `default`), for access decisions.
    pub rule: Option<String>,
    /// The outcome.
    pub result: AuditResult,
    /// The client's address.
    pub client: IpAddr,
    /// The request id, to find the matching access log line.
    pub request_id: String,
    /// A short extra reason, e.g. a [`TokenRefusal`](crate::service_token::TokenRefusal)'s
    /// `as_str()`. Never a secret.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// `what` for a request: the method and the canonical URL without its query (a query can
    /// carry one-time codes or tokens, which have no place in a log).
    pub fn what_of(request: &AccessRequest<'_>) -> String {
        format!(
            "{} https://{}{}",
            request.method, request.host, request.path
        )
    }

    /// The row the store keeps.
    pub fn to_record(&self) -> NewAuditEvent {
        NewAuditEvent {
            at_unix_ms: unix_ms(self.at),
            kind: self.kind.as_str().to_owned(),
            who: self.who.clone(),
            what: self.what.clone(),
            rule: self.rule.clone(),
            result: self.result.as_str().to_owned(),
            client: self.client.to_string(),
            request_id: self.request_id.clone(),
            detail: self.detail.clone(),
        }
    }
}

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditKind {
    /// The policy judged a request (integrated path or forward-auth).
    AccessDecision,
    /// A login step, a logout, or a service token presented.
    Login(LoginStep),
}

impl AuditKind {
    /// `access_decision` or `login`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDecision => "access_decision",
            Self::Login(_) => "login",
        }
    }
}

/// Which login step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoginStep {
    /// The first factor: username and password.
    Password,
    /// The second factor: a TOTP code.
    Totp,
    /// Enrolling a TOTP secret.
    TotpEnrolment,
    /// Exchanging a one-time code for an application cookie.
    CodeExchange,
    /// Logging out.
    Logout,
    /// A service token presented.
    ServiceToken,
    /// A login through an upstream OpenID provider.
    Oidc,
    /// An email PIN asked for (the result says whether one was sent).
    EmailPinRequest,
    /// An email PIN typed in.
    EmailPin,
    /// The second factor: a passkey.
    Passkey,
    /// A passwordless login with a passkey (two factors when the user was verified).
    PasskeyLogin,
    /// Registering a passkey.
    PasskeyRegistration,
    /// Removing a passkey.
    PasskeyRemoval,
    /// A token issued to the access client (`portless access login`).
    CliToken,
}

impl LoginStep {
    /// The `step` metric label: `password`, `totp`, `totp_enrolment`, `code_exchange`,
    /// `logout`, `service_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::TotpEnrolment => "totp_enrolment",
            Self::CodeExchange => "code_exchange",
            Self::Logout => "logout",
            Self::ServiceToken => "service_token",
            Self::Oidc => "oidc",
            Self::EmailPinRequest => "email_pin_request",
            Self::EmailPin => "email_pin",
            Self::Passkey => "passkey",
            Self::PasskeyLogin => "passkey_login",
            Self::PasskeyRegistration => "passkey_registration",
            Self::PasskeyRemoval => "passkey_removal",
            Self::CliToken => "cli_token",
        }
    }

    /// The event's `what`: `login:password`, `login:totp`, `login:totp_enrolment`,
    /// `login:code_exchange`, `logout`, `token`.
    pub fn what(self) -> &'static str {
        match self {
            Self::Password => "login:password",
            Self::Totp => "login:totp",
            Self::TotpEnrolment => "login:totp_enrolment",
            Self::CodeExchange => "login:code_exchange",
            Self::Logout => "logout",
            Self::ServiceToken => "token",
            Self::Oidc => "login:oidc",
            Self::EmailPinRequest => "login:email_pin_request",
            Self::EmailPin => "login:email_pin",
            Self::Passkey => "login:passkey",
            Self::PasskeyLogin => "login:passkey_login",
            Self::PasskeyRegistration => "login:passkey_registration",
            Self::PasskeyRemoval => "login:passkey_removal",
            Self::CliToken => "login:cli_token",
        }
    }
}

/// An event's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditResult {
    /// Access allowed to a proven identity.
    Allow,
    /// Access allowed by a `bypass` rule, no identity needed.
    Bypass,
    /// Access denied.
    Deny,
    /// The client must log in first.
    LoginRequired,
    /// The client must complete a second factor first.
    SecondFactorRequired,
    /// The request was malformed (answered 400).
    BadRequest,
    /// A login step succeeded.
    Success,
    /// A login step failed (wrong password, code, secret...).
    Failure,
    /// A login step was refused because the user or client is banned.
    Banned,
}

impl AuditResult {
    /// The stored value and metric label: `allow`, `bypass`, `deny`, `login_required`,
    /// `second_factor_required`, `bad_request`, `success`, `failure`, `banned`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Bypass => "bypass",
            Self::Deny => "deny",
            Self::LoginRequired => "login_required",
            Self::SecondFactorRequired => "second_factor_required",
            Self::BadRequest => "bad_request",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Banned => "banned",
        }
    }
}

// === metrics ===

/// Label: an access decision's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Labels: a login step and its result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabel {
    step: &'static str,
    result: &'static str,
}

#[derive(Clone, Default)]
struct AuditMetrics {
    decisions: Family<ResultLabel, Counter>,
    logins: Family<LoginLabel, Counter>,
    dropped: Counter,
    store_errors: Counter,
}

impl AuditMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let portless = registry.sub_registry_with_prefix("portless");
        portless.register(
            "access_decisions",
            "Access decisions, by result",
            metrics.decisions.clone(),
        );
        portless.register(
            "login_attempts",
            "Login steps, by step and result",
            metrics.logins.clone(),
        );
        portless.register(
            "audit_events_dropped",
            "Audit events not written to the store because its queue was full (they are still logged)",
            metrics.dropped.clone(),
        );
        portless.register(
            "audit_store_errors",
            "Batches of audit events the store failed to write",
            metrics.store_errors.clone(),
        );
        metrics
    }

    fn count(&self, event: &AuditEvent) {
        let result = event.result.as_str();
        match event.kind {
            AuditKind::AccessDecision => {
                self.decisions.get_or_create(&ResultLabel { result }).inc();
            }
            AuditKind::Login(step) => {
                let step = step.as_str();
                self.logins
                    .get_or_create(&LoginLabel { step, result })
                    .inc();
            }
        }
    }
}

// === AuditLog ===

/// The audit log: cheap to clone, shared by every request.
///
/// [`record`](Self::record) never waits. Nothing runs in the background until the caller
/// spawns the future [`writer`](Self::writer) returns.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` without a store: events are only logged and counted.
    sender: Option<mpsc::Sender<AuditEvent>>,
    /// Taken by the first [`AuditLog::writer`].
    receiver: Mutex<Option<mpsc::Receiver<AuditEvent>>>,
    store: Option<Store>,
    metrics: AuditMetrics,
    drop_warnings: WarningLimiter,
}

impl AuditLog {
    /// An audit log writing to `store` (or only to the log, if `None`), with its metrics
    /// registered in `registry` and a queue of [`DEFAULT_QUEUE_CAPACITY`] events.
    pub fn new(store: Option<Store>, registry: &mut Registry) -> Self {
        Self::with_capacity(store, registry, DEFAULT_QUEUE_CAPACITY)
    }

    /// Like [`new`](Self::new) with a queue of `capacity` events (at least 1).
    pub fn with_capacity(store: Option<Store>, registry: &mut Registry, capacity: usize) -> Self {
        let (sender, receiver) = match store {
            Some(_) => {
                let (tx, rx) = mpsc::channel(capacity.max(1));
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        Self {
            inner: Arc::new(Inner {
                sender,
                receiver: Mutex::new(receiver),
                store,
                metrics: AuditMetrics::register(registry),
                drop_warnings: WarningLimiter::new(DROP_WARNING_INTERVAL_SECS),
            }),
        }
    }

    /// Records `event`: logs it, counts it, and queues it for the store without waiting. If the
    /// queue is full (or the writer has stopped) the store copy is dropped and counted.
    pub fn record(&self, event: AuditEvent) {
        log_event(&event);
        self.inner.metrics.count(&event);
        let Some(sender) = &self.inner.sender else {
            return;
        };
        match sender.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => self.dropped(&event, "the queue is full"),
            Err(TrySendError::Closed(event)) => self.dropped(&event, "the writer has stopped"),
        }
    }

    fn dropped(&self, event: &AuditEvent, why: &'static str) {
        let metrics = &self.inner.metrics;
        metrics.dropped.inc();
        if self.inner.drop_warnings.should_warn(unix_secs(event.at)) {
            tracing::warn!(
                dropped_total = metrics.dropped.get(),
                why,
                "audit events are being dropped from the store (they are still in this log): \
                 the store is too slow or unreachable; check its disk and the \
                 portless_audit_store_errors_total metric"
            );
        }
    }

    /// The task that writes queued events to the store, in batches, until `shutdown`
    /// completes; it then writes what is still queued and returns. The caller spawns and owns it.
    ///
    /// Only the first call gets the queue; later calls (and a log without a store) return a
    /// future that completes at once.
    pub fn writer<F>(&self, shutdown: F) -> impl Future<Output = ()> + Send + 'static
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let receiver = self
            .inner
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let store = self.inner.store.clone();
        let metrics = self.inner.metrics.clone();
        async move {
            let (Some(receiver), Some(store)) = (receiver, store) else {
                tracing::debug!("audit writer: no store, or the writer already runs");
                return;
            };
            Writer {
                receiver,
                store,
                metrics,
            }
            .run(shutdown)
            .await;
        }
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("store", &self.inner.store.is_some())
            .finish_non_exhaustive()
    }
}

/// The one log line per event.
fn log_event(event: &AuditEvent) {
    let step = match event.kind {
        AuditKind::Login(step) => Some(step.as_str()),
        AuditKind::AccessDecision => None,
    };
    tracing::info!(
        target: "portless::audit",
        kind = event.kind.as_str(),
        step,
        who = event.who.as_deref(),
        what = %event.what,
        rule = event.rule.as_deref(),
        result = event.result.as_str(),
        client = %event.client,
        request_id = %event.request_id,
        detail = event.detail.as_deref(),
        "audit"
    );
}

// === Writer ===

/// Drains the queue into the store.
struct Writer {
    receiver: mpsc::Receiver<AuditEvent>,
    store: Store,
    metrics: AuditMetrics,
}

impl Writer {
    async fn run<F: Future<Output = ()>>(mut self, shutdown: F) {
        let mut shutdown = pin!(shutdown);
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        loop {
            tokio::select! {
                // Shutdown first: under a steady stream of events the queue is never empty, and
                // the drain below writes everything anyway.
                biased;
                () = &mut shutdown => break,
                received = self.receiver.recv_many(&mut batch, BATCH_SIZE) => {
                    if received == 0 {
                        // Every AuditLog handle is gone: nothing more can arrive.
                        return;
                    }
                    self.write(&mut batch).await;
                }
            }
        }
        // Refuse new events (they are counted as dropped) and write what is queued.
        self.receiver.close();
        while self.receiver.recv_many(&mut batch, BATCH_SIZE).await > 0 {
            self.write(&mut batch).await;
        }
    }

    /// Writes `batch` in one transaction and empties it.
    async fn write(&self, batch: &mut Vec<AuditEvent>) {
        let rows: Vec<NewAuditEvent> = batch.iter().map(AuditEvent::to_record).collect();
        if let Err(error) = self.store.record_audit_events(&rows).await {
            self.metrics.store_errors.inc();
            tracing::warn!(
                %error,
                lost = rows.len(),
                "cannot write audit events to the store (they are in this log)"
            );
        }
        batch.clear();
    }
}

// === WarningLimiter ===

/// Lets a warning through at most once per interval (seconds of the events' own clock, so it
/// is deterministic in tests). A clock that jumps back lets the next warning through.
struct WarningLimiter {
    interval_secs: i64,
    last: AtomicI64,
}

impl WarningLimiter {
    fn new(interval_secs: i64) -> Self {
        Self {
            interval_secs,
            last: AtomicI64::new(i64::MIN),
        }
    }

    fn should_warn(&self, now_secs: i64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        let due = now_secs.saturating_sub(last) >= self.interval_secs || now_secs < last;
        // Several requests may see the queue full at once: only one of them warns.
        due && self
            .last
            .compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn unix_secs(t: SystemTime) -> i64 {
    unix_ms(t) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn warnings_are_limited_to_one_a_minute() {
        let limiter = WarningLimiter::new(60);
        assert!(limiter.should_warn(1_000));
        assert!(!limiter.should_warn(1_000));
        assert!(!limiter.should_warn(1_059));
        assert!(limiter.should_warn(1_060));
        assert!(!limiter.should_warn(1_061));
        // The clock jumped back: do not stay silent until it catches up.
        assert!(limiter.should_warn(10));
    }

    #[test]
    fn records_carry_the_stable_names() {
        let event = AuditEvent {
            at: UNIX_EPOCH + Duration::from_millis(1_234),
            kind: AuditKind::Login(LoginStep::Totp),
            who: Some("alice".into()),
            what: LoginStep::Totp.what().into(),
            rule: None,
            result: AuditResult::SecondFactorRequired,
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            request_id: "r1".into(),
            detail: None,
        };
        let record = event.to_record();
        assert_eq!(record.at_unix_ms, 1_234);
        assert_eq!(record.kind, "login");
        assert_eq!(record.what, "login:totp");
        assert_eq!(record.result, "second_factor_required");
        assert_eq!(record.client, "192.0.2.7");
    }

    #[test]
    fn what_leaves_out_the_query() {
        let request = AccessRequest {
            host: "app.example.com",
            path: "/a/b",
            query: Some("code=secret"),
            method: "POST",
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            identity: None,
        };
        assert_eq!(
            AuditEvent::what_of(&request),
            "POST https://app.example.com/a/b"
        );
    }
}
