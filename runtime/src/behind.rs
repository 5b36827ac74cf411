//! Work written behind: at most one blocking write running beside its owner, who goes on
//! with its live work meanwhile and collects the write's outcome before it starts the next.

use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};

/// At most one write running behind its owner's back (engine state, views). The owner
/// starts a write and goes on; the next [`WriteBehind::start`] (or [`WriteBehind::wait`])
/// first waits for the one before, so writes land in order and never pile up.
pub struct WriteBehind<E> {
    running: Option<Receiver<Result<(), E>>>,
    finished: Option<Result<(), E>>,
}

impl<E> Default for WriteBehind<E> {
    fn default() -> Self {
        Self {
            running: None,
            finished: None,
        }
    }
}

impl<E: Send + 'static> WriteBehind<E> {
    /// Whether a write is still running.
    pub fn busy(&mut self) -> bool {
        let Some(rx) = &self.running else {
            return false;
        };
        match rx.try_recv() {
            Err(TryRecvError::Empty) => true,
            done => {
                self.running = None;
                self.finished = Some(done.unwrap_or_else(|_| panicked()));
                false
            }
        }
    }

    /// Waits for the running write, if any, and returns the outcome of the last write not
    /// yet collected (`Ok` when there is none).
    pub fn wait(&mut self) -> Result<(), E> {
        if let Some(rx) = self.running.take() {
            let done = crate::block_here(|| rx.recv());
            self.finished = Some(done.unwrap_or_else(|_| panicked()));
        }
        self.finished.take().unwrap_or(Ok(()))
    }

    /// Waits for the write before (its error, if it failed, is returned and `work` is not
    /// started), then starts `work` on a blocking thread and returns at once.
    pub fn start(
        &mut self,
        work: impl FnOnce() -> Result<(), E> + Send + 'static,
    ) -> Result<(), E> {
        self.wait()?;
        let (tx, rx) = sync_channel(1);
        let run = move || {
            // The owner may be gone (shut down): then nobody asks for the outcome.
            let _ = tx.send(work());
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(run)),
            Err(_) => drop(std::thread::spawn(run)),
        }
        self.running = Some(rx);
        Ok(())
    }
}

/// A write never outlives its owner: a new owner of the same state (a partition taken
/// again, a rebuilt store) never meets an older write landing after its own.
impl<E> Drop for WriteBehind<E> {
    fn drop(&mut self) {
        // Plainly blocking: a drop may run while the runtime shuts down, where moving off
        // its thread is not allowed; it waits for one write at most.
        if let Some(rx) = self.running.take() {
            let _ = rx.recv();
        }
    }
}

fn panicked<T>() -> T {
    panic!("a write behind panicked")
}

#[cfg(test)]
mod tests {
    use super::WriteBehind;
    use std::sync::{Arc, Barrier};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_owner_goes_on_while_a_write_runs_and_collects_its_outcome_before_the_next() {
        let mut behind = WriteBehind::<String>::default();
        let gate = Arc::new(Barrier::new(2));
        let held = gate.clone();
        behind
            .start(move || {
                held.wait();
                Err("disk full".to_string())
            })
            .expect("nothing ran before");
        // The write is held at the gate: the owner is not.
        assert!(behind.busy());
        gate.wait();
        // The failed write's error comes back, and the next write does not start.
        let next = behind.start(|| panic!("must not run after a failed write"));
        assert_eq!(next, Err("disk full".to_string()));
        assert!(!behind.busy());
        behind.start(|| Ok(())).expect("starts");
        assert_eq!(behind.wait(), Ok(()));
        assert_eq!(behind.wait(), Ok(()), "nothing running, nothing to collect");
    }
}
