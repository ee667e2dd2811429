//! Background work: every task wharf starts besides sessions (the S3 janitor, cluster
//! polls, upload hooks, the xferlog writer, cluster notices) goes through [`Tasks`], so
//! that a shutdown stops the endless ones and waits, bounded, for the rest.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The background tasks of one server, and the signal that it is ending.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    ending: CancellationToken,
}

impl Tasks {
    /// Runs `work` to its end (a shutdown waits for it, within [`Tasks::stop`]'s bound).
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(work);
    }

    /// Runs `work` (a loop) until the server ends.
    pub fn spawn_until_ending(&self, work: impl Future<Output = ()> + Send + 'static) {
        let ending = self.ending.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = ending.cancelled() => {}
                _ = work => {}
            }
        });
    }

    /// Completes when the server ends: for a task that must finish its work first.
    pub fn ending(&self) -> CancellationToken {
        self.ending.clone()
    }

    /// Tells every task the server ends and waits for them, at most `within`; says
    /// whether they all ended.
    pub async fn stop(&self, within: Duration) -> bool {
        self.ending.cancel();
        self.tracker.close();
        tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stop_ends_loops_and_waits_for_finite_work() {
        let tasks = Tasks::default();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        tasks.spawn_until_ending(std::future::pending());
        let d = done.clone();
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            d.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        assert!(tasks.stop(Duration::from_secs(5)).await);
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
        // Work that outlives the bound is reported, not waited for.
        let late = Tasks::default();
        late.spawn(std::future::pending());
        assert!(!late.stop(Duration::from_secs(5)).await);
    }
}
