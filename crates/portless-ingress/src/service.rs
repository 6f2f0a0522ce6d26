//! A rule's `service`: where the connector sends what the rule matched.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use http::uri::{Authority, Scheme};
use http::{StatusCode, Uri};

/// What a rule proxies to (its `service:` value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    /// An HTTP origin: `http://`, `https://`, `ws://` (same as http), `wss://` (same as
    /// https). `origin` holds only the scheme (`http` or `https`) and authority, its path is
    /// always `/`: the request's own path replaces it at proxy time.
    Http {
        /// `http://host:port/` or `https://host:port/`.
        origin: Uri,
        /// Whether the connector speaks TLS to the origin.
        tls: bool,
    },
    /// An HTTP origin on a Unix socket: `unix:/path.sock` or `unix+tls:/path.sock`.
    Unix {
        /// The socket path.
        path: PathBuf,
        /// Whether the connector speaks TLS over the socket.
        tls: bool,
    },
    /// Answer every request with this status and no origin: `http_status:404`.
    HttpStatus(StatusCode),
    /// The built-in test page: `hello_world` or `hello-world`.
    HelloWorld,
    /// Raw TCP carried over a WebSocket from the access client: `ssh://`, `rdp://`,
    /// `smb://`, `tcp://`.
    Tcp {
        /// Which scheme was written; decides the default port.
        kind: TcpKind,
        /// `host:port`, with the kind's default port filled in.
        authority: Authority,
    },
    /// UDP datagrams from a public UDP port of the edge: `udp://host:port` (no default
    /// port). The edge opens one upgraded stream per client flow; the connector relays the
    /// flow's datagrams to and from the origin over a connected socket.
    Udp {
        /// `host:port`.
        authority: Authority,
    },
    /// TCP to a destination chosen by the client in a request header: `bastion`.
    Bastion,
    /// A SOCKS5 proxy filtered by `originRequest.ipRules`: `socks-proxy`.
    SocksProxy,
}

/// The scheme of a [`Service::Tcp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpKind {
    /// `ssh://`, default port 22.
    Ssh,
    /// `rdp://`, default port 3389.
    Rdp,
    /// `smb://`, default port 445.
    Smb,
    /// `tcp://`, no default port.
    Tcp,
}

impl TcpKind {
    /// The port used when the service names none (`None` for plain `tcp://`).
    pub fn default_port(self) -> Option<u16> {
        match self {
            TcpKind::Ssh => Some(22),
            TcpKind::Rdp => Some(3389),
            TcpKind::Smb => Some(445),
            TcpKind::Tcp => None,
        }
    }

    /// The scheme as written in a config file.
    pub fn scheme(self) -> &'static str {
        match self {
            TcpKind::Ssh => "ssh",
            TcpKind::Rdp => "rdp",
            TcpKind::Smb => "smb",
            TcpKind::Tcp => "tcp",
        }
    }
}

/// Why a `service` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No `scheme://host`, e.g. a bare `localhost:8000`.
    #[error("{service} is an invalid address, please make sure it has a scheme and a hostname")]
    NoSchemeOrHost {
        /// The value as written.
        service: String,
    },
    /// A path or query after the host.
    #[error(
        "{service} is an invalid address, ingress rules don't support proxying to a different path on the origin service. The path will be the same as the HTTP request's path"
    )]
    HasPath {
        /// The value as written.
        service: String,
        /// The path (and query) part.
        path: String,
    },
    /// `http_status:` with something that is not 100–999.
    #[error("invalid HTTP status code: {value}")]
    InvalidStatus {
        /// What followed `http_status:`.
        value: String,
    },
    /// A scheme that is not a service kind.
    #[error("{service} has an unsupported scheme '{scheme}'")]
    UnsupportedScheme {
        /// The value as written.
        service: String,
        /// The scheme.
        scheme: String,
    },
    /// `tcp://host` or `udp://host` without a port: neither has a default port.
    #[error("{service} has no port, and {scheme}:// services have no default port")]
    MissingPort {
        /// `tcp` or `udp`.
        scheme: &'static str,
        /// The value as written.
        service: String,
    },
    /// `unix:` with nothing after it.
    #[error("{service} does not name a socket path")]
    EmptySocketPath {
        /// The value as written.
        service: String,
    },
    /// `service: []`.
    #[error("the service list is empty")]
    EmptyList,
    /// A list entry that cannot share a rule with other origins (only URLs can).
    #[error("{service} cannot be one of several origins of a rule")]
    NotListable {
        /// The entry as written.
        service: String,
    },
    /// List entries of different kinds (`http://` with `https://`, `ssh://` with `tcp://`).
    #[error("{service} is not of the same kind as {first}, the list's first origin")]
    MixedList {
        /// The first entry.
        first: String,
        /// The entry that differs.
        service: String,
    },
    /// A URL that does not parse.
    #[error("{service} is an invalid address: {reason}")]
    Invalid {
        /// The value as written.
        service: String,
        /// The URL parser's message.
        reason: String,
    },
}

impl ServiceError {
    /// A suggested fix.
    pub fn fix(&self) -> String {
        match self {
            ServiceError::NoSchemeOrHost { service } => no_scheme_fix(service),
            ServiceError::HasPath { service, path } => {
                let bare = service.strip_suffix(path.as_str()).unwrap_or(service);
                format!(
                    "write `service: {bare}`; the origin receives the request's own path (match \
                     paths with the rule's `path` key)"
                )
            }
            ServiceError::InvalidStatus { .. } => {
                "use a status code from 100 to 999, e.g. `http_status:404`".into()
            }
            ServiceError::UnsupportedScheme { .. } => {
                "use http://, https://, ws://, wss://, ssh://, rdp://, smb://, tcp://, udp://, \
                 unix:, unix+tls:, http_status:NNN, hello_world, bastion or socks-proxy"
                    .into()
            }
            ServiceError::MissingPort { service, scheme } => {
                let example = if *scheme == "udp" { 53 } else { 5432 };
                format!("add the port, e.g. `{service}:{example}`")
            }
            ServiceError::EmptySocketPath { .. } => {
                "write the socket's path, e.g. `unix:/run/app.sock`".into()
            }
            ServiceError::Invalid { .. } => {
                "write a URL like `http://localhost:8000` (scheme, host, optional port)".into()
            }
            ServiceError::EmptyList => {
                "list at least one origin, e.g. `service: [http://app-1:8000, http://app-2:8000]`"
                    .into()
            }
            ServiceError::NotListable { .. } => {
                "list only http(s):// or ssh/rdp/smb/tcp:// URLs, or give this service its own rule"
                    .into()
            }
            ServiceError::MixedList { first, .. } => {
                format!("use the scheme of {first} for every origin of this rule")
            }
        }
    }
}

/// `localhost:8000` → suggest `http://localhost:8000`; `8000` → `http://localhost:8000`.
fn no_scheme_fix(service: &str) -> String {
    let suggestion = if !service.is_empty() && service.bytes().all(|b| b.is_ascii_digit()) {
        format!("http://localhost:{service}")
    } else if !service.is_empty() && !service.contains("://") {
        format!("http://{service}")
    } else {
        "http://localhost:8000".to_owned()
    };
    format!("add the scheme, e.g. `service: {suggestion}`")
}

// === impl Service ===

impl Service {
    /// Parses a list of origins for one rule: every entry an HTTP(S) or TCP URL, all of the
    /// same kind (so the rule's options mean the same thing for each).
    pub(crate) fn parse_list(written: &[String]) -> Result<Vec<Service>, ServiceError> {
        let services = written
            .iter()
            .map(|s| s.parse::<Service>())
            .collect::<Result<Vec<_>, _>>()?;
        let (Some(first), Some(first_text)) = (services.first(), written.first()) else {
            return Err(ServiceError::EmptyList);
        };
        if services.len() == 1 {
            return Ok(services);
        }
        for (service, text) in services.iter().zip(written) {
            let same = match (first, service) {
                (Service::Http { tls: a, .. }, Service::Http { tls: b, .. }) => a == b,
                (Service::Tcp { kind: a, .. }, Service::Tcp { kind: b, .. }) => a == b,
                (_, Service::Http { .. } | Service::Tcp { .. }) => false,
                _ => {
                    return Err(ServiceError::NotListable {
                        service: text.trim().to_owned(),
                    });
                }
            };
            if !same {
                return Err(ServiceError::MixedList {
                    first: first_text.trim().to_owned(),
                    service: text.trim().to_owned(),
                });
            }
        }
        Ok(services)
    }
}

impl FromStr for Service {
    type Err = ServiceError;

    fn from_str(written: &str) -> Result<Service, ServiceError> {
        let s = written.trim();
        match s {
            "hello_world" | "hello-world" => return Ok(Service::HelloWorld),
            "bastion" => return Ok(Service::Bastion),
            "socks-proxy" => return Ok(Service::SocksProxy),
            _ => {}
        }
        if let Some(code) = s.strip_prefix("http_status:") {
            return parse_status(code).map(Service::HttpStatus);
        }
        // `unix+tls:` first: `unix:` is its prefix.
        if let Some(path) = s.strip_prefix("unix+tls:") {
            return parse_unix(s, path, true);
        }
        if let Some(path) = s.strip_prefix("unix:") {
            return parse_unix(s, path, false);
        }
        parse_url(s)
    }
}

fn parse_status(code: &str) -> Result<StatusCode, ServiceError> {
    let invalid = || ServiceError::InvalidStatus {
        value: code.to_owned(),
    };
    let number: u16 = code.trim().parse().map_err(|_| invalid())?;
    // StatusCode accepts exactly 100..=999, the range the format allows.
    StatusCode::from_u16(number).map_err(|_| invalid())
}

fn parse_unix(service: &str, path: &str, tls: bool) -> Result<Service, ServiceError> {
    // `unix:///run/x.sock` is a common spelling of `unix:/run/x.sock`.
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err(ServiceError::EmptySocketPath {
            service: service.to_owned(),
        });
    }
    Ok(Service::Unix {
        path: PathBuf::from(path),
        tls,
    })
}

fn parse_url(service: &str) -> Result<Service, ServiceError> {
    let no_scheme = || ServiceError::NoSchemeOrHost {
        service: service.to_owned(),
    };
    if !service.contains("://") {
        return Err(no_scheme());
    }
    let uri: Uri = service.parse().map_err(|e: http::uri::InvalidUri| {
        // `http://` alone fails to parse; it lacks a host rather than being malformed.
        if service.ends_with("://") {
            no_scheme()
        } else {
            ServiceError::Invalid {
                service: service.to_owned(),
                reason: e.to_string(),
            }
        }
    })?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(no_scheme());
    };
    if authority.host().is_empty() {
        return Err(no_scheme());
    }
    if let Some(path) = uri.path_and_query().map(|p| p.as_str())
        && !path.is_empty()
        && path != "/"
    {
        return Err(ServiceError::HasPath {
            service: service.to_owned(),
            path: path.to_owned(),
        });
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "ws" => http_origin(service, Scheme::HTTP, authority.clone(), false),
        "https" | "wss" => http_origin(service, Scheme::HTTPS, authority.clone(), true),
        "ssh" => tcp(service, TcpKind::Ssh, authority),
        "rdp" => tcp(service, TcpKind::Rdp, authority),
        "smb" => tcp(service, TcpKind::Smb, authority),
        "tcp" => tcp(service, TcpKind::Tcp, authority),
        "udp" => udp(service, authority),
        _ => Err(ServiceError::UnsupportedScheme {
            service: service.to_owned(),
            scheme,
        }),
    }
}

fn http_origin(
    service: &str,
    scheme: Scheme,
    authority: Authority,
    tls: bool,
) -> Result<Service, ServiceError> {
    let origin = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|e| ServiceError::Invalid {
            service: service.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Service::Http { origin, tls })
}

fn tcp(service: &str, kind: TcpKind, authority: &Authority) -> Result<Service, ServiceError> {
    if authority.port().is_some() {
        return Ok(Service::Tcp {
            kind,
            authority: authority.clone(),
        });
    }
    let port = kind
        .default_port()
        .ok_or_else(|| ServiceError::MissingPort {
            scheme: "tcp",
            service: service.to_owned(),
        })?;
    let authority =
        format!("{}:{port}", authority.host())
            .parse()
            .map_err(|e: http::uri::InvalidUri| ServiceError::Invalid {
                service: service.to_owned(),
                reason: e.to_string(),
            })?;
    Ok(Service::Tcp { kind, authority })
}

/// `udp://host:port`: the port is required (UDP services have no conventional default).
fn udp(service: &str, authority: &Authority) -> Result<Service, ServiceError> {
    if authority.port().is_none() {
        return Err(ServiceError::MissingPort {
            scheme: "udp",
            service: service.to_owned(),
        });
    }
    Ok(Service::Udp {
        authority: authority.clone(),
    })
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Http { origin, .. } => {
                let scheme = origin.scheme_str().unwrap_or("http");
                let authority = origin.authority().map_or("", |a| a.as_str());
                write!(f, "{scheme}://{authority}")
            }
            Service::Unix { path, tls: false } => write!(f, "unix:{}", path.display()),
            Service::Unix { path, tls: true } => write!(f, "unix+tls:{}", path.display()),
            Service::HttpStatus(code) => write!(f, "http_status:{}", code.as_u16()),
            Service::HelloWorld => f.write_str("hello_world"),
            Service::Tcp { kind, authority } => write!(f, "{}://{authority}", kind.scheme()),
            Service::Udp { authority } => write!(f, "udp://{authority}"),
            Service::Bastion => f.write_str("bastion"),
            Service::SocksProxy => f.write_str("socks-proxy"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(s: &str) -> Service {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn http_kinds_keep_only_scheme_and_authority() {
        for (written, shown, tls) in [
            ("http://localhost:8000", "http://localhost:8000", false),
            ("https://localhost:8443/", "https://localhost:8443", true),
            ("ws://127.0.0.1:9000", "http://127.0.0.1:9000", false),
            ("wss://chat.internal", "https://chat.internal", true),
            ("HTTP://[::1]:80", "http://[::1]:80", false),
        ] {
            let parsed = service(written);
            assert_eq!(parsed.to_string(), shown, "{written}");
            assert!(matches!(parsed, Service::Http { tls: t, .. } if t == tls));
        }
    }

    #[test]
    fn tcp_kinds_fill_default_ports() {
        for (written, shown) in [
            ("ssh://localhost", "ssh://localhost:22"),
            ("ssh://localhost:2222", "ssh://localhost:2222"),
            ("rdp://10.0.0.5", "rdp://10.0.0.5:3389"),
            ("smb://nas", "smb://nas:445"),
            ("tcp://db:5432", "tcp://db:5432"),
        ] {
            assert_eq!(service(written).to_string(), shown);
        }
        assert!(matches!(
            "tcp://db".parse::<Service>(),
            Err(ServiceError::MissingPort { .. })
        ));
    }

    #[test]
    fn udp_services_need_a_port() {
        assert_eq!(
            service("udp://game.internal:27015").to_string(),
            "udp://game.internal:27015"
        );
        assert_eq!(service("UDP://[::1]:53").to_string(), "udp://[::1]:53");
        assert!(matches!(service("udp://10.0.0.5:53"), Service::Udp { .. }));
        let err = "udp://dns".parse::<Service>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "udp://dns has no port, and udp:// services have no default port"
        );
        assert_eq!(err.fix(), "add the port, e.g. `udp://dns:53`");
        assert!(matches!(
            "udp://dns:53/x".parse::<Service>(),
            Err(ServiceError::HasPath { .. })
        ));
    }

    #[test]
    fn keyword_services() {
        assert_eq!(service("hello_world"), Service::HelloWorld);
        assert_eq!(service("hello-world"), Service::HelloWorld);
        assert_eq!(service("bastion"), Service::Bastion);
        assert_eq!(service("socks-proxy"), Service::SocksProxy);
        assert_eq!(
            service("http_status:404"),
            Service::HttpStatus(StatusCode::NOT_FOUND)
        );
        assert_eq!(service("http_status:999").to_string(), "http_status:999");
    }

    #[test]
    fn unix_sockets() {
        assert_eq!(
            service("unix:/run/app.sock"),
            Service::Unix {
                path: "/run/app.sock".into(),
                tls: false
            }
        );
        assert_eq!(
            service("unix+tls:/run/app.sock").to_string(),
            "unix+tls:/run/app.sock"
        );
        assert_eq!(
            service("unix:///run/a.sock").to_string(),
            "unix:/run/a.sock"
        );
        assert!(matches!(
            "unix:".parse::<Service>(),
            Err(ServiceError::EmptySocketPath { .. })
        ));
    }

    #[test]
    fn bare_host_port_is_refused_with_a_scheme_suggestion() {
        let err = "localhost:8000".parse::<Service>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "localhost:8000 is an invalid address, please make sure it has a scheme and a hostname"
        );
        assert_eq!(
            err.fix(),
            "add the scheme, e.g. `service: http://localhost:8000`"
        );
        assert!(matches!(
            "http://".parse::<Service>(),
            Err(ServiceError::NoSchemeOrHost { .. })
        ));
    }

    #[test]
    fn paths_are_refused() {
        let err = "http://localhost:8000/api?x=1"
            .parse::<Service>()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("don't support proxying to a different path")
        );
        assert!(
            err.fix()
                .starts_with("write `service: http://localhost:8000`")
        );
    }

    #[test]
    fn status_codes_outside_100_to_999_are_refused() {
        for bad in [
            "http_status:99",
            "http_status:1000",
            "http_status:abc",
            "http_status:",
        ] {
            assert!(
                matches!(
                    bad.parse::<Service>(),
                    Err(ServiceError::InvalidStatus { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn lists_hold_origins_of_one_kind() {
        let list = |items: &[&str]| {
            let owned: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
            Service::parse_list(&owned)
        };
        assert_eq!(
            list(&["http://a:80", "ws://b:80"]).unwrap().len(),
            2,
            "ws:// is http://"
        );
        assert_eq!(list(&["tcp://a:1", "tcp://b:2"]).unwrap().len(), 2);
        assert!(matches!(list(&[]), Err(ServiceError::EmptyList)));
        assert!(matches!(
            list(&["http://a:80", "https://b:443"]),
            Err(ServiceError::MixedList { .. })
        ));
        assert!(matches!(
            list(&["ssh://a", "tcp://b:22"]),
            Err(ServiceError::MixedList { .. })
        ));
        assert!(matches!(
            list(&["hello_world", "hello_world"]),
            Err(ServiceError::NotListable { .. })
        ));
        assert_eq!(list(&["hello_world"]).unwrap(), vec![Service::HelloWorld]);
        assert!(
            matches!(
                list(&["udp://a:53", "udp://b:53"]),
                Err(ServiceError::NotListable { .. })
            ),
            "a UDP flow has one origin"
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(
            "ftp://files:21".parse::<Service>(),
            Err(ServiceError::UnsupportedScheme { .. })
        ));
    }
}
