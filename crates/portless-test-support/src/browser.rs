//! A browser-like client for portal tests: a cookie jar per host (host-only cookies, as
//! `__Host-` cookies are), forms, and redirects followed one step at a time so a test can
//! look at each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};

use crate::client::{ClientBody, TestClient};

/// One answer, read whole.
#[derive(Debug, Clone)]
pub struct Page {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub body: String,
    /// The URL that was asked.
    pub url: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The value of hidden or other input `name` in the page's HTML.
    pub fn input(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(html_unescape(&self.body[start..end]))
    }
}

fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A client with a cookie jar.
#[derive(Clone)]
pub struct Browser {
    client: TestClient,
    /// host → cookie name → value.
    jar: Arc<Mutex<HashMap<String, HashMap<String, String>>>>,
}

impl Browser {
    /// A browser over `client`.
    pub fn new(client: TestClient) -> Self {
        Self {
            client,
            jar: Arc::default(),
        }
    }

    /// The URL of `path` on `host` at the edge.
    pub fn url(&self, host: &str, path: &str) -> String {
        self.client.url(host, path)
    }

    /// The cookies held for `host`.
    pub fn cookies(&self, host: &str) -> HashMap<String, String> {
        self.jar
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .unwrap_or_default()
    }

    /// Sets (or replaces) a cookie for `host`, as a script or an attacker could.
    pub fn set_cookie(&self, host: &str, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .entry(host.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.jar.lock().unwrap().clear();
    }

    /// GET `url` (absolute, `https://host:port/...`) as a browser navigation.
    pub async fn get(&self, url: &str) -> Page {
        self.send("GET", url, None, &[]).await
    }

    /// POSTs a form.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_body(fields);
        self.send("POST", url, Some(body), &[]).await
    }

    /// POSTs a JSON body (as the portal's scripts do), with extra headers.
    pub async fn post_json(&self, url: &str, json: &str, extra: &[(&str, &str)]) -> Page {
        let host = host_of(url);
        let mut builder = Request::builder()
            .method("POST")
            .uri(url)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json");
        let cookies = self.cookies(&host);
        if !cookies.is_empty() {
            let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header(header::COOKIE, line.join("; "));
        }
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        let body: ClientBody = Full::new(Bytes::from(json.to_owned()))
            .map_err(|e| match e {})
            .boxed();
        let response = self.client.send(builder.body(body).unwrap()).await;
        let status = response.status();
        let headers = response.headers().clone();
        self.store_cookies(&host, &headers);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            url: url.to_owned(),
        }
    }

    /// Sends a request with extra headers.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        form: Option<String>,
        extra: &[(&str, &str)],
    ) -> Page {
        let host = host_of(url);
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(header::ACCEPT, "text/html,application/xhtml+xml");
        let cookies = self.cookies(&host);
        if !cookies.is_empty() {
            let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header(header::COOKIE, line.join("; "));
        }
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        let body: ClientBody = match form {
            Some(form) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form)).map_err(|e| match e {}).boxed()
            }
            None => Full::new(Bytes::new()).map_err(|e| match e {}).boxed(),
        };
        let response = self.client.send(builder.body(body).unwrap()).await;
        let status = response.status();
        let headers = response.headers().clone();
        self.store_cookies(&host, &headers);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            url: url.to_owned(),
        }
    }

    /// Follows redirects from `page` (at most `limit`), returning every page on the way.
    pub async fn follow(&self, mut page: Page, limit: usize) -> Vec<Page> {
        let mut pages = vec![page.clone()];
        for _ in 0..limit {
            let Some(location) = page.location().map(str::to_owned) else {
                break;
            };
            if !page.status.is_redirection() {
                break;
            }
            let next = if location.starts_with("https://") {
                location
            } else {
                let host = url_origin(&page.url);
                format!("{host}{location}")
            };
            page = self.get(&next).await;
            pages.push(page.clone());
        }
        pages
    }

    fn store_cookies(&self, host: &str, headers: &HeaderMap) {
        let mut jar = self.jar.lock().unwrap();
        let cookies = jar.entry(host.to_owned()).or_default();
        for value in headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let first = text.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            let deleted = text.contains("Max-Age=0") || value.is_empty();
            if deleted {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .to_ascii_lowercase()
}

fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("{scheme}://{authority}")
}
