//! `tls:`: the public listener's certificates (static files, ACME) and HSTS.
//!
//! The section is read here so a file holding it loads with the rest; its keys are added
//! together with the code that uses them (each field of [`RawTls`] becomes a known key, and
//! [`validate`] turns it into a field of [`TlsConfig`]).

use serde::Deserialize;

use super::check::Checker;
use super::keys::Section;

/// `tls:` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTls {}

/// The validated `tls:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {}

/// The keys of `tls:` and its nested sections.
pub(crate) static SECTION: Section = Section {
    fields: portless_diagnostics::keys::serde_fields::<RawTls>,
    children: &[],
};

pub(crate) fn validate(raw: RawTls, _ck: &mut Checker) -> TlsConfig {
    let RawTls {} = raw;
    TlsConfig {}
}
