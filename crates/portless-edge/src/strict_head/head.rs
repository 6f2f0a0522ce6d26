//! Request heads: the request line and header lines, checked strictly.

use super::HeadViolation;
use super::framing::{Body, Chunk, decimal};

/// What the guard keeps of a request it passed on, to pair it with its response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RequestKind {
    /// `HEAD`: the response has no body whatever its headers say.
    pub(super) head: bool,
    /// `CONNECT`: a 2xx answer turns the connection into a tunnel.
    pub(super) connect: bool,
    /// `Upgrade:` was asked: a 101 answer turns the connection into a tunnel.
    pub(super) upgrade: bool,
}

/// A checked request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeadInfo {
    pub(super) kind: RequestKind,
    pub(super) body: Option<Body>,
}

pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a complete head (ending in CRLF CRLF; every LF already known to follow a CR).
pub(super) fn check_head(head: &[u8]) -> Result<HeadInfo, HeadViolation> {
    let text = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    let mut lines = split_crlf(text);
    let request_line = lines.next().unwrap_or_default();
    let (method, version) = check_request_line(request_line)?;
    let mut content_length = Vec::new();
    let mut transfer_encoding = Vec::new();
    let mut hosts = 0;
    let mut upgrade = false;
    for line in lines {
        let (name, value) = check_header_line(line)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length.push(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding.push(value);
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        }
    }
    match hosts {
        0 if version == b"HTTP/1.1" => return Err(HeadViolation::MissingHost),
        0 | 1 => {}
        _ => return Err(HeadViolation::DuplicateHost),
    }
    let body = body_framing(&content_length, &transfer_encoding, version)?;
    Ok(HeadInfo {
        kind: RequestKind {
            head: method == b"HEAD",
            connect: method == b"CONNECT",
            upgrade,
        },
        body,
    })
}

pub(super) fn split_crlf(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                rest = Some(&current[i + 2..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// `METHOD SP target SP version`, each part strict.
pub(super) fn check_request_line(line: &[u8]) -> Result<(&[u8], &[u8]), HeadViolation> {
    check_line_bytes(line)?;
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadViolation::InvalidRequestLine);
    };
    if method.is_empty() || target.is_empty() || version.is_empty() {
        return Err(HeadViolation::InvalidRequestLine);
    }
    if !method.iter().all(|&b| is_tchar(b)) {
        return Err(HeadViolation::InvalidMethod);
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(HeadViolation::UnsupportedVersion);
    }
    check_target(method, target)?;
    Ok((method, version))
}

/// Origin-form, absolute-form, `*` (OPTIONS) or authority-form (CONNECT).
pub(super) fn check_target(method: &[u8], target: &[u8]) -> Result<(), HeadViolation> {
    if !target.iter().all(|&b| b.is_ascii_graphic() && b != b'#') {
        return Err(HeadViolation::InvalidTarget);
    }
    let absolute = |scheme: &[u8]| {
        target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme)
    };
    let valid = if method == b"CONNECT" {
        authority_form(target)
    } else if target == b"*" {
        method == b"OPTIONS"
    } else {
        target.starts_with(b"/") || absolute(b"http://") || absolute(b"https://")
    };
    if valid {
        Ok(())
    } else {
        Err(HeadViolation::InvalidTarget)
    }
}

/// `host:port` with a non-empty host and a numeric port.
pub(super) fn authority_form(target: &[u8]) -> bool {
    let Some(colon) = target.iter().rposition(|&b| b == b':') else {
        return false;
    };
    let (host, port) = (&target[..colon], &target[colon + 1..]);
    !host.is_empty()
        && host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
        && !port.is_empty()
        && port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
}

/// No CR (every CRLF is already split off, so any CR left is bare) and no control
/// character but tab.
pub(super) fn check_line_bytes(line: &[u8]) -> Result<(), HeadViolation> {
    for &b in line {
        if b == b'\r' {
            return Err(HeadViolation::BareCr);
        }
        if (b.is_ascii_control() && b != b'\t') || b == 0x7f {
            return Err(HeadViolation::ControlCharacter);
        }
    }
    Ok(())
}

/// `name: value` with a token name and no whitespace before the colon; the name and the
/// trimmed value.
pub(super) fn check_header_line(line: &[u8]) -> Result<(&[u8], &[u8]), HeadViolation> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(HeadViolation::ObsFold);
    }
    check_line_bytes(line)?;
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadViolation::MissingColon)?;
    let name = &line[..colon];
    if name.last().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(HeadViolation::SpaceBeforeColon);
    }
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) || underscored_framing(name) {
        return Err(HeadViolation::InvalidHeaderName);
    }
    Ok((name, line[colon + 1..].trim_ascii()))
}

/// `Content_Length` or `Transfer_Encoding`: servers that fold `_` into `-` (CGI-style
/// environments) would read framing the edge did not (attack class F meets J).
pub(super) fn underscored_framing(name: &[u8]) -> bool {
    name.contains(&b'_')
        && [&b"content-length"[..], b"transfer-encoding"]
            .iter()
            .any(|framing| {
                name.len() == framing.len()
                    && name
                        .iter()
                        .zip(framing.iter())
                        .all(|(&a, &b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
            })
}

/// The request body's framing from its `Content-Length` and `Transfer-Encoding` values.
pub(super) fn body_framing(
    content_length: &[&[u8]],
    transfer_encoding: &[&[u8]],
    version: &[u8],
) -> Result<Option<Body>, HeadViolation> {
    match (content_length, transfer_encoding) {
        ([], []) => Ok(None),
        ([_, ..], [_, ..]) => Err(HeadViolation::ContentLengthAndTransferEncoding),
        ([value], []) => {
            let length = decimal(value).ok_or(HeadViolation::InvalidContentLength)?;
            Ok((length > 0).then_some(Body::Fixed(length)))
        }
        ([_, _, ..], []) => Err(HeadViolation::DuplicateContentLength),
        ([], [value]) if value.eq_ignore_ascii_case(b"chunked") && version == b"HTTP/1.1" => {
            Ok(Some(Body::Chunked(Chunk::Size)))
        }
        ([], _) => Err(HeadViolation::UnsupportedTransferEncoding),
    }
}
