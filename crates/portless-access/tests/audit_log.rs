//! The audit log: the writer task, the store copy, the bounded queue and the metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, UNIX_EPOCH};

use portless_access::audit::{AuditEvent, AuditKind, AuditLog, AuditResult, LoginStep};
use portless_store::Store;
use prometheus_client::registry::Registry;

fn decision(i: u64, result: AuditResult) -> AuditEvent {
    AuditEvent {
        at: UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + i),
        kind: AuditKind::AccessDecision,
        who: Some("alice".into()),
        what: format!("GET https://app.example.com/{i}"),
        rule: Some(format!("rule #{i}")),
        result,
        client: IpAddr::V6(Ipv6Addr::LOCALHOST),
        request_id: format!("req-{i}"),
        detail: None,
    }
}

fn login(step: LoginStep, result: AuditResult) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::Login(step),
        what: step.what().into(),
        rule: None,
        result,
        ..decision(0, result)
    }
}

fn metrics_text(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[tokio::test]
async fn the_writer_stores_every_event_in_order_and_flushes_on_shutdown() {
    let store = Store::open_in_memory().await.unwrap();
    let mut registry = Registry::default();
    let log = AuditLog::new(Some(store.clone()), &mut registry);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(log.writer(async move {
        let _ = stopped.await;
    }));

    for i in 0..600 {
        log.record(decision(i, AuditResult::Allow));
    }
    stop.send(()).unwrap();
    writer.await.unwrap();

    let stored = store.recent_audit_events(1_000).await.unwrap();
    assert_eq!(stored.len(), 600);
    for (i, row) in stored.iter().enumerate() {
        assert_eq!(
            row.event,
            decision(i as u64, AuditResult::Allow).to_record()
        );
    }
    assert_eq!(stored[7].event.what, "GET https://app.example.com/7");
    assert_eq!(stored[7].event.client, "::1");
    assert_eq!(stored[7].event.kind, "access_decision");
    assert!(metrics_text(&registry).contains("portless_audit_events_dropped_total 0"));
}

#[tokio::test]
async fn events_recorded_after_shutdown_are_counted_as_dropped() {
    let store = Store::open_in_memory().await.unwrap();
    let mut registry = Registry::default();
    let log = AuditLog::new(Some(store.clone()), &mut registry);
    log.record(decision(1, AuditResult::Deny));
    // Shutdown already requested: the writer writes what is queued and returns.
    log.writer(async {}).await;
    log.record(decision(2, AuditResult::Deny));

    let stored = store.recent_audit_events(10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event.result, "deny");
    assert!(metrics_text(&registry).contains("portless_audit_events_dropped_total 1"));
}

#[tokio::test]
async fn a_full_queue_drops_store_copies_without_blocking() {
    let store = Store::open_in_memory().await.unwrap();
    let mut registry = Registry::default();
    let log = AuditLog::with_capacity(Some(store.clone()), &mut registry, 3);
    // No writer runs yet: `record` is synchronous, so returning at all proves it did not wait.
    for i in 0..10 {
        log.record(decision(i, AuditResult::Allow));
    }
    let text = metrics_text(&registry);
    assert!(
        text.contains("portless_audit_events_dropped_total 7"),
        "{text}"
    );
    // Every event was still counted as a decision.
    assert!(
        text.contains("portless_access_decisions_total{result=\"allow\"} 10"),
        "{text}"
    );

    // The queued ones still reach the store.
    log.writer(async {}).await;
    let ids: Vec<String> = store
        .recent_audit_events(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.request_id)
        .collect();
    assert_eq!(ids, ["req-0", "req-1", "req-2"]);
}

#[tokio::test]
async fn the_writer_ends_when_every_handle_is_gone() {
    let store = Store::open_in_memory().await.unwrap();
    let mut registry = Registry::default();
    let log = AuditLog::new(Some(store.clone()), &mut registry);
    let writer = tokio::spawn(log.writer(std::future::pending()));
    let clone = log.clone();
    clone.record(decision(1, AuditResult::Bypass));
    drop(clone);
    log.record(decision(2, AuditResult::Bypass));
    drop(log);
    writer.await.unwrap();
    assert_eq!(store.recent_audit_events(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn only_the_first_writer_gets_the_queue() {
    let store = Store::open_in_memory().await.unwrap();
    let mut registry = Registry::default();
    let log = AuditLog::new(Some(store.clone()), &mut registry);
    let first = log.writer(std::future::pending());
    // The second returns at once even though its shutdown never comes.
    log.writer(std::future::pending()).await;
    log.record(decision(1, AuditResult::Allow));
    drop(log);
    first.await;
    assert_eq!(store.recent_audit_events(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_store_events_are_logged_and_counted_only() {
    let mut registry = Registry::default();
    let log = AuditLog::with_capacity(None, &mut registry, 1);
    for _ in 0..5 {
        log.record(login(LoginStep::Password, AuditResult::Failure));
    }
    log.writer(std::future::pending()).await;
    let text = metrics_text(&registry);
    assert!(
        text.contains("portless_audit_events_dropped_total 0"),
        "{text}"
    );
    assert!(
        text.contains("portless_login_attempts_total{step=\"password\",result=\"failure\"} 5"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_decisions_by_result_and_logins_by_step_and_result() {
    let mut registry = Registry::default();
    let log = AuditLog::new(None, &mut registry);
    log.record(decision(1, AuditResult::Allow));
    log.record(decision(2, AuditResult::Deny));
    log.record(decision(3, AuditResult::Deny));
    log.record(decision(4, AuditResult::LoginRequired));
    log.record(login(LoginStep::Password, AuditResult::Success));
    log.record(login(LoginStep::Totp, AuditResult::Failure));
    log.record(login(LoginStep::ServiceToken, AuditResult::Banned));

    let text = metrics_text(&registry);
    for line in [
        "# TYPE portless_access_decisions counter",
        "portless_access_decisions_total{result=\"allow\"} 1",
        "portless_access_decisions_total{result=\"deny\"} 2",
        "portless_access_decisions_total{result=\"login_required\"} 1",
        "# TYPE portless_login_attempts counter",
        "portless_login_attempts_total{step=\"password\",result=\"success\"} 1",
        "portless_login_attempts_total{step=\"totp\",result=\"failure\"} 1",
        "portless_login_attempts_total{step=\"service_token\",result=\"banned\"} 1",
        "portless_audit_events_dropped_total 0",
        "portless_audit_store_errors_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn login_events_are_stored_with_their_step() {
    let store = Store::open_in_memory().await.unwrap();
    let mut registry = Registry::default();
    let log = AuditLog::new(Some(store.clone()), &mut registry);
    let mut event = login(LoginStep::ServiceToken, AuditResult::Failure);
    event.who = None;
    event.detail = Some("wrong_secret".into());
    log.record(event);
    log.record(login(LoginStep::Logout, AuditResult::Success));
    log.writer(async {}).await;
    let stored = store.recent_audit_events(10).await.unwrap();
    let token = &stored[0].event;
    assert_eq!(
        (
            token.kind.as_str(),
            token.what.as_str(),
            token.result.as_str()
        ),
        ("login", "token", "failure")
    );
    assert_eq!(token.who, None);
    assert_eq!(token.rule, None);
    assert_eq!(token.detail.as_deref(), Some("wrong_secret"));
    assert_eq!(stored[1].event.what, "logout");
}
