//! Access fixtures: an access configuration and a users file in a temporary directory, with
//! the portal URL pointing at the test edge's port.

use std::path::PathBuf;
use std::time::Duration;

use portless_edge::AccessOptions;

/// Cookie domain of the fixtures; applications are `*.example.test`.
pub const DOMAIN: &str = "example.test";
/// The portal host of the fixtures.
pub const PORTAL: &str = "auth.example.test";

/// Passwords of the fixture users (argon2id with small parameters, so tests stay quick;
/// production hashes use the defaults).
pub const ALICE_PASSWORD: &str = "alice-password";
/// See [`ALICE_PASSWORD`].
pub const BOB_PASSWORD: &str = "bob-password";

/// The users of the fixtures: alice (admins, dev), bob (dev), carol (disabled).
pub const USERS: &str = r#"users:
  alice:
    displayname: Alice Doe
    password: "$argon2id$v=19$m=1024,t=1,p=1$bkYIsLU4Pn5/m6iCnqm3dw$lD7R0FzMSOCrVonCFhn2xR/KPGqNTXVONcxVnxUogIs"
    email: alice@example.test
    groups: [admins, dev]
  bob:
    displayname: Bob Roe
    password: "$argon2id$v=19$m=1024,t=1,p=1$PbL+NzioslPsZjTsBPqktw$genY+FLysKZ6DvzCUqRKHZZUyeT3lX2enB5Ku4dAQeA"
    email: bob@example.test
    groups: [dev]
  carol:
    displayname: Carol Poe
    password: "$argon2id$v=19$m=1024,t=1,p=1$2279y/K4EKds9POrbS6JOA$6bu6zeOrUZ4jRRIZWjH1GZnBO00sU5zncOOSpezU+90"
    email: carol@example.test
    groups: [dev]
    disabled: true
"#;

/// The seed example of the access issue, on `example.test`, plus a one-factor app, a
/// service-token API and a public path.
pub const SEED_RULES: &str = r#"access_control:
  default_policy: deny
  rules:
    - domain: www.example.test
      policy: bypass
    - domain: [git.example.test, metrics.example.test, ci.example.test]
      policy: two_factor
    - domain: admin.example.test
      policy: two_factor
      subject: ["group:admins"]
    - domain: app.example.test
      policy: one_factor
    - domain: api.example.test
      policy: one_factor
      subject: ["token:ci-bot"]
"#;

/// An access configuration and users file on disk.
pub struct AccessFixture {
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// The configuration file.
    pub config: PathBuf,
    /// The users file.
    pub users: PathBuf,
    rules: String,
    /// `session.inactivity` and `session.expiration`, as written in the file.
    pub session_times: (String, String),
    /// Lines under `authentication_backend:` beside `file:` (`oidc:`, `email_pin:`), each
    /// indented by two spaces.
    pub backend_extra: String,
    /// Top-level sections added to the file (`notifier:`...).
    pub top_extra: String,
}

impl AccessFixture {
    /// The seed rules and users.
    pub fn seed() -> Self {
        Self::with_rules(SEED_RULES)
    }

    /// `rules` (an `access_control:` block) with the fixture users.
    pub fn with_rules(rules: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("configuration.yml");
        let users = dir.path().join("users_database.yml");
        std::fs::write(&users, USERS).expect("write users");
        Self {
            dir,
            config,
            users,
            rules: rules.to_owned(),
            session_times: ("5m".to_owned(), "1h".to_owned()),
            backend_extra: String::new(),
            top_extra: String::new(),
        }
    }

    /// The same with sign-in methods: `backend` lines go under `authentication_backend:`
    /// (indented two spaces), `top` sections at the top level.
    pub fn with_sign_in(mut self, backend: &str, top: &str) -> Self {
        self.backend_extra = backend.to_owned();
        self.top_extra = top.to_owned();
        self
    }

    /// Writes the configuration for a portal on `port`, and the options for the edge.
    pub fn options(&self, port: u16) -> AccessOptions {
        self.write_config(port, &self.rules);
        let mut options =
            AccessOptions::new(self.config.clone(), self.dir.path().join("access.key"));
        options.reload_interval = Duration::from_millis(100);
        options.login_floor = Duration::from_millis(50);
        options.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
        options
    }

    /// (Re)writes the configuration file with `rules`.
    pub fn write_config(&self, port: u16, rules: &str) {
        let text = format!(
            "# An SSO portal configuration, as people already have it.\n\
             theme: auto\n\
             authentication_backend:\n  file:\n    path: {users}\n{backend}\
             session:\n  inactivity: {inactivity}\n  expiration: {expiration}\n  cookies:\n    - domain: {DOMAIN}\n      authelia_url: https://{PORTAL}:{port}\n\
             regulation:\n  max_retries: 3\n  find_time: 2m\n  ban_time: 5m\n\
             totp:\n  issuer: Portless tests\n\
             {top}{rules}",
            backend = self.backend_extra,
            top = self.top_extra,
            users = self.users.display(),
            inactivity = self.session_times.0,
            expiration = self.session_times.1,
        );
        std::fs::write(&self.config, text).expect("write config");
    }
}

/// An edge with access control, one tunnel routed from a set of hostnames to a recording
/// origin, and a connector that also verifies the edge's assertion on some of them.
pub struct AccessEdge {
    /// The edge.
    pub edge: crate::TestEdge,
    /// The origin behind every hostname.
    pub origin: crate::ProbeOrigin,
    /// The tunnel's connector.
    pub connector: portless_connector::ConnectorHandle,
    /// The files the edge reads (rewrite them to test reloads).
    pub fixture: std::sync::Arc<AccessFixture>,
}

impl AccessEdge {
    /// Starts it: `hosts` are routed; for `verified` hosts the connector's rule has
    /// `originRequest.access` (issuer: the fixture's portal; audience: the host).
    pub async fn start(fixture: AccessFixture, hosts: &[&str], verified: &[&str]) -> Self {
        crate::init_test_logging();
        let fixture = std::sync::Arc::new(fixture);
        let edge = crate::TestEdge::start_with(crate::EdgeSetup {
            access: Some(fixture.clone()),
            ..crate::EdgeSetup::default()
        })
        .await;
        let origin = crate::ProbeOrigin::http().await;
        let tunnel = edge.add_tunnel("apps", hosts).await;
        let port = edge.handle.public_addr().port();
        let mut rules = String::from("ingress:\n");
        for host in verified {
            rules.push_str(&format!(
                "  - hostname: {host}\n    service: http://{origin}\n    originRequest:\n      access:\n        required: true\n        teamName: {PORTAL}:{port}\n        audTag: [{host}]\n",
                origin = origin.addr()
            ));
        }
        rules.push_str(&format!("  - service: http://{}\n", origin.addr()));
        let connector = edge
            .connect(
                edge.connector_options(&tunnel, portless_connector::ProtocolChoice::Quic),
                &rules,
            )
            .await;
        Self {
            edge,
            origin,
            connector,
            fixture,
        }
    }
}

/// RFC 6238 code for time step `step` (SHA-1, 6 digits) of a base32 secret, computed here,
/// independently of the edge's TOTP code, so tests check the edge against the RFC.
pub fn totp_code(secret_base32: &str, step: u64) -> String {
    let secret = base32_decode(secret_base32);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret);
    let tag = aws_lc_rs::hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let binary = (u32::from(mac[offset]) & 0x7f) << 24
        | u32::from(mac[offset + 1]) << 16
        | u32::from(mac[offset + 2]) << 8
        | u32::from(mac[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

/// The current 30-second TOTP step.
pub fn now_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        / 30
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .expect("a base32 secret") as u64;
        bits = bits << 5 | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn totp_matches_the_rfc_6238_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // the 6-digit code is its last six digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(super::totp_code(secret, 59 / 30), "287082");
    }
}
