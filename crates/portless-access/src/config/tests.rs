//! Tests of the configuration loader: the incumbent's whole file loads, defaults, each
//! section's checks, and where errors point.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn load(yaml: &str) -> Loaded<AccessConfig> {
    AccessConfig::from_yaml(yaml, "/etc/portless/access.yml").unwrap_or_else(|e| panic!("{e}"))
}

fn errors(yaml: &str) -> Vec<String> {
    match AccessConfig::from_yaml(yaml, "access.yml") {
        Ok(_) => panic!("loaded but should be refused:\n{yaml}"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

const MINUTE: u64 = 60;

/// A configuration file as the incumbent's users write it, every section present.
const INCUMBENT: &str = r#"
theme: dark
default_2fa_method: totp
server:
  address: 'tcp://:9091'
log:
  level: info
totp:
  issuer: example.com
  period: 30
  skew: 1
identity_validation:
  reset_password:
    jwt_secret: a_very_important_secret
authentication_backend:
  password_reset:
    disable: false
  file:
    path: users_database.yml
    watch: true
    password:
      algorithm: argon2
access_control:
  default_policy: deny
  networks:
    - name: internal
      networks: [10.0.0.0/8, 192.168.0.0/16]
  rules:
    - domain: www.example.com
      policy: bypass
    - domain: [metrics.example.com, git.example.com]
      policy: two_factor
    - domain: admin.example.com
      policy: two_factor
      subject: ["group:admins"]
    - domain: "*.example.com"
      resources: ["^/api/"]
      methods: [GET, HEAD]
      networks: [internal]
      policy: one_factor
session:
  secret: insecure_session_secret
  name: authelia_session
  same_site: lax
  inactivity: 5m
  expiration: 1h
  remember_me: 1M
  cookies:
    - domain: Example.COM
      authelia_url: https://auth.example.com/
      default_redirection_url: https://www.example.com
  redis:
    host: redis
    port: 6379
regulation:
  max_retries: 3
  find_time: 2m
  ban_time: 5m
storage:
  encryption_key: you_must_generate_a_random_string_of_more_than_twenty_chars
  local:
    path: /config/db.sqlite3
notifier:
  filesystem:
    filename: /config/notification.txt
"#;

#[test]
fn the_incumbents_file_loads_unchanged_without_warnings() {
    let loaded = load(INCUMBENT);
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.access_control.rule_count(), 4);
    assert_eq!(
        c.users_file,
        Some(PathBuf::from("/etc/portless/users_database.yml"))
    );
    assert_eq!(c.session.inactivity, Duration::from_secs(5 * MINUTE));
    assert_eq!(
        c.session.remember_me,
        Some(Duration::from_secs(30 * 24 * 3600))
    );
    assert_eq!(
        c.session.cookies,
        [CookieDomain {
            domain: "example.com".into(),
            portal_url: "https://auth.example.com".into(),
            default_redirection_url: Some("https://www.example.com".into()),
            inactivity: Duration::from_secs(5 * MINUTE),
            expiration: Duration::from_secs(60 * MINUTE),
            remember_me: Some(Duration::from_secs(30 * 24 * 3600)),
        }]
    );
    assert_eq!(c.totp.issuer, "example.com");
    assert_eq!(c.regulation.max_retries, 3);
}

#[test]
fn defaults_people_expect() {
    let c = load("").config;
    assert_eq!(
        c.session,
        SessionConfig {
            inactivity: Duration::from_secs(5 * MINUTE),
            expiration: Duration::from_secs(60 * MINUTE),
            remember_me: Some(Duration::from_secs(30 * 24 * 3600)),
            cookies: Vec::new(),
            legacy_domain: None,
        }
    );
    assert_eq!(
        c.regulation,
        RegulationConfig {
            max_retries: 3,
            find_time: Duration::from_secs(2 * MINUTE),
            ban_time: Duration::from_secs(5 * MINUTE),
        }
    );
    assert_eq!(
        c.totp,
        TotpConfig {
            disabled: false,
            issuer: "Portless".into(),
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: Duration::from_secs(30),
            skew: 1,
        }
    );
    assert_eq!(c.users_file, None);
    assert_eq!(c.access_control.rule_count(), 0);
}

#[test]
fn durations_in_every_form_and_remember_me_disabled() {
    let c = load(
        "session:\n  inactivity: 300\n  expiration: 1h30m\n  remember_me: -1\n  cookies:\n    - domain: example.com\n      authelia_url: https://auth.example.com\n      expiration: 2 hours\n      remember_me: 1w\nregulation:\n  find_time: 1d\n  ban_time: 1y\n  max_retries: 0\n",
    )
    .config;
    assert_eq!(c.session.inactivity, Duration::from_secs(300));
    assert_eq!(c.session.expiration, Duration::from_secs(90 * MINUTE));
    assert_eq!(c.session.remember_me, None);
    assert_eq!(
        c.session.cookies[0].expiration,
        Duration::from_secs(120 * MINUTE)
    );
    assert_eq!(
        c.session.cookies[0].inactivity,
        Duration::from_secs(300),
        "inherited"
    );
    assert_eq!(
        c.session.cookies[0].remember_me,
        Some(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(c.regulation.find_time, Duration::from_secs(86_400));
    assert_eq!(c.regulation.ban_time, Duration::from_secs(365 * 86_400));
    assert_eq!(c.regulation.max_retries, 0);
}

#[test]
fn legacy_session_domain_is_kept() {
    let c = load("session:\n  domain: Example.com.\n  remember_me_duration: 2M\n").config;
    assert_eq!(c.session.legacy_domain.as_deref(), Some("example.com"));
    assert_eq!(
        c.session.remember_me,
        Some(Duration::from_secs(60 * 86_400))
    );
}

#[test]
fn portal_urls_must_be_https_on_the_cookie_domain() {
    for (url, reason) in [
        ("http://auth.example.com", "over https"),
        ("auth.example.com", "start with https://"),
        ("https://auth.other.com", "cookie's domain"),
        ("https://auth.example.com.evil.net", "cookie's domain"),
        ("https://badexample.com", "cookie's domain"),
        ("https://user@auth.example.com", "user name"),
        ("https://auth.example.com/?x=1", "query"),
        ("https://auth.example.com:0", "port"),
        ("https://auth.example.com:99999", "port"),
        ("https://auth_!.example.com", "valid hostname"),
    ] {
        let text = errors(&format!(
            "session:\n  cookies:\n    - domain: example.com\n      authelia_url: '{url}'\n"
        ));
        assert_eq!(text.len(), 1, "{url}: {text:?}");
        assert!(
            text[0].starts_with(
                "access.yml:4:21: error: `authelia_url` of session cookie #1 has an invalid URL"
            ),
            "{url}: {}",
            text[0]
        );
        assert!(text[0].contains(reason), "{url}: {}", text[0]);
    }
    let c = load("session:\n  cookies:\n    - domain: example.com\n      authelia_url: HTTPS://Auth.Example.com:8443/portal/\n").config;
    assert_eq!(
        c.session.cookies[0].portal_url,
        "https://auth.example.com:8443/portal"
    );
    // The apex itself may host the portal.
    let c = load("session:\n  cookies:\n    - domain: example.com\n      authelia_url: https://example.com/auth\n").config;
    assert_eq!(c.session.cookies[0].portal_url, "https://example.com/auth");
}

#[test]
fn cookie_entries_need_domain_and_portal() {
    let text = errors(
        "session:\n  cookies:\n    - authelia_url: https://auth.example.com\n    - domain: example.com\n    - domain: '*.example.com'\n      authelia_url: https://auth.example.com\n",
    );
    assert_eq!(text.len(), 3, "{text:#?}");
    assert!(text[0].contains("session cookie #1 has no `domain`"));
    assert!(text[1].contains("session cookie #2 has no `authelia_url`"));
    assert!(
        text[2].contains("`domain` of session cookie #3 has an invalid domain `*.example.com`")
    );
}

#[test]
fn users_file_paths() {
    let c = AccessConfig::from_yaml(
        "authentication_backend:\n  file:\n    path: /var/lib/users.yml\n",
        "c.yml",
    )
    .unwrap()
    .config;
    assert_eq!(
        c.users_file.as_deref(),
        Some(Path::new("/var/lib/users.yml"))
    );
    let c = AccessConfig::from_yaml(
        "authentication_backend:\n  file:\n    path: users.yml\n",
        "conf/c.yml",
    )
    .unwrap()
    .config;
    assert_eq!(c.users_file.as_deref(), Some(Path::new("conf/users.yml")));
    let loaded = load("authentication_backend:\n  ldap:\n    address: ldap://x\n");
    assert_eq!(loaded.config.users_file, None);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("`authentication_backend.ldap` is not supported")
    );
}

#[test]
fn load_reads_files_and_resolves_next_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, INCUMBENT).unwrap();
    let c = AccessConfig::load(&path).unwrap().config;
    assert_eq!(c.users_file, Some(dir.path().join("users_database.yml")));
    let missing = AccessConfig::load(&dir.path().join("nope.yml")).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("could not read the configuration file")
    );
}

#[test]
fn totp_settings() {
    let c = load("totp:\n  algorithm: SHA256\n  digits: 8\n  period: 1m\n  skew: 0\n  disable: true\n  secret_size: 32\n").config;
    assert_eq!(c.totp.algorithm, TotpAlgorithm::Sha256);
    assert_eq!(c.totp.digits, 8);
    assert_eq!(c.totp.period, Duration::from_secs(60));
    assert_eq!(c.totp.skew, 0);
    assert!(c.totp.disabled);
    let text =
        errors("totp:\n  algorithm: md5\n  digits: 7\n  period: 5\n  skew: 5\n  issuer: ''\n");
    assert_eq!(text.len(), 5, "{text:#?}");
    assert!(text[0].contains("`totp.algorithm` must be one of sha1, sha256, sha512, got `md5`"));
    assert!(text[1].contains("`totp.digits`"));
    assert!(text[2].contains("`totp.period` (in seconds) must be between 15 and 300, got 5"));
    assert!(text[3].contains("`totp.skew` must be between 0 and 2, got 5"));
    assert!(text[4].contains("`totp.issuer` is empty"));
}

#[test]
fn bad_durations_name_key_value_and_reason() {
    let text = errors(
        "session:\n  inactivity: 5 parsecs\n  expiration: -1\nregulation:\n  ban_time: soon\n",
    );
    assert_eq!(text.len(), 3, "{text:#?}");
    assert_eq!(
        text[0],
        "access.yml:2:15: error: `session.inactivity` has an invalid duration `5 parsecs`: unknown unit `parsecs`\n  fix: write a whole number of seconds, or amounts with units such as `5m`, `1h30m`, `2 hours`, `1d`, `1w`, `1M` (30 days) or `1y`"
    );
    assert!(text[1].contains("cannot be negative"));
    assert!(text[2].contains("`regulation.ban_time`"));
}

#[test]
fn wrong_types_name_the_key() {
    let text = errors(
        "access_control:\n  rules:\n    - domain: a.example.com\n      methods: {GET: true}\n      policy: deny\n",
    );
    assert_eq!(text.len(), 1, "{text:#?}");
    assert!(text[0].starts_with("access.yml:4:"), "{}", text[0]);
    assert!(
        text[0].contains("`methods` of rule #1 has the wrong type"),
        "{}",
        text[0]
    );
    let text = errors("regulation:\n  max_retries: many\n");
    assert!(
        text[0].contains("`regulation.max_retries` has the wrong type"),
        "{}",
        text[0]
    );
}

#[test]
fn syntax_errors_have_positions() {
    let text = errors(
        "access_control:\n  rules:\n    - domain: a\n      policy: deny\n      policy: bypass\n",
    );
    assert_eq!(text.len(), 1);
    assert!(text[0].starts_with("access.yml:5:"), "{}", text[0]);
    assert!(text[0].contains("duplicate"), "{}", text[0]);
    let text =
        errors("access_control:\n  rules:\n    - domain: *.example.com\n      policy: deny\n");
    assert!(text[0].contains("quote it"), "{}", text[0]);
}

#[test]
fn unknown_policy_keys_are_errors_reported_with_type_errors() {
    let text = errors(
        "access_control:\n  rules:\n    - domain: a.example.com\n      subjects: 'group:admins'\n      policy: one_factor\n      methods: {x: 1}\n",
    );
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(text[0].contains("unknown key `subjects` in rule #1"));
    assert!(text[0].contains("did you mean `subject`?"));
}

/// The sign-in methods beside the users file, on top of a minimal file with one portal.
fn with_methods(methods: &str) -> String {
    format!(
        "session:\n  cookies:\n    - domain: example.com\n      authelia_url: https://auth.example.com\n{methods}"
    )
}

#[test]
fn oidc_providers_email_pin_and_notifier_load() {
    let yaml = with_methods(
        r#"authentication_backend:
  file:
    path: users.yml
  oidc:
    - name: corp
      display_name: Company account
      issuer: https://sso.example.com/realms/main
      client_id: portless
      client_secret: s3cret
      level: two_factor
    - name: google
      issuer: https://accounts.google.com
      client_id: g
      client_secret: x
      redirect_url: https://auth.example.com/oidc/google/callback
  email_pin:
    enabled: true
notifier:
  smtp:
    address: submission://smtp.example.com:587
    username: portless
    password: mail-secret
    sender: "Portless <auth@example.com>"
"#,
    );
    let loaded = load(&yaml);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    let names: Vec<_> = config.oidc.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["corp", "google"]);
    assert_eq!(
        config.oidc[0].redirect_url.as_str(),
        "https://auth.example.com/oidc/corp/callback"
    );
    assert_eq!(config.oidc[0].level, crate::AuthLevel::TwoFactor);
    assert_eq!(config.oidc[1].level, crate::AuthLevel::OneFactor);
    assert!(config.email_pin);
    let smtp = config.notifier.expect("notifier");
    assert_eq!((smtp.host.as_str(), smtp.port), ("smtp.example.com", 587));
}

#[test]
fn sign_in_method_mistakes_are_refused_where_they_are() {
    let pin_without_mail =
        with_methods("authentication_backend:\n  email_pin:\n    enabled: true\n");
    let e = errors(&pin_without_mail);
    assert!(
        e[0].contains("access.yml:7:") && e[0].contains("notifier.smtp"),
        "{e:?}"
    );

    let elsewhere = with_methods(
        "authentication_backend:\n  oidc:\n    - name: corp\n      issuer: https://sso.example.com\n      client_id: p\n      client_secret: s\n      redirect_url: https://evil.example.net/oidc/corp/callback\n",
    );
    let e = errors(&elsewhere);
    assert!(
        e[0].contains("access.yml:7:") && e[0].contains("not on a portal host"),
        "{e:?}"
    );
    assert!(
        e[0].contains("fix: use https://AUTH-HOST/oidc/corp/callback"),
        "{e:?}"
    );

    let twice = with_methods(
        "authentication_backend:\n  oidc:\n    - {name: a, issuer: 'https://a.example', client_id: p, client_secret: s}\n    - {name: a, issuer: 'https://b.example', client_id: p, client_secret: s}\n",
    );
    assert!(errors(&twice).iter().any(|e| e.contains("used twice")));

    let insecure = with_methods(
        "authentication_backend:\n  oidc:\n    - {name: a, issuer: 'http://sso.example', client_id: p, client_secret: s}\n",
    );
    let e = errors(&insecure);
    assert!(e[0].contains("must use https://"), "{e:?}");

    let bad_mail = with_methods(
        "notifier:\n  smtp:\n    address: ftp://mail.example.com\n    sender: a@example.com\n",
    );
    let e = errors(&bad_mail);
    assert!(
        e[0].contains("scheme `ftp`") && e[0].contains("fix: use `smtp`"),
        "{e:?}"
    );
}

#[test]
fn misspelt_provider_keys_are_reported_with_a_suggestion() {
    let yaml = with_methods(
        "authentication_backend:\n  oidc:\n    - name: corp\n      issuer: https://sso.example.com\n      client_id: p\n      client_secret: s\n      requre_email_verified: false\n",
    );
    let loaded = load(&yaml);
    let text = loaded
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert!(
        text.iter()
            .any(|w| w.contains("requre_email_verified") && w.contains("require_email_verified")),
        "{text:?}"
    );
    // The misspelt key is not read: the safe default stays.
    assert!(loaded.config.oidc[0].require_email_verified);
}

#[test]
fn webauthn_settings() {
    let c = load("").config;
    assert_eq!(
        c.webauthn,
        WebauthnConfig {
            disabled: false,
            display_name: "Portless".into(),
            user_verification: UserVerification::Preferred,
            timeout: Duration::from_secs(60),
        }
    );
    let loaded = load(
        "webauthn:\n  disable: true\n  display_name: Example\n  user_verification: Required\n  timeout: 2m\n  attestation_conveyance_preference: indirect\n  selection_criteria: {discoverability: preferred}\n",
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config.webauthn;
    assert!(c.disabled);
    assert_eq!(c.display_name, "Example");
    assert_eq!(c.user_verification, UserVerification::Required);
    assert_eq!(c.timeout, Duration::from_secs(120));
    let loaded = load("webauthn:\n  user_verification: discouraged\n  timout: 1m\n");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("/etc/portless/access.yml:2:22:"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("always ask the authenticator to verify"));
    assert!(
        warnings[1].contains("did you mean `timeout`?"),
        "{}",
        warnings[1]
    );
    let text =
        errors("webauthn:\n  display_name: ' '\n  user_verification: requird\n  timeout: 5s\n");
    assert_eq!(text.len(), 3, "{text:#?}");
    assert!(
        text[0].starts_with("access.yml:2:17: error: `webauthn.display_name` is empty"),
        "{}",
        text[0]
    );
    assert!(text[1].starts_with("access.yml:3:22:"), "{}", text[1]);
    assert!(text[1].contains("did you mean `required`?"), "{}", text[1]);
    assert!(text[2].contains("`webauthn.timeout` (in seconds) must be between 10 and 600, got 5"));
}
