//! A tiny HTTP/1.1 origin on 127.0.0.1 (std only): records what it receives, answers
//! `hello from origin NAME path PATH` (padded to N bytes with `?bytes=N`), and `/slow`
//! after 3 seconds. Every response closes its
//! connection, so a stopped origin is really unreachable.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Origin {
    pub name: String,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    acceptor: Option<JoinHandle<()>>,
}

/// How long `/slow` takes to answer.
pub const SLOW: Duration = Duration::from_secs(3);

impl Origin {
    pub fn start(name: &str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("origin bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("origin addr");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let stop = stop.clone();
            let seen = seen.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let seen = seen.clone();
                            let name = name.clone();
                            std::thread::spawn(move || {
                                let _ = serve(stream, &name, &seen);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                // The listener drops here: new connections are refused.
            })
        };
        Origin {
            name: name.to_owned(),
            addr,
            stop,
            seen,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and closes the listening socket.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, name: &str, seen: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((n, v)) = header.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    seen.lock().expect("seen lock").push(Seen {
        method,
        path: path.clone(),
        headers,
        at: Instant::now(),
    });
    if path == "/slow" || path.starts_with("/slow?") {
        std::thread::sleep(SLOW);
    }
    let mut body = format!("hello from origin {name} path {path}\n");
    // `?bytes=N` pads the body with 'x' to N bytes.
    if let Some(size) = path
        .split_once("bytes=")
        .and_then(|(_, n)| n.parse::<usize>().ok())
    {
        let pad = size.saturating_sub(body.len());
        body.extend(std::iter::repeat_n('x', pad));
    }
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Origin: {name}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
