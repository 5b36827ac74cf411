//! How the engine shell runs, what it counts, and how leased workers share their state.

use std::sync::Arc;
use std::time::Duration;

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
    /// Where each unleased worker hands what it appended to OUTPUT, for the projector of the
    /// same process (`laurel serve` on JetStream, by default): its appends are then fenced, so each
    /// handed batch says which entry it follows. `None`: nothing is handed.
    pub output_handoff: Option<Arc<laurel_log::Handoff>>,
    /// Where the gateway of the same process hands what it appended to STATS (`laurel
    /// serve` on JetStream, by default): a handed batch that follows what a worker folded is folded
    /// without waiting for the broker to deliver it; anything else is read from the log.
    pub stats_handoff: Option<Arc<laurel_log::Handoff>>,
    /// With a STATS handoff: how long handed batches must have followed, without a gap or a
    /// drop, before the reader of STATS is closed (see `laurel_log::follow`).
    pub reader_linger: Duration,
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
            output_handoff: None,
            stats_handoff: None,
            reader_linger: Duration::from_secs(5),
        }
    }
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
