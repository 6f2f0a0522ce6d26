//! `http:`: the plain-HTTP (port 80) listener: redirects to HTTPS and ACME HTTP-01
//! challenges.
//!
//! Only `listen` is read here; further keys are added together with the code that uses them
//! (a field of [`RawHttp`] becomes a known key, [`validate`] fills [`HttpConfig`]).

use std::net::SocketAddr;

use serde::Deserialize;

use super::check::{Checker, Text};
use super::keys::Section;

/// `http:` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHttp {
    pub listen: Option<Text>,
}

/// The validated `http:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Where the plain-HTTP listener listens; `None`: no such listener.
    pub listen: Option<SocketAddr>,
}

/// The keys of `http:`.
pub(crate) static SECTION: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawHttp>,
    children: &[],
};

pub(crate) fn validate(raw: RawHttp, ck: &mut Checker) -> HttpConfig {
    HttpConfig {
        listen: raw
            .listen
            .as_ref()
            .and_then(|text| ck.listen(text, "`listen` of `http`")),
    }
}
