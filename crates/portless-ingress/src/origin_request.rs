//! `originRequest`: how the connector talks to an origin. The top-level block sets defaults;
//! a rule's block overrides them field by field.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::choice::UnknownChoice;
use crate::diagnostic::ConfigErrorKind;
use crate::ip_rule::{IpPrefix, IpRule};
use crate::keys::key_label;
use crate::raw::{RawAccess, RawHealthCheck, RawIpRule, RawOriginRequest};
use crate::validate::Checker;
use serde_saphyr::Spanned;

/// Origin connection options for one rule, with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginRequest {
    /// `connectTimeout` (30s): time allowed to open the connection to the origin.
    pub connect_timeout: Duration,
    /// `tlsTimeout` (10s): time allowed for the TLS handshake with the origin.
    pub tls_timeout: Duration,
    /// `tcpKeepAlive` (30s): TCP keepalive interval on origin connections.
    pub tcp_keep_alive: Duration,
    /// `noHappyEyeballs` (false): try only the first resolved address family.
    pub no_happy_eyeballs: bool,
    /// `keepAliveConnections` (100): idle origin connections kept per origin.
    pub keep_alive_connections: u32,
    /// `keepAliveTimeout` (90s): how long an idle origin connection is kept.
    pub keep_alive_timeout: Duration,
    /// `httpHostHeader`: Host sent to the origin; the visitor's host goes to
    /// `X-Forwarded-Host`.
    pub http_host_header: Option<String>,
    /// `originServerName`: TLS SNI and the name the origin certificate is verified against.
    pub origin_server_name: Option<String>,
    /// `matchSNItoHost` (false): use the request's Host as SNI.
    pub match_sni_to_host: bool,
    /// `caPool`: a PEM file of extra CAs trusted for the origin (added to the system roots).
    pub ca_pool: Option<PathBuf>,
    /// `noTLSVerify` (false): skip origin certificate verification.
    pub no_tls_verify: bool,
    /// `disableChunkedEncoding` (false): never send chunked bodies; the connector reads a
    /// body of unknown length whole (up to a bound) and sends it with a Content-Length.
    pub disable_chunked_encoding: bool,
    /// `http2Origin` (false): speak HTTP/2 to the origin (h2c for `http://`).
    pub http2_origin: bool,
    /// `bastionMode` (false): the destination comes from a request header.
    pub bastion_mode: bool,
    /// `proxyType` (none): `socks` to act as a SOCKS5 proxy.
    pub proxy_type: ProxyType,
    /// `ipRules`: allow/deny list for proxied destinations, first match wins.
    pub ip_rules: Vec<IpRule>,
    /// `access`: require and verify the edge's identity assertion.
    pub access: Option<AccessPolicy>,
    /// `healthCheck` (Portless only, none): active checks of the rule's origins.
    pub health_check: Option<HealthCheck>,
}

impl Default for OriginRequest {
    fn default() -> Self {
        OriginRequest {
            connect_timeout: Duration::from_secs(30),
            tls_timeout: Duration::from_secs(10),
            tcp_keep_alive: Duration::from_secs(30),
            no_happy_eyeballs: false,
            keep_alive_connections: 100,
            keep_alive_timeout: Duration::from_secs(90),
            http_host_header: None,
            origin_server_name: None,
            match_sni_to_host: false,
            ca_pool: None,
            no_tls_verify: false,
            disable_chunked_encoding: false,
            http2_origin: false,
            bastion_mode: false,
            proxy_type: ProxyType::None,
            ip_rules: Vec::new(),
            access: None,
            health_check: None,
        }
    }
}

/// `originRequest.healthCheck` (Portless only): the connector checks each origin of the rule
/// every `interval`, and stops sending requests to one that failed `unhealthyThreshold`
/// times in a row (checks or connection failures of real requests) until it passed
/// `healthyThreshold` checks in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthCheck {
    /// `path` (`/`): what an HTTP check requests (`GET`); TCP origins are checked by
    /// connecting.
    pub path: String,
    /// `interval` (10s): time between checks of one origin.
    pub interval: Duration,
    /// `timeout` (2s): a check not answered in this time failed.
    pub timeout: Duration,
    /// `expectedStatus` (none): the status a healthy origin answers; without it, any status
    /// below 500 is healthy.
    pub expected_status: Option<u16>,
    /// `unhealthyThreshold` (3): consecutive failures that mark an origin down.
    pub unhealthy_threshold: NonZeroU32,
    /// `healthyThreshold` (2): consecutive passed checks that mark it up again.
    pub healthy_threshold: NonZeroU32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/".to_owned(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            expected_status: None,
            unhealthy_threshold: non_zero(3),
            healthy_threshold: non_zero(2),
        }
    }
}

/// `n` as a `NonZeroU32`, for the defaults above (a `0` there would be a typo: it becomes 1).
const fn non_zero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

impl HealthCheck {
    /// Whether an answer with `status` counts as healthy.
    pub fn accepts(&self, status: u16) -> bool {
        match self.expected_status {
            Some(expected) => status == expected,
            None => status < 500,
        }
    }
}

/// `originRequest.proxyType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProxyType {
    /// `""`: an ordinary origin.
    #[default]
    None,
    /// `socks`: act as a SOCKS5 proxy.
    Socks,
}

impl FromStr for ProxyType {
    type Err = UnknownChoice;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Ok(ProxyType::None),
            "socks" => Ok(ProxyType::Socks),
            _ => Err(UnknownChoice::new(s, &["\"\"", "socks"])),
        }
    }
}

/// `originRequest.access`: verify the edge's signed identity assertion before forwarding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Refuse requests without a valid assertion.
    pub required: bool,
    /// The team (issuer) the assertion must come from.
    pub team_name: String,
    /// Accepted audience tags; the assertion must carry one of them.
    pub aud_tags: Vec<String>,
}

// === validation ===

impl OriginRequest {
    /// Layers the options set in `raw` over `self`, reporting bad values to `ck`. `rule` is
    /// the 1-based rule number for a rule's own block, `None` for the top-level defaults.
    pub(crate) fn apply(
        &mut self,
        raw: &RawOriginRequest,
        rule: Option<usize>,
        ck: &mut Checker<'_>,
    ) {
        let key = |name: &str| key_label(&format!("originRequest.{name}"), rule);
        let durations = [
            (
                &raw.connect_timeout,
                "connectTimeout",
                &mut self.connect_timeout,
            ),
            (&raw.tls_timeout, "tlsTimeout", &mut self.tls_timeout),
            (
                &raw.tcp_keep_alive,
                "tcpKeepAlive",
                &mut self.tcp_keep_alive,
            ),
            (
                &raw.keep_alive_timeout,
                "keepAliveTimeout",
                &mut self.keep_alive_timeout,
            ),
        ];
        for (value, name, slot) in durations {
            if let Some(d) = ck.duration(&key(name), value.as_ref()) {
                *slot = d;
            }
        }
        let flags = [
            (raw.no_happy_eyeballs, &mut self.no_happy_eyeballs),
            (raw.match_sni_to_host, &mut self.match_sni_to_host),
            (raw.no_tls_verify, &mut self.no_tls_verify),
            (
                raw.disable_chunked_encoding,
                &mut self.disable_chunked_encoding,
            ),
            (raw.http2_origin, &mut self.http2_origin),
            (raw.bastion_mode, &mut self.bastion_mode),
        ];
        for (value, slot) in flags {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(n) = ck.int_in(
            &key("keepAliveConnections"),
            raw.keep_alive_connections.as_ref(),
            0,
            u32::MAX.into(),
        ) {
            self.keep_alive_connections = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(v) = ck.non_empty(&key("httpHostHeader"), raw.http_host_header.as_ref()) {
            self.http_host_header = Some(v);
        }
        if let Some(v) = ck.non_empty(&key("originServerName"), raw.origin_server_name.as_ref()) {
            self.origin_server_name = Some(v);
        }
        if let Some(v) = ck.non_empty(&key("caPool"), raw.ca_pool.as_ref()) {
            self.ca_pool = Some(PathBuf::from(v));
        }
        if let Some(v) = ck.choice(&key("proxyType"), raw.proxy_type.as_ref()) {
            self.proxy_type = v;
        }
        if let Some(rules) = &raw.ip_rules {
            self.ip_rules = rules.iter().filter_map(|r| ip_rule(r, ck)).collect();
        }
        if let Some(access) = &raw.access {
            self.access = access_policy(access, ck);
        }
        if let Some(check) = &raw.health_check {
            let mut merged = self.health_check.clone().unwrap_or_default();
            merged.apply(&check.value, rule, ck);
            self.health_check = Some(merged);
        }
    }
}

impl HealthCheck {
    /// Layers the keys set in `raw` over `self` (a rule's block over the top-level one).
    fn apply(&mut self, raw: &RawHealthCheck, rule: Option<usize>, ck: &mut Checker<'_>) {
        let key = |name: &str| key_label(&format!("originRequest.healthCheck.{name}"), rule);
        if let Some(path) = &raw.path {
            let value = path.value.trim();
            // An origin-form path: what goes after the host in the request line.
            match value.parse::<http::uri::PathAndQuery>() {
                Ok(parsed) if value.starts_with('/') => self.path = parsed.as_str().to_owned(),
                Ok(_) => ck.error(
                    &path.referenced,
                    ConfigErrorKind::InvalidAddress {
                        key: key("path"),
                        value: path.value.clone(),
                        reason: "a check path starts with `/`".into(),
                        example: "/healthz",
                    },
                ),
                Err(e) => ck.error(
                    &path.referenced,
                    ConfigErrorKind::InvalidAddress {
                        key: key("path"),
                        value: path.value.clone(),
                        reason: e.to_string(),
                        example: "/healthz",
                    },
                ),
            }
        }
        let durations = [
            (&raw.interval, "interval", &mut self.interval),
            (&raw.timeout, "timeout", &mut self.timeout),
        ];
        for (value, name, slot) in durations {
            match (ck.duration(&key(name), value.as_ref()), value) {
                // A zero interval would spin; a zero timeout would fail every check.
                (Some(d), Some(written)) if d.is_zero() => ck.error(
                    &written.referenced,
                    ConfigErrorKind::InvalidDuration {
                        key: key(name),
                        value: written.value.clone(),
                    },
                ),
                (Some(d), _) => *slot = d,
                (None, _) => {}
            }
        }
        if let Some(status) = ck.int_in(
            &key("expectedStatus"),
            raw.expected_status.as_ref(),
            100,
            599,
        ) {
            self.expected_status = u16::try_from(status).ok();
        }
        let thresholds = [
            (
                &raw.unhealthy_threshold,
                "unhealthyThreshold",
                &mut self.unhealthy_threshold,
            ),
            (
                &raw.healthy_threshold,
                "healthyThreshold",
                &mut self.healthy_threshold,
            ),
        ];
        for (value, name, slot) in thresholds {
            if let Some(n) = ck.int_in(&key(name), value.as_ref(), 1, 1000)
                && let Some(n) = u32::try_from(n).ok().and_then(NonZeroU32::new)
            {
                *slot = n;
            }
        }
    }
}

fn ip_rule(raw: &Spanned<RawIpRule>, ck: &mut Checker<'_>) -> Option<IpRule> {
    let invalid = |reason: String| ConfigErrorKind::InvalidIpRule { reason };
    let Some(prefix) = &raw.value.prefix else {
        ck.error(&raw.referenced, invalid("`prefix` is missing".into()));
        return None;
    };
    let parsed = match prefix.value.parse::<IpPrefix>() {
        Ok(p) => Some(p),
        Err(e) => {
            ck.error(&prefix.referenced, invalid(e.to_string()));
            None
        }
    };
    let mut ports = Vec::with_capacity(raw.value.ports.len());
    for port in &raw.value.ports {
        match u16::try_from(port.value) {
            Ok(p) if p > 0 => ports.push(p),
            _ => ck.error(
                &port.referenced,
                invalid(format!("port {} is not 1-65535", port.value)),
            ),
        }
    }
    Some(IpRule {
        prefix: parsed?,
        ports,
        allow: raw.value.allow,
    })
}

fn access_policy(raw: &Spanned<RawAccess>, ck: &mut Checker<'_>) -> Option<AccessPolicy> {
    let access = &raw.value;
    let team_name = access
        .team_name
        .as_ref()
        .map(|t| t.value.trim().to_owned())
        .unwrap_or_default();
    if access.required && team_name.is_empty() {
        let at = access
            .team_name
            .as_ref()
            .map_or(&raw.referenced, |t| &t.referenced);
        ck.error(at, ConfigErrorKind::AccessTeamNameMissing);
        return None;
    }
    let aud_tags = access
        .aud_tag
        .as_ref()
        .map(|tags| tags.to_vec())
        .unwrap_or_default();
    Some(AccessPolicy {
        required: access.required,
        team_name,
        aud_tags,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::TunnelConfig;

    fn load(yaml: &str) -> Result<crate::Loaded, crate::ConfigErrors> {
        TunnelConfig::from_yaml_str(yaml, Path::new("test.yml"))
    }

    #[test]
    fn health_checks_have_defaults_and_rules_override_them_key_by_key() {
        let loaded = load(
            "originRequest:\n  healthCheck:\n    interval: 5s\n    unhealthyThreshold: 4\n\
             ingress:\n  - hostname: a.test\n    service: [http://a1:80, http://a2:80]\n    \
             originRequest:\n      healthCheck:\n        path: /healthz\n        expectedStatus: 204\n\
             \x20 - service: http_status:404\n",
        )
        .unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let rule = &loaded.config.ingress.rules()[0];
        let check = rule.origin_request().health_check.clone().unwrap();
        assert_eq!(check.path, "/healthz");
        assert_eq!(check.interval, Duration::from_secs(5));
        assert_eq!(check.timeout, Duration::from_secs(2));
        assert_eq!(check.expected_status, Some(204));
        assert_eq!(check.unhealthy_threshold.get(), 4);
        assert_eq!(check.healthy_threshold.get(), 2);
        assert!(check.accepts(204) && !check.accepts(200));
        assert!(HealthCheck::default().accepts(404) && !HealthCheck::default().accepts(503));
        let services: Vec<String> = rule.services().map(|s| s.to_string()).collect();
        assert_eq!(services, ["http://a1:80", "http://a2:80"]);
        assert_eq!(rule.service().to_string(), "http://a1:80");
    }

    #[test]
    fn bad_health_check_values_are_errors_and_unknown_keys_warnings() {
        let errors = load(
            "ingress:\n  - service: http://a:80\n    originRequest:\n      healthCheck:\n        \
             path: healthz\n        interval: 0s\n        expectedStatus: 700\n        \
             healthyThreshold: 0\n",
        )
        .unwrap_err()
        .to_string();
        for key in ["path", "interval", "expectedStatus", "healthyThreshold"] {
            assert!(
                errors.contains(&format!("healthCheck.{key}")),
                "{key}: {errors}"
            );
        }
        let loaded = load(
            "ingress:\n  - service: http://a:80\n    originRequest:\n      healthCheck:\n        \
             intervall: 5s\n",
        )
        .unwrap();
        let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("intervall") && w.contains("interval")),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_service_list_must_hold_urls_of_one_kind() {
        let errors = load("ingress:\n  - service: [http://a:80, https://b:443]\n")
            .unwrap_err()
            .to_string();
        assert!(errors.contains("not of the same kind"), "{errors}");
    }
}
