//! The built-in `hello_world` service: a page that proves the whole path works.

use bytes::Bytes;
use portless_proto::{RequestHead, ResponseHead};

/// The answer of the `hello_world` service: what arrived at the connector, so a user can
/// see the host, path and forwarded headers the edge sent.
pub(crate) fn respond(head: &RequestHead) -> (ResponseHead, Bytes) {
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let body = format!(
        "Hello from Portless!\n\nThis response came from the connector's built-in hello_world service,\n\
through the edge and the tunnel.\n\nhost: {}\nmethod: {}\npath: {}\nx-forwarded-for: {}\nrequest id: {}\n",
        head.host,
        head.method,
        head.path,
        header("x-forwarded-for"),
        head.request_id,
    );
    let response = ResponseHead {
        status: 200,
        headers: vec![
            ("content-type".into(), b"text/plain; charset=utf-8".to_vec()),
            ("content-length".into(), body.len().to_string().into_bytes()),
        ],
        has_body: head.method != "HEAD",
    };
    (response, Bytes::from(body))
}
