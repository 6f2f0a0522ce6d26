use std::fmt::Write;
use std::path::Path;

use super::*;
use crate::TunnelConfig;

fn ingress(rules_yaml: &str) -> Ingress {
    let src = format!("ingress:\n{rules_yaml}");
    match TunnelConfig::from_yaml_str(&src, Path::new("test.yml")) {
        Ok(loaded) => loaded.config.ingress,
        Err(e) => panic!("{e}"),
    }
}

const MIXED: &str = r"  - hostname: app.example.com
    path: ^/api/
    service: http://localhost:1
  - hostname: app.example.com
    service: http://localhost:2
  - hostname: '*.example.com'
    path: \.css$
    service: http://localhost:3
  - hostname: '*.example.com'
    service: http://localhost:4
  - path: ^/health$
    service: http://localhost:5
  - hostname: '*'
    path: /metrics
    service: http://localhost:6
  - service: http_status:404
";

#[track_caller]
fn assert_hit(ingress: &Ingress, host: &str, path: &str, expected: usize) {
    let found = ingress.find(host, path).index;
    assert_eq!(found, expected, "find({host:?}, {path:?})");
    assert_eq!(
        ingress.explain(host, path).matched.index,
        expected,
        "explain({host:?}, {path:?})"
    );
}

#[test]
fn first_match_wins_in_file_order() {
    let ingress = ingress(MIXED);
    assert_hit(&ingress, "app.example.com", "/api/users", 0);
    assert_hit(&ingress, "app.example.com", "/", 1);
    // The exact rule without a path takes everything for its host before any wildcard.
    assert_hit(&ingress, "app.example.com", "/style.css", 1);
    assert_hit(&ingress, "cdn.example.com", "/style.css", 2);
    assert_hit(&ingress, "a.b.example.com", "/", 3);
    assert_hit(&ingress, "example.com", "/health", 4);
    assert_hit(&ingress, "other.test", "/x/metrics/y", 5);
    assert_hit(&ingress, "example.com", "/", 6);
}

#[test]
fn hosts_are_compared_canonically() {
    let ingress = ingress(MIXED);
    assert_hit(&ingress, "APP.Example.COM", "/", 1);
    assert_hit(&ingress, "app.example.com.", "/", 1);
    assert_hit(&ingress, "app.example.com:8443", "/", 1);
    assert_hit(&ingress, "app.example.com.:443", "/", 1);
}

#[test]
fn wildcards_never_match_the_apex_or_lookalikes() {
    let ingress = ingress(MIXED);
    assert_hit(&ingress, "example.com", "/", 6);
    assert_hit(&ingress, "badexample.com", "/", 6);
    assert_hit(&ingress, ".example.com", "/", 6);
}

#[test]
fn paths_are_searched_unanchored() {
    let ingress = ingress(
        "  - hostname: a.test\n    path: /api\n    service: http://localhost:1\n  \
         - service: http_status:404\n",
    );
    assert_hit(&ingress, "a.test", "/x/api/y", 0);
    assert_hit(&ingress, "a.test", "/ap", 1);
}

#[test]
fn unicode_and_punycode_hosts_match_each_other() {
    let ingress = ingress(
        "  - hostname: bücher.example\n    service: http://localhost:1\n  \
         - hostname: xn--caf-dma.example\n    service: http://localhost:2\n  \
         - service: http_status:404\n",
    );
    assert_hit(&ingress, "xn--bcher-kva.example", "/", 0);
    assert_hit(&ingress, "BÜCHER.example", "/", 0);
    assert_hit(&ingress, "café.example", "/", 1);
}

#[test]
fn explain_says_why_each_earlier_rule_missed() {
    let ingress = ingress(MIXED);
    let explained = ingress.explain("cdn.example.com", "/index.html");
    assert_eq!(explained.matched.index, 3);
    let reasons: Vec<(usize, Miss)> = explained
        .skipped
        .iter()
        .map(|s| (s.index, s.reason))
        .collect();
    assert_eq!(
        reasons,
        [(0, Miss::Hostname), (1, Miss::Hostname), (2, Miss::Path)]
    );
}

#[test]
fn five_thousand_exact_hosts_match_their_own_rule() {
    let mut rules = String::new();
    for i in 0..5000 {
        // Every tenth host also has an earlier path rule, so the index must keep file order
        // among several rules of one host.
        if i % 10 == 0 {
            let _ = write!(
                rules,
                "  - hostname: svc{i}.example.com\n    path: ^/admin\n    service: http://localhost:9\n"
            );
        }
        let _ = write!(
            rules,
            "  - hostname: svc{i}.example.com\n    service: http://10.0.{}.{}:80\n",
            i / 256,
            i % 256
        );
    }
    rules.push_str("  - hostname: '*.example.com'\n    service: http://localhost:7\n");
    rules.push_str("  - service: http_status:404\n");
    let ingress = ingress(&rules);
    let count = ingress.rules().len();
    assert_eq!(count, 5000 + 500 + 2);

    for i in 0..5000 {
        let host = format!("SVC{i}.example.com");
        let hit = ingress.find(&host, "/");
        let expected = format!("http://10.0.{}.{}:80", i / 256, i % 256);
        assert_eq!(hit.rule.service().to_string(), expected, "{host}");
        assert_eq!(
            hit.rule.hostname().exact(),
            Some(format!("svc{i}.example.com").as_str())
        );
        if i % 10 == 0 {
            let admin = ingress.find(&host, "/admin/users");
            assert_eq!(admin.rule.service().to_string(), "http://localhost:9");
            assert_eq!(admin.index + 1, hit.index);
        }
    }
    assert_eq!(ingress.find("svc5000.example.com", "/").index, count - 2);
    assert_eq!(ingress.find("deep.svc1.example.com", "/").index, count - 2);
    assert_eq!(ingress.find("example.org", "/").index, count - 1);
    // The index agrees with a plain top-to-bottom scan.
    for host in [
        "svc42.example.com",
        "svc4990.example.com",
        "x.example.com",
        "nope.test",
    ] {
        for path in ["/", "/admin"] {
            assert_eq!(
                ingress.find(host, path).index,
                ingress.explain(host, path).matched.index
            );
        }
    }
}
