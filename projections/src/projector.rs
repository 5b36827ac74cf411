//! The projector: per partition of OUTPUT, and for DEFS, a worker that folds new entries into
//! the views with the cursor, then acknowledges.

use std::time::Duration;

use laurel_log::{Follower, Log, LogError, StreamKind};
use laurel_runtime::{Shutdown, Supervisor, TaskFailed, WriteBehind};
use laurel_schemas::{Output, decode};

use crate::apply::Overlay;
use crate::keys;
use crate::views::Views;

/// How the projector runs.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// The OUTPUT partitions this process projects (DEFS is always projected).
    pub partitions: Vec<u32>,
    /// Largest number of entries applied per batch.
    pub batch_max: usize,
    /// Durable consumer name prefix.
    pub consumer: String,
    /// How long a read waits before checking for shutdown.
    pub poll: Duration,
    /// How often applied entries are written to disk. In between they live in memory,
    /// where reads see them; after a crash the projector folds OUTPUT again from the last
    /// write, so this bounds that work, not what can be lost (nothing can).
    pub flush_interval: Duration,
    /// Where the engine of the same process hands what it appended to OUTPUT (`laurel
    /// serve` on JetStream, by default): a handed batch that follows what a partition
    /// applied is applied at once, without waiting for the broker to deliver it; anything
    /// else is read from the log as always.
    pub handoff: Option<std::sync::Arc<laurel_log::Handoff>>,
    /// With a handoff: how long handed batches must have followed, without a gap or a
    /// drop, before the reader of OUTPUT is closed. Under a flood and after it the
    /// projector falls behind and catches up over and over, and each opening makes a
    /// consumer on the broker (slow on a stream a flood made long).
    pub reader_linger: Duration,
}

/// Staged keys, over all partitions, past which views are written at once, whatever the
/// interval: each partition may hold its share staged, and as much again being written.
/// A budget of the process, not of a partition: with 16 partitions and a million players
/// touched, 50,000 per partition held 1.6 million records in memory.
const MAX_STAGED: usize = 50_000;

impl ProjectorConfig {
    /// Every partition of a log with `partitions` partitions.
    pub fn all(partitions: u32) -> Self {
        Self {
            partitions: (0..partitions).collect(),
            batch_max: 2_000,
            consumer: "projector".into(),
            poll: Duration::from_millis(200),
            flush_interval: Duration::from_secs(1),
            handoff: None,
            reader_linger: Duration::from_secs(5),
        }
    }
}

/// The projector failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// Opening a reader failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The view store failed.
    #[error("views: {0}")]
    Storage(#[from] laurel_derived::StoreError),
    /// A task panicked.
    #[error(transparent)]
    Task(#[from] TaskFailed),
    /// An entry could not be decoded: the projector stops rather than skip it, since what
    /// it would skip was answered 2xx to someone.
    #[error("{stream} entry {seq} is undecodable: {source}")]
    Undecodable {
        /// The stream (`output`).
        stream: &'static str,
        /// The entry's position.
        seq: u64,
        /// Why it could not be decoded.
        #[source]
        source: laurel_schemas::DecodeError,
    },
}

/// Runs the projector until `shutdown` turns true.
pub async fn run(
    log: Log,
    views: Views,
    config: ProjectorConfig,
    shutdown: Shutdown,
) -> Result<(), ProjectorError> {
    let mut tasks = Supervisor::default();
    let consumer = format!("{}-output", config.consumer);
    for &partition in &config.partitions {
        let (log, views, config, shutdown, consumer) = (
            log.clone(),
            views.clone(),
            config.clone(),
            shutdown.clone(),
            consumer.clone(),
        );
        tasks.spawn("projector", async move {
            worker(partition, log, consumer, views, config, shutdown).await
        });
    }
    tasks.join_all().await
}

async fn worker(
    partition: u32,
    log: Log,
    consumer: String,
    views: Views,
    config: ProjectorConfig,
    shutdown: Shutdown,
) -> Result<(), ProjectorError> {
    let tree = views.tree(partition);
    let mut position = keys::u64_of(tree.get(keys::POSITION)?.as_deref());
    // Partitions' writes spread over the interval rather than falling due at once.
    let now = tokio::time::Instant::now();
    let rank = config.partitions.iter().filter(|&&q| q < partition).count() as u32;
    let offset = config.flush_interval * rank / config.partitions.len().max(1) as u32;
    let mut last_flush = now.checked_sub(offset).unwrap_or(now);
    let mut behind = WriteBehind::default();
    let max_staged = (MAX_STAGED / config.partitions.len().max(1)).max(1_000);
    let handed = config.handoff.as_ref().and_then(|h| h.take(partition));
    // With a handoff the reader of OUTPUT is open only while the partition may hold entries
    // not applied (see `laurel_log::follow`).
    let mut follower = Follower::new(
        log,
        StreamKind::Output,
        partition,
        consumer,
        handed,
        config.reader_linger,
    );
    while !shutdown.is_stopping() {
        let read = tokio::select! {
            () = shutdown.wait() => break,
            // Cancel-safe: nothing taken is lost when shutdown comes first.
            read = follower.next(position, config.batch_max, config.poll) => read,
        };
        let records = match read {
            Ok(records) => records,
            Err(e) if e.is_transient() => {
                tracing::warn!(partition, error = %e, "log unavailable; retrying");
                follower.reset();
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
            Err(e) => return Err(e.into()),
        };
        let Some(last) = records.last().map(|r| r.seq) else {
            if last_flush.elapsed() >= config.flush_interval && !behind.busy() {
                flush_behind(&mut behind, &views, partition)?;
                last_flush = tokio::time::Instant::now();
            }
            continue;
        };
        if let Some(staged) = apply(&views, partition, &mut position, records)? {
            flush_if_due(
                &mut behind,
                &views,
                partition,
                &config,
                &mut last_flush,
                staged,
                max_staged,
            )?;
        }
        let acked = tokio::select! {
            () = shutdown.wait() => break,
            acked = follower.ack_behind(last) => acked,
        };
        if let Err(e) = acked {
            tracing::warn!(partition, error = %e, "ack failed; the entries may come again");
        }
    }
    behind.wait()?;
    tree.flush()?;
    Ok(())
}

/// Applies the entries after `position` to the partition's views, moves `position` to the
/// last, and tells readers and streams what changed; how many keys the view has staged, or
/// `None` when every entry was applied already.
fn apply(
    views: &Views,
    partition: u32,
    position: &mut u64,
    records: Vec<laurel_log::Record>,
) -> Result<Option<usize>, ProjectorError> {
    let tree = views.tree(partition);
    let fresh = laurel_log::unapplied(records, *position);
    let Some(last) = fresh.last().map(|r| r.seq) else {
        return Ok(None);
    };
    let mut overlay = Overlay::new(tree);
    let mut applied = Vec::new();
    for record in &fresh {
        let output =
            decode::<Output>(&record.payload).map_err(|source| ProjectorError::Undecodable {
                stream: "output",
                seq: record.seq,
                source,
            })?;
        overlay.apply_output(&output)?;
        applied.extend(output.into_outputs().into_iter().map(|o| (record.seq, o)));
    }
    let staged = overlay.commit(last);
    *position = last;
    let checkpoint = keys::u64_of(tree.get(keys::CHECKPOINT)?.as_deref());
    views.applied(partition, checkpoint, applied);
    Ok(Some(staged))
}

/// Written behind: the worker goes on applying (and answering reads and streams) while the
/// store writes. Past `max_staged`, it waits for the write before, so memory stays bounded
/// when the store is slower than the log.
fn flush_if_due(
    behind: &mut WriteBehind<laurel_derived::StoreError>,
    views: &Views,
    partition: u32,
    config: &ProjectorConfig,
    last_flush: &mut tokio::time::Instant,
    staged: usize,
    max_staged: usize,
) -> Result<(), laurel_derived::StoreError> {
    let due = last_flush.elapsed() >= config.flush_interval;
    if staged >= max_staged || (due && !behind.busy()) {
        flush_behind(behind, views, partition)?;
        *last_flush = tokio::time::Instant::now();
    }
    Ok(())
}

/// Starts writing the partition's staged view writes to the store, once the write before is done.
fn flush_behind(
    behind: &mut WriteBehind<laurel_derived::StoreError>,
    views: &Views,
    partition: u32,
) -> Result<(), laurel_derived::StoreError> {
    let views = views.clone();
    behind.start(move || {
        let started = std::time::Instant::now();
        let flushed = views.tree(partition).flush();
        views.flushed(started.elapsed());
        flushed
    })
}
