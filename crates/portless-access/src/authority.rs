//! The host and port of a URL authority (`host`, `host:port`, `[v6]:port`), parsed once for
//! both places that take one from outside: `rd` redirect targets and the forward-auth
//! request's original URL. Each caller maps [`AuthorityError`] to its own error, whose
//! message says what to fix.

use portless_proto::canonical_host;

/// Why an authority was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthorityError {
    /// `user@host`: userinfo hides the real host from readers of the URL.
    Userinfo,
    /// A `%` escape: the authority must be written out, not encoded.
    Encoded,
    /// A port that is not a number from 1 to 65535.
    InvalidPort,
    /// A host `canonical_host` refuses.
    InvalidHost,
}

/// The canonical host and the explicit port, if the authority names one.
pub(crate) fn host_and_port(authority: &str) -> Result<(String, Option<u16>), AuthorityError> {
    if authority.contains('@') {
        return Err(AuthorityError::Userinfo);
    }
    if authority.contains('%') {
        return Err(AuthorityError::Encoded);
    }
    // A port of digits out of range is named as such (canonical_host refuses it too, but
    // only as "invalid host").
    let port_text = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, port)| port),
        None => authority.rsplit_once(':').map(|(_, port)| port),
    };
    if port_text.is_some_and(|d| {
        !d.is_empty()
            && d.bytes().all(|b| b.is_ascii_digit())
            && !matches!(d.parse::<u16>(), Ok(1..))
    }) {
        return Err(AuthorityError::InvalidPort);
    }
    let host = canonical_host(authority).map_err(|_| AuthorityError::InvalidHost)?;
    let port = port_text.map(port).transpose()?;
    Ok((host, port))
}

/// A port number from 1 to 65535.
pub(crate) fn port(text: &str) -> Result<u16, AuthorityError> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(AuthorityError::InvalidPort),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_canonical_and_ports_explicit() {
        assert_eq!(
            host_and_port("App.Example.COM"),
            Ok(("app.example.com".into(), None))
        );
        assert_eq!(
            host_and_port("app.example.com:8443"),
            Ok(("app.example.com".into(), Some(8443)))
        );
        assert!(matches!(host_and_port("[::1]:443"), Ok((_, Some(443)))));
    }

    #[test]
    fn each_refusal_is_named() {
        use AuthorityError as E;
        assert_eq!(host_and_port("bob@app.example.com"), Err(E::Userinfo));
        assert_eq!(host_and_port("app%2eexample.com"), Err(E::Encoded));
        assert_eq!(host_and_port("app.example.com:0"), Err(E::InvalidPort));
        assert_eq!(host_and_port("app.example.com:70000"), Err(E::InvalidPort));
        assert_eq!(host_and_port("[::1]:99999"), Err(E::InvalidPort));
        assert_eq!(host_and_port("app example.com"), Err(E::InvalidHost));
        assert_eq!(port("0"), Err(E::InvalidPort));
        assert_eq!(port("x"), Err(E::InvalidPort));
        assert_eq!(port("8080"), Ok(8080));
    }
}
