//! `http:`: the plain-HTTP (port 80) listener: redirects to HTTPS and ACME HTTP-01
//! challenges (docs/certificates.md).

use std::net::SocketAddr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::{Checker, Text};
use super::keys::Section;
use crate::HttpOptions;

/// `http:` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHttp {
    pub listen: Option<Text>,
    pub acme_challenge_to_origin: Option<Spanned<Vec<Text>>>,
    pub https_port: Option<Text>,
}

/// The validated `http:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Where the plain-HTTP listener listens; `None`: no such listener.
    pub listen: Option<SocketAddr>,
    /// Hostnames whose `/.well-known/acme-challenge/` requests go to the origin (canonical).
    pub acme_challenge_to_origin: Vec<String>,
    /// The HTTPS port clients reach, named in redirects; `None`: the port the edge's HTTPS
    /// listener is bound to (set it when a NAT or load balancer maps another port to it).
    pub https_port: Option<u16>,
}

impl HttpConfig {
    /// The edge options this section sets; `bound_https_port` is the public HTTPS listener's
    /// port, named in redirects when it is not 443 and `https_port` is not set.
    pub fn http_options(&self, bound_https_port: u16) -> HttpOptions {
        HttpOptions {
            acme_challenge_to_origin: self.acme_challenge_to_origin.clone(),
            https_port: Some(self.https_port.unwrap_or(bound_https_port)),
        }
    }
}

/// The keys of `http:`.
pub(crate) static SECTION: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawHttp>,
    children: &[],
};

pub(crate) fn validate(raw: RawHttp, ck: &mut Checker) -> HttpConfig {
    let key = "`acme_challenge_to_origin` of `http`";
    HttpConfig {
        listen: raw
            .listen
            .as_ref()
            .and_then(|text| ck.listen(text, "`listen` of `http`")),
        acme_challenge_to_origin: raw
            .acme_challenge_to_origin
            .as_ref()
            .map(|list| {
                list.value
                    .iter()
                    .filter_map(|text| ck.hostname(text, key))
                    .collect()
            })
            .unwrap_or_default(),
        https_port: raw.https_port.as_ref().and_then(|text| {
            ck.count(text, "`https_port` of `http`", 1, usize::from(u16::MAX))
                .and_then(|port| u16::try_from(port).ok())
        }),
    }
}
