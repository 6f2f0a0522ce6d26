//! Raw upgraded requests through the edge's public port: what the access client does for
//! TCP-carrying services (`tcp://`, `bastion`, `socks-proxy`).

use std::sync::Arc;

use portless_tls::rustls;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::TestEdge;

/// A TLS connection to the edge's public port for `host`, speaking HTTP/1.1, trusting the
/// test CA.
pub async fn edge_tls(edge: &TestEdge, host: &str) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(edge.ca.cert_der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(portless_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(edge.handle.public_addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Reads a response head; returns it lowercased, and the bytes that came after it.
pub async fn read_response_head(io: &mut (impl AsyncRead + Unpin)) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = io.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8_lossy(&buf).to_ascii_lowercase(), rest);
        }
    }
}

/// Sends `GET /` with `Upgrade: portless-tcp` and the extra header lines (`Name: value`) to
/// `host`; returns the connection, the response head (lowercase) and any bytes after it.
pub async fn upgrade_request(
    edge: &TestEdge,
    host: &str,
    headers: &[&str],
) -> (TlsStream<TcpStream>, String, Vec<u8>) {
    let mut io = edge_tls(edge, host).await;
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: portless-tcp\r\n"
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).await.unwrap();
    let (head, rest) = read_response_head(&mut io).await;
    (io, head, rest)
}
