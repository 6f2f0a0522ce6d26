//! What the edge changes in the headers it forwards: hop-by-hop fields go, the edge's own
//! `X-Forwarded-*` and request id come in.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName};
use portless_proto::HeaderList;

/// Fields that describe one connection, never the message (RFC 9110 §7.6.1), plus the
/// proxy-only ones. `upgrade` is handled separately: kept for upgrade requests.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Header the edge sets with its request id, toward the origin and the client.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Client-supplied forwarding fields the edge replaces with its own: a client can claim any
/// address or scheme, so none of them is trusted (threat class F).
const FORWARDING: [HeaderName; 6] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-real-ip"),
    header::FORWARDED,
    REQUEST_ID,
];

/// Names listed in `Connection` are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// The protocol a request asks to upgrade to (HTTP/1.1 `Connection: upgrade` +
/// `Upgrade: X`).
pub(crate) fn upgrade_protocol(version: http::Version, headers: &HeaderMap) -> Option<String> {
    if version != http::Version::HTTP_11 {
        return None;
    }
    if !connection_listed(headers).iter().any(|t| t == "upgrade") {
        return None;
    }
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// What the edge knows about a request that the origin should learn.
pub(crate) struct Forwarded<'a> {
    pub(crate) client_ip: IpAddr,
    pub(crate) host: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) upgrade: Option<&'a str>,
}

/// The request headers sent into the tunnel.
pub(crate) fn request_headers(headers: &HeaderMap, forwarded: &Forwarded<'_>) -> HeaderList {
    let listed = connection_listed(headers);
    let mut list = HeaderList::with_capacity(headers.len() + 5);
    for (name, value) in headers {
        if HOP_BY_HOP.contains(name)
            || FORWARDING.contains(name)
            || name == header::HOST
            || name == header::UPGRADE
            || name == header::TE && value.as_bytes() != b"trailers"
            || listed.iter().any(|l| l == name.as_str())
        {
            continue;
        }
        list.push((name.as_str().to_owned(), value.as_bytes().to_vec()));
    }
    let ip = forwarded.client_ip.to_string();
    list.push(("x-forwarded-for".into(), ip.clone().into_bytes()));
    list.push(("x-real-ip".into(), ip.into_bytes()));
    list.push(("x-forwarded-proto".into(), b"https".to_vec()));
    list.push((
        "x-forwarded-host".into(),
        forwarded.host.as_bytes().to_vec(),
    ));
    list.push((
        REQUEST_ID.as_str().to_owned(),
        forwarded.request_id.as_bytes().to_vec(),
    ));
    if let Some(protocol) = forwarded.upgrade {
        list.push(("connection".into(), b"upgrade".to_vec()));
        list.push(("upgrade".into(), protocol.as_bytes().to_vec()));
    }
    list
}

/// Removes hop-by-hop fields from a response the connector sent (keeping `upgrade` and
/// `connection` on a 101).
pub(crate) fn strip_response(headers: &mut HeaderMap, switching: bool) {
    let listed = connection_listed(headers);
    for name in &HOP_BY_HOP {
        if switching && name == header::CONNECTION {
            continue;
        }
        headers.remove(name);
    }
    if !switching {
        headers.remove(header::UPGRADE);
        for name in listed {
            headers.remove(name.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn names(list: &HeaderList) -> Vec<&str> {
        list.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn value<'a>(list: &'a HeaderList, name: &str) -> Vec<&'a [u8]> {
        list.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    #[test]
    fn hop_by_hop_and_spoofed_forwarding_headers_are_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        headers.insert("x-request-id", HeaderValue::from_static("client-chosen"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("te", HeaderValue::from_static("gzip"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let list = request_headers(
            &headers,
            &Forwarded {
                client_ip: "203.0.113.9".parse().unwrap(),
                host: "app.example.com",
                request_id: "rid",
                upgrade: None,
            },
        );
        for gone in [
            "connection",
            "keep-alive",
            "x-secret",
            "forwarded",
            "transfer-encoding",
            "te",
            "upgrade",
        ] {
            assert!(
                !names(&list).contains(&gone),
                "{gone} must be removed: {list:?}"
            );
        }
        assert_eq!(value(&list, "x-forwarded-for"), [b"203.0.113.9"]);
        assert_eq!(value(&list, "x-request-id"), [b"rid"]);
        assert_eq!(value(&list, "x-forwarded-proto"), [b"https"]);
        assert_eq!(value(&list, "x-forwarded-host"), [b"app.example.com"]);
        assert_eq!(value(&list, "accept"), [b"*/*"]);
    }

    #[test]
    fn upgrades_keep_their_protocol() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("Upgrade"));
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        let protocol = upgrade_protocol(http::Version::HTTP_11, &headers);
        assert_eq!(protocol.as_deref(), Some("websocket"));
        assert_eq!(upgrade_protocol(http::Version::HTTP_2, &headers), None);
        let list = request_headers(
            &headers,
            &Forwarded {
                client_ip: "::1".parse().unwrap(),
                host: "h",
                request_id: "r",
                upgrade: protocol.as_deref(),
            },
        );
        assert_eq!(value(&list, "upgrade"), [b"websocket"]);
        assert_eq!(value(&list, "connection"), [b"upgrade"]);
    }
}
