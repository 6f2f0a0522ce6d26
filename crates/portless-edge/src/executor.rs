//! A hyper executor that spawns onto a [`TaskTracker`], so the tasks hyper starts (HTTP/2
//! streams) are owned and waited for on shutdown like every other task.

use std::future::Future;

use tokio_util::task::TaskTracker;

/// Spawns hyper's background futures on a tracker.
#[derive(Clone)]
pub(crate) struct TrackedExecutor(pub(crate) TaskTracker);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}
