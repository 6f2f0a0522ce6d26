//! `host:port` values (`metrics`, `edge`): a name or an IP address, and a port.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A `host:port` pair where the host may be a name (`localhost:20241`) or an IP address
/// (`127.0.0.1:20241`, `[::1]:20241`). Names are resolved by whoever binds or dials.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: String,
    port: u16,
}

/// Why a `host:port` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostPortError {
    /// No `:port`.
    #[error("missing the port")]
    MissingPort,
    /// The port is not 0–65535.
    #[error("'{0}' is not a port number")]
    BadPort(String),
    /// Nothing before the `:`.
    #[error("missing the host")]
    MissingHost,
    /// A host with characters no host name has.
    #[error("'{0}' is not a host name or IP address")]
    BadHost(String),
}

impl HostPort {
    /// The host: a name, or an IP address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address, when the host is an IP literal (no resolution needed).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

impl FromStr for HostPort {
    type Err = HostPortError;

    fn from_str(s: &str) -> Result<HostPort, HostPortError> {
        let s = s.trim();
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(HostPort {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        let (host, port) = s.rsplit_once(':').ok_or(HostPortError::MissingPort)?;
        let port = port
            .parse()
            .map_err(|_| HostPortError::BadPort(port.to_owned()))?;
        if host.is_empty() {
            return Err(HostPortError::MissingHost);
        }
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err(HostPortError::BadHost(host.to_owned()));
        }
        Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_ip_literals() {
        let hp: HostPort = "localhost:20241".parse().unwrap();
        assert_eq!((hp.host(), hp.port()), ("localhost", 20241));
        assert_eq!(hp.socket_addr(), None);

        let hp: HostPort = "127.0.0.1:20241".parse().unwrap();
        assert_eq!(hp.socket_addr(), Some("127.0.0.1:20241".parse().unwrap()));

        let hp: HostPort = "[::1]:7844".parse().unwrap();
        assert_eq!(hp.host(), "::1");
        assert_eq!(hp.to_string(), "[::1]:7844");
    }

    #[test]
    fn refuses_missing_or_bad_parts() {
        assert_eq!(
            "localhost".parse::<HostPort>(),
            Err(HostPortError::MissingPort)
        );
        assert_eq!(
            "localhost:http".parse::<HostPort>(),
            Err(HostPortError::BadPort("http".into()))
        );
        assert_eq!(
            ":20241".parse::<HostPort>(),
            Err(HostPortError::MissingHost)
        );
        assert!(matches!(
            "http://x:1".parse::<HostPort>(),
            Err(HostPortError::BadHost(_))
        ));
    }
}
