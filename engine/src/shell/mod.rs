//! The engine shell: the I/O around the pure fold.
//!
//! Per partition, a worker consumes STATS, folds each batch with [`Fold`](crate::Fold),
//! appends the batch's unlocks to OUTPUT and then its `changes` entry (stat, progress and
//! rejected outputs; the batch's checkpoint), then acknowledges. Player states and positions
//! are written behind, in one atomic batch per partition every `persist_interval`.
//! Every output's message id comes from what caused it (an unlock's is its `unlock_id`, a
//! batch's the STATS positions it folded), so a re-fold of the same events is deduplicated.
//!
//! Positions only move forward: an entry at or below the stored position is never folded
//! again, whatever the broker redelivers. On start (and when a stored player state turns
//! out unreadable) a partition is brought up to the last checkpoint on OUTPUT without
//! emitting anything (see `recover`): STATS says the values, OUTPUT what was emitted, and
//! state built from another log is never used.
//!
//! Definitions come from DEFS: read whole at start, then followed; a change re-evaluates
//! every player of the partition against the changed achievement.

mod config;
mod defs;
mod error;
mod lease;
mod metrics;
mod partition;
mod recover;
mod replay;
mod store;

use std::sync::Arc;

use laurel_log::Log;
use laurel_runtime::{Shutdown, Supervisor};

pub use config::{Share, ShellConfig};
pub use defs::{DefsFollower, SharedDefs};
pub use error::ShellError;
pub use lease::Lease;
pub use metrics::EngineMetrics;
pub use replay::{Gain, Holding, Replay};
pub use store::StoreError;

/// Runs the engine for `config.partitions` until `shutdown` turns true, keeping state in
/// `db` and evaluating against `defs` (which the caller keeps following DEFS). Returns after
/// every worker has finished its batch and stored its position.
pub async fn run(
    log: Log,
    db: laurel_derived::Store,
    defs: Arc<SharedDefs>,
    config: ShellConfig,
    metrics: Arc<EngineMetrics>,
    shutdown: Shutdown,
) -> Result<(), ShellError> {
    db.bind("engine/", log.identity())?;
    let mut workers = Supervisor::default();
    for &p in &config.partitions {
        let worker = partition::Worker::open(p, &log, &db, defs.clone(), &config, metrics.clone())?;
        workers.spawn("partition worker", worker.run(shutdown.clone()));
    }
    tracing::debug!(partitions = config.partitions.len(), "engine running");
    let result = workers.join_all().await;
    db.flush_async().await?;
    result
}

/// What the partition workers of one engine process share.
#[derive(Clone)]
pub struct Workers {
    /// The log.
    pub log: Log,
    /// The engine's state store.
    pub db: laurel_derived::Store,
    /// The definitions, followed from DEFS by the caller.
    pub defs: Arc<SharedDefs>,
    /// How the workers run; `partitions` lists them all (it staggers writes).
    pub config: ShellConfig,
    /// The engine's counters.
    pub metrics: Arc<EngineMetrics>,
    /// Where leased workers share their partition's state now and then, if anywhere.
    pub share: Option<Share>,
}

impl Workers {
    /// The stored state of `partition` as one blob, for the engine that takes the partition
    /// over (see [`Workers::import`]). Only while no worker runs the partition.
    pub fn export(&self, partition: u32) -> Result<Vec<u8>, ShellError> {
        Ok(store::export(&self.db, self.log.identity(), partition)?)
    }

    /// Takes `blob` (from [`Workers::export`], perhaps by another engine) as the stored
    /// state of `partition` when it is of this log and ahead of this engine's own; returns
    /// its STATS position then. Before a worker runs the partition: its recovery checks the
    /// state against OUTPUT and folds on from it.
    pub fn import(&self, partition: u32, blob: &[u8]) -> Result<Option<u64>, ShellError> {
        self.db.bind("engine/", self.log.identity())?;
        Ok(store::import(
            &self.db,
            self.log.identity(),
            partition,
            blob,
        )?)
    }

    /// Runs one partition under a lease until `shutdown` turns true (`Ok`) or the lease is
    /// lost (`Err(ShellError::Fenced)`): recovers the partition's state from the store and
    /// OUTPUT, then folds, every append to OUTPUT fenced (see [`Lease`]). The engine role
    /// runs one of these per partition it holds.
    pub async fn run_partition(
        self,
        partition: u32,
        lease: Arc<Lease>,
        shutdown: Shutdown,
    ) -> Result<(), ShellError> {
        self.db.bind("engine/", self.log.identity())?;
        let worker = partition::Worker::open(
            partition,
            &self.log,
            &self.db,
            self.defs,
            &self.config,
            self.metrics,
        )?
        .leased(lease, self.share);
        worker.run(shutdown).await
    }
}

/// Runs the engine as a role of its own: loads the definitions, follows DEFS beside the
/// workers, and runs them until `shutdown` turns true.
pub async fn run_standalone(
    log: Log,
    db: laurel_derived::Store,
    config: ShellConfig,
    metrics: Arc<EngineMetrics>,
    shutdown: Shutdown,
) -> Result<(), ShellError> {
    let consumer = format!("{}-defs", config.consumer);
    let loaded = SharedDefs::load_retrying(&log, &consumer, &shutdown).await;
    let Some(loaded) = loaded else {
        return Ok(());
    };
    let (defs, follower) = loaded?;
    let mut tasks = Supervisor::default();
    tasks.spawn("definitions follower", follower.run(shutdown.clone()));
    tasks.spawn("engine", run(log, db, defs, config, metrics, shutdown));
    tasks.join_all().await
}
