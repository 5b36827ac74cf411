//! The embedded log: the streams kept in sled, so one process runs everything with no server.
//!
//! Each partition is a sled tree keyed by its sequence number (big-endian, so keys sort in
//! order). An append writes one sled batch per partition, then waits for a flush that makes it
//! durable; concurrent appends share flushes (group commit). Readers only see flushed entries,
//! so nothing derived from the log ever runs ahead of what survives a `kill -9`.
//!
//! Deduplication keeps the ids appended inside the window in memory, and rebuilds them on
//! open by scanning back from each partition's tail, as JetStream does.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Mutex, Notify};

use crate::{AppendError, Appended, Entry, LogConfig, LogError, Record, Start, StreamKind, Target};

/// sled's page cache for the log (its default, 1 GiB, is too much beside the other stores).
const LOG_CACHE_BYTES: u64 = 256 << 20;

/// The embedded log. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    db: sled::Db,
    config: LogConfig,
    /// Made when the log is created: see [`crate::Log::identity`].
    identity: String,
    streams: HashMap<StreamKind, StreamState>,
    cursors: sled::Tree,
    flusher: Flusher,
}

struct StreamState {
    partitions: Vec<PartitionState>,
    /// Serializes appends to the stream; holds the dedup window.
    appending: Mutex<Appending>,
}

struct Appending {
    window: DedupWindow,
    entries: u64,
}

struct PartitionState {
    tree: sled::Tree,
    next_seq: AtomicU64,
    /// The last durable sequence: readers see up to here.
    committed: AtomicU64,
    notify: Notify,
}

/// Ids appended inside the window, with their sequence.
#[derive(Default)]
struct DedupWindow {
    ids: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
}

impl DedupWindow {
    fn insert(&mut self, id: String, seq: u64, at_ms: u64) {
        self.ids.insert(id.clone(), seq);
        self.order.push_back((at_ms, id));
    }

    fn prune(&mut self, before_ms: u64) {
        while let Some((at, _)) = self.order.front() {
            if *at >= before_ms {
                break;
            }
            let (_, id) = self.order.pop_front().expect("front exists");
            self.ids.remove(&id);
        }
    }
}

/// Group commit: concurrent callers share one sled flush.
struct Flusher {
    db: sled::Db,
    requested: AtomicU64,
    completed: AtomicU64,
    lock: Mutex<()>,
}

impl Flusher {
    /// Returns once everything written before the call is durable.
    async fn flush(&self) -> Result<(), sled::Error> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _one_at_a_time = self.lock.lock().await;
        if self.completed.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // a flush that started after our writes has finished
        }
        let target = self.requested.load(Ordering::SeqCst);
        self.db.flush_async().await?;
        self.completed.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A stored record: `[append time ms: u64][id length: u16][id][payload]`.
fn encode_record(at_ms: u64, id: &str, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(10 + id.len() + payload.len());
    buf.extend_from_slice(&at_ms.to_be_bytes());
    buf.extend_from_slice(&(id.len() as u16).to_be_bytes());
    buf.extend_from_slice(id.as_bytes());
    buf.extend_from_slice(payload);
    buf
}

/// `(append time, id, payload range start)` of a stored record.
fn decode_record(raw: &[u8]) -> Option<(u64, &str, usize)> {
    let at = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    let len = u16::from_be_bytes(raw.get(8..10)?.try_into().ok()?) as usize;
    let id = std::str::from_utf8(raw.get(10..10 + len)?).ok()?;
    Some((at, id, 10 + len))
}

fn seq_of(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, LogError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(LOG_CACHE_BYTES)
            .flush_every_ms(Some(500))
            .open()?;
        let meta = db.open_tree("meta")?;
        let partitions = config.partitions.to_be_bytes();
        match meta.get("partitions")? {
            Some(stored) if stored.as_ref() != partitions => {
                let stored = stored
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                return Err(LogError::Misconfigured(format!(
                    "the log in {} has {stored} partitions, not {}",
                    dir.display(),
                    config.partitions
                )));
            }
            Some(_) => {}
            None => {
                meta.insert("partitions", &partitions)?;
            }
        }
        let identity = match meta.get("identity")? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => {
                let id = format!("embedded:{}", uuid::Uuid::new_v4());
                meta.insert("identity", id.as_bytes())?;
                id
            }
        };
        let window_start = now_ms().saturating_sub(config.duplicate_window.as_millis() as u64);
        let mut streams = HashMap::new();
        for kind in StreamKind::ALL {
            let count = if kind.is_partitioned() {
                config.partitions
            } else {
                1
            };
            let mut window = DedupWindow::default();
            let mut recent = Vec::new();
            let mut entries = 0;
            let mut partitions = Vec::new();
            for p in 0..count {
                let tree = db.open_tree(format!("{}/{p}", kind.name()))?;
                let last = tree.last()?.map_or(0, |(k, _)| seq_of(&k));
                for item in tree.iter().rev() {
                    let (key, raw) = item?;
                    match decode_record(&raw) {
                        Some((at, id, _)) if at >= window_start => {
                            recent.push((at, id.to_string(), seq_of(&key)))
                        }
                        _ => break,
                    }
                }
                if config.max_entries.is_some() {
                    entries += tree.len() as u64;
                }
                partitions.push(PartitionState {
                    tree,
                    next_seq: AtomicU64::new(last + 1),
                    committed: AtomicU64::new(last),
                    notify: Notify::new(),
                });
            }
            recent.sort();
            for (at, id, seq) in recent {
                window.insert(id, seq, at);
            }
            let appending = Mutex::new(Appending { window, entries });
            streams.insert(
                kind,
                StreamState {
                    partitions,
                    appending,
                },
            );
        }
        let cursors = db.open_tree("cursors")?;
        let flusher = Flusher {
            db: db.clone(),
            requested: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            lock: Mutex::new(()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                config,
                identity,
                streams,
                cursors,
                flusher,
            }),
        })
    }

    /// The layout the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// See [`crate::Log::identity`].
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    fn partition_index(&self, stream: StreamKind, target: &Target) -> Result<usize, AppendError> {
        match (stream.is_partitioned(), target) {
            (true, Target::Partition(p)) if *p < self.inner.config.partitions => Ok(*p as usize),
            (false, Target::Definition { .. }) => Ok(0),
            _ => Err(AppendError::Invalid(format!(
                "{target:?} is not a target of {}",
                stream.name()
            ))),
        }
    }

    /// See [`crate::Log::append`].
    pub async fn append(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
    ) -> Result<Vec<Appended>, AppendError> {
        let state = &self.inner.streams[&stream];
        let indices = entries
            .iter()
            .map(|e| self.partition_index(stream, &e.target))
            .collect::<Result<Vec<_>, _>>()?;
        let mut results = Vec::with_capacity(entries.len());
        let mut touched: HashMap<usize, u64> = HashMap::new();
        {
            let mut appending = state.appending.lock().await;
            let now = now_ms();
            let window_start =
                now.saturating_sub(self.inner.config.duplicate_window.as_millis() as u64);
            appending.window.prune(window_start);
            let fresh = entries
                .iter()
                .filter(|e| !appending.window.ids.contains_key(&e.id))
                .count() as u64;
            if let Some(max) = self.inner.config.max_entries {
                if appending.entries + fresh > max {
                    return Err(AppendError::Full(stream.name()));
                }
            }
            let mut batches: HashMap<usize, sled::Batch> = HashMap::new();
            for (entry, p) in entries.into_iter().zip(indices) {
                if let Some(&seq) = appending.window.ids.get(&entry.id) {
                    results.push(Appended {
                        seq,
                        duplicate: true,
                    });
                    continue;
                }
                let partition = &state.partitions[p];
                let seq = partition.next_seq.fetch_add(1, Ordering::SeqCst);
                let record = encode_record(now, &entry.id, &entry.payload);
                batches
                    .entry(p)
                    .or_default()
                    .insert(&seq.to_be_bytes(), record);
                appending.window.insert(entry.id, seq, now);
                appending.entries += 1;
                touched.insert(p, seq);
                results.push(Appended {
                    seq,
                    duplicate: false,
                });
            }
            for (p, batch) in batches {
                state.partitions[p]
                    .tree
                    .apply_batch(batch)
                    .map_err(|e| AppendError::Unavailable(e.to_string()))?;
            }
        }
        if !touched.is_empty() {
            self.inner
                .flusher
                .flush()
                .await
                .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        }
        for (p, seq) in touched {
            let partition = &state.partitions[p];
            partition.committed.fetch_max(seq, Ordering::SeqCst);
            partition.notify.notify_waiters();
        }
        Ok(results)
    }

    fn cursor_key(stream: StreamKind, partition: u32, consumer: &str) -> String {
        format!("{}/{partition}/{consumer}", stream.name())
    }

    /// See [`crate::Log::reader`].
    pub fn reader(
        &self,
        stream: StreamKind,
        partition: u32,
        consumer: &str,
        start: Start,
    ) -> Result<EmbeddedReader, LogError> {
        let count = self.inner.streams[&stream].partitions.len() as u32;
        if partition >= count {
            return Err(LogError::Misconfigured(format!(
                "{} has no partition {partition}",
                stream.name()
            )));
        }
        let key = Self::cursor_key(stream, partition, consumer);
        let pos = match start {
            Start::After(seq) => seq,
            Start::Resume => self.inner.cursors.get(&key)?.map_or(0, |v| seq_of(&v)),
        };
        Ok(EmbeddedReader {
            inner: self.inner.clone(),
            stream,
            partition: partition as usize,
            cursor_key: key,
            pos,
        })
    }

    /// See [`crate::Log::last_seq`].
    pub fn last_seq(&self, stream: StreamKind, partition: u32) -> u64 {
        self.inner.streams[&stream]
            .partitions
            .get(partition as usize)
            .map_or(0, |p| p.committed.load(Ordering::SeqCst))
    }

    /// Flushes everything to disk (at shutdown).
    pub async fn flush(&self) -> Result<(), LogError> {
        self.inner.db.flush_async().await?;
        Ok(())
    }
}

/// A reader of one partition of the embedded log.
pub struct EmbeddedReader {
    inner: Arc<Inner>,
    stream: StreamKind,
    partition: usize,
    cursor_key: String,
    pos: u64,
}

impl std::fmt::Debug for EmbeddedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedReader")
            .field("cursor", &self.cursor_key)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl EmbeddedReader {
    fn read_available(&mut self, max: usize) -> Result<Vec<Record>, LogError> {
        let partition = &self.inner.streams[&self.stream].partitions[self.partition];
        let committed = partition.committed.load(Ordering::SeqCst);
        let mut out = Vec::new();
        if self.pos >= committed {
            return Ok(out);
        }
        let range = (self.pos + 1).to_be_bytes()..=committed.to_be_bytes();
        for item in partition.tree.range(range).take(max) {
            let (key, raw) = item?;
            let (_, _, start) = decode_record(&raw).ok_or_else(|| {
                LogError::Storage(format!("corrupt record in {}", self.cursor_key))
            })?;
            let seq = seq_of(&key);
            out.push(Record {
                seq,
                payload: Bytes::copy_from_slice(&raw[start..]),
            });
            self.pos = seq;
        }
        Ok(out)
    }

    /// See [`crate::Reader::next_batch`].
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let inner = self.inner.clone();
            let partition = &inner.streams[&self.stream].partitions[self.partition];
            let notified = partition.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.read_available(max)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// See [`crate::Reader::ack`]. The cursor is written now and made durable with the
    /// next flush: after a crash a consumer may see its last entries again.
    pub fn ack(&mut self, seq: u64) -> Result<(), LogError> {
        self.inner
            .cursors
            .insert(&self.cursor_key, &seq.to_be_bytes())?;
        Ok(())
    }
}
