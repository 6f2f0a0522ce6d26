//! Origin health: whether requests should go to an origin at all.
//!
//! A rule tracks the health of its origins when it has an `originRequest.healthCheck` block
//! or lists several origins. Two signals feed one state per origin ([`Health`]):
//!
//! * passive: a real request that could not connect, or whose connection was reset, is a
//!   failure; any answer resets the count;
//! * active: every `interval`, [`run_checks`] probes each origin (an HTTP `GET path`, or a
//!   TCP connect for TCP origins) within `timeout`.
//!
//! `unhealthyThreshold` consecutive failures mark an origin down: requests skip it, and a
//! rule whose origins are all down answers `origin_down` at once instead of waiting for a
//! connect timeout. Only active checks bring an origin back (`healthyThreshold` passes in a
//! row): nothing is sent to a down origin, so real requests cannot.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use portless_ingress::HealthCheck;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

// === Health ===

/// One origin's health state, shared by the requests and the checker.
pub(crate) struct Health {
    /// The origin as written in the rule, for logs.
    origin: String,
    up: AtomicBool,
    /// Consecutive failures (checks or requests) since the last success.
    failures: AtomicU32,
    /// Consecutive passed checks while down.
    passes: AtomicU32,
    unhealthy_after: u32,
    healthy_after: u32,
    /// `portless_tunnel_origin_up{origin}`: 1 up, 0 down.
    gauge: Gauge,
}

impl Health {
    /// A tracked origin, up until proven otherwise.
    pub(crate) fn new(origin: String, check: &HealthCheck, gauge: Gauge) -> Self {
        gauge.set(1);
        Self {
            origin,
            up: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            passes: AtomicU32::new(0),
            unhealthy_after: check.unhealthy_threshold.get(),
            healthy_after: check.healthy_threshold.get(),
            gauge,
        }
    }

    /// Whether requests may go to this origin.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// A failed check, or a request that could not connect or was reset.
    pub(crate) fn failed(&self, why: &str) {
        self.passes.store(0, Ordering::Release);
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if failures >= self.unhealthy_after && self.up.swap(false, Ordering::AcqRel) {
            self.gauge.set(0);
            warn!(origin = %self.origin, failures, reason = why, "origin marked down");
        }
    }

    /// A real request got an answer: the failure streak is over. A down origin stays down
    /// until checks pass (a request that started before it went down proves little).
    pub(crate) fn answered(&self) {
        self.failures.store(0, Ordering::Release);
    }

    /// A passed check.
    pub(crate) fn passed(&self) {
        self.failures.store(0, Ordering::Release);
        if self.is_up() {
            return;
        }
        let passes = self.passes.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        if passes >= self.healthy_after && !self.up.swap(true, Ordering::AcqRel) {
            self.passes.store(0, Ordering::Release);
            self.gauge.set(1);
            info!(origin = %self.origin, "origin marked up again");
        }
    }
}

// === active checks ===

/// Something the checker can probe: one origin.
pub(crate) trait Probe: Send + Sync + 'static {
    /// Whether the origin answers a check as `check` wants it to.
    fn probe(&self, check: &HealthCheck) -> impl Future<Output = Result<(), String>> + Send;

    /// The origin's health state.
    fn health(&self) -> Option<&Health>;
}

/// Probes every origin of one rule every `check.interval` until `stop` (the rule set was
/// replaced) or `hard` (the connector stops) fires. The first round runs at once, so an
/// origin that is already down is found within one timeout.
pub(crate) async fn run_checks<P: Probe>(
    origins: Arc<[P]>,
    check: HealthCheck,
    stop: CancellationToken,
    hard: CancellationToken,
) {
    loop {
        for origin in origins.iter() {
            let Some(health) = origin.health() else {
                continue;
            };
            let outcome = tokio::select! {
                outcome = tokio::time::timeout(check.timeout, origin.probe(&check)) => outcome,
                () = stop.cancelled() => return,
                () = hard.cancelled() => return,
            };
            match outcome {
                Ok(Ok(())) => health.passed(),
                Ok(Err(why)) => health.failed(&why),
                Err(_) => health.failed("health check timed out"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(check.interval) => {}
            () = stop.cancelled() => return,
            () = hard.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;

    fn check(unhealthy: u32, healthy: u32) -> HealthCheck {
        let mut check = HealthCheck::default();
        check.unhealthy_threshold = unhealthy.try_into().unwrap();
        check.healthy_threshold = healthy.try_into().unwrap();
        check.interval = Duration::from_secs(1);
        check.timeout = Duration::from_millis(100);
        check
    }

    #[test]
    fn thresholds_decide_when_an_origin_goes_down_and_comes_back() {
        let gauge = Gauge::default();
        let health = Health::new("http://a".into(), &check(3, 2), gauge.clone());
        assert!(health.is_up());
        assert_eq!(gauge.get(), 1);
        health.failed("refused");
        health.failed("refused");
        health.answered();
        health.failed("refused");
        health.failed("refused");
        assert!(health.is_up(), "an answer breaks the streak");
        health.failed("refused");
        assert!(!health.is_up());
        assert_eq!(gauge.get(), 0);
        health.answered();
        assert!(!health.is_up(), "only checks bring an origin back");
        health.passed();
        health.failed("refused");
        health.passed();
        assert!(!health.is_up(), "the passes must be consecutive");
        health.passed();
        assert!(health.is_up());
        assert_eq!(gauge.get(), 1);
    }

    /// A probe whose answer the test sets.
    struct Switch {
        healthy: AtomicBool,
        health: Health,
    }

    impl Probe for Switch {
        async fn probe(&self, _check: &HealthCheck) -> Result<(), String> {
            if self.healthy.load(Ordering::Acquire) {
                Ok(())
            } else {
                Err("switched off".into())
            }
        }

        fn health(&self) -> Option<&Health> {
            Some(&self.health)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn checks_run_every_interval_until_stopped() {
        let check = check(2, 2);
        let origins: Arc<[Switch]> = Arc::from(vec![Switch {
            healthy: AtomicBool::new(false),
            health: Health::new("tcp://a:1".into(), &check, Gauge::default()),
        }]);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_checks(
            origins.clone(),
            check,
            stop.clone(),
            CancellationToken::new(),
        ));
        // Rounds at 0 s and 1 s: two failures.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!origins[0].health.is_up());
        origins[0].healthy.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!origins[0].health.is_up(), "one pass is not enough");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(origins[0].health.is_up());
        stop.cancel();
        task.await.unwrap();
    }
}
