//! One shutdown signal per process.

use tokio::sync::watch;

/// Gives the shutdown signal. Dropping it gives the signal too: a task never outlives the
/// owner that would have stopped it.
#[derive(Debug)]
pub struct Stopper(watch::Sender<bool>);

/// Tells a task when to stop. Cheap to clone; every clone sees the same signal.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Stopper {
    /// A new signal, not given yet, and its first receiver.
    pub fn new() -> (Self, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), Shutdown(rx))
    }

    /// Gives the signal (again is harmless).
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Whether the signal was given.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Another receiver of this signal.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// A signal that is never given (tools that run to completion).
    pub fn never() -> Self {
        let (stopper, shutdown) = Stopper::new();
        // The sender must outlive every receiver: dropping it would give the signal.
        std::mem::forget(stopper);
        shutdown
    }

    /// Whether the signal was given.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Returns once the signal is given (at once if it was).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the stopper is gone, which stops too.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_signal_and_a_dropped_stopper_gives_it() {
        let (stopper, shutdown) = Stopper::new();
        let other = stopper.shutdown();
        assert!(!shutdown.is_stopping());
        stopper.stop();
        shutdown.wait().await;
        assert!(other.is_stopping());

        let (stopper, shutdown) = Stopper::new();
        drop(stopper);
        assert!(shutdown.is_stopping());
        shutdown.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn never_is_never_given() {
        let shutdown = Shutdown::never();
        let waited =
            tokio::time::timeout(std::time::Duration::from_secs(3600), shutdown.wait()).await;
        assert!(waited.is_err());
        assert!(!shutdown.is_stopping());
    }
}
