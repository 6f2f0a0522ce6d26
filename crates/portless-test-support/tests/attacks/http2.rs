//! Class J over HTTP/2: pseudo-headers and header rules HTTP/1 cannot express. HTTP clients
//! (hyper's included: the `http` crate refuses a path without `/`) will not send these, so
//! the frames are written by hand: the connection preface, SETTINGS, and one HEADERS frame
//! whose HPACK block is literal fields (no Huffman, no indexing), exactly as the row lists them.
//!
//! A malformed HTTP/2 request may be answered `400` or reset at the stream or connection level
//! (the h2 layer refuses it before any HTTP handler runs); both count as refused. The origin
//! must see nothing either way.

use std::sync::Arc;
use std::time::Duration;

use portless_tls::rustls;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::setup::{APP, Setup, WWW};

/// Header fields in order, pseudo-headers included.
type Fields = Vec<(String, String)>;

/// What a row expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// 200 from the origin.
    Pass,
    /// 400, or the stream (or connection) refused.
    Bad,
    /// 401/302/303/403, 400, or refused: anything but the origin.
    Refused,
}

/// How the edge answered the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// A response with this status.
    Status(u16),
    /// A response whose `:status` this decoder does not read (not a static-table status).
    OtherStatus,
    /// RST_STREAM with this error code.
    Reset(u32),
    /// GOAWAY with this error code.
    GoAway(u32),
    /// The connection closed or timed out first.
    Closed,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HPACK "literal header field without indexing, new name", no Huffman.
fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        assert!(name.len() < 127 && value.len() < 127, "short fields only");
        out.push(0x00);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Sends one request (HEADERS with END_STREAM) on stream 1 of a new connection named `sni`.
async fn exchange(setup: &Setup, sni: &str, fields: &[(&str, &str)]) -> Answer {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(setup.edge.ca.cert_der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(portless_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(setup.edge.handle.public_addr())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
    let mut io = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(
        io.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "h2 negotiated"
    );
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    out.extend(frame(0x1, 0x5, 1, &hpack(fields)));
    io.write_all(&out).await.unwrap();
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while buf.len() >= 9 {
                let len =
                    usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                let (kind, flags) = (buf[3], buf[4]);
                let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
                let payload = buf[9..9 + len].to_vec();
                buf.drain(..9 + len);
                match (kind, stream) {
                    (0x4, 0) if flags & 0x1 == 0 => {
                        let _ = io.write_all(&frame(0x4, 0x1, 0, &[])).await;
                    }
                    (0x1, 1) => return status(&payload, flags),
                    (0x3, 1) => return Answer::Reset(code(&payload, 0)),
                    (0x7, _) => return Answer::GoAway(code(&payload, 4)),
                    _ => {}
                }
            }
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return Answer::Closed,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(8), read)
        .await
        .unwrap_or(Answer::Closed)
}

fn code(payload: &[u8], at: usize) -> u32 {
    payload
        .get(at..at + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The `:status` at the start of a response header block (a fresh connection: the dynamic
/// table is empty, so an indexed field is a static one).
fn status(payload: &[u8], flags: u8) -> Answer {
    let mut block = payload;
    if flags & 0x8 != 0 {
        let pad = usize::from(block[0]);
        block = &block[1..block.len() - pad];
    }
    if flags & 0x20 != 0 {
        block = &block[5..];
    }
    let first = block[0];
    let static_status = |index: u8| match index {
        8 => Some(200),
        9 => Some(204),
        10 => Some(206),
        11 => Some(304),
        12 => Some(400),
        13 => Some(404),
        14 => Some(500),
        _ => None,
    };
    if first & 0x80 != 0 {
        return static_status(first & 0x7f).map_or(Answer::OtherStatus, Answer::Status);
    }
    // A literal with an indexed `:status` name (8..=14), then the value.
    let value = &block[1..];
    let (huffman, len) = (value[0] & 0x80 != 0, usize::from(value[0] & 0x7f));
    let bytes = &value[1..1 + len];
    let digits = if huffman {
        huffman_digits(bytes)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    };
    digits.parse().map_or(Answer::OtherStatus, Answer::Status)
}

/// Decodes the digits of a Huffman-coded status (RFC 7541 appendix B: `0`–`2` are 5 bits,
/// `3`–`9` are 6 bits `011001`…`011111`).
fn huffman_digits(bytes: &[u8]) -> String {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let mut out = String::new();
    let mut at = 0;
    while out.len() < 3 && at + 5 <= bits.len() {
        let five = bits[at..at + 5].iter().fold(0u8, |v, b| v << 1 | b);
        if five < 3 {
            out.push(char::from(b'0' + five));
            at += 5;
        } else if at + 6 <= bits.len() {
            let six = five << 1 | bits[at + 5];
            out.push(char::from(b'0' + six - 0x19 + 3));
            at += 6;
        } else {
            break;
        }
    }
    out
}

#[tokio::test]
async fn class_j_http2_pseudo_headers_and_header_rules() {
    let setup = Setup::start().await;
    let www = format!("{WWW}:{}", setup.port());
    let app = format!("{APP}:{}", setup.port());
    let base = |authority: &str, path: &str| -> Fields {
        vec![
            (":method".into(), "GET".into()),
            (":scheme".into(), "https".into()),
            (":authority".into(), authority.to_owned()),
            (":path".into(), path.to_owned()),
        ]
    };
    let with = |mut fields: Fields, extra: &[(&str, &str)]| {
        fields.extend(
            extra
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        fields
    };
    let pub_path = "/public/h2";
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Fields, Want)> = vec![
        ("control: public GET", WWW, base(&www, pub_path), Want::Pass),
        (":path without a leading /", WWW, base(&www, "public/h2"), Want::Bad),
        (":path of * for GET", WWW, base(&www, "*"), Want::Bad),
        (":path empty", WWW, base(&www, ""), Want::Bad),
        (":path of only a query", WWW, base(&www, "?public/h2"), Want::Bad),
        (":path absolute URL of another host", WWW, base(&www, "https://admin.example.test/"), Want::Bad),
        (":path twice", WWW, with(base(&www, pub_path), &[(":path", "/admin")]), Want::Bad),
        (":authority and host disagree", WWW, with(base(&www, pub_path), &[("host", "admin.example.test")]), Want::Bad),
        (":authority with userinfo", WWW, base(&format!("x@{www}"), pub_path), Want::Bad),
        (":authority of another host than TLS", WWW, base(&app, "/private"), Want::Bad),
        ("a pseudo-header after a regular one", WWW, { let mut f = base(&www, pub_path); let path = f.pop().unwrap(); f.push(("x-a".into(), "1".into())); f.push(path); f }, Want::Bad),
        ("upper-case header name", WWW, with(base(&www, pub_path), &[("X-Upper", "1")]), Want::Bad),
        ("connection-specific header", WWW, with(base(&www, pub_path), &[("connection", "keep-alive")]), Want::Bad),
        ("transfer-encoding", WWW, with(base(&www, pub_path), &[("transfer-encoding", "chunked")]), Want::Bad),
        ("upgrade: websocket", WWW, with(base(&www, pub_path), &[("upgrade", "websocket")]), Want::Bad),
        ("te other than trailers", WWW, with(base(&www, pub_path), &[("te", "gzip")]), Want::Bad),
        ("content-length without the body", WWW, with(base(&www, pub_path), &[("content-length", "5")]), Want::Bad),
        ("Tomcat path parameter", APP, base(&app, "/public/..;/admin"), Want::Refused),
        ("method override", APP, with(base(&app, "/api/items"), &[("x-http-method-override", "DELETE")]), Want::Bad),
        ("extended CONNECT websocket, no session", APP, vec![(":method".into(), "CONNECT".into()), (":protocol".into(), "websocket".into()), (":scheme".into(), "https".into()), (":authority".into(), app.clone()), (":path".into(), "/ws".into()), ("sec-websocket-version".into(), "13".into())], Want::Refused),
    ];
    let mut failures = Vec::new();
    let mut report = String::from("=== attack table \"J: HTTP/2\" ===\n");
    for (name, sni, fields, want) in rows {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let before = setup.origin.seen().len();
        let got = exchange(&setup, sni, &fields).await;
        let reached = setup.origin.seen().len() - before;
        let refused = matches!(got, Answer::Reset(_) | Answer::GoAway(_) | Answer::Closed);
        let ok = match (want, &got) {
            (Want::Pass, Answer::Status(200)) => reached == 1,
            (Want::Bad, Answer::Status(400)) => reached == 0,
            (Want::Refused, Answer::Status(400 | 401 | 302 | 303 | 403)) => reached == 0,
            (Want::Bad | Want::Refused, _) if refused => reached == 0,
            // A literal status this decoder does not read is never 200 (that one is indexed),
            // so for a denial it is enough that the origin saw nothing.
            (Want::Refused, Answer::OtherStatus) => reached == 0,
            _ => false,
        };
        report.push_str(&format!(
            "J | {name:<40} | h2 | want {want:?} | got {got:?}, origin saw {reached}{}\n",
            if ok { "" } else { "   <-- FAIL" }
        ));
        if !ok {
            failures.push(format!(
                "  {name}: want {want:?}, got {got:?}, origin saw {reached}"
            ));
        }
    }
    println!("{report}");
    assert!(
        failures.is_empty(),
        "attack table \"J: HTTP/2\":\n{}\n\n{report}",
        failures.join("\n")
    );
}
