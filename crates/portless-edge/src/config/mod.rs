//! The edge config file (`portless edge --config FILE`, env `PORTLESS_EDGE_CONFIG`): YAML
//! with an optional section per capability. Reference: docs/edge-config.md.
//!
//! Reading is two passes over the text, as for the connector and access files: a bare key
//! tree first (syntax errors, and unknown keys at every depth, with their line and column and
//! a "did you mean"), then typed raw structs, which each section's module validates into the
//! options the edge takes. Every problem found is reported, in file order. A file without
//! any section (or an empty file) is a valid config that changes nothing.
//!
//! Layout: `error` (diagnostics), `keys` (unknown keys), `check` (value parsers shared by the
//! sections), and one module per section: `tls`, `http`, `passthrough`, `ports`.

mod check;
mod error;
mod http;
mod keys;
mod passthrough;
mod ports;
mod tls;

use std::path::Path;

use portless_diagnostics::keys::{Node, serde_fields};
use portless_diagnostics::{Position, is_blank, parser_message};
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use error::{EdgeConfigError, EdgeConfigErrorKind, EdgeConfigErrors};
pub use http::HttpConfig;
pub use passthrough::PassthroughHosts;
pub use tls::TlsConfig;

use crate::ports::{TcpPort, UdpPort};
use check::{Checker, Text};
use keys::{Child, Section};

/// The whole file as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawFile {
    tls: Option<tls::RawTls>,
    http: Option<http::RawHttp>,
    passthrough: Option<Vec<Text>>,
    ports: Option<Vec<Spanned<ports::RawPort>>>,
}

static TOP: Section = Section {
    fields: serde_fields::<RawFile>,
    children: &[
        ("tls", Child::Map("`tls`", &tls::SECTION)),
        ("http", Child::Map("`http`", &http::SECTION)),
        ("ports", Child::List("ports entry", &ports::SECTION)),
    ],
};

/// A validated edge config file.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EdgeConfig {
    /// `tls:`.
    pub tls: TlsConfig,
    /// `http:`.
    pub http: HttpConfig,
    /// `passthrough:`.
    pub passthrough: PassthroughHosts,
    /// The `ports:` entries with `protocol: tcp`, in file order.
    pub tcp_ports: Vec<TcpPort>,
    /// The `ports:` entries with `protocol: udp`, in file order.
    pub udp_ports: Vec<UdpPort>,
}

impl EdgeConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<EdgeConfig, EdgeConfigErrors> {
        let src = std::fs::read_to_string(path).map_err(|source| {
            EdgeConfigErrors::one(EdgeConfigError::new(
                path,
                None,
                EdgeConfigErrorKind::Read { source },
            ))
        })?;
        EdgeConfig::from_yaml_str(&src, path)
    }

    /// Validates config text; `origin` names the file in messages.
    pub fn from_yaml_str(src: &str, origin: &Path) -> Result<EdgeConfig, EdgeConfigErrors> {
        if is_blank(src) {
            return Ok(EdgeConfig::default());
        }
        // Pass 1: the bare key tree: syntax errors and unknown keys.
        let tree: Spanned<Node> = serde_saphyr::from_str(src).map_err(|e| {
            let kind = EdgeConfigErrorKind::Syntax {
                message: parser_message(&e),
            };
            EdgeConfigErrors::one(EdgeConfigError::new(origin, Position::of_error(&e), kind))
        })?;
        let unknown = keys::check(&tree, &TOP, origin);
        if !unknown.is_empty() {
            return Err(EdgeConfigErrors::new(unknown));
        }
        // Pass 2: typed; a failure here is a value of the wrong type.
        let raw: RawFile = serde_saphyr::from_str(src).map_err(|e| {
            let position = Position::of_error(&e);
            let message = parser_message(&e);
            let kind = match position.and_then(|p| keys::key_at(&tree, p)) {
                Some(key) => EdgeConfigErrorKind::WrongType { key, message },
                None => EdgeConfigErrorKind::Syntax { message },
            };
            EdgeConfigErrors::one(EdgeConfigError::new(origin, position, kind))
        })?;
        let mut ck = Checker::new(origin);
        let http = http::validate(raw.http.unwrap_or_default(), &mut ck);
        let tls = tls::validate(raw.tls.unwrap_or_default(), http.listen.is_some(), &mut ck);
        let passthrough = passthrough::validate(raw.passthrough.as_deref().unwrap_or(&[]), &mut ck);
        let ports = ports::validate(raw.ports.as_deref().unwrap_or(&[]), &mut ck);
        if !ck.errors.is_empty() {
            return Err(EdgeConfigErrors::new(ck.errors));
        }
        Ok(EdgeConfig {
            tls,
            http,
            passthrough,
            tcp_ports: ports.tcp,
            udp_ports: ports.udp,
        })
    }
}

#[cfg(test)]
mod tests;
