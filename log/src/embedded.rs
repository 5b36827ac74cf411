//! The embedded log: the streams kept in sled, so one process runs everything with no server.
//!
//! Each partition is a sled tree of *chunks*: a chunk holds consecutive entries and is keyed
//! by its first sequence number (big-endian, so keys sort in order). Concurrent appends are
//! combined: while one caller writes, the others queue, and the next writer takes the whole
//! queue, so a flood of small appends becomes a few large chunks (one sled write per
//! partition per round) while a lone append is written at once. A chunk is compressed
//! (LZ4) when that pays. After writing, an append waits for a flush that makes it durable;
//! concurrent appends share flushes (group commit). Readers only see flushed entries, so
//! nothing derived from the log ever runs ahead of what survives a `kill -9`.
//!
//! Deduplication keeps the ids appended inside the window in memory, and rebuilds them on
//! open by scanning back from each partition's tail, as JetStream does.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Mutex, Notify, oneshot};

use crate::{AppendError, Appended, Entry, LogConfig, LogError, Record, Start, StreamKind, Target};

/// sled's page cache for the log (its default, 1 GiB, is too much beside the other stores).
const LOG_CACHE_BYTES: u64 = 64 << 20;

/// Most entries in one chunk: bounds what a reader decodes to reach one entry.
const CHUNK_ENTRIES: usize = 256;

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
    /// Appends waiting for a writer.
    queue: std::sync::Mutex<Vec<Queued>>,
    /// Held by the one caller writing; holds the dedup window.
    appending: Mutex<Appending>,
}

/// An append waiting in the queue: its entries with their partition index, and where its
/// result goes once written (not yet flushed).
struct Queued {
    entries: Vec<(usize, Entry)>,
    done: oneshot::Sender<Result<Written, AppendError>>,
}

/// What a writer did for one queued append.
struct Written {
    results: Vec<Appended>,
    /// Highest sequence written per partition index.
    touched: Vec<(usize, u64)>,
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

/// Ids appended inside the window, with their sequence. A UUID id is held as its 16 bytes,
/// once per map: at 100,000 events/s a two-minute window holds millions of ids.
#[derive(Default)]
struct DedupWindow {
    ids: HashMap<IdKey, u64>,
    order: VecDeque<(u64, IdKey)>,
}

/// An id as the window holds it.
#[derive(Clone, PartialEq, Eq, Hash)]
enum IdKey {
    /// A UUID in canonical (hyphenated, lowercase) form.
    Uuid(u128),
    /// Any other id.
    Other(Box<str>),
}

impl IdKey {
    fn of(id: &str) -> Self {
        match uuid::Uuid::try_parse(id) {
            Ok(u) if is_canonical(&u, id) => IdKey::Uuid(u.as_u128()),
            _ => IdKey::Other(id.into()),
        }
    }
}

/// Whether `id` is `u` written in canonical form (so the id comes back the same from it).
fn is_canonical(u: &uuid::Uuid, id: &str) -> bool {
    let mut buf = uuid::Uuid::encode_buffer();
    u.hyphenated().encode_lower(&mut buf) == id
}

impl DedupWindow {
    fn get(&self, id: &str) -> Option<u64> {
        self.ids.get(&IdKey::of(id)).copied()
    }

    fn insert(&mut self, id: &str, seq: u64, at_ms: u64) {
        let key = IdKey::of(id);
        self.ids.insert(key.clone(), seq);
        self.order.push_back((at_ms, key));
    }

    fn prune(&mut self, before_ms: u64) {
        while let Some((at, _)) = self.order.front() {
            if *at >= before_ms {
                break;
            }
            let (_, key) = self.order.pop_front().expect("front exists");
            self.ids.remove(&key);
        }
    }
}

/// Group commit: concurrent callers share one sled flush.
struct Flusher {
    db: sled::Db,
    requested: AtomicU64,
    completed: AtomicU64,
    /// Held by the one flush running; when the last one started.
    lock: Mutex<tokio::time::Instant>,
}

/// Least time between the starts of two flushes.
const FLUSH_SPACING: Duration = Duration::from_millis(2);

impl Flusher {
    /// Returns once everything written before the call is durable.
    async fn flush(&self) -> Result<(), sled::Error> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut last = self.lock.lock().await;
        if self.completed.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // a flush that started after our writes has finished
        }
        // Under load flushes would follow each other back to back, each syncing little;
        // spacing them lets every flush carry more writes, for a bounded wait.
        let since = last.elapsed();
        if since < FLUSH_SPACING {
            tokio::time::sleep(FLUSH_SPACING - since).await;
        }
        *last = tokio::time::Instant::now();
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

/// The first byte of a chunk, after which its body follows: raw or LZ4-compressed. A record
/// of the first format (one entry per key) starts with its append time's high byte, 0.
const CHUNK_RAW: u8 = 0xC1;
const CHUNK_LZ4: u8 = 0xC2;
/// An id length saying "16 bytes of a UUID, written as a string in canonical form".
const UUID_ID: u16 = u16::MAX;

/// Builds one chunk: `[kind][body]`, the body `[append time ms: u64][count: u32]` then per
/// entry `[id length: u16][id][payload length: u32][payload]`.
struct ChunkWriter {
    body: Vec<u8>,
    count: u32,
}

impl ChunkWriter {
    fn new(at_ms: u64) -> Self {
        let mut body = Vec::with_capacity(4096);
        body.extend_from_slice(&at_ms.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
        Self { body, count: 0 }
    }

    fn push(&mut self, id: &str, payload: &[u8]) {
        match uuid::Uuid::try_parse(id) {
            Ok(uuid) if is_canonical(&uuid, id) => {
                self.body.extend_from_slice(&UUID_ID.to_be_bytes());
                self.body.extend_from_slice(uuid.as_bytes());
            }
            _ => {
                self.body
                    .extend_from_slice(&(id.len() as u16).to_be_bytes());
                self.body.extend_from_slice(id.as_bytes());
            }
        }
        self.body
            .extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.body.extend_from_slice(payload);
        self.count += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        self.body[8..12].copy_from_slice(&self.count.to_be_bytes());
        let compressed = lz4_flex::compress_prepend_size(&self.body);
        let (kind, body) = if compressed.len() < self.body.len() * 9 / 10 {
            (CHUNK_LZ4, compressed)
        } else {
            (CHUNK_RAW, self.body)
        };
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(kind);
        out.extend_from_slice(&body);
        out
    }
}

/// One entry of a stored chunk.
struct Stored {
    seq: u64,
    at_ms: u64,
    /// Decoded only when asked for (readers do not need it).
    id: Option<String>,
    payload: Bytes,
}

/// Decodes the chunk stored under `first`: its entries in order, with their ids when
/// `ids`. `None` when corrupt.
fn decode_chunk(first: u64, raw: &[u8], ids: bool) -> Option<Vec<Stored>> {
    let body: Bytes = match *raw.first()? {
        CHUNK_RAW => Bytes::copy_from_slice(&raw[1..]),
        CHUNK_LZ4 => Bytes::from(lz4_flex::decompress_size_prepended(&raw[1..]).ok()?),
        // The first format: one entry, `[append time ms: u64][id length: u16][id][payload]`.
        _ => {
            let at_ms = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
            let len = u16::from_be_bytes(raw.get(8..10)?.try_into().ok()?) as usize;
            let id = std::str::from_utf8(raw.get(10..10 + len)?).ok()?;
            return Some(vec![Stored {
                seq: first,
                at_ms,
                id: Some(id.to_string()),
                payload: Bytes::copy_from_slice(&raw[10 + len..]),
            }]);
        }
    };
    let at_ms = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
    let count = u32::from_be_bytes(body.get(8..12)?.try_into().ok()?) as usize;
    let mut at = 12;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let len = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?);
        at += 2;
        let id = if len == UUID_ID {
            let bytes: [u8; 16] = body.get(at..at + 16)?.try_into().ok()?;
            at += 16;
            ids.then(|| uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
        } else {
            let id = std::str::from_utf8(body.get(at..at + len as usize)?).ok()?;
            at += len as usize;
            ids.then(|| id.to_string())
        };
        let plen = u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        if body.len() < at + plen {
            return None;
        }
        out.push(Stored {
            seq: first + i as u64,
            at_ms,
            id,
            payload: body.slice(at..at + plen),
        });
        at += plen;
    }
    Some(out)
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
                let mut last = 0;
                for item in tree.iter().rev() {
                    let (key, raw) = item?;
                    let chunk = decode_chunk(seq_of(&key), &raw, true).ok_or_else(|| {
                        LogError::Storage(format!("corrupt chunk in {}/{p}", kind.name()))
                    })?;
                    if let Some(tail) = chunk.last() {
                        last = last.max(tail.seq);
                    }
                    let old = chunk.first().is_none_or(|e| e.at_ms < window_start);
                    recent.extend(
                        chunk
                            .into_iter()
                            .filter_map(|e| Some((e.at_ms, e.id?, e.seq))),
                    );
                    if old {
                        break;
                    }
                }
                recent.retain(|(at, _, _)| *at >= window_start);
                // Sequences start at 1 and have no gaps: the last is the count.
                entries += last;
                partitions.push(PartitionState {
                    tree,
                    next_seq: AtomicU64::new(last + 1),
                    committed: AtomicU64::new(last),
                    notify: Notify::new(),
                });
            }
            recent.sort();
            for (at, id, seq) in recent {
                window.insert(&id, seq, at);
            }
            let appending = Mutex::new(Appending { window, entries });
            streams.insert(
                kind,
                StreamState {
                    partitions,
                    queue: std::sync::Mutex::new(Vec::new()),
                    appending,
                },
            );
        }
        let cursors = db.open_tree("cursors")?;
        let flusher = Flusher {
            db: db.clone(),
            requested: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            lock: Mutex::new(tokio::time::Instant::now()),
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
        let entries = entries
            .into_iter()
            .map(|e| Ok((self.partition_index(stream, &e.target)?, e)))
            .collect::<Result<Vec<_>, AppendError>>()?;
        let (done, mut written) = oneshot::channel();
        state
            .queue
            .lock()
            .expect("append queue")
            .push(Queued { entries, done });
        let written = loop {
            // A writer that took the queue while this caller waited wrote this append too.
            if let Ok(result) = written.try_recv() {
                break result?;
            }
            let mut appending = state.appending.lock().await;
            if let Ok(result) = written.try_recv() {
                break result?;
            }
            let queued = std::mem::take(&mut *state.queue.lock().expect("append queue"));
            self.write(stream, state, &mut appending, queued);
        };
        if !written.touched.is_empty() {
            self.inner
                .flusher
                .flush()
                .await
                .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        }
        for (p, seq) in written.touched {
            let partition = &state.partitions[p];
            partition.committed.fetch_max(seq, Ordering::SeqCst);
            partition.notify.notify_waiters();
        }
        Ok(written.results)
    }

    /// Writes queued appends: one sled batch per partition, each append all or nothing
    /// within a partition. Each append gets its own result; a full stream refuses only the
    /// appends that do not fit.
    fn write(
        &self,
        stream: StreamKind,
        state: &StreamState,
        appending: &mut Appending,
        queued: Vec<Queued>,
    ) {
        let now = now_ms();
        let window_start =
            now.saturating_sub(self.inner.config.duplicate_window.as_millis() as u64);
        appending.window.prune(window_start);
        let mut chunks: HashMap<usize, Vec<(u64, ChunkWriter)>> = HashMap::new();
        let mut answers = Vec::with_capacity(queued.len());
        for Queued { entries, done } in queued {
            let fresh = entries
                .iter()
                .filter(|(_, e)| appending.window.get(&e.id).is_none())
                .count() as u64;
            if let Some(max) = self.inner.config.max_entries
                && appending.entries + fresh > max
            {
                let _ = done.send(Err(AppendError::Full(stream.name())));
                continue;
            }
            let mut results = Vec::with_capacity(entries.len());
            let mut touched: HashMap<usize, u64> = HashMap::new();
            for (p, entry) in entries {
                if let Some(seq) = appending.window.get(&entry.id) {
                    results.push(Appended {
                        seq,
                        duplicate: true,
                    });
                    continue;
                }
                let seq = state.partitions[p].next_seq.fetch_add(1, Ordering::SeqCst);
                let open = chunks.entry(p).or_default();
                match open.last_mut() {
                    Some((_, chunk)) if (chunk.count as usize) < CHUNK_ENTRIES => {
                        chunk.push(&entry.id, &entry.payload)
                    }
                    _ => {
                        let mut chunk = ChunkWriter::new(now);
                        chunk.push(&entry.id, &entry.payload);
                        open.push((seq, chunk));
                    }
                }
                appending.window.insert(&entry.id, seq, now);
                appending.entries += 1;
                touched.insert(p, seq);
                results.push(Appended {
                    seq,
                    duplicate: false,
                });
            }
            answers.push((
                done,
                Written {
                    results,
                    touched: touched.into_iter().collect(),
                },
            ));
        }
        let mut failed = None;
        for (p, open) in chunks {
            let mut batch = sled::Batch::default();
            for (first, chunk) in open {
                batch.insert(&first.to_be_bytes(), chunk.finish());
            }
            if let Err(e) = state.partitions[p].tree.apply_batch(batch) {
                failed = Some(e.to_string());
            }
        }
        for (done, written) in answers {
            let _ = done.send(match &failed {
                Some(e) => Err(AppendError::Unavailable(e.clone())),
                None => Ok(written),
            });
        }
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
        // The chunk holding the next entry starts at or before it.
        let next = self.pos + 1;
        let from = partition
            .tree
            .range(..=next.to_be_bytes())
            .next_back()
            .transpose()?
            .map_or(next, |(key, _)| seq_of(&key));
        for item in partition
            .tree
            .range(from.to_be_bytes()..=committed.to_be_bytes())
        {
            let (key, raw) = item?;
            let chunk = decode_chunk(seq_of(&key), &raw, false).ok_or_else(|| {
                LogError::Storage(format!("corrupt chunk in {}", self.cursor_key))
            })?;
            for entry in chunk {
                if entry.seq <= self.pos || entry.seq > committed {
                    continue;
                }
                out.push(Record {
                    seq: entry.seq,
                    payload: entry.payload,
                });
                self.pos = entry.seq;
                if out.len() >= max {
                    return Ok(out);
                }
            }
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
