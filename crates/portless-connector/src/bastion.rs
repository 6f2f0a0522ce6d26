//! The `bastion` service (and `originRequest.bastionMode`): raw TCP to a destination the
//! access client names in a request header, `Cf-Access-Jump-Destination` (the incumbent's
//! name, which existing clients send) or `Portless-Jump-Destination`.
//!
//! The value is `host:port` or a URL whose authority is used (`ssh://db.lan:22/...`). Since
//! the client chooses the destination, the dial goes through the strict egress policy
//! (`egress::strict`): the rule's `ipRules`, then public addresses only.

use portless_proto::{ErrorClass, RequestHead, StreamError};

use crate::egress::{Destination, DestinationError};

/// The header names, lowercase as the edge sends them; the incumbent's first.
pub(crate) const HEADERS: [&str; 2] = ["cf-access-jump-destination", "portless-jump-destination"];

/// The destination named by the request's jump header, or a `bad_request` naming the header.
pub(crate) fn destination(head: &RequestHead, rule: usize) -> Result<Destination, StreamError> {
    let bad = |why: String| StreamError {
        class: ErrorClass::BadRequest,
        message: format!("bastion (rule #{rule}): {why}"),
    };
    let mut values = head
        .headers
        .iter()
        .filter(|(name, _)| HEADERS.contains(&name.as_str()))
        .map(|(_, value)| value.as_slice());
    let Some(first) = values.next() else {
        return Err(bad(
            "the request has no Cf-Access-Jump-Destination (or Portless-Jump-Destination) \
             header naming the host:port to reach"
                .into(),
        ));
    };
    // Two different destinations are ambiguous: refuse rather than guess which one counts.
    if values.any(|other| other != first) {
        return Err(bad(
            "the request carries conflicting Cf-Access-Jump-Destination / \
             Portless-Jump-Destination values"
                .into(),
        ));
    }
    let invalid = |why: String| {
        bad(format!(
            "the Cf-Access-Jump-Destination header is not a destination: {why}"
        ))
    };
    let value = std::str::from_utf8(first)
        .map_err(|_| invalid("it is not UTF-8".into()))?
        .trim();
    parse(value).map_err(|e| invalid(e.to_string()))
}

/// `host:port`, or `scheme://authority[/path]` of which the authority counts.
fn parse(value: &str) -> Result<Destination, DestinationError> {
    let Some((_, rest)) = value.split_once("://") else {
        return Destination::parse_host_port(value);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Userinfo (`a@b`) lets one string read as two hosts; no access client sends it.
    if authority.contains('@') {
        return Err(DestinationError::BadHost(authority.to_owned()));
    }
    Destination::parse_host_port(authority)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        let mut head = RequestHead::new("GET", "/", "bastion.test");
        for (name, value) in headers {
            head.headers
                .push(((*name).to_owned(), value.as_bytes().to_vec()));
        }
        head
    }

    #[test]
    fn host_port_and_urls_name_the_destination() {
        let loopback = |port| Destination::Ip(SocketAddr::from(([127, 0, 0, 1], port)));
        for (name, value, expected) in [
            ("cf-access-jump-destination", "127.0.0.1:22", loopback(22)),
            ("portless-jump-destination", "127.0.0.1:22", loopback(22)),
            (
                "cf-access-jump-destination",
                "ssh://127.0.0.1:2222/x?y",
                loopback(2222),
            ),
            (
                "cf-access-jump-destination",
                "tcp://DB.lan:5432",
                Destination::Name("db.lan".into(), 5432),
            ),
        ] {
            assert_eq!(destination(&head(&[(name, value)]), 1), Ok(expected));
        }
    }

    #[test]
    fn missing_conflicting_or_invalid_headers_are_bad_requests_naming_the_header() {
        for headers in [
            &[][..],
            &[("cf-access-jump-destination", "db")][..],
            &[("cf-access-jump-destination", "ssh://u@db:22")][..],
            &[("cf-access-jump-destination", "ssh://db")][..],
            &[
                ("cf-access-jump-destination", "a:1"),
                ("portless-jump-destination", "b:1"),
            ][..],
        ] {
            let error = destination(&head(headers), 3).unwrap_err();
            assert_eq!(error.class, ErrorClass::BadRequest, "{headers:?}");
            assert!(
                error.message.contains("Cf-Access-Jump-Destination")
                    && error.message.contains("rule #3"),
                "{}",
                error.message
            );
        }
    }
}
