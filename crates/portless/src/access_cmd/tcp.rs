//! `portless access tcp`: raw TCP through the edge, on stdin/stdout or for every connection
//! to a local listener.
//!
//! Each direction is copied until its source ends, then closed on its own (half-close), so a
//! protocol that sends its last bytes after the other side finished (SSH's exit status after
//! the client's EOF) still gets them through. (On stdin/stdout, see [`splice_stdio`].)

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use portless_tls::{OriginTls, origin_client_config};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::TcpArgs;
use super::auth::Presented;
use super::edge::{EdgeDialer, Opened};
use super::target::Target;

/// Runs `access tcp`.
pub(crate) async fn run(args: &TcpArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.hostname)?;
    let address = args
        .edge
        .clone()
        .unwrap_or_else(|| format!("{}:{}", target.host, target.port.unwrap_or(443)));
    let tls = origin_client_config(OriginTls {
        ca_pool: args.tls.ca_file.clone(),
        no_verify: false,
        alpn_h2: false,
    })
    .context("cannot set up TLS toward the edge")?;
    let dialer = EdgeDialer {
        presented: Presented::for_target(&args.service_token, &target)?,
        target,
        address,
        tls,
    };
    match &args.url {
        None => on_stdio(&dialer).await,
        Some(url) => listen(Arc::new(dialer), url, args).await,
    }
}

/// One stream on stdin/stdout (an SSH `ProxyCommand`). The stream is opened before stdin is
/// read, so a refusal is reported at once.
async fn on_stdio(dialer: &EdgeDialer) -> anyhow::Result<()> {
    let opened = dialer.open().await?;
    splice_stdio(opened)
        .await
        .context("the stream through the edge failed")
}

/// [`splice`] for stdin/stdout, which are read and written by threads of their own (blocking
/// file descriptors). The end of stdin closes the stream's sending side; the end of the
/// stream ends the command once stdout is flushed, since stdout can only be closed by
/// exiting and whoever reads it may be waiting for that.
async fn splice_stdio(opened: Opened) -> std::io::Result<()> {
    let Opened { stream, early } = opened;
    let (mut edge_read, mut edge_write) = tokio::io::split(stream);
    let (input, mut chunks_in) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let (output, mut chunks_out) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let (flushed, written) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
    std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        let mut result = Ok(());
        while let Some(chunk) = chunks_out.blocking_recv() {
            result = stdout.write_all(&chunk).and_then(|()| stdout.flush());
            if result.is_err() {
                break;
            }
        }
        let _ = flushed.send(result);
    });
    let up = async {
        while let Some(chunk) = chunks_in.recv().await {
            edge_write.write_all(&chunk).await?;
        }
        edge_write.shutdown().await
    };
    let down = async move {
        let closed = |_| std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        if !early.is_empty() {
            output.send(early).await.map_err(closed)?;
        }
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = edge_read.read(&mut buffer).await?;
            if n == 0 {
                return Ok(());
            }
            output.send(buffer[..n].to_vec()).await.map_err(closed)?;
        }
    };
    // In a block, so both futures (and with `down` the stdout sender) are dropped before
    // waiting for the writer thread to flush.
    let result = {
        tokio::pin!(up, down);
        let mut up_done = false;
        loop {
            tokio::select! {
                result = &mut down => break result,
                result = &mut up, if !up_done => {
                    up_done = true;
                    if let Err(e) = result {
                        break Err(e);
                    }
                }
            }
        }
    };
    let flush = written.await.unwrap_or(Ok(()));
    result.and(flush)
}

/// Accepts connections on `url` (`127.0.0.1:2222`, `tcp://localhost:2222`) and carries
/// each through its own stream, until SIGINT/SIGTERM. The credential is looked up again for
/// every connection, so a listener left running picks up a `portless access login` done
/// after it started (a fresh token after the old one expired).
async fn listen(dialer: Arc<EdgeDialer>, url: &str, args: &TcpArgs) -> anyhow::Result<()> {
    let address = url.strip_prefix("tcp://").unwrap_or(url);
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address:?}: give a free local address such as 127.0.0.1:2222")
    })?;
    let local: SocketAddr = listener.local_addr()?;
    // Whoever reaches the listener gets through with this user's identity.
    if !local.ip().is_loopback() {
        anyhow::bail!(
            "--url {url}: {local} is not a loopback address, so anyone who can reach it would use your access; listen on 127.0.0.1 or [::1]"
        );
    }
    eprintln!(
        "Listening on {local}: each connection is carried to {} through the edge at {}",
        dialer.target.host, dialer.address
    );
    let stop = CancellationToken::new();
    crate::signals::watch(stop.clone(), stop.child_token())?;
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (client, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("warning: accepting a connection failed: {e}");
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        let dialer = match Presented::for_target(&args.service_token, &dialer.target) {
            Ok(presented) => Arc::new(EdgeDialer {
                target: dialer.target.clone(),
                address: dialer.address.clone(),
                tls: dialer.tls.clone(),
                presented,
            }),
            Err(e) => {
                eprintln!("error: connection from {peer}: {e:#}");
                continue;
            }
        };
        let stop = stop.clone();
        tasks.spawn(async move {
            let carried = async {
                let opened = dialer.open().await?;
                let (read, write) = client.into_split();
                splice(read, write, opened)
                    .await
                    .map_err(anyhow::Error::from)
            };
            tokio::select! {
                () = stop.cancelled() => {}
                result = carried => {
                    if let Err(e) = result {
                        eprintln!("error: connection from {peer}: {e:#}");
                    }
                }
            }
        });
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Copies `local_read` → edge and edge → `local_write` until both directions end, closing
/// each on its own. An error on the edge side ends both.
async fn splice<R, W>(mut local_read: R, mut local_write: W, opened: Opened) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Opened { stream, early } = opened;
    let (mut edge_read, mut edge_write) = tokio::io::split(stream);
    let up = async {
        let copied = portless_transport::pump(&mut local_read, &mut edge_write, |_| {}).await;
        let _ = edge_write.shutdown().await;
        copied.map(|_| ())
    };
    let down = async {
        local_write.write_all(&early).await?;
        let copied = portless_transport::pump(&mut edge_read, &mut local_write, |_| {}).await;
        let _ = local_write.shutdown().await;
        copied.map(|_| ())
    };
    tokio::pin!(up, down);
    tokio::select! {
        result = &mut down => {
            result?;
            up.await
        }
        result = &mut up => {
            result?;
            down.await
        }
    }
}
