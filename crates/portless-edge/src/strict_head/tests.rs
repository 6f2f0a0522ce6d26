use super::guard::{Http1Guard, ReadAction, ReadState};
use super::{HeadViolation, MAX_HEAD};

/// Feeds `input` to a fresh guard, in one piece and byte by byte; both must agree.
fn feed(input: &[u8]) -> (Http1Guard, Http1Guard) {
    let mut whole = Http1Guard::default();
    whole.receive(input);
    let mut bytes = Http1Guard::default();
    for b in input {
        bytes.receive(&[*b]);
    }
    assert_eq!(
        whole.ready(),
        bytes.ready(),
        "{:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(
        whole.read,
        bytes.read,
        "{:?}",
        String::from_utf8_lossy(input)
    );
    (whole, bytes)
}

fn refusal(guard: &Http1Guard) -> Option<HeadViolation> {
    match guard.read {
        ReadState::Refused { violation, .. } => Some(violation),
        _ => None,
    }
}

const GET: &str = "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";

#[test]
fn each_ambiguous_head_is_refused() {
    use HeadViolation::*;
    let cases: &[(&str, HeadViolation)] = &[
        ("GET / HTTP/1.1\nHost: a\n\n", BareLf),
        ("GET / HTTP/1.1\r\nHost: a\n\r\n", BareLf),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n", BareLf),
        ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BareLf),
        ("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", BareCr),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", ObsFold),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\tz\r\n\r\n", ObsFold),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            ControlCharacter,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
            ControlCharacter,
        ),
        ("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", ControlCharacter),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            ContentLengthAndTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            ContentLengthAndTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            SpaceBeforeColon,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n",
            SpaceBeforeColon,
        ),
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", MissingColon),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nBad(Name): x\r\n\r\n",
            InvalidHeaderName,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX\"Y: x\r\n\r\n",
            InvalidHeaderName,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
            InvalidHeaderName,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\n",
            InvalidHeaderName,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTRANSFER_ENCODING: chunked\r\n\r\n",
            InvalidHeaderName,
        ),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", InvalidRequestLine),
        ("GET /\r\nHost: a\r\n\r\n", InvalidRequestLine),
        ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidMethod),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", UnsupportedVersion),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", UnsupportedVersion),
        ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", UnsupportedVersion),
        ("GET admin HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (
            "GET app.test:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidTarget,
        ),
        (
            "GET ftp://app.test/ HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidTarget,
        ),
        ("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        ("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (
            "CONNECT app.test HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidTarget,
        ),
        ("GET / HTTP/1.1\r\n\r\n", MissingHost),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            DuplicateHost,
        ),
    ];
    for (head, expected) in cases {
        let (guard, _) = feed(head.as_bytes());
        assert_eq!(refusal(&guard), Some(*expected), "{head:?}");
        assert!(
            guard.ready().is_empty(),
            "nothing of {head:?} reaches hyper"
        );
        assert_eq!(guard.read_action(), ReadAction::Refuse(*expected));
    }
}

#[test]
fn a_bare_lf_is_refused_before_the_head_ends() {
    let mut guard = Http1Guard::default();
    guard.receive(b"GET / HTTP/1.1\nHost: a");
    assert_eq!(refusal(&guard), Some(HeadViolation::BareLf));
}

#[test]
fn oversized_heads_are_refused_with_431() {
    let mut guard = Http1Guard::default();
    guard.receive(b"GET / HTTP/1.1\r\nHost: a\r\nX: ");
    guard.receive(&vec![b'a'; MAX_HEAD]);
    assert_eq!(refusal(&guard), Some(HeadViolation::TooLarge));
    let response = String::from_utf8(HeadViolation::TooLarge.response()).unwrap();
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
}

#[test]
fn the_refusal_names_the_problem_and_closes() {
    let response =
        String::from_utf8(HeadViolation::ContentLengthAndTransferEncoding.response()).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    assert!(head.contains("\r\nconnection: close"));
    assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
    assert!(
        body.contains("both Content-Length and Transfer-Encoding"),
        "{body}"
    );
}

#[test]
fn valid_heads_and_bodies_pass_unchanged() {
    let cases = [
        GET.to_owned(),
        "GET /x?y=1 HTTP/1.1\r\nHost: app.test\r\nAccept: */*\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n"
            .to_owned(),
        "GET https://app.test/x HTTP/1.1\r\nHost: app.test\r\n\r\n".to_owned(),
        "OPTIONS * HTTP/1.1\r\nHost: app.test\r\n\r\n".to_owned(),
        "GET / HTTP/1.0\r\n\r\n".to_owned(),
        "GET / HTTP/1.1\r\nHost: app.test\r\nX-Utf8: caf\u{e9}\r\n\r\n".to_owned(),
        "POST /count HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello".to_owned(),
        "POST /count HTTP/1.1\r\nHost: app.test\r\ncontent-length: 0\r\n\r\n".to_owned(),
        // chunked, with extensions and trailers; the chunk data holds what looks like a head
        "POST /count HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: Chunked\r\n\r\n\
         5;name=value\r\nhello\r\n1b ; x=\"q\"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\
         0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"
            .to_owned(),
        "POST /count HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_owned(),
        // an empty line before a request line is ignored (dropped)
        format!("\r\n{GET}"),
    ];
    for input in cases {
        let (guard, _) = feed(input.as_bytes());
        assert_eq!(refusal(&guard), None, "{input:?}");
        let expected = input.strip_prefix("\r\n").unwrap_or(&input);
        assert_eq!(guard.ready(), expected.as_bytes(), "{input:?}");
        assert_eq!(guard.read, ReadState::Head, "{input:?}: at the next head");
        assert_eq!(guard.passed, 1);
    }
}

#[test]
fn pipelined_requests_are_each_checked() {
    let pipelined = format!(
        "{GET}POST /count HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc\
         POST /count HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n{GET}"
    );
    let (guard, _) = feed(pipelined.as_bytes());
    assert_eq!(guard.ready(), pipelined.as_bytes());
    assert_eq!(guard.passed, 4);

    // The second request smuggles: the first passes whole, nothing of the second does.
    let smuggled = "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX";
    let (mut guard, _) = feed(format!("{GET}{smuggled}").as_bytes());
    assert_eq!(guard.ready(), GET.as_bytes());
    assert_eq!(
        refusal(&guard),
        Some(HeadViolation::ContentLengthAndTransferEncoding)
    );
    // hyper has not answered the first request yet: the refusal waits.
    assert_eq!(guard.read_action(), ReadAction::Hold);
    guard.sent(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel");
    assert_eq!(guard.read_action(), ReadAction::Hold);
    guard.sent(b"lo");
    assert_eq!(
        guard.read_action(),
        ReadAction::Refuse(HeadViolation::ContentLengthAndTransferEncoding)
    );
}

#[test]
fn response_boundaries_are_followed() {
    let mut guard = Http1Guard::default();
    let heads = format!(
        "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n{GET}POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx{GET}"
    );
    guard.receive(heads.as_bytes());
    guard.receive(b"BAD\n");
    assert_eq!(guard.passed, 4);
    // HEAD: a length, but no body.
    guard.sent(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n");
    // chunked response, written in odd pieces
    for piece in [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r"[..],
        b"\n3\r\nabc\r",
        b"\n0\r\n\r\n",
    ] {
        guard.sent(piece);
    }
    assert_eq!(guard.completed, 2);
    // interim 100, then the answer, with no body
    guard.sent(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(guard.completed, 3);
    assert_eq!(guard.read_action(), ReadAction::Hold);
    guard.sent(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno");
    assert_eq!(guard.completed, 4);
    assert_eq!(
        guard.read_action(),
        ReadAction::Refuse(HeadViolation::BareLf)
    );
}

#[test]
fn upgrades_hold_the_bytes_after_them_until_answered() {
    let upgrade =
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    let frames = b"\x81\x85not http\n\n";

    // Answered 101: everything after passes, unchecked.
    let mut guard = Http1Guard::default();
    guard.receive(upgrade.as_bytes());
    guard.receive(frames);
    assert_eq!(guard.ready(), upgrade.as_bytes());
    assert_eq!(guard.read_action(), ReadAction::Hold);
    guard.take_ready(upgrade.len());
    guard.sent(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n\x81\x02hi");
    assert_eq!(guard.ready(), frames);
    assert_eq!(guard.read_action(), ReadAction::Tunnel);
    guard.take_ready(frames.len());
    guard.receive(b"GET / HTTP/1.1\nanything");
    assert_eq!(guard.ready(), b"GET / HTTP/1.1\nanything");

    // Refused (no 101): still HTTP, and the held bytes are checked.
    let mut guard = Http1Guard::default();
    guard.receive(upgrade.as_bytes());
    guard.receive(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx");
    guard.take_ready(upgrade.len());
    guard.sent(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n");
    assert!(guard.ready().is_empty());
    assert_eq!(
        guard.read_action(),
        ReadAction::Refuse(HeadViolation::DuplicateContentLength)
    );

    // CONNECT answered 2xx is a tunnel too.
    let mut guard = Http1Guard::default();
    guard.receive(b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nraw");
    guard.sent(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(guard.read_action(), ReadAction::Tunnel);
    assert!(guard.ready().ends_with(b"raw"));
}

#[test]
fn broken_chunked_framing_is_refused() {
    let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "zz\r\n",
        "\r\n",
        "5\nhello\r\n",
        "5\r\nhelloX\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5 x\r\nhello\r\n",
        "11111111111111111\r\n",
        "-1\r\n",
        "0\r\nX: y\n\r\n",
        "0\r\n folded: y\r\n\r\n",
        "3\r\nabc\r\n0\r\nBad Name: y\r\n\r\n",
        "5;a\rb\r\nhello\r\n",
    ] {
        let (guard, _) = feed(format!("{head}{body}").as_bytes());
        let violation = refusal(&guard).unwrap_or_else(|| panic!("{body:?} accepted"));
        // The request is hyper's already and unanswered: the refusal may be written.
        assert!(matches!(
            guard.read,
            ReadState::Refused { in_body: true, .. }
        ));
        assert_eq!(
            guard.read_action(),
            ReadAction::Refuse(violation),
            "{body:?}"
        );
    }
    // Once hyper is answering that request, the connection just closes.
    let mut guard = Http1Guard::default();
    guard.receive(format!("{head}5\r\nhel").as_bytes());
    guard.sent(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab");
    guard.receive(b"loX");
    assert_eq!(
        guard.read_action(),
        ReadAction::Close(HeadViolation::InvalidChunk)
    );
}

#[test]
fn only_an_idle_wait_for_a_head_is_timed() {
    let mut guard = Http1Guard::default();
    assert!(guard.awaiting_head(), "a new connection");
    guard.receive(b"GET / HTTP/1.1\r\n");
    assert!(guard.awaiting_head(), "a head begun");
    guard.receive(b"Host: a\r\n\r\nGET /2 HTTP/1.1\r\n");
    assert!(
        !guard.awaiting_head(),
        "hyper is answering the first request"
    );
    guard.sent(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert!(guard.awaiting_head(), "the second head is late");
    guard.receive(b"Host: a\r\n\r\n");
    guard.sent(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert!(
        !guard.awaiting_head(),
        "idle keep-alive is hyper's own timer"
    );
}

#[test]
fn the_http2_preface_passes_through() {
    let (guard, _) = feed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04");
    assert_eq!(guard.read_action(), ReadAction::Tunnel);
    assert!(guard.ready().starts_with(b"PRI * HTTP/2.0"));
    // Not at the start of a connection it is an invalid HTTP/1 request.
    let (guard, _) = feed(format!("{GET}PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").as_bytes());
    assert_eq!(refusal(&guard), Some(HeadViolation::UnsupportedVersion));
}

// === the wrapper, over an in-memory stream ===

mod wrapper {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, duplex};

    use super::super::StrictHttp1;

    fn wrapped(timeout: Duration) -> (StrictHttp1<DuplexStream>, DuplexStream) {
        let (server, client) = duplex(64 * 1024);
        let addr = "127.0.0.1:4000".parse().unwrap();
        (StrictHttp1::new(server, addr, timeout), client)
    }

    #[tokio::test]
    async fn a_valid_head_reaches_the_reader_and_a_bad_one_is_answered() {
        let (mut server, mut client) = wrapped(Duration::from_secs(30));
        let good = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        client.write_all(good).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], good);
        // hyper's answer goes out, and is followed.
        server
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .await
            .unwrap();
        // The reader (hyper) sees the end of the stream, never the bad head.
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8(answer).unwrap();
        let refusal = answer
            .strip_prefix("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
        assert!(
            refusal.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{refusal}"
        );
        assert!(refusal.ends_with("send one of them\n"), "{refusal}");
        // Nothing hyper writes after the refusal goes out.
        assert!(server.write_all(b"late").await.is_err());
    }

    #[tokio::test]
    async fn a_head_that_never_completes_times_out() {
        let (mut server, mut client) = wrapped(Duration::from_millis(50));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(5), server.read(&mut buf)).await;
        let err = read.expect("the wrapper's own deadline fires").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn tunnels_pass_bytes_both_ways() {
        let (mut server, mut client) = wrapped(Duration::from_secs(30));
        client
            .write_all(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\n\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = server.read(&mut buf).await.unwrap();
        assert!(buf[..n].ends_with(b"\r\n\r\n"));
        server
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            .await
            .unwrap();
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\n\n");
        client.write_all(b"raw\n").await.unwrap();
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"raw\n");
    }
}
