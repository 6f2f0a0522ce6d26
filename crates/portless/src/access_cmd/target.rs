//! Which application a URL names: its hostname (what tokens are issued and stored for) and
//! the origin to send the browser to.

use anyhow::bail;

/// An application, from `https://host[:port][/path]` or a bare `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The hostname, lowercase, without a trailing dot: the token's audience and file name.
    pub(crate) host: String,
    /// An explicit port (not 443).
    pub(crate) port: Option<u16>,
}

impl Target {
    /// Parses `text`; an error names what is wrong with it.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Target> {
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
            Some((scheme, _)) => bail!(
                "{text:?}: the access client talks to the edge over HTTPS; use https://, not {scheme}://"
            ),
            None => text,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            bail!("{text:?}: a URL with user info is not an application address");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().map_err(|_| {
                    anyhow::anyhow!("{text:?}: the port {port:?} is not a number from 1 to 65535")
                })?;
                (host, (port != 443).then_some(port))
            }
            None => (authority, None),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && !host.starts_with(['.', '-'])
            && !host.contains("..")
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid {
            bail!(
                "{text:?}: {host:?} is not a hostname (letters, digits, '-' and '.'), e.g. https://app.example.com"
            );
        }
        Ok(Target { host, port })
    }

    /// `https://host[:port]`, no trailing slash.
    pub(crate) fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("https://{}:{port}", self.host),
            None => format!("https://{}", self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_bare_hosts_name_the_application() {
        let t = Target::parse("https://App.Example.com/x?y=1").unwrap();
        assert_eq!(t.host, "app.example.com");
        assert_eq!(t.port, None);
        assert_eq!(t.origin(), "https://app.example.com");
        let t = Target::parse("app.test:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("app.test", Some(8443)));
        assert_eq!(t.origin(), "https://app.test:8443");
        assert_eq!(Target::parse("https://a.test:443").unwrap().port, None);
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (bad, says) in [
            ("http://app.test", "use https://"),
            ("https://../etc", "not a hostname"),
            ("https://u@app.test", "user info"),
            ("https://app.test:99999", "not a number"),
            ("", "not a hostname"),
        ] {
            match Target::parse(bad) {
                Ok(t) => panic!("{bad:?} accepted as {t:?}"),
                Err(e) => assert!(e.to_string().contains(says), "{bad:?}: {e}"),
            }
        }
    }
}
