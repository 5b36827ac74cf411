//! What a running engine counts, for `/metrics` (the gateway's in `laurel serve`, the engine
//! role's own in `laurel engine`; encoded by the gateway's metrics module) and tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Counters and timings of a running engine.
#[derive(Debug)]
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
    /// Player states a batch found in memory.
    pub cache_hits: AtomicU64,
    /// Player states a batch read from disk (or started, for a new player).
    pub cache_misses: AtomicU64,
    /// Per partition this process folds: position applied, entries left behind it.
    partitions: Mutex<BTreeMap<u32, (u64, u64)>>,
    fold: Histogram,
    persist: Histogram,
    share: Histogram,
}

fn timings() -> Histogram {
    // 0.1 ms to 1.6 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            events: AtomicU64::default(),
            batches: AtomicU64::default(),
            outputs: AtomicU64::default(),
            cached_players: AtomicU64::default(),
            max_cached_players: AtomicU64::default(),
            rebuilds: AtomicU64::default(),
            cache_hits: AtomicU64::default(),
            cache_misses: AtomicU64::default(),
            partitions: Mutex::default(),
            fold: timings(),
            persist: timings(),
            share: timings(),
        }
    }
}

impl EngineMetrics {
    /// A batch of partition `p` was folded and published in `took`: it is at `applied`, with
    /// `lag` entries of STATS after it (when the log said).
    pub(super) fn folded(&self, p: u32, applied: u64, lag: Option<u64>, took: Duration) {
        self.fold.observe(took.as_secs_f64());
        let mut partitions = self.partitions.lock().expect("metrics lock");
        let at = partitions.entry(p).or_default();
        at.0 = applied;
        if let Some(lag) = lag {
            at.1 = lag;
        }
    }

    /// Partition `p` is no longer folded here (handed over, or the worker stopped).
    pub(super) fn released(&self, p: u32) {
        self.partitions.lock().expect("metrics lock").remove(&p);
    }

    /// A write of engine state to disk took `took`.
    pub(super) fn persisted(&self, took: Duration) {
        self.persist.observe(took.as_secs_f64());
    }

    /// A partition's state was exported to share in `took`.
    pub(super) fn shared(&self, took: Duration) {
        self.share.observe(took.as_secs_f64());
    }

    /// Per partition this process folds: the STATS position folded, and the entries of the
    /// partition after it as of its last batch.
    pub fn partitions(&self) -> Vec<(u32, u64, u64)> {
        let partitions = self.partitions.lock().expect("metrics lock");
        partitions
            .iter()
            .map(|(&p, &(at, lag))| (p, at, lag))
            .collect()
    }

    /// Time to fold a batch and publish its outputs.
    pub fn fold_timings(&self) -> &Histogram {
        &self.fold
    }

    /// Time to write a partition's changed player states (behind the fold).
    pub fn persist_timings(&self) -> &Histogram {
        &self.persist
    }

    /// Time to write and export a partition's state to share it (engine role).
    pub fn snapshot_timings(&self) -> &Histogram {
        &self.share
    }
}
