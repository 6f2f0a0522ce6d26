//! Raw config → [`TunnelConfig`]: every check, collecting all problems rather than stopping
//! at the first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;
use secrecy::SecretString;
use serde_saphyr::{Location, Spanned};

use crate::addr::HostPort;
use crate::choice::UnknownChoice;
use crate::config::{Tag, TunnelConfig, TunnelRef, WarpRouting};
use crate::diagnostic::{ConfigError, ConfigErrorKind, Position, Warning, WarningKind};
use crate::duration::{GracePeriod, parse_duration};
use crate::hostname::HostPattern;
use crate::keys::key_label;
use crate::matcher::Ingress;
use crate::origin_request::OriginRequest;
use crate::raw::{RawConfig, RawRule, RawWarpRouting, ServiceList, Text};
use crate::rule::IngressRule;
use crate::service::Service;

// === Checker ===

/// Collects errors and warnings for one file, and parses single values the same way
/// everywhere (so every bad duration gets the same message and fix).
pub(crate) struct Checker<'a> {
    file: &'a Path,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<Warning>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a Path) -> Self {
        Checker {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, at: &Location, kind: ConfigErrorKind) {
        self.error_at(Position::from_location(*at), kind);
    }

    pub(crate) fn error_at(&mut self, at: Option<Position>, kind: ConfigErrorKind) {
        self.errors.push(ConfigError::new(self.file, at, kind));
    }

    fn warn(&mut self, at: Option<Position>, kind: WarningKind) {
        if let Some(position) = at {
            self.warnings.push(Warning::new(self.file, position, kind));
        }
    }

    /// A duration; `None` when absent or invalid (invalid is reported).
    pub(crate) fn duration(&mut self, key: &str, value: Option<&Text>) -> Option<Duration> {
        let value = value?;
        let parsed = parse_duration(&value.value);
        if parsed.is_none() {
            let kind = ConfigErrorKind::InvalidDuration {
                key: key.to_owned(),
                value: value.value.clone(),
            };
            self.error(&value.referenced, kind);
        }
        parsed
    }

    /// An integer within `min..=max`; `None` when absent or out of range (reported).
    pub(crate) fn int_in(
        &mut self,
        key: &str,
        value: Option<&Spanned<i64>>,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let value = value?;
        if (min..=max).contains(&value.value) {
            return Some(value.value);
        }
        let kind = ConfigErrorKind::OutOfRange {
            key: key.to_owned(),
            value: value.value,
            min,
            max,
        };
        self.error(&value.referenced, kind);
        None
    }

    /// A trimmed string that must not be empty; `None` when absent or empty (reported).
    pub(crate) fn non_empty(&mut self, key: &str, value: Option<&Text>) -> Option<String> {
        let value = value?;
        let trimmed = value.value.trim();
        if trimmed.is_empty() {
            let kind = ConfigErrorKind::Empty {
                key: key.to_owned(),
            };
            self.error(&value.referenced, kind);
            return None;
        }
        Some(trimmed.to_owned())
    }

    /// One of a fixed set of words.
    pub(crate) fn choice<T: FromStr<Err = UnknownChoice>>(
        &mut self,
        key: &str,
        value: Option<&Text>,
    ) -> Option<T> {
        let value = value?;
        match value.value.parse() {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                let kind = ConfigErrorKind::InvalidChoice {
                    key: key.to_owned(),
                    value: value.value.clone(),
                    choices: e.choices(),
                };
                self.error(&value.referenced, kind);
                None
            }
        }
    }

    /// A `host:port` or IP address; `example` shows the expected shape in the fix.
    fn address<T: FromStr>(
        &mut self,
        key: &str,
        value: Option<&Text>,
        example: &'static str,
    ) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        let value = value?;
        match value.value.trim().parse() {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                let kind = ConfigErrorKind::InvalidAddress {
                    key: key.to_owned(),
                    value: value.value.clone(),
                    reason: e.to_string(),
                    example,
                };
                self.error(&value.referenced, kind);
                None
            }
        }
    }

    fn path(&mut self, key: &str, value: Option<&Text>) -> Option<PathBuf> {
        self.non_empty(key, value).map(PathBuf::from)
    }

    fn secret(&mut self, key: &str, value: Option<&Text>) -> Option<SecretString> {
        self.non_empty(key, value).map(SecretString::from)
    }
}

// === the whole file ===

/// Validates everything; `None` if any error was reported to `ck`.
pub(crate) fn validate(
    raw: RawConfig,
    source: &Path,
    ck: &mut Checker<'_>,
) -> Option<TunnelConfig> {
    let top = |key: &str| key_label(key, None);
    let mut origin_request = OriginRequest::default();
    if let Some(raw_origin) = &raw.origin_request {
        origin_request.apply(raw_origin, None, ck);
    }
    let ingress = validate_ingress(raw.ingress, &origin_request, ck);
    // A flat list of fields, one check each. `ingress?` comes last so that every other
    // field has been checked (and its errors collected) even when the rules are invalid.
    let config = TunnelConfig {
        source: source.to_path_buf(),
        tunnel: ck
            .non_empty(&top("tunnel"), raw.tunnel.as_ref())
            .map(|t| TunnelRef::parse(&t)),
        credentials_file: ck.path(&top("credentials-file"), raw.credentials_file.as_ref()),
        credentials_contents: ck.secret(
            &top("credentials-contents"),
            raw.credentials_contents.as_ref(),
        ),
        token: ck.secret(&top("token"), raw.token.as_ref()),
        token_file: ck.path(&top("token-file"), raw.token_file.as_ref()),
        protocol: ck
            .choice(&top("protocol"), raw.protocol.as_ref())
            .unwrap_or_default(),
        post_quantum: raw.post_quantum.unwrap_or(false),
        ha_connections: ha_connections(raw.ha_connections.as_ref(), ck),
        retries: ck
            .int_in(&top("retries"), raw.retries.as_ref(), 0, u32::MAX.into())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(TunnelConfig::DEFAULT_RETRIES),
        grace_period: grace_period(raw.grace_period.as_ref(), ck),
        edge_ip_version: ck
            .choice(&top("edge-ip-version"), raw.edge_ip_version.as_ref())
            .unwrap_or_default(),
        edge_bind_address: ck.address::<IpAddr>(
            &top("edge-bind-address"),
            raw.edge_bind_address.as_ref(),
            "192.0.2.10",
        ),
        metrics: ck.address::<HostPort>(&top("metrics"), raw.metrics.as_ref(), "127.0.0.1:20241"),
        no_autoupdate: raw.no_autoupdate.unwrap_or(false),
        pidfile: ck.path(&top("pidfile"), raw.pidfile.as_ref()),
        loglevel: ck
            .choice(&top("loglevel"), raw.loglevel.as_ref())
            .unwrap_or_default(),
        logfile: ck.path(&top("logfile"), raw.logfile.as_ref()),
        log_directory: ck.path(&top("log-directory"), raw.log_directory.as_ref()),
        output: ck
            .choice(&top("output"), raw.output.as_ref())
            .unwrap_or_default(),
        label: ck.non_empty(&top("label"), raw.label.as_ref()),
        tags: tags(raw.tag, ck),
        edge: ck.address::<HostPort>(&top("edge"), raw.edge.as_ref(), "edge.example.com:7844"),
        origin_request,
        warp_routing: warp_routing(raw.warp_routing.as_ref(), ck),
        ingress: ingress?,
    };
    ck.errors.is_empty().then_some(config)
}

fn ha_connections(value: Option<&Spanned<i64>>, ck: &mut Checker<'_>) -> NonZeroU32 {
    ck.int_in(
        &key_label("ha-connections", None),
        value,
        1,
        u32::MAX.into(),
    )
    .and_then(|n| u32::try_from(n).ok())
    .and_then(NonZeroU32::new)
    .unwrap_or(TunnelConfig::DEFAULT_HA_CONNECTIONS)
}

fn grace_period(value: Option<&Text>, ck: &mut Checker<'_>) -> GracePeriod {
    let Some(duration) = ck.duration(&key_label("grace-period", None), value) else {
        return GracePeriod::default();
    };
    GracePeriod::new(duration).unwrap_or_else(|| {
        if let Some(value) = value {
            let kind = ConfigErrorKind::GracePeriodTooLong {
                value: value.value.clone(),
            };
            ck.error(&value.referenced, kind);
        }
        GracePeriod::default()
    })
}

fn tags(raw: Option<Spanned<crate::raw::OneOrMany>>, ck: &mut Checker<'_>) -> Vec<Tag> {
    let Some(raw) = raw else { return Vec::new() };
    let mut tags = Vec::new();
    for text in raw.value.to_vec() {
        match text.parse() {
            Ok(tag) => tags.push(tag),
            Err(()) => ck.error(&raw.referenced, ConfigErrorKind::InvalidTag { value: text }),
        }
    }
    tags
}

fn warp_routing(raw: Option<&RawWarpRouting>, ck: &mut Checker<'_>) -> WarpRouting {
    let mut warp = WarpRouting::default();
    let Some(raw) = raw else { return warp };
    let key = |name: &str| key_label(&format!("warp-routing.{name}"), None);
    warp.enabled = raw.enabled.unwrap_or(warp.enabled);
    if let Some(d) = ck.duration(&key("connectTimeout"), raw.connect_timeout.as_ref()) {
        warp.connect_timeout = d;
    }
    if let Some(d) = ck.duration(&key("tcpKeepAlive"), raw.tcp_keep_alive.as_ref()) {
        warp.tcp_keep_alive = d;
    }
    let flows = ck.int_in(
        &key("maxActiveFlows"),
        raw.max_active_flows.as_ref(),
        0,
        i64::MAX,
    );
    warp.max_active_flows = flows
        .and_then(|n| u64::try_from(n).ok())
        .and_then(NonZeroU64::new);
    warp
}

// === ingress ===

type RawRules = Option<Spanned<Vec<Spanned<RawRule>>>>;

/// Validates every rule; `None` if any rule is invalid or the list is not well formed.
fn validate_ingress(
    raw: RawRules,
    defaults: &OriginRequest,
    ck: &mut Checker<'_>,
) -> Option<Ingress> {
    let Some(list) = raw else {
        ck.error_at(None, ConfigErrorKind::NoRules);
        return None;
    };
    if list.value.is_empty() {
        ck.error(&list.referenced, ConfigErrorKind::NoRules);
        return None;
    }
    let errors_before = ck.errors.len();
    let last = list.value.len() - 1;
    let mut rules = Vec::with_capacity(list.value.len());
    for (index, raw_rule) in list.value.iter().enumerate() {
        check_catch_all_position(index, last, raw_rule, ck);
        if let Some(rule) = validate_rule(index + 1, raw_rule, defaults, ck) {
            rules.push(rule);
        }
    }
    if ck.errors.len() > errors_before {
        return None;
    }
    warn_unreachable(&rules, ck);
    let ingress = Ingress::new(rules);
    if ingress.is_none() {
        // Already reported by `check_catch_all_position`; kept so an impossible state cannot
        // slip through silently.
        ck.error(&list.referenced, ConfigErrorKind::LastRuleNotCatchAll);
    }
    ingress
}

/// The catch-all must be last, and the last rule must be a catch-all. Decided on the text as
/// written, so it is reported even when the same rule has other errors.
fn check_catch_all_position(
    index: usize,
    last: usize,
    rule: &Spanned<RawRule>,
    ck: &mut Checker<'_>,
) {
    let hostname = rule.value.hostname.as_ref();
    let any_host = hostname.is_none_or(|h| matches!(h.value.trim(), "" | "*"));
    let no_path = rule.value.path.as_ref().is_none_or(|p| p.value.is_empty());
    let catch_all = any_host && no_path;
    if catch_all && index != last {
        let kind = ConfigErrorKind::CatchAllNotLast {
            rule: index + 1,
            hostname: hostname.map(|h| h.value.clone()).unwrap_or_default(),
        };
        ck.error(hostname.map_or(&rule.referenced, |h| &h.referenced), kind);
    }
    if !catch_all && index == last {
        ck.error(&rule.referenced, ConfigErrorKind::LastRuleNotCatchAll);
    }
}

fn validate_rule(
    number: usize,
    raw: &Spanned<RawRule>,
    defaults: &OriginRequest,
    ck: &mut Checker<'_>,
) -> Option<IngressRule> {
    let rule = &raw.value;
    let hostname = match &rule.hostname {
        None => Some(HostPattern::ANY),
        Some(h) => HostPattern::parse(&h.value)
            .map_err(|e| ck.error(&h.referenced, e.into()))
            .ok(),
    };
    let path = match &rule.path {
        Some(p) if !p.value.is_empty() => match Regex::new(&p.value) {
            Ok(re) => Some(Some(re)),
            Err(e) => {
                let kind = ConfigErrorKind::BadRegex {
                    rule: number,
                    message: e.to_string(),
                };
                ck.error(&p.referenced, kind);
                None
            }
        },
        _ => Some(None),
    };
    let services = match &rule.service {
        None => {
            ck.error(
                &raw.referenced,
                ConfigErrorKind::MissingService { rule: number },
            );
            None
        }
        Some(s) => {
            let parsed = match &s.value {
                ServiceList::One(one) => one.parse::<Service>().map(|one| vec![one]),
                ServiceList::Many(many) => Service::parse_list(many),
            };
            parsed.map_err(|e| ck.error(&s.referenced, e.into())).ok()
        }
    };
    let mut origin_request = defaults.clone();
    if let Some(own) = &rule.origin_request {
        origin_request.apply(own, Some(number), ck);
    }
    let mut services = services?.into_iter();
    Some(IngressRule {
        hostname: hostname?,
        path: path?,
        service: services.next()?,
        more_services: services.collect(),
        origin_request,
        position: Position::from_location(raw.referenced),
    })
}

/// Warns about rules that an earlier path-less rule always takes first: the same exact
/// host, or a host under an earlier `*.` wildcard.
fn warn_unreachable(rules: &[IngressRule], ck: &mut Checker<'_>) {
    let mut exact: HashMap<&str, usize> = HashMap::new();
    let mut wildcard: HashMap<&str, usize> = HashMap::new();
    for (index, rule) in rules.iter().enumerate() {
        let pattern = rule.hostname();
        let (own, parents_of) = match (pattern.exact(), pattern.wildcard_suffix()) {
            (Some(host), _) => (exact.get(host).copied(), host),
            (None, Some(suffix)) => (wildcard.get(suffix).copied(), suffix),
            (None, None) => continue,
        };
        let shadow = own.or_else(|| {
            parents_of
                .match_indices('.')
                .find_map(|(dot, _)| wildcard.get(&parents_of[dot + 1..]).copied())
        });
        if let Some(by) = shadow {
            let kind = WarningKind::UnreachableRule {
                rule: index + 1,
                by: by + 1,
                hostname: pattern.to_string(),
            };
            ck.warn(rule.position, kind);
            continue;
        }
        if rule.path().is_none() {
            if let Some(host) = pattern.exact() {
                exact.entry(host).or_insert(index);
            }
            if let Some(suffix) = pattern.wildcard_suffix() {
                wildcard.entry(suffix).or_insert(index);
            }
        }
    }
}
