//! The server name of a ClientHello, read without terminating TLS: for TLS passthrough,
//! where the edge relays the client's bytes untouched to an origin holding its own key.
//!
//! rustls' [`Acceptor`] parses the ClientHello (records, fragmentation and extensions as a
//! real handshake would), so the name seen here is the one a handshake would see. The caller
//! keeps every byte it fed in and replays them to whoever handles the connection.

use rustls::server::Acceptor;

/// What the bytes read so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeked {
    /// The ClientHello is not complete yet: read more.
    NeedMore,
    /// A complete ClientHello, with its server name (`None`: the client sent no SNI).
    Hello(Option<String>),
    /// Not a TLS ClientHello; the normal handshake will refuse it with the right alert.
    NotTls,
}

/// Incremental ClientHello reader: feed it every byte read from the client, in order.
#[derive(Default)]
pub struct ClientHelloPeek {
    acceptor: Acceptor,
}

impl std::fmt::Debug for ClientHelloPeek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientHelloPeek")
    }
}

impl ClientHelloPeek {
    /// Feeds `bytes` (the next bytes from the client) and says what is known now.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Peeked {
        while !bytes.is_empty() {
            match self.acceptor.read_tls(&mut bytes) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return Peeked::NotTls,
            }
        }
        match self.acceptor.accept() {
            Ok(None) => Peeked::NeedMore,
            Ok(Some(accepted)) => {
                Peeked::Hello(accepted.client_hello().server_name().map(str::to_owned))
            }
            Err(_) => Peeked::NotTls,
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::{EdgeTrust, LocalCa, tunnel_client_config};

    fn client_hello(name: &str) -> Vec<u8> {
        let ca = LocalCa::generate("t").unwrap();
        let config = tunnel_client_config(EdgeTrust::Pinned(ca.pin())).unwrap();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut client = rustls::ClientConnection::new(config, name).unwrap();
        let mut out = Vec::new();
        client.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_the_server_name_fed_in_pieces() {
        let hello = client_hello("secure.example.com");
        let mut peek = ClientHelloPeek::default();
        let (a, b) = hello.split_at(7);
        assert_eq!(peek.feed(a), Peeked::NeedMore);
        assert_eq!(
            peek.feed(b),
            Peeked::Hello(Some("secure.example.com".into()))
        );
    }

    #[test]
    fn an_ip_address_sends_no_name_and_http_is_not_tls() {
        let hello = client_hello("127.0.0.1");
        assert_eq!(ClientHelloPeek::default().feed(&hello), Peeked::Hello(None));
        let mut peek = ClientHelloPeek::default();
        assert_eq!(
            peek.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Peeked::NotTls
        );
    }
}
