//! Loading configs as a connector would, and what a user sees.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use http::StatusCode;
use portless_ingress::{
    ConfigErrorKind, EdgeIpVersion, LogFormat, LogLevel, Miss, Protocol, ProxyType, Service,
    TcpKind, TunnelConfig, TunnelRef,
};
use secrecy::ExposeSecret;

fn load(yaml: &str) -> TunnelConfig {
    match TunnelConfig::from_yaml_str(yaml, Path::new("config.yml")) {
        Ok(loaded) => {
            assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
            loaded.config
        }
        Err(errors) => panic!("{errors}"),
    }
}

fn refuse(yaml: &str) -> String {
    match TunnelConfig::from_yaml_str(yaml, Path::new("config.yml")) {
        Ok(_) => panic!("loaded but should be refused:\n{yaml}"),
        Err(errors) => errors.to_string(),
    }
}

fn corpus(name: &str) -> TunnelConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/valid")
        .join(name);
    TunnelConfig::load(&path).unwrap().config
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let config = load(
        "token: eyJhIjoiYWNjb3VudCIsInQiOiJ0dW5uZWwiLCJzIjoic2VjcmV0In0=\n\
         credentials-contents: '{\"AccountTag\":\"acc\",\"TunnelSecret\":\"c3VwZXJzZWNyZXQ=\",\"TunnelID\":\"x\"}'\n\
         ingress:\n  - service: http_status:404\n",
    );
    let shown = format!("{config:?}");
    assert!(!shown.contains("eyJhIjoiYWNjb3VudCIs"), "{shown}");
    assert!(!shown.contains("c3VwZXJzZWNyZXQ="), "{shown}");
    assert!(shown.contains("REDACTED"));
    // The connector can still read them.
    assert!(
        config
            .token
            .as_ref()
            .unwrap()
            .expose_secret()
            .starts_with("eyJh")
    );
    assert!(
        config
            .credentials_contents
            .unwrap()
            .expose_secret()
            .contains("TunnelSecret")
    );
}

#[test]
fn defaults_match_the_reference() {
    let config = load("ingress:\n  - service: hello_world\n");
    assert_eq!(config.protocol, Protocol::Auto);
    assert_eq!(config.ha_connections.get(), 4);
    assert_eq!(config.retries, 5);
    assert_eq!(config.grace_period.get(), Duration::from_secs(30));
    assert_eq!(config.edge_ip_version, EdgeIpVersion::Auto);
    assert_eq!(config.loglevel, LogLevel::Info);
    assert_eq!(config.output, LogFormat::Default);
    assert!(config.metrics.is_none() && config.edge.is_none() && config.tunnel.is_none());
    let origin = &config.origin_request;
    assert_eq!(origin.connect_timeout, Duration::from_secs(30));
    assert_eq!(origin.tls_timeout, Duration::from_secs(10));
    assert_eq!(origin.tcp_keep_alive, Duration::from_secs(30));
    assert_eq!(origin.keep_alive_connections, 100);
    assert_eq!(origin.keep_alive_timeout, Duration::from_secs(90));
    assert!(!origin.no_tls_verify && !origin.http2_origin && origin.access.is_none());
    assert_eq!(origin.proxy_type, ProxyType::None);
    let warp = &config.warp_routing;
    assert_eq!(warp.connect_timeout, Duration::from_secs(5));
    assert_eq!(warp.max_active_flows, None);
    assert_eq!(config.ingress.rules()[0].service(), &Service::HelloWorld);
}

#[test]
fn flag_style_keys_are_typed() {
    let config = corpus("flag-style-keys.yml");
    assert!(matches!(config.tunnel, Some(TunnelRef::Id(_))));
    assert_eq!(config.protocol, Protocol::Quic);
    assert!(config.post_quantum);
    assert_eq!(config.ha_connections.get(), 2);
    assert_eq!(config.retries, 8);
    assert_eq!(config.grace_period.get(), Duration::from_secs(60));
    assert_eq!(config.edge_ip_version, EdgeIpVersion::V6);
    assert_eq!(
        config.edge_bind_address,
        Some("192.0.2.10".parse().unwrap())
    );
    let metrics = config.metrics.unwrap();
    assert_eq!((metrics.host(), metrics.port()), ("localhost", 20241));
    assert!(config.no_autoupdate);
    assert_eq!(config.pidfile.unwrap(), Path::new("/run/cloudflared.pid"));
    assert_eq!(config.loglevel, LogLevel::Debug);
    assert_eq!(
        config.logfile.unwrap(),
        Path::new("/var/log/cloudflared.log")
    );
    assert_eq!(
        config.log_directory.unwrap(),
        Path::new("/var/log/cloudflared")
    );
    assert_eq!(config.output, LogFormat::Json);
    assert_eq!(config.label.as_deref(), Some("rack-3"));
    let tags: Vec<String> = config
        .tags
        .iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect();
    assert_eq!(tags, ["env=prod", "region=eu-west"]);
}

#[test]
fn tcp_protocol_means_the_tls_over_tcp_fallback_and_edge_is_ours() {
    let config = corpus("token-file-and-edge.yml");
    assert_eq!(config.protocol, Protocol::Http2);
    assert_eq!(
        config.token_file.unwrap(),
        Path::new("/etc/portless/tunnel.token")
    );
    assert_eq!(config.edge.unwrap().to_string(), "edge.example.net:7844");
    let alias = corpus("cred-file-alias.yml");
    assert_eq!(
        alias.credentials_file.unwrap(),
        Path::new("/etc/cloudflared/alias-demo.json")
    );
}

#[test]
fn rule_origin_request_is_merged_over_the_defaults() {
    let config = corpus("origin-request-overrides.yml");
    let rules = config.ingress.rules();
    let slow = rules[0].origin_request();
    assert_eq!(
        slow.connect_timeout,
        Duration::from_secs(120),
        "rule override"
    );
    assert_eq!(
        slow.keep_alive_timeout,
        Duration::from_secs(300),
        "rule override"
    );
    assert_eq!(
        slow.tls_timeout,
        Duration::from_secs(5),
        "top-level default"
    );
    assert_eq!(slow.keep_alive_connections, 50, "top-level default");
    assert!(slow.no_happy_eyeballs, "top-level default");
    let legacy = rules[1].origin_request();
    assert!(legacy.no_tls_verify);
    assert_eq!(legacy.connect_timeout, Duration::from_secs(10));
    assert_eq!(
        legacy.http_host_header.as_deref(),
        Some("legacy.corp.local")
    );
    let access = rules[2].origin_request().access.as_ref().unwrap();
    assert!(access.required);
    assert_eq!(access.team_name, "myteam");
    assert_eq!(access.aud_tags.len(), 1);
    // The catch-all gets the defaults and nothing else.
    assert!(!rules[3].origin_request().no_tls_verify);
    assert_eq!(
        config.origin_request.keep_alive_timeout,
        Duration::from_secs(90)
    );
}

#[test]
fn yaml_anchors_and_merge_keys_work() {
    let config = corpus("anchors-and-merge.yml");
    let rules = config.ingress.rules();
    for rule in &rules[..3] {
        assert!(rule.origin_request().no_tls_verify);
        assert_eq!(
            rule.origin_request().connect_timeout,
            Duration::from_secs(5)
        );
    }
    assert_eq!(
        rules[2].origin_request().origin_server_name.as_deref(),
        Some("c.internal")
    );
}

#[test]
fn services_of_every_kind() {
    let config = corpus("ssh-rdp-smb-tcp.yml");
    let shown: Vec<String> = config
        .ingress
        .rules()
        .iter()
        .map(|r| r.service().to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "ssh://localhost:22",
            "ssh://gitea:2222",
            "rdp://10.0.0.15:3389",
            "smb://nas.lan:445",
            "tcp://localhost:5432",
            "tcp://127.0.0.1:6379",
            "http_status:404",
        ]
    );
    assert!(matches!(
        config.ingress.rules()[2].service(),
        Service::Tcp {
            kind: TcpKind::Rdp,
            ..
        }
    ));
    let udp = corpus("udp-services.yml");
    let shown: Vec<String> = udp
        .ingress
        .rules()
        .iter()
        .map(|r| r.service().to_string())
        .collect();
    assert_eq!(
        shown,
        ["udp://10.0.0.20:27015", "udp://[::1]:53", "http_status:404"]
    );
    assert!(matches!(
        udp.ingress.rules()[0].service(),
        Service::Udp { .. }
    ));
    let sockets = corpus("unix-sockets.yml");
    assert!(matches!(
        sockets.ingress.rules()[1].service(),
        Service::Unix { tls: true, .. }
    ));
    let status = corpus("http-status-catch-all.yml");
    assert_eq!(
        status.ingress.rules()[2].service(),
        &Service::HttpStatus(StatusCode::IM_A_TEAPOT)
    );
    let socks = corpus("bastion-and-socks.yml");
    let rules = socks.ingress.rules();
    assert_eq!(rules[0].service(), &Service::Bastion);
    assert_eq!(rules[1].service(), &Service::SocksProxy);
    let ip_rules = &rules[1].origin_request().ip_rules;
    assert!(ip_rules[0].matches("10.1.2.3".parse().unwrap(), 443));
    assert!(!ip_rules[0].matches("10.1.2.3".parse().unwrap(), 25));
    assert!(!ip_rules[1].allow);
}

#[test]
fn durations_accept_bare_seconds() {
    let config = corpus("durations-as-numbers.yml");
    assert_eq!(config.grace_period.get(), Duration::from_secs(45));
    assert_eq!(
        config.origin_request.connect_timeout,
        Duration::from_secs(15)
    );
    assert_eq!(
        config.origin_request.keep_alive_timeout,
        Duration::from_secs(120)
    );
    assert_eq!(
        config.origin_request.tls_timeout,
        Duration::from_millis(1500)
    );
}

#[test]
fn all_errors_are_reported_at_once_in_file_order() {
    let shown = refuse(
        "ingress:\n  - hostname: a.example.com:8080\n    service: localhost:8000\n  \
         - hostname: https://b.example.com\n    service: http://localhost:1\n",
    );
    assert_eq!(
        shown,
        "config.yml:2:15: error: Hostname cannot contain a port\n  \
         fix: remove \":8080\" from the hostname; ports belong in the service URL\n\
         config.yml:3:14: error: localhost:8000 is an invalid address, please make sure it has a scheme and a hostname\n  \
         fix: add the scheme, e.g. `service: http://localhost:8000`\n\
         config.yml:4:5: error: The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)\n  \
         fix: add `- service: http_status:404` (or another service without hostname and path) as the last rule\n\
         config.yml:4:15: error: Hostname cannot contain a scheme (\"https://\")\n  \
         fix: remove the scheme: write `hostname: b.example.com`; `https://` belongs in the service URL"
    );
}

#[test]
fn error_kinds_are_typed_for_programs() {
    let errors = TunnelConfig::from_yaml_str(
        "ingress:\n  - path: '('\n    service: hello_world\n",
        Path::new("c.yml"),
    )
    .unwrap_err();
    let kinds: Vec<&ConfigErrorKind> = errors.iter().map(|e| e.kind()).collect();
    assert!(matches!(kinds[0], ConfigErrorKind::LastRuleNotCatchAll));
    assert!(matches!(
        kinds[1],
        ConfigErrorKind::BadRegex { rule: 1, .. }
    ));
}

#[test]
fn a_missing_file_names_the_path() {
    let err = TunnelConfig::load(Path::new("/nonexistent/portless/config.yml")).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(
            "/nonexistent/portless/config.yml: error: could not read the config file:"
        ),
        "{shown}"
    );
    assert!(matches!(
        err.iter().next().unwrap().kind(),
        ConfigErrorKind::Read { .. }
    ));
}

#[test]
fn load_reads_a_file_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "tunnel: disk\ningress:\n  - service: http://localhost:80\n",
    )
    .unwrap();
    let loaded = TunnelConfig::load(&path).unwrap();
    assert_eq!(loaded.config.source, path);
    assert_eq!(loaded.config.tunnel, Some(TunnelRef::Name("disk".into())));
}

#[test]
fn explain_is_ready_for_the_ingress_rule_command() {
    let config = corpus("path-routing.yml");
    let explained = config.ingress.explain("shop.example.com", "/checkout");
    assert_eq!(explained.matched.index, 2);
    let lines: Vec<String> = explained
        .skipped
        .iter()
        .map(|s| {
            let why = match s.reason {
                Miss::Hostname => "hostname differs",
                Miss::Path => "path does not match",
            };
            format!(
                "rule #{} ({}): {why}",
                s.index + 1,
                s.rule.path().map_or("", |p| p.as_str())
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "rule #1 (^/api/): path does not match",
            "rule #2 (\\.(css|js|png|svg|woff2)$): path does not match",
        ]
    );
}

#[test]
fn scalar_or_list_keys_accept_both_forms() {
    let config = load(
        "tag: env=prod\nedge-ip-version: 4\ningress:\n  - service: http://localhost:1\n    \
         originRequest:\n      access: {required: true, teamName: ops, audTag: abc123}\n",
    );
    assert_eq!(config.tags.len(), 1);
    assert_eq!(config.edge_ip_version, EdgeIpVersion::V4);
    let access = config.ingress.rules()[0]
        .origin_request()
        .access
        .clone()
        .unwrap();
    assert_eq!(access.aud_tags, ["abc123"]);
}

#[test]
fn multi_line_messages_are_indented_under_the_error() {
    let shown = refuse(
        "ingress:\n  - path: '(unclosed'\n    service: hello_world\n  - service: hello_world\n",
    );
    let (first, rest) = shown.split_once('\n').unwrap();
    assert_eq!(
        first,
        "config.yml:2:11: error: Rule #1 has an invalid regex: regex parse error:"
    );
    let (diagram, fix) = rest.split_once("\n  fix: ").unwrap();
    assert!(diagram.lines().all(|l| l.starts_with("    ")), "{diagram}");
    assert!(fix.starts_with("fix the regular expression"));
}
