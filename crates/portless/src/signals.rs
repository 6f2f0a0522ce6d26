//! SIGTERM/SIGINT: the first starts a graceful shutdown, the second stops at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Waits for signals in the background: cancels `graceful` on the first, `immediate` on
/// the second.
pub(crate) fn watch(
    graceful: CancellationToken,
    immediate: CancellationToken,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        info!("shutting down gracefully (signal again to stop at once)");
        graceful.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = immediate.cancelled() => return,
        }
        warn!("second signal: stopping now");
        immediate.cancel();
    });
    Ok(())
}
