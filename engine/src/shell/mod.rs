//! The engine shell: the I/O around the pure fold.
//!
//! Per partition, a worker consumes STATS, folds each batch with [`Fold`](crate::Fold),
//! appends the batch's unlocks to OUTPUT and then its `changes` entry (stat, progress and
//! rejected outputs; the batch's checkpoint), then acknowledges. Player states and positions
//! are written behind, in one atomic sled batch per partition every `persist_interval`.
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

mod defs;
mod lease;
mod partition;
mod recover;
mod replay;
mod store;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use laurel_log::{AppendError, Log, LogError};
use laurel_runtime::{Shutdown, Supervisor, TaskFailed};

pub use defs::{DefsFollower, SharedDefs};
pub use lease::Lease;
pub use replay::{Gain, Holding, Replay};
pub use store::StoreError;

/// How the engine shell runs.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// The partitions this process evaluates.
    pub partitions: Vec<u32>,
    /// Largest number of STATS entries folded per batch.
    pub batch_max: usize,
    /// Player states kept in memory per partition; the rest stay on disk.
    pub cache_players: usize,
    /// Durable consumer name prefix.
    pub consumer: String,
    /// How long a read waits for new entries before checking for definitions and shutdown.
    pub poll: Duration,
    /// How often a partition writes its changed player states to disk. In between, state
    /// lives in memory; after a crash it is brought back by reading OUTPUT from the last
    /// write, so this bounds the recovery's work, not what can be lost (nothing can).
    pub persist_interval: Duration,
}

impl ShellConfig {
    /// Every partition of a log with `partitions` partitions, with default tuning.
    pub fn all(partitions: u32) -> Self {
        Self {
            partitions: (0..partitions).collect(),
            batch_max: 1_000,
            cache_players: 50_000,
            consumer: "engine".into(),
            poll: Duration::from_millis(200),
            persist_interval: Duration::from_secs(1),
        }
    }
}

/// Counters of a running engine, for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    /// STATS entries folded.
    pub events: AtomicU64,
    /// Batches folded.
    pub batches: AtomicU64,
    /// Outputs appended to OUTPUT.
    pub outputs: AtomicU64,
    /// Player states held in memory, summed over partitions, as of each one's last batch.
    pub cached_players: AtomicU64,
    /// Largest number of player states one partition held in memory after a batch.
    pub max_cached_players: AtomicU64,
    /// Partitions rebuilt from the log because a stored player state was unreadable.
    pub rebuilds: AtomicU64,
}

/// The engine shell failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Appending outputs failed for good.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The state store failed.
    #[error("engine state: {0}")]
    Storage(#[from] sled::Error),
    /// A partition's state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Recovery from OUTPUT could not complete.
    #[error("engine recovery: {0}")]
    Recovery(String),
    /// Shutdown came while work waited on the log; what was not stored is folded again on
    /// the next start.
    #[error("interrupted by shutdown")]
    Interrupted,
    /// The partition's lease lapsed, or another writer appended to the partition's OUTPUT:
    /// the worker stopped without appending. Its owner checks the lease before going on.
    #[error("partition {0}: fenced off (the lease lapsed or another engine appended)")]
    Fenced(u32),
    /// A task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] TaskFailed),
    /// An entry on a log could not be decoded: the reader stops rather than skip it, since
    /// what it would skip was answered 2xx to someone.
    #[error("{stream} partition {partition} entry {seq} is undecodable: {source}")]
    Undecodable {
        /// The stream (`stats`, `defs`, `output`).
        stream: &'static str,
        /// Its partition (0 for DEFS).
        partition: u32,
        /// The entry's position.
        seq: u64,
        /// Why it could not be decoded.
        #[source]
        source: laurel_schemas::DecodeError,
    },
}

impl ShellError {
    /// An entry of `stream` that could not be decoded.
    pub fn undecodable(
        stream: laurel_log::StreamKind,
        partition: u32,
        seq: u64,
        source: laurel_schemas::DecodeError,
    ) -> Self {
        ShellError::Undecodable {
            stream: stream.name(),
            partition,
            seq,
            source,
        }
    }

    /// Whether trying again later may succeed (the log was unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            ShellError::Log(e) => e.is_transient(),
            ShellError::Append(e) => e.is_transient(),
            ShellError::Recovery(_) => true,
            ShellError::Storage(_)
            | ShellError::Store(_)
            | ShellError::Interrupted
            | ShellError::Fenced(_)
            | ShellError::Task(_)
            | ShellError::Undecodable { .. } => false,
        }
    }
}

/// Runs the engine for `config.partitions` until `shutdown` turns true, keeping state in
/// `db` and evaluating against `defs` (which the caller keeps following DEFS). Returns after
/// every worker has finished its batch and stored its position.
pub async fn run(
    log: Log,
    db: laurel_log::derived::Store,
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
    pub db: laurel_log::derived::Store,
    /// The definitions, followed from DEFS by the caller.
    pub defs: Arc<SharedDefs>,
    /// How the workers run; `partitions` lists them all (it staggers writes).
    pub config: ShellConfig,
    /// The engine's counters.
    pub metrics: Arc<EngineMetrics>,
    /// Where leased workers share their partition's state now and then, if anywhere.
    pub share: Option<Share>,
}

/// How often a leased worker shares its partition's state, and with what: `sink` gets the
/// partition and a blob of [`Workers::export`]'s kind, between batches, at most every
/// `every`.
#[derive(Clone)]
pub struct Share {
    /// The least time between two shares of a partition.
    pub every: Duration,
    /// Takes the blob away (the engine role uploads it).
    pub sink: Arc<dyn Fn(u32, Vec<u8>) + Send + Sync>,
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
    db: laurel_log::derived::Store,
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
