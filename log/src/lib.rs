//! Laurel's logs: append-only, partitioned streams with per-partition order, idempotent
//! append (an id already appended inside the dedup window is not appended twice) and
//! durable consumer cursors.
//!
//! Two backends behind one type, [`Log`]:
//! - [`embedded`]: the streams kept in segment files in the data directory (the default; no
//!   server).
//! - [`nats`]: NATS JetStream, the production backend that scales out.
//!
//! Three logical streams: [`StreamKind::Stats`] (`laurel.stats.<partition>`),
//! [`StreamKind::Defs`] (`laurel.defs.<kind>.<id>`, one total order) and
//! [`StreamKind::Output`] (`laurel.output.<partition>`).

pub mod coord;
pub mod embedded;
pub mod follow;
pub mod handoff;
pub mod nats;
pub mod open;
pub mod seal;

use std::time::Duration;

pub use embedded::EmbeddedLog;
pub use follow::{Follower, Follows};
pub use handoff::{Handed, Handing, Handoff};
pub use nats::{NatsLog, NatsTls};

/// One of the three logical streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Stat events and grants, partitioned by player.
    Stats,
    /// Definition changes, one total order.
    Defs,
    /// Engine outputs, partitioned by player.
    Output,
}

impl StreamKind {
    /// Every stream.
    pub const ALL: [StreamKind; 3] = [StreamKind::Stats, StreamKind::Defs, StreamKind::Output];

    /// The stream's lowercase name, as in subjects.
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Stats => "stats",
            StreamKind::Defs => "defs",
            StreamKind::Output => "output",
        }
    }

    /// Whether the stream is split into partitions (DEFS is one total order).
    pub fn is_partitioned(self) -> bool {
        match self {
            StreamKind::Stats | StreamKind::Output => true,
            StreamKind::Defs => false,
        }
    }
}

/// Where an entry goes inside its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A partition of STATS or OUTPUT.
    Partition(u32),
    /// A definition on DEFS: `kind` (`stat`, `achievement`) and id.
    Definition {
        /// What is defined.
        kind: &'static str,
        /// Its name or id.
        id: String,
    },
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where it goes.
    pub target: Target,
    /// Idempotency key: an entry whose id was appended inside the dedup window is not
    /// appended again.
    pub id: String,
    /// The message (msgpack).
    pub payload: Vec<u8>,
}

/// The outcome of appending one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The entry's position in its partition (of the earlier copy, for a duplicate).
    pub seq: u64,
    /// Whether the id had been appended already, so nothing new was stored.
    pub duplicate: bool,
}

/// One stored entry, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its position: increasing within a partition (not necessarily dense).
    pub seq: u64,
    /// The message.
    pub payload: bytes::Bytes,
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the consumer's durably acknowledged position (the beginning for a new one).
    Resume,
    /// After this position, whatever the consumer acknowledged before.
    After(u64),
}

/// How the logs are laid out: fixed when the streams are created.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Partitions of STATS and OUTPUT.
    pub partitions: u32,
    /// How long an appended id is remembered for deduplication.
    pub duplicate_window: Duration,
    /// Prefix of stream names (`LAUREL` gives `LAUREL_STATS`); tests use unique ones.
    pub stream_prefix: String,
    /// Prefix of subjects (`laurel` gives `laurel.stats.<p>`).
    pub subject_prefix: String,
    /// JetStream replicas (1 on a single server; 3 in production).
    pub replicas: usize,
    /// Largest number of entries a stream holds; past it appends fail with
    /// [`AppendError::Full`] instead of discarding anything. `None`: unlimited.
    pub max_entries: Option<u64>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            partitions: 16,
            duplicate_window: Duration::from_secs(120),
            stream_prefix: "LAUREL".into(),
            subject_prefix: "laurel".into(),
            replicas: 1,
            max_entries: None,
        }
    }
}

/// An append failed. Nothing was acknowledged; retrying with the same ids is safe.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The log cannot be reached now (retry later).
    #[error("log unavailable: {0}")]
    Unavailable(String),
    /// The stream is at its configured limit and refuses new entries.
    #[error("stream {0} is full")]
    Full(&'static str),
    /// The entry does not fit the stream (wrong target for the stream).
    #[error("invalid entry: {0}")]
    Invalid(String),
    /// An append that expected the stream to end at a position found it had moved on:
    /// another writer appended first.
    #[error("stream {0} moved on: another writer appended first")]
    Conflict(&'static str),
}

impl AppendError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AppendError::Unavailable(_))
    }
}

/// Reading or opening a log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot be reached now.
    #[error("log unavailable: {0}")]
    Unavailable(String),
    /// The stored log disagrees with the configuration (e.g. partition count).
    #[error("log misconfigured: {0}")]
    Misconfigured(String),
    /// The local store failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The embedded log in this directory is open in another process (or handle).
    #[error("the log in {0} is in use by another process")]
    Locked(String),
}

impl LogError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, LogError::Unavailable(_))
    }
}

impl From<sled::Error> for LogError {
    fn from(e: sled::Error) -> Self {
        LogError::Storage(StorageError::Sled(e))
    }
}

impl From<std::io::Error> for LogError {
    fn from(e: std::io::Error) -> Self {
        LogError::Storage(StorageError::Io(e))
    }
}

/// How the local store failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A log an earlier version kept in sled could not be read.
    #[error(transparent)]
    Sled(#[from] sled::Error),
    /// What is stored is not what was written (a missing entry, a frame that does not
    /// decode or whose seal does not open): the log stops rather than guess.
    #[error("{0}")]
    Corrupt(String),
    /// A blocking task that did the work was lost.
    #[error("{0}")]
    Task(String),
}

/// The records of a batch that a reader has not applied yet: those past `position` (the last
/// it applied), in order, each once. A broker may hand an entry out again (a redelivery, a
/// consumer made again after a reconnect): every reader applies only what this returns, so
/// its position only moves forward.
pub fn unapplied(records: Vec<Record>, position: u64) -> Vec<Record> {
    let mut fresh: Vec<Record> = records.into_iter().filter(|r| r.seq > position).collect();
    fresh.sort_by_key(|r| r.seq);
    fresh.dedup_by_key(|r| r.seq);
    fresh
}

/// A log, on one of the two backends.
#[derive(Debug, Clone)]
pub enum Log {
    /// Segment files in the data directory.
    Embedded(EmbeddedLog),
    /// NATS JetStream.
    Nats(NatsLog),
}

impl Log {
    /// Writes what the log holds in memory to disk (the embedded log; NATS stores as it
    /// acknowledges).
    pub async fn flush(&self) -> Result<(), LogError> {
        match self {
            Log::Embedded(l) => l.flush().await,
            Log::Nats(_) => Ok(()),
        }
    }

    /// The layout the log was opened with.
    pub fn config(&self) -> &LogConfig {
        match self {
            Log::Embedded(l) => l.config(),
            Log::Nats(l) => l.config(),
        }
    }

    /// What this log is: the same for every handle on the same streams, different for
    /// another log (the embedded one of another data dir, a JetStream stream deleted and
    /// created again). Derived state records it, so that state built from one log is never
    /// taken for state of another.
    pub fn identity(&self) -> &str {
        match self {
            Log::Embedded(l) => l.identity(),
            Log::Nats(l) => l.identity(),
        }
    }

    /// Whether one append's entries to one partition are stored all or none (embedded: one
    /// checksummed frame). On JetStream each message stands alone: after a failure some of a batch
    /// may be stored and others not.
    pub fn appends_atomically(&self) -> bool {
        match self {
            Log::Embedded(_) => true,
            Log::Nats(_) => false,
        }
    }

    /// Whether appends made at once are stored together already: the embedded log's writer
    /// takes every append waiting for it into one write and one sync. On JetStream every
    /// entry is a message of its own, stored, delivered and acknowledged apart.
    pub fn groups_appends(&self) -> bool {
        matches!(self, Log::Embedded(_))
    }

    /// Appends entries, pipelined: every entry is sent before any acknowledgement is
    /// awaited. Returns one outcome per entry, in order.
    pub async fn append(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
    ) -> Result<Vec<Appended>, AppendError> {
        match self {
            Log::Embedded(l) => l.append(stream, entries).await,
            Log::Nats(l) => l.append(stream, entries).await,
        }
    }

    /// Appends entries whose ids were made for this one append and are never sent again
    /// (the gateway's own grouping of events without client ids), as [`Log::append`] does.
    /// The embedded log keeps their ids out of its dedup window and off disk: at a flood's
    /// rate a two-minute window of ids nobody will repeat held hundreds of MiB. JetStream
    /// gets them without `Nats-Msg-Id`, so its window does not hold them either.
    pub async fn append_unique(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
    ) -> Result<Vec<Appended>, AppendError> {
        match self {
            Log::Embedded(l) => l.append_unique(stream, entries).await,
            Log::Nats(l) => l.append_unique(stream, entries).await,
        }
    }

    /// Appends `entry` to an unpartitioned stream (DEFS) only if the stream's last entry is
    /// still `expected_last` (optimistic concurrency: [`AppendError::Conflict`] otherwise).
    /// An entry whose id is inside the dedup window is a duplicate, as with
    /// [`Log::append`], wherever the stream ends.
    pub async fn append_after(
        &self,
        stream: StreamKind,
        entry: Entry,
        expected_last: u64,
    ) -> Result<Appended, AppendError> {
        if stream.is_partitioned() {
            return Err(AppendError::Invalid(format!(
                "{} is partitioned: expected positions are per stream",
                stream.name()
            )));
        }
        match self {
            Log::Embedded(l) => l.append_after(stream, entry, expected_last).await,
            Log::Nats(l) => l.append_after(stream, entry, expected_last).await,
        }
    }

    /// Appends `entries`, all to one partition of a partitioned stream, only while that
    /// partition still ends at `fence` (its last entry's position, 0 when empty), and each
    /// entry after the one before: [`AppendError::Conflict`] as soon as another writer
    /// appended to the partition. This fences a partition's single writer (an engine that
    /// lost the partition's lease can no longer append to it). A duplicate (an id inside
    /// the dedup window) moves nothing; the partition's new end is the last non-duplicate
    /// position returned, else `fence`.
    pub async fn append_fenced(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
        fence: u64,
    ) -> Result<Vec<Appended>, AppendError> {
        let Some(first) = entries.first() else {
            return Ok(Vec::new());
        };
        let one_partition = match &first.target {
            Target::Partition(p) => entries
                .iter()
                .all(|e| matches!(e.target, Target::Partition(q) if q == *p)),
            Target::Definition { .. } => false,
        };
        if !stream.is_partitioned() || !one_partition {
            return Err(AppendError::Invalid(format!(
                "a fenced append goes to one partition of a partitioned stream, not {}",
                stream.name()
            )));
        }
        match self {
            Log::Embedded(l) => l.append_fenced(stream, entries, fence).await,
            Log::Nats(l) => l.append_fenced(stream, entries, fence).await,
        }
    }

    /// Appends one entry to a partition only while it still ends at `fence`, as
    /// [`Log::append_fenced`] does, for an entry whose id was made for this one append and is
    /// never sent again, as [`Log::append_unique`] does: no deduplication record is kept of
    /// it.
    pub async fn append_fenced_unique(
        &self,
        stream: StreamKind,
        entry: Entry,
        fence: u64,
    ) -> Result<Appended, AppendError> {
        if !stream.is_partitioned() || !matches!(entry.target, Target::Partition(_)) {
            return Err(AppendError::Invalid(format!(
                "a fenced append goes to one partition of a partitioned stream, not {}",
                stream.name()
            )));
        }
        match self {
            Log::Embedded(l) => l.append_fenced_unique(stream, entry, fence).await,
            Log::Nats(l) => l.append_fenced_unique(stream, entry, fence).await,
        }
    }

    /// The end of a partition after a fenced append that started at `fence`: see
    /// [`Log::append_fenced`].
    pub fn fence_after(fence: u64, appended: &[Appended]) -> u64 {
        appended
            .iter()
            .filter(|a| !a.duplicate)
            .map(|a| a.seq)
            .max()
            .unwrap_or(fence)
    }

    /// Opens a reader of one partition (0 for DEFS) for the durable consumer `consumer`.
    pub async fn reader(
        &self,
        stream: StreamKind,
        partition: u32,
        consumer: &str,
        start: Start,
    ) -> Result<Reader, LogError> {
        Ok(match self {
            Log::Embedded(l) => Reader::Embedded(l.reader(stream, partition, consumer, start)?),
            Log::Nats(l) => Reader::Nats(Box::new(
                l.reader(stream, partition, consumer, start).await?,
            )),
        })
    }

    /// The position of the last entry of a partition (0 when empty).
    pub async fn last_seq(&self, stream: StreamKind, partition: u32) -> Result<u64, LogError> {
        match self {
            Log::Embedded(l) => Ok(l.last_seq(stream, partition)),
            Log::Nats(l) => l.last_seq(stream, partition).await,
        }
    }

    /// How many entries a partition holds (for progress: on JetStream, positions are
    /// shared by all partitions of a stream, so they do not count a partition's entries).
    pub async fn entries(&self, stream: StreamKind, partition: u32) -> Result<u64, LogError> {
        match self {
            // Embedded positions are dense per partition, from 1.
            Log::Embedded(l) => Ok(l.last_seq(stream, partition)),
            Log::Nats(l) => l.entries(stream, partition).await,
        }
    }
}

/// A reader of one partition for one durable consumer.
#[derive(Debug)]
pub enum Reader {
    /// On the embedded log.
    Embedded(embedded::EmbeddedReader),
    /// On JetStream.
    Nats(Box<nats::NatsReader>),
}

impl Reader {
    /// The next entries, up to `max`: returns as soon as some are there, or empty after
    /// `wait` with none. Cancel-safe: dropped before it returns, it has handed out nothing,
    /// and the next call hands out what this one would have.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, LogError> {
        match self {
            Reader::Embedded(r) => r.next_batch(max, wait).await,
            Reader::Nats(r) => r.next_batch(max, wait).await,
        }
    }

    /// Entries of the partition after the last one read, when known (on JetStream, as the
    /// server counted them when it delivered that one).
    pub fn pending(&self) -> Option<u64> {
        match self {
            Reader::Embedded(r) => Some(r.pending()),
            Reader::Nats(r) => r.pending(),
        }
    }

    /// Durably acknowledges everything up to and including `seq`.
    pub async fn ack(&mut self, seq: u64) -> Result<(), LogError> {
        match self {
            Reader::Embedded(r) => r.ack(seq),
            Reader::Nats(r) => r.ack(seq).await,
        }
    }

    /// Acknowledges everything up to and including `seq`, perhaps a little later, for a
    /// reader that keeps its own position (it reopens with [`Start::After`]) and needs the
    /// log's acknowledgements only so nothing is delivered again while it reads. On NATS an
    /// acknowledgement is a message the broker handles: a busy partition's reader sends one
    /// every 100 ms instead of one per batch, and a quiet one sends what it held back when
    /// its next read waits for nothing. After a crash, what was not acknowledged is not
    /// delivered again either: the reader reopens after its own position.
    pub async fn ack_behind(&mut self, seq: u64) -> Result<(), LogError> {
        match self {
            Reader::Embedded(r) => r.ack(seq),
            Reader::Nats(r) => r.ack_behind(seq).await,
        }
    }
}

/// The stable partition of a key (a player id): FNV-1a 64 of its UTF-8 bytes, modulo the
/// partition count. Part of the wire contract: never change it for existing streams.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            payload: Default::default(),
        }
    }

    #[test]
    fn entries_at_or_below_the_position_are_never_applied_again() {
        let handed_out = vec![record(3), record(4), record(5), record(6), record(5)];
        let seqs: Vec<u64> = unapplied(handed_out, 4).iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![5, 6]);
        assert!(unapplied(vec![record(1), record(2)], 4).is_empty());
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: a change here would move every player to another partition.
        assert_eq!(partition_of("player-1", 16), partition_of("player-1", 16));
        assert_eq!(partition_of("", 16), (0xcbf2_9ce4_8422_2325u64 % 16) as u32);
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[partition_of(&format!("player-{i}"), 16) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (700..1300).contains(c)), "{counts:?}");
    }
}
