//! First layer of the pipeline: refuse what is ambiguous, compute the canonical request once.
//!
//! Everything after this layer (routing, access, the origin) works on [`Canonical`]: the
//! same host and path, so a request can never be routed as one thing and judged as
//! another (attack classes B, C and J). A request this layer refuses reaches no later layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::request::Parts;
use http::{HeaderMap, Request, header};
use hyper::body::Incoming;
use portless_access::forward_auth::hides_dot_segment;
use portless_proto::{ErrorClass, canonical_host, canonical_path};
use tower::{Layer, Service};

use crate::body::EdgeBody;
use crate::context::{Canonical, ConnectionInfo};

/// Headers some frameworks take as "the real method". The policy judges the request line's
/// method, so a request whose override names another method is refused (attack class D).
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Adds [`Canonical`] to each request, or refuses it with `400 bad_request`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CanonicalizeLayer;

impl<S> Layer<S> for CanonicalizeLayer {
    type Service = Canonicalize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Canonicalize { inner }
    }
}

/// The service of [`CanonicalizeLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Canonicalize<S> {
    inner: S,
}

type Boxed = Pin<Box<dyn Future<Output = Result<http::Response<EdgeBody>, ErrorClass>> + Send>>;

impl<S> Service<Request<Incoming>> for Canonicalize<S>
where
    S: Service<Request<Incoming>, Response = http::Response<EdgeBody>, Error = ErrorClass>,
    S::Future: Send + 'static,
{
    type Response = http::Response<EdgeBody>;
    type Error = ErrorClass;
    type Future = Boxed;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ErrorClass>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        match canonicalize(&parts) {
            Ok(canonical) => {
                parts.extensions.insert(canonical);
                Box::pin(self.inner.call(Request::from_parts(parts, body)))
            }
            Err(class) => Box::pin(std::future::ready(Err(class))),
        }
    }
}

/// The canonical request, or why the request is refused.
pub(crate) fn canonicalize(parts: &Parts) -> Result<Canonical, ErrorClass> {
    refuse_ambiguous_framing(parts)?;
    let (host, authority) = request_host(parts)?;
    if let Some(info) = parts.extensions.get::<ConnectionInfo>()
        && let Some(sni) = &info.server_name
        && *sni != host
    {
        // TLS named one host and the request another: the certificate and the policy would
        // be about different applications.
        return Err(ErrorClass::BadRequest);
    }
    let raw = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let path_and_query = canonical_path(raw).map_err(|_| ErrorClass::BadRequest)?;
    let path_len = path_and_query.find('?').unwrap_or(path_and_query.len());
    if hides_dot_segment(&path_and_query[..path_len]) {
        // `/public/..;/admin`, `/public/..%2Fadmin`, `/public/%252e%252e/admin`: the policy
        // would judge `/public/…` while an origin that splits or decodes differently serves
        // `/admin` (class C). The forward-auth endpoints refuse the same paths.
        return Err(ErrorClass::BadRequest);
    }
    Ok(Canonical {
        host,
        authority,
        path_and_query,
        path_len,
    })
}

/// Requests whose framing or method two parsers could read differently (class J, D).
fn refuse_ambiguous_framing(parts: &Parts) -> Result<(), ErrorClass> {
    let headers = &parts.headers;
    if headers.contains_key(header::TRANSFER_ENCODING)
        && headers.contains_key(header::CONTENT_LENGTH)
    {
        return Err(ErrorClass::BadRequest);
    }
    if headers.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
        return Err(ErrorClass::BadRequest);
    }
    let h2c = headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("h2c"));
    if h2c || headers.contains_key("http2-settings") {
        // A cleartext HTTP/2 upgrade through a proxy lets the client talk to the origin
        // past every later request check.
        return Err(ErrorClass::BadRequest);
    }
    if conflicting_method_override(headers, parts.method.as_str()) {
        return Err(ErrorClass::BadRequest);
    }
    Ok(())
}

/// Whether a method-override header names another method than `method` (compared without
/// case). Names are compared with `_` read as `-`: CGI-style origins (PHP's
/// `HTTP_X_HTTP_METHOD_OVERRIDE`) fold both spellings into one. The forward-auth endpoints
/// ask this about the original request's method too.
pub(crate) fn conflicting_method_override(headers: &HeaderMap, method: &str) -> bool {
    headers.iter().any(|(name, value)| {
        let name = name.as_str();
        let named = METHOD_OVERRIDES.contains(&name)
            || (name.contains('_') && METHOD_OVERRIDES.contains(&name.replace('_', "-").as_str()));
        named && !value.as_bytes().eq_ignore_ascii_case(method.as_bytes())
    })
}

/// The request's host, canonical, and the authority as written. The URI's authority
/// (HTTP/2 `:authority`, HTTP/1.1 absolute-form) and the `Host` header must agree, and
/// `Host` must not repeat: a request that names two hosts is refused rather than routed by
/// one and judged by the other.
fn request_host(parts: &Parts) -> Result<(String, String), ErrorClass> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let from_header = hosts.next();
    if hosts.next().is_some() {
        return Err(ErrorClass::BadRequest);
    }
    let from_header = from_header
        .map(|v| v.to_str().map_err(|_| ErrorClass::BadRequest))
        .transpose()?;
    if let Some(authority) = parts.uri.authority()
        && authority.as_str().contains('@')
    {
        return Err(ErrorClass::BadRequest);
    }
    let from_uri = parts.uri.authority().map(|a| a.as_str());
    let canonical = |raw: &str| canonical_host(raw).map_err(|_| ErrorClass::BadRequest);
    match (from_uri, from_header) {
        (Some(uri), Some(header)) => {
            let host = canonical(uri)?;
            if canonical(header)? != host {
                return Err(ErrorClass::BadRequest);
            }
            Ok((host, header.to_owned()))
        }
        (Some(raw), None) | (None, Some(raw)) => Ok((canonical(raw)?, raw.to_owned())),
        (None, None) => Err(ErrorClass::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn host_and_path_are_canonical() {
        let c = canonicalize(&parts(
            "/public/%2e%2e/Admin?x=1",
            &[("host", "APP.Example.COM.:8443")],
        ))
        .unwrap();
        assert_eq!(c.host, "app.example.com");
        assert_eq!(c.path(), "/Admin");
        assert_eq!(c.query(), Some("x=1"));
        assert_eq!(c.authority, "APP.Example.COM.:8443");
    }

    #[test]
    fn ambiguous_requests_are_refused() {
        let bad: &[(&str, &[(&str, &str)])] = &[
            ("/", &[]),
            ("/", &[("host", "a.test"), ("host", "b.test")]),
            ("https://a.test/", &[("host", "b.test")]),
            ("https://user@a.test/", &[("host", "a.test")]),
            (
                "/",
                &[
                    ("host", "a.test"),
                    ("content-length", "1"),
                    ("transfer-encoding", "chunked"),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a.test"),
                    ("content-length", "1"),
                    ("content-length", "1"),
                ],
            ),
            (
                "/",
                &[
                    ("host", "a.test"),
                    ("upgrade", "h2c"),
                    ("connection", "upgrade"),
                ],
            ),
            (
                "/",
                &[("host", "a.test"), ("x-http-method-override", "DELETE")],
            ),
            ("/", &[("host", "a.test"), ("x-method-override", "PUT")]),
            (
                "/",
                &[("host", "a.test"), ("x_http_method_override", "DELETE")],
            ),
            ("/", &[("host", "a.test:99999")]),
            ("/public/..;/admin", &[("host", "a.test")]),
            ("/public/..%2Fadmin", &[("host", "a.test")]),
            ("/public/..%5Cadmin", &[("host", "a.test")]),
            ("/public/%252e%252e/admin", &[("host", "a.test")]),
            ("/public/%c0%ae%c0%ae/admin", &[("host", "a.test")]),
        ];
        for (uri, headers) in bad {
            assert_eq!(
                canonicalize(&parts(uri, headers)).unwrap_err(),
                ErrorClass::BadRequest,
                "{uri} {headers:?}"
            );
        }
    }

    #[test]
    fn sni_must_name_the_host() {
        let mut p = parts("/", &[("host", "app.test")]);
        p.extensions.insert(ConnectionInfo {
            server_name: Some("other.test".into()),
        });
        assert_eq!(canonicalize(&p).unwrap_err(), ErrorClass::BadRequest);
        p.extensions.insert(ConnectionInfo {
            server_name: Some("app.test".into()),
        });
        assert!(canonicalize(&p).is_ok());
    }
}
