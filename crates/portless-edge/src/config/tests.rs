#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use super::*;

fn load(src: &str) -> Result<EdgeConfig, EdgeConfigErrors> {
    EdgeConfig::from_yaml_str(src, Path::new("edge.yml"))
}

fn errors(src: &str) -> String {
    load(src).unwrap_err().to_string()
}

#[test]
fn an_empty_file_or_one_without_sections_changes_nothing() {
    for src in ["", "# nothing yet\n", "{}\n", "tls: {}\nhttp: {}\n"] {
        let config = load(src).unwrap();
        assert_eq!(
            format!("{config:?}"),
            format!("{:?}", EdgeConfig::default())
        );
    }
}

#[test]
fn a_full_file_loads() {
    let config = load(
        "http:\n  listen: 0.0.0.0:80\n\
         passthrough: [Secure.Example.com., \"*.e2e.example.com\"]\n\
         ports:\n\
         \x20 - { listen: 0.0.0.0:2222, protocol: tcp, hostname: SSH.example.com,\n\
         \x20     allow: [203.0.113.0/24, \"2001:db8::/32\", 192.0.2.7], proxy_protocol: v2 }\n\
         \x20 - { listen: \"[::]:27015\", protocol: UDP, hostname: game.example.com, idle_timeout: 2m, max_flows: 10 }\n\
         \x20 - { listen: 127.0.0.1:27015, protocol: udp, hostname: game.example.com }\n\
         \x20 - { listen: 0.0.0.0:5432, protocol: tcp, hostname: db.example.com, idle_timeout: 15m, max_connections: 50 }\n",
    )
    .unwrap();
    assert_eq!(config.http.listen, Some("0.0.0.0:80".parse().unwrap()));
    assert!(config.passthrough.matches("secure.example.com"));
    assert!(config.passthrough.matches("a.b.e2e.example.com"));
    assert_eq!(config.tcp_ports.len(), 2);
    let tcp = &config.tcp_ports[0];
    assert_eq!(tcp.hostname, "ssh.example.com");
    assert_eq!(tcp.listen, "0.0.0.0:2222".parse().unwrap());
    assert_eq!(tcp.allow.len(), 3);
    assert_eq!(tcp.allow[2].to_string(), "192.0.2.7/32");
    assert!(tcp.proxy_protocol);
    assert_eq!(
        tcp.idle_timeout, None,
        "TCP ports keep quiet connections by default"
    );
    assert_eq!(tcp.max_connections, 10_000);
    let db = &config.tcp_ports[1];
    assert_eq!(db.idle_timeout, Some(Duration::from_secs(900)));
    assert_eq!(db.max_connections, 50);
    assert!(!db.proxy_protocol);
    assert_eq!(config.udp_ports.len(), 2);
    assert_eq!(config.udp_ports[0].idle_timeout, Duration::from_secs(120));
    assert_eq!(config.udp_ports[0].max_flows, 10);
    assert_eq!(config.udp_ports[1].idle_timeout, Duration::from_secs(60));
    assert_eq!(config.udp_ports[1].max_flows, 1024);
    assert!(config.udp_ports[1].allow.is_empty());
}

#[test]
fn unknown_keys_are_errors_with_position_and_suggestion() {
    let shown = errors(
        "pasthrough: [a.test]\n\
         ports:\n\
         \x20 - listen: 0.0.0.0:2222\n\
         \x20   protocol: tcp\n\
         \x20   hostname: a.test\n\
         \x20   alow: [10.0.0.0/8]\n",
    );
    assert!(
        shown.contains("edge.yml:1:1: error: unknown key `pasthrough` in the top level"),
        "{shown}"
    );
    assert!(shown.contains("did you mean `passthrough`?"), "{shown}");
    assert!(
        shown.contains("edge.yml:6:5: error: unknown key `alow` in ports entry #1"),
        "{shown}"
    );
    assert!(shown.contains("did you mean `allow`?"), "{shown}");
    let shown = errors("tls:\n  hsts: { max_age: 1y, preloads: true }\n");
    assert!(
        shown.contains("edge.yml:2:24: error: unknown key `preloads` in `hsts` of `tls`"),
        "{shown}"
    );
    assert!(shown.contains("did you mean `preload`?"), "{shown}");
}

#[test]
fn bad_values_name_the_problem_and_the_fix() {
    let shown = errors(
        "ports:\n\
         \x20 - { listen: 0.0.0.0, protocol: tcp, hostname: a.test }\n\
         \x20 - { listen: 0.0.0.0:1, protocol: sctp, hostname: a.test }\n\
         \x20 - { listen: 0.0.0.0:2, protocol: udp, hostname: a.test, proxy_protocol: v2 }\n\
         \x20 - { listen: 0.0.0.0:3, protocol: tcp, hostname: \"https://a.test\" }\n\
         \x20 - { listen: 0.0.0.0:4, protocol: tcp, hostname: a.test, allow: [10.0.0.1/8] }\n\
         \x20 - { listen: 0.0.0.0:5, protocol: tcp, hostname: a.test, max_flows: 3 }\n\
         \x20 - { listen: 0.0.0.0:6, protocol: udp, hostname: a.test, idle_timeout: soon }\n\
         \x20 - { listen: 0.0.0.0:7, hostname: a.test }\n\
         \x20 - { listen: 0.0.0.0:8, protocol: tcp, hostname: a.test, proxy_protocol: v1 }\n\
         \x20 - { listen: 0.0.0.0:9, protocol: tcp, hostname: a.test, allow: [] }\n\
         \x20 - { listen: 0.0.0.0:9, protocol: tcp, hostname: b.test }\n\
         \x20 - { listen: 0.0.0.0:10, protocol: udp, hostname: a.test, max_connections: 3 }\n\
         \x20 - { listen: 0.0.0.0:11, protocol: tcp, hostname: a.test, max_connections: 0, idle_timeout: 0s }\n",
    );
    for expected in [
        "edge.yml:2:15: error: `listen` of ports entry #1: `0.0.0.0` is not an IP address and port",
        "fix: write an IP address and a port, e.g. `0.0.0.0:2222`",
        "edge.yml:3:36: error: `protocol` of ports entry #2: unknown protocol `sctp`",
        "`proxy_protocol` of ports entry #3: the PROXY protocol header is sent on TCP ports only",
        "fix: remove `proxy_protocol` from this UDP port",
        "`hostname` of ports entry #4: `https://a.test` holds a scheme",
        "`10.0.0.1/8` has host bits set after the prefix",
        "fix: write the network address: `10.0.0.0/8`",
        "`max_flows` applies to UDP ports only",
        "fix: write `max_connections` to cap a TCP port's connections",
        "`idle_timeout` of ports entry #7: `soon`",
        "ports entry #8: `protocol` is missing",
        "fix: add `protocol: tcp` or `protocol: udp`",
        "PROXY protocol v1 (text) is not supported",
        "the allow-list is empty",
        "0.0.0.0:9 is listed twice for the same protocol",
        "`max_connections` applies to TCP ports only",
        "fix: write `max_flows` to cap a UDP port's flows",
        "`max_connections` of ports entry #13",
        "`idle_timeout` of ports entry #13: the duration must be longer than zero",
    ] {
        assert!(shown.contains(expected), "missing {expected:?} in\n{shown}");
    }
    let shown = errors("passthrough: [\"a.*.test\", \"*\", \"x.test:443\"]\n");
    assert!(
        shown.contains("a wildcard may only be a leading `*.`"),
        "{shown}"
    );
    assert!(shown.contains("`x.test:443` holds a port"), "{shown}");
}

#[test]
fn wrong_types_and_syntax_errors_have_positions() {
    let shown = errors("passthrough: a.test\n");
    assert!(shown.starts_with("edge.yml:1:"), "{shown}");
    assert!(shown.contains("wrong type for `passthrough`"), "{shown}");
    let shown = errors("ports:\n  - { listen: [1] }\n");
    assert!(shown.contains("`listen` of item #1 of `ports`"), "{shown}");
    let shown = errors("ports: [\n");
    assert!(shown.starts_with("edge.yml:"), "{shown}");
}

#[test]
fn a_missing_file_says_so() {
    let e = EdgeConfig::load(Path::new("/nonexistent/edge.yml")).unwrap_err();
    assert!(e.to_string().contains("cannot read the edge config"), "{e}");
}

#[test]
fn a_full_tls_and_http_section_loads() {
    let dir = tempfile::tempdir().unwrap();
    let ca = portless_tls::LocalCa::generate("test CA").unwrap();
    let (cert, key) = ca.issue_pem(&["app.example.com".to_owned()]).unwrap();
    std::fs::write(dir.path().join("app.crt"), cert).unwrap();
    std::fs::write(dir.path().join("app.key"), key).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let src = "tls:\n\
         \x20 hsts: { max_age: 1y, include_subdomains: true, preload: true }\n\
         \x20 acme: { directory: staging, email: ops@example.com, ca_file: ca.pem,\n\
         \x20         eab: { kid: k1, hmac_key: c2VjcmV0LWtleQ }, challenge: [http-01, tls-alpn-01],\n\
         \x20         renew_before: 30d }\n\
         \x20 certificates: [ { hostnames: [App.example.com], cert: app.crt, key: app.key } ]\n\
         http: { listen: 0.0.0.0:80, acme_challenge_to_origin: [Legacy.example.com] }\n";
    let config = EdgeConfig::from_yaml_str(src, &dir.path().join("edge.yml")).unwrap();
    let hsts = config.tls.hsts.unwrap();
    assert_eq!(
        hsts.header_value(),
        "max-age=31536000; includeSubDomains; preload"
    );
    let acme = config.tls.acme.unwrap();
    assert_eq!(acme.directory, crate::Directory::Staging);
    assert_eq!(acme.email.as_deref(), Some("ops@example.com"));
    assert_eq!(acme.ca_file, Some(dir.path().join("ca.pem")));
    assert_eq!(acme.eab.unwrap().hmac_key, b"secret-key");
    assert_eq!(
        acme.challenges,
        [
            crate::ChallengeKind::Http01,
            crate::ChallengeKind::TlsAlpn01
        ]
    );
    assert_eq!(acme.renew_before, Some(Duration::from_secs(30 * 86400)));
    assert_eq!(config.tls.certificates[0].hostnames, ["app.example.com"]);
    assert_eq!(config.http.acme_challenge_to_origin, ["legacy.example.com"]);
    assert_eq!(config.http.http_options(8443).https_port, Some(8443));
    // Behind a NAT that maps 443 to the edge's 8443, redirects name the public port.
    let natted = load("http: { listen: 0.0.0.0:80, https_port: 443 }\n").unwrap();
    assert_eq!(natted.http.http_options(8443).https_port, Some(443));
    let shown = errors("http: { https_port: 70000 }\n");
    assert!(
        shown.contains("`https_port` of `http`: `70000` is not a whole number from 1 to 65535"),
        "{shown}"
    );
}

#[test]
fn bad_tls_values_name_the_problem_and_the_fix() {
    let shown = errors(
        "tls:\n\
         \x20 hsts: { max_age: soon }\n",
    );
    assert!(
        shown.contains("edge.yml:2:20: error: `max_age` of `hsts` of `tls`: `soon`"),
        "{shown}"
    );
    let shown = errors("tls:\n  hsts: { max_age: 1y, preload: true }\n");
    assert!(
        shown.contains("only accepts HSTS with includeSubDomains"),
        "{shown}"
    );
    assert!(
        shown.contains("fix: add `include_subdomains: true`"),
        "{shown}"
    );
    let shown = errors("tls:\n  hsts: { max_age: 30d, include_subdomains: true, preload: true }\n");
    assert!(shown.contains("at least one year"), "{shown}");
    let shown = errors("tls:\n  acme: { directory: production, challenge: [http-01] }\n");
    assert!(shown.contains("HTTP-01 is answered on port 80"), "{shown}");
    assert!(
        shown.contains("fix: add `http: { listen: 0.0.0.0:80 }`"),
        "{shown}"
    );
    let shown = errors("tls:\n  acme: { directory: prod }\n");
    assert!(shown.contains("unknown ACME directory `prod`"), "{shown}");
    assert!(
        shown.contains("`production` (Let's Encrypt), `staging`"),
        "{shown}"
    );
    let shown = errors("tls:\n  acme: { directory: \"http://ca.test/dir\" }\n");
    assert!(shown.contains("is plain HTTP"), "{shown}");
    let shown = errors(
        "tls:\n  certificates: [ { hostnames: [a.test], cert: /nonexistent/a.crt, key: /nonexistent/a.key } ]\n",
    );
    assert!(shown.contains("/nonexistent/a.crt"), "{shown}");
}
