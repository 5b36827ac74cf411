//! The compiled definitions of a process: DEFS read whole at start, then followed. One copy
//! per process serves the engine's workers and the gateway alike.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use laurel_log::{Log, Reader, Start, StreamKind};
use laurel_schemas::{DefinitionEvent, decode};
use tokio::sync::watch;

use laurel_runtime::Shutdown;

use super::error::ShellError;
use crate::defs::Definitions;

/// Definitions shared by a process's roles (engine workers, gateway), with the DEFS history
/// they came from.
#[derive(Debug)]
pub struct SharedDefs {
    inner: RwLock<Inner>,
    seq: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Replaced, never changed in place while a snapshot is out: a reader holds its
    /// snapshot as long as it likes without holding the lock.
    defs: Arc<Definitions>,
    history: Vec<(u64, DefinitionEvent)>,
}

impl SharedDefs {
    /// Runs `f` with the current definitions, under the lock: for quick looks only (no
    /// I/O, never across an await); [`SharedDefs::snapshot`] for anything longer.
    pub fn read<T>(&self, f: impl FnOnce(&Definitions) -> T) -> T {
        f(&self.inner.read().expect("defs lock").defs)
    }

    /// The current definitions, to keep as long as needed (a fold and its writes to disk)
    /// without holding up the follower or anyone else.
    pub fn snapshot(&self) -> Arc<Definitions> {
        self.inner.read().expect("defs lock").defs.clone()
    }

    /// The DEFS position applied so far.
    pub fn seq(&self) -> u64 {
        *self.seq.borrow()
    }

    /// A receiver that changes when definitions do.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.seq.subscribe()
    }

    /// Waits until DEFS up to `seq` is applied; false when `timeout` passes first.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.seq.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|s| *s >= seq)).await,
            Ok(Ok(_))
        )
    }

    /// [`SharedDefs::load`], tried again while the log is unreachable; `None` when
    /// `shutdown` came first.
    pub async fn load_retrying(
        log: &Log,
        consumer: &str,
        shutdown: &Shutdown,
    ) -> Option<Result<(Arc<Self>, DefsFollower), ShellError>> {
        laurel_runtime::retrying(
            shutdown,
            "loading definitions",
            ShellError::is_transient,
            || Self::load(log, consumer),
        )
        .await
    }

    /// Reads DEFS to its end: the definitions a process starts with, and the follower that
    /// keeps them current (run it until shutdown). `consumer` names the reader; each load
    /// gets a name of its own from it, since every process (every gateway and engine on one
    /// NATS) follows DEFS from its start by itself.
    pub async fn load(log: &Log, consumer: &str) -> Result<(Arc<Self>, DefsFollower), ShellError> {
        let consumer = format!("{consumer}-{}", uuid::Uuid::new_v4().simple());
        let shared = Arc::new(SharedDefs {
            inner: RwLock::new(Inner::default()),
            seq: watch::channel(0).0,
        });
        let target = log.last_seq(StreamKind::Defs, 0).await?;
        let mut reader = log
            .reader(StreamKind::Defs, 0, &consumer, Start::After(0))
            .await?;
        while shared.seq() < target {
            let batch = reader.next_batch(500, Duration::from_secs(1)).await?;
            apply_batch(&shared, batch)?;
        }
        let follower = DefsFollower {
            reader,
            shared: shared.clone(),
            lag: Duration::ZERO,
        };
        Ok((shared, follower))
    }

    /// The single definition changes after `seq`, in order (a set's, one by one, each
    /// at the set's position).
    pub fn changes_after(&self, seq: u64) -> Vec<(u64, DefinitionEvent)> {
        let inner = self.inner.read().expect("defs lock");
        let start = inner.history.partition_point(|(s, _)| *s <= seq);
        inner.history[start..]
            .iter()
            .flat_map(|(s, event)| event.each().into_iter().map(|e| (*s, e.clone())))
            .collect()
    }

    fn apply(&self, seq: u64, event: DefinitionEvent) {
        let mut inner = self.inner.write().expect("defs lock");
        // Copied first when a snapshot is out (definitions change rarely).
        Arc::make_mut(&mut inner.defs).apply(&event);
        inner.history.push((seq, event));
        drop(inner);
        self.seq.send_replace(seq);
    }

    /// Waits, at most `timeout`, until every definition appended to DEFS so far is applied:
    /// whether it is.
    pub async fn catch_up_within(&self, log: &Log, timeout: Duration) -> Result<bool, ShellError> {
        let target = log.last_seq(StreamKind::Defs, 0).await?;
        Ok(self.wait_for(target, timeout).await)
    }

    /// Waits until every definition appended to DEFS so far is applied.
    pub async fn catch_up(&self, log: &Log) -> Result<(), ShellError> {
        let target = log.last_seq(StreamKind::Defs, 0).await?;
        let mut rx = self.seq.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = rx.wait_for(|seq| *seq >= target).await;
        Ok(())
    }
}

/// Applies DEFS entries after the position applied so far; anything at or below it was
/// applied already (a broker may hand it out again) and is passed over. An entry that does
/// not decode stops the follower: the definitions never move past it.
fn apply_batch(shared: &SharedDefs, records: Vec<laurel_log::Record>) -> Result<(), ShellError> {
    for record in laurel_log::unapplied(records, shared.seq()) {
        let event = decode::<DefinitionEvent>(&record.payload).map_err(|e| {
            tracing::error!(seq = record.seq, error = %e, "an undecodable definition stops the definitions follower");
            ShellError::undecodable(StreamKind::Defs, 0, record.seq, e)
        })?;
        shared.apply(record.seq, event);
    }
    Ok(())
}

/// Keeps a [`SharedDefs`] current with DEFS.
#[derive(Debug)]
pub struct DefsFollower {
    reader: Reader,
    shared: Arc<SharedDefs>,
    lag: Duration,
}

impl DefsFollower {
    /// Holds each batch `lag` before applying it: fault injection, for tests of a process
    /// whose definitions lag behind the log.
    pub fn lagging(mut self, lag: Duration) -> Self {
        self.lag = lag;
        self
    }

    /// Follows DEFS until shutdown.
    pub async fn run(mut self, shutdown: Shutdown) -> Result<(), ShellError> {
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                batch = self.reader.next_batch(100, Duration::from_secs(1)) => match batch {
                    Ok(records) => {
                        if !records.is_empty() && !self.lag.is_zero() {
                            tokio::time::sleep(self.lag).await;
                        }
                        apply_batch(&self.shared, records)?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "definitions log unavailable; retrying");
                        tokio::select! {
                            () = shutdown.wait() => return Ok(()),
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                },
            }
        }
    }
}
