//! `portless access tcp`: raw TCP through the edge, on stdin/stdout or for every connection
//! to a local listener.
//!
//! Each direction is copied until its source ends, then closed on its own (half-close), so a
//! protocol that sends its last bytes after the other side finished (SSH's exit status after
//! the client's EOF) still gets them through.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use portless_tls::{OriginTls, origin_client_config};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
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
        Some(url) => listen(Arc::new(dialer), url).await,
    }
}

/// One stream on stdin/stdout (an SSH `ProxyCommand`). The stream is opened before stdin is
/// read, so a refusal is reported at once.
async fn on_stdio(dialer: &EdgeDialer) -> anyhow::Result<()> {
    let opened = dialer.open().await?;
    splice(tokio::io::stdin(), tokio::io::stdout(), opened)
        .await
        .context("the stream through the edge failed")
}

/// Accepts connections on `url` (`127.0.0.1:2222`, `tcp://localhost:2222`) and carries
/// each through its own stream, until SIGINT/SIGTERM.
async fn listen(dialer: Arc<EdgeDialer>, url: &str) -> anyhow::Result<()> {
    let address = url.strip_prefix("tcp://").unwrap_or(url);
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address:?}: give a free local address such as 127.0.0.1:2222")
    })?;
    let local: SocketAddr = listener.local_addr()?;
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
        let dialer = dialer.clone();
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
        let copied = tokio::io::copy(&mut local_read, &mut edge_write).await;
        let _ = edge_write.shutdown().await;
        copied.map(|_| ())
    };
    let down = async {
        local_write.write_all(&early).await?;
        let copied = tokio::io::copy(&mut edge_read, &mut local_write).await;
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
