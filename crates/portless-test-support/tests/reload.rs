//! Config changes without restarts, in process: local file reloads (poll and SIGHUP path) and
//! remotely managed configs pushed by the edge.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use portless_connector::{
    ConfigReloader, ConfigSource, ProtocolChoice, ReloadError, ReloadOutcome, RemoteConfigError,
    Rules,
};
use portless_ingress::TunnelConfig;
use portless_test_support::{
    LogCapture, TestEdge, TestOrigin, capture_logs, pending_rules, wait_for,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(15);

/// A config routing `host` to `origin`, then a 404 catch-all.
fn one_rule(host: &str, origin: &TestOrigin) -> String {
    format!(
        "ingress:\n  - hostname: {host}\n    service: {}\n  - service: http_status:404\n",
        origin.url()
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A config file and the reloader the CLI would build for it.
fn reloader_for(path: &Path, rules: &Rules) -> Arc<ConfigReloader> {
    let loaded = TunnelConfig::load(path).unwrap();
    Arc::new(ConfigReloader::new(path, rules.clone(), loaded.config))
}

fn config_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("config.yml");
    write(&path, text);
    path
}

#[tokio::test]
async fn a_reloaded_file_serves_new_requests_while_an_in_flight_request_keeps_the_old_rule() {
    let logs = capture_logs();
    let edge = TestEdge::start().await;
    let old = TestOrigin::start("old").await;
    let new = TestOrigin::start("new").await;
    let tunnel = edge.add_tunnel("app", &["app.test", "added.test"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &one_rule("app.test", &old));
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &std::fs::read_to_string(&path).unwrap(),
        )
        .await;
    let reloader = reloader_for(&path, connector.rules());
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    tasks.spawn(reloader.clone().watch(
        Duration::from_millis(100),
        Arc::new(Notify::new()),
        stop.clone(),
    ));

    let client = edge.client(false);
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.get("app.test", "/slow/1500").await })
    };
    wait_for("the slow request to reach the old origin", WAIT, || {
        old.requests() == 1
    })
    .await;

    write(
        &path,
        &format!(
            "ingress:\n  - hostname: app.test\n    service: {}\n  - hostname: added.test\n    service: hello_world\n  - service: http_status:404\n",
            new.url()
        ),
    );
    logs.wait_for("config reloaded", 1, WAIT).await;
    assert_eq!(logs.count("rules=3"), 1, "{}", logs.text());

    let (status, _, body) = client.get("app.test", "/hello").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello from new"[..])
    );
    let (status, _, _) = client.get("added.test", "/").await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"slow done"[..]));
    assert_eq!(
        old.requests(),
        1,
        "the in-flight request stayed on the old rule"
    );
    assert_eq!(
        connector.ready_connections(),
        2,
        "no connection was dropped"
    );

    // Polling an unchanged file does nothing more.
    assert!(matches!(reloader.poll().await, ReloadOutcome::Unchanged));
    assert_eq!(logs.count("config reloaded"), 1);
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

#[tokio::test]
async fn a_broken_file_is_refused_with_every_error_logged_and_the_old_rules_stay() {
    let logs = capture_logs();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("app").await;
    let tunnel = edge.add_tunnel("app", &["app.test"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(&dir, &one_rule("app.test", &origin));
    let connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &std::fs::read_to_string(&path).unwrap(),
        )
        .await;
    let reloader = reloader_for(&path, connector.rules());

    // Two mistakes: a service without a scheme, and no catch-all at the end.
    write(
        &path,
        "ingress:\n  - hostname: app.test\n    service: localhost:8000\n  - hostname: other.test\n    service: hello_world\n",
    );
    let ReloadOutcome::Refused(ReloadError::Invalid(errors)) = reloader.reload_now().await else {
        panic!("a broken file was applied");
    };
    assert_eq!(errors.len(), 2, "{errors}");
    let logged = logs.text();
    assert!(logged.contains("config reload refused"), "{logged}");
    for error in errors.iter() {
        let first_line = error.to_string().lines().next().unwrap().to_owned();
        assert!(
            logged.contains(&first_line),
            "{first_line:?} not in:\n{logged}"
        );
    }
    // Polls do not repeat the same refusal every second.
    assert!(matches!(reloader.poll().await, ReloadOutcome::Unchanged));
    assert_eq!(logs.count("config reload refused"), 1);

    let (status, _, body) = edge.client(false).get("app.test", "/hello").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello from app"[..])
    );

    // A fixed file applies; a changed restart-only key is reported, not applied.
    write(
        &path,
        &format!("protocol: http2\n{}", one_rule("app.test", &origin)),
    );
    let ReloadOutcome::Applied { needs_restart, .. } = reloader.reload_now().await else {
        panic!("the fixed file was not applied");
    };
    assert_eq!(needs_restart, ["protocol"]);
    assert_eq!(logs.count("apply after a restart"), 1, "{}", logs.text());
}

/// A tunnel served by a connector taking its rules from the edge, without a config file.
async fn remote_connector(
    edge: &TestEdge,
    host: &str,
) -> (
    portless_test_support::TestTunnel,
    portless_connector::ConnectorHandle,
) {
    let tunnel = edge.add_tunnel("remote", &[host]).await;
    let connector = edge
        .connect_with_source(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            pending_rules(),
            ConfigSource::Remote,
        )
        .await;
    (tunnel, connector)
}

async fn wait_applied(logs: &LogCapture, version: i64) {
    // The connector applies once; the edge hears it from each of the 2 connections.
    logs.wait_for(&format!("applied remote config version {version}"), 1, WAIT)
        .await;
    logs.wait_for(
        &format!("connector applied config version {version}"),
        2,
        WAIT,
    )
    .await;
}

#[tokio::test]
async fn remote_configs_apply_live_once_per_version_and_invalid_ones_are_refused() {
    let logs = capture_logs();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("app").await;
    let (tunnel, connector) = remote_connector(&edge, "remote.test").await;
    let client = edge.client(false);

    // Before any config: a clear refusal, not a hang or a bogus rule.
    let (status, headers, _) = client.get("remote.test", "/hello").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["portless-error"], "tunnel_down");
    assert!(
        logs.text().contains("no ingress rules yet"),
        "{}",
        logs.text()
    );

    let v1 = edge
        .push_config(&tunnel, &one_rule("remote.test", &origin))
        .await
        .unwrap();
    assert_eq!(v1, 1);
    wait_applied(&logs, 1).await;
    let (status, _, body) = client.get("remote.test", "/hello").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello from app"[..])
    );

    let v2 = edge
        .push_config(
            &tunnel,
            "ingress:\n  - hostname: remote.test\n    service: http_status:418\n  - service: http_status:404\n",
        )
        .await
        .unwrap();
    wait_applied(&logs, v2).await;
    let (status, _, _) = client.get("remote.test", "/hello").await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
    assert_eq!(logs.count("applied remote config version 1"), 1);
    assert_eq!(logs.count("applied remote config version 2"), 1);

    // The push path refuses invalid and oversized configs before storing anything.
    let invalid = "ingress:\n  - hostname: remote.test\n    service: localhost:80\n";
    let Err(RemoteConfigError::Invalid(errors)) = edge.push_config(&tunnel, invalid).await else {
        panic!("an invalid config was pushed");
    };
    assert_eq!(errors.len(), 2, "{errors}");
    let huge = format!(
        "{}#{}\n",
        one_rule("remote.test", &origin),
        "x".repeat(70_000)
    );
    assert!(matches!(
        edge.push_config(&tunnel, &huge).await,
        Err(RemoteConfigError::TooLarge { .. })
    ));
    assert_eq!(
        edge.store
            .tunnel_config(tunnel.id)
            .await
            .unwrap()
            .unwrap()
            .0,
        v2
    );

    // One that got into the store anyway is refused by the connector, which keeps its rules
    // and tells the edge why.
    let v3 = edge
        .store
        .set_tunnel_config(tunnel.id, invalid)
        .await
        .unwrap();
    logs.wait_for(&format!("remote config version {v3} refused"), 1, WAIT)
        .await;
    logs.wait_for(&format!("did not apply config version {v3}"), 2, WAIT)
        .await;
    assert_eq!(
        logs.count(&format!("remote config version {v3} refused")),
        1
    );
    let (status, _, _) = client.get("remote.test", "/hello").await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
    assert_eq!(connector.ready_connections(), 2);
}

#[tokio::test]
async fn a_local_connector_ignores_pushed_configs_and_says_so_once_per_version() {
    let logs = capture_logs();
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("local").await;
    let tunnel = edge.add_tunnel("local", &["local.test"]).await;
    let _connector = edge
        .connect(
            edge.connector_options(&tunnel, ProtocolChoice::Quic),
            &one_rule("local.test", &origin),
        )
        .await;
    let pushed = "ingress:\n  - service: http_status:418\n";
    for version in 1..=2 {
        let text = format!("{pushed}# push {version}\n");
        assert_eq!(edge.push_config(&tunnel, &text).await.unwrap(), version);
        logs.wait_for(&format!("did not apply config version {version}"), 2, WAIT)
            .await;
        let line = format!("remote config version {version} ignored (--config-source local)");
        assert_eq!(logs.count(&line), 1, "{}", logs.text());
    }
    let (status, _, body) = edge.client(false).get("local.test", "/hello").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello from local"[..])
    );
}

#[tokio::test]
async fn the_edge_sends_the_config_again_to_a_connector_that_reconnects() {
    let logs = capture_logs();
    let edge = TestEdge::start().await;
    let (tunnel, connector) = remote_connector(&edge, "again.test").await;
    edge.push_config(
        &tunnel,
        "ingress:\n  - hostname: again.test\n    service: http_status:418\n  - service: http_status:404\n",
    )
    .await
    .unwrap();
    wait_applied(&logs, 1).await;

    // The edge goes away; the config changes meanwhile; a new edge process on the same store
    // sends the current version when the connector registers again.
    let store = edge.store.clone();
    let restart = edge.stop_for_restart().await;
    wait_for("the connector to notice", WAIT, || {
        connector.ready_connections() == 0
    })
    .await;
    let v2 = store
        .set_tunnel_config(
            tunnel.id,
            "ingress:\n  - hostname: again.test\n    service: hello_world\n  - service: http_status:404\n",
        )
        .await
        .unwrap();
    let edge = TestEdge::start_with(restart).await;
    wait_for("re-registration", WAIT, || {
        connector.ready_connections() == 2
    })
    .await;
    wait_applied(&logs, v2).await;
    let (status, _, body) = edge.client(false).get("again.test", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.is_empty());
}
