//! The one canonical form of a request's host and path.
//!
//! Routing, policy and the request sent to the origin all use the output of these functions,
//! so they can never disagree about what was asked for (attack classes B and C of the
//! threat list: `Host: ADMIN.Example.COM.`, `/public/%2e%2e/admin`, `//admin`).

/// Why a host or path cannot be canonicalized; the edge answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// No host in the request.
    #[error("the request has no Host")]
    MissingHost,
    /// The host holds characters a hostname cannot hold.
    #[error("the Host {0:?} is not a valid hostname")]
    InvalidHost(String),
    /// The path does not start with `/` (or is not `*`).
    #[error("the request target must start with '/'")]
    RelativePath,
    /// A `%` not followed by two hex digits, or a control character.
    #[error("the request path holds an invalid percent-encoding or character")]
    InvalidPath,
}

/// Canonical hostname: port and one trailing dot removed, ASCII lowercase.
///
/// Userinfo (`user@host`) is refused rather than stripped: no browser sends it in a Host
/// header, and accepting it is how authority confusion starts.
pub fn canonical_host(authority: &str) -> Result<String, CanonicalError> {
    if authority.is_empty() {
        return Err(CanonicalError::MissingHost);
    }
    let invalid = || CanonicalError::InvalidHost(authority.chars().take(100).collect());
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: keep the brackets off, the port after `]` goes.
        let end = rest.find(']').ok_or_else(invalid)?;
        let port = &rest[end + 1..];
        if !(port.is_empty() || valid_port(port.strip_prefix(':').ok_or_else(invalid)?)) {
            return Err(invalid());
        }
        let literal = &rest[..end];
        if literal.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid());
        }
        return Ok(literal.to_ascii_lowercase());
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if valid_port(port) => host,
            Some(_) => return Err(invalid()),
            None => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !valid {
        return Err(invalid());
    }
    Ok(host.to_ascii_lowercase())
}

fn valid_port(port: &str) -> bool {
    // Digits only (no sign, no spaces: `u16::from_str` would take `+80`), and in range.
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok()
}

/// Canonical path and query.
///
/// In the path: percent-escapes of unreserved characters are decoded (once), other escapes
/// get uppercase hex, `.` and `..` segments are removed, and runs of `/` are merged. The
/// query is kept as sent (it is not part of the hierarchy) but must be well-formed too.
pub fn canonical_path(path_and_query: &str) -> Result<String, CanonicalError> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    if !path.starts_with('/') {
        return Err(CanonicalError::RelativePath);
    }
    let decoded = decode_unreserved(path)?;
    let mut out = String::with_capacity(path_and_query.len());
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash =
        decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (trailing_slash && !segments.is_empty()) {
        out.push('/');
    }
    if let Some(query) = query {
        check_escapes(query)?;
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn decode_unreserved(path: &str) -> Result<String, CanonicalError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_control() || b == b' ' || b == b'#' {
            return Err(CanonicalError::InvalidPath);
        }
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(CanonicalError::InvalidPath);
            };
            let value = hi << 4 | lo;
            if is_unreserved(value) {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
            }
            i += 3;
            continue;
        }
        // Non-ASCII bytes arrive only inside valid UTF-8 (the input is a &str): copy the
        // whole character.
        let ch_len = utf8_len(b);
        out.push_str(&path[i..i + ch_len]);
        i += ch_len;
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn check_escapes(text: &str) -> Result<(), CanonicalError> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_control() || b == b'#' {
            return Err(CanonicalError::InvalidPath);
        }
        if b == b'%'
            && !(bytes.get(i + 1).copied().and_then(hex).is_some()
                && bytes.get(i + 2).copied().and_then(hex).is_some())
        {
            return Err(CanonicalError::InvalidPath);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_canonical() {
        for (input, expected) in [
            ("ADMIN.Example.COM.", "admin.example.com"),
            ("app.example.com:443", "app.example.com"),
            ("app.example.com.:8443", "app.example.com"),
            ("[::1]:8080", "::1"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("a_b.example.com", "a_b.example.com"),
        ] {
            assert_eq!(canonical_host(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn confusing_hosts_are_refused() {
        for input in [
            "",
            "user@app.example.com",
            "app.example.com:",
            "app.example.com:99999x",
            "app..example.com",
            "app example.com",
            "app.example.com/",
            ".",
            "[::1",
            "[zz]:80",
            "ex\u{e4}mple.com",
        ] {
            assert!(
                canonical_host(input).is_err(),
                "{input:?} should be refused"
            );
        }
    }

    #[test]
    fn paths_are_canonical() {
        for (input, expected) in [
            ("/", "/"),
            ("//admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("/a/./b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/../../etc", "/etc"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%5cb", "/a%5Cb"),
            ("/x?q=%2e%2e&r=/../", "/x?q=%2e%2e&r=/../"),
            ("/caf\u{e9}", "/caf\u{e9}"),
            ("/a%00b", "/a%00b"),
        ] {
            assert_eq!(canonical_path(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn malformed_paths_are_refused() {
        for input in [
            "admin", "/%zz", "/%4", "/a\0b", "/a b", "/a#frag", "/?q=%g1", "*",
        ] {
            assert!(
                canonical_path(input).is_err(),
                "{input:?} should be refused"
            );
        }
    }

    #[test]
    fn canonicalization_is_idempotent() {
        for input in ["/a/../b//c/%7euser/", "/%41%2F%2e", "/x/./y?z=1"] {
            let once = canonical_path(input).unwrap();
            assert_eq!(canonical_path(&once).unwrap(), once);
        }
    }
}
