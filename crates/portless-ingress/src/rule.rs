//! One validated ingress rule.

use regex::Regex;

use crate::diagnostic::Position;
use crate::hostname::HostPattern;
use crate::origin_request::OriginRequest;
use crate::service::Service;

/// An ingress rule: which requests it takes (`hostname`, `path`) and where they go
/// (`service`, with the merged `originRequest` options).
#[derive(Clone, Debug)]
pub struct IngressRule {
    pub(crate) hostname: HostPattern,
    pub(crate) path: Option<Regex>,
    pub(crate) service: Service,
    /// Further origins after `service` (a `service:` list), of the same kind.
    pub(crate) more_services: Vec<Service>,
    pub(crate) origin_request: OriginRequest,
    pub(crate) position: Option<Position>,
}

impl IngressRule {
    /// The hostname filter (canonical form).
    pub fn hostname(&self) -> &HostPattern {
        &self.hostname
    }

    /// The path regex, searched unanchored in the request's canonical path.
    pub fn path(&self) -> Option<&Regex> {
        self.path.as_ref()
    }

    /// Where matching requests go.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Every origin of the rule: `service` first, then the rest of a `service:` list
    /// (Portless extension; requests spread over the healthy ones).
    pub fn services(&self) -> impl Iterator<Item = &Service> + Clone {
        std::slice::from_ref(&self.service)
            .iter()
            .chain(&self.more_services)
    }

    /// The origin options: the top-level `originRequest` with this rule's overrides applied.
    pub fn origin_request(&self) -> &OriginRequest {
        &self.origin_request
    }

    /// Where the rule starts in the config file.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// Whether the rule takes every request (no hostname, or `*`, and no path).
    pub fn is_catch_all(&self) -> bool {
        self.hostname.is_any() && self.path.is_none()
    }

    /// Whether the rule's hostname matches `host`, which must already be normalized with
    /// [`crate::normalize_host`].
    pub fn matches_host(&self, host: &str) -> bool {
        self.hostname.matches(host)
    }

    /// Whether the rule's path regex (if any) is found in `path`.
    pub fn matches_path(&self, path: &str) -> bool {
        self.path.as_ref().is_none_or(|re| re.is_match(path))
    }
}
