//! The embedded log: the streams kept in append-only segment files in the data directory, so
//! one process runs everything with no server.
//!
//! Each stream is a directory of segments (see [`segments`]); a frame holds a *chunk* of
//! consecutive entries of one partition. Concurrent appends are combined: while one caller
//! writes, the others queue, and the next writer takes the whole queue, so a flood of small
//! appends becomes one write of a few large chunks, while a lone append is written at once.
//! A chunk is compressed (LZ4) when that pays. An append then waits for the stream's sync
//! thread to make it durable; one `fdatasync` serves every write before it (group commit).
//! Readers only see synced entries, so nothing derived from the log ever runs ahead of what
//! survives a crash. Each partition keeps where its chunks are in memory, so a read is one
//! positioned read of the file.
//!
//! Deduplication keeps the ids appended inside the window in memory, and rebuilds them on
//! open from the frames appended inside it, as JetStream does.
//!
//! With a sealer (`--data-key-file`, see [`crate::seal`]) every frame's body is sealed; `meta`
//! then names the sealer, so the log never opens without it, nor with another.
//!
//! Layout of the directory: `meta` (format, partition count, identity, sealer), `lock` (held while
//! open: one process at a time), `cursors` (consumers' acknowledged positions), and
//! `stats/`, `defs/`, `output/` with their segments. A log written by an earlier version
//! (in sled) is imported on open ([`legacy`]).

mod chunk;
mod cursors;
mod dedup;
mod fail;
mod legacy;
mod meta;
mod segments;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Mutex, Notify, oneshot};

use crate::seal::Sealer;
use crate::{
    AppendError, Appended, Entry, LogConfig, LogError, Record, Start, StorageError, StreamKind,
    Target,
};
use chunk::{CHUNK_ENTRIES, Chunk, read_chunk};
use cursors::Cursors;
use dedup::DedupWindow;
use fail::{corrupt, storage};
use meta::Meta;
use segments::{Loc, SEGMENT_BYTES, Segments};

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
    config: LogConfig,
    /// Made when the log is created: see [`crate::Log::identity`].
    identity: String,
    streams: HashMap<StreamKind, StreamState>,
    cursors: Cursors,
    /// Seals frame bodies when the data dir is encrypted.
    seal: Option<Arc<Sealer>>,
    /// Held (locked) while the log is open.
    _lock: File,
}

struct StreamState {
    segments: Segments,
    partitions: Vec<PartitionState>,
    /// Appends waiting for a writer.
    queue: std::sync::Mutex<Vec<Queued>>,
    /// Held by the one caller writing; holds the dedup window.
    appending: Mutex<Appending>,
}

/// An append waiting in the queue: its entries with their partition index, and where its
/// result goes once written (not yet durable).
struct Queued {
    entries: Vec<(usize, Entry)>,
    /// Ids made for this one append, never sent again: kept out of the dedup window and
    /// not stored.
    unique: bool,
    /// The last sequence the (single-partition) stream must have for this append to go in.
    expected_last: Option<u64>,
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
    /// Entries in the stream.
    entries: u64,
    /// The next sequence of each partition.
    next_seq: Vec<u64>,
}

struct PartitionState {
    /// Where each chunk is, in order (written before it is durable; read up to
    /// `committed`).
    index: RwLock<Vec<Loc>>,
    /// The last durable sequence: readers see up to here.
    committed: AtomicU64,
    notify: Notify,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Takes the log's lock file: one process at a time writes a log.
fn lock(dir: &Path) -> Result<File, LogError> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(storage)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(storage(e)),
    }
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `dir`, in clear.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, LogError> {
        Self::open_sealed(dir, config, None)
    }

    /// Opens (or creates) the log in `dir`, sealing what it writes with `seal` when given. A
    /// log sealed by a sealer is refused without it or with another; a log in clear that is
    /// opened with one is sealed from then on (what it held stays in clear).
    pub fn open_sealed(
        dir: &Path,
        config: LogConfig,
        seal: Option<Arc<Sealer>>,
    ) -> Result<Self, LogError> {
        legacy::import_if_present(dir, seal.as_deref())?;
        std::fs::create_dir_all(dir).map_err(storage)?;
        let lock = lock(dir)?;
        let meta = match Meta::read(dir)? {
            Some(meta) if meta.partitions != config.partitions => {
                return Err(LogError::Misconfigured(format!(
                    "the log in {} has {} partitions, not {}",
                    dir.display(),
                    meta.partitions,
                    config.partitions
                )));
            }
            Some(meta) => meta,
            None => {
                let meta = Meta {
                    partitions: config.partitions,
                    identity: format!("embedded:{}", uuid::Uuid::new_v4()),
                    sealed: seal.as_ref().map(|s| s.id()),
                };
                meta.write(dir).map_err(storage)?;
                meta
            }
        };
        let sealer = seal.as_ref().map(|s| s.id());
        match (&meta.sealed, &sealer) {
            (Some(sealed), None) => {
                return Err(LogError::Misconfigured(format!(
                    "the log in {} is sealed (by {sealed}) and no data key was given",
                    dir.display()
                )));
            }
            (Some(sealed), Some(sealer)) if sealed != sealer => {
                return Err(LogError::Misconfigured(format!(
                    "the log in {} is sealed by {sealed}, not by this data dir's keyring ({sealer}): \
                     was the keyring replaced?",
                    dir.display()
                )));
            }
            (None, Some(_)) => {
                tracing::warn!(
                    log = %dir.display(),
                    "the log was written in clear: from now on it is sealed; what it holds stays in clear"
                );
                Meta {
                    sealed: sealer.clone(),
                    ..meta.clone()
                }
                .write(dir)
                .map_err(storage)?;
            }
            _ => {}
        }
        let window_start = now_ms().saturating_sub(config.duplicate_window.as_millis() as u64);
        let mut streams = HashMap::new();
        for kind in StreamKind::ALL {
            streams.insert(
                kind,
                open_stream(dir, kind, &config, window_start, seal.as_deref())?,
            );
        }
        let cursors = Cursors::open(dir.join("cursors"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                identity: meta.identity,
                streams,
                cursors,
                seal,
                _lock: lock,
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
        self.append_queued(stream, entries, None, false).await
    }

    /// See [`crate::Log::append_unique`].
    pub async fn append_unique(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
    ) -> Result<Vec<Appended>, AppendError> {
        self.append_queued(stream, entries, None, true).await
    }

    /// See [`crate::Log::append_fenced`].
    pub async fn append_fenced(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
        fence: u64,
    ) -> Result<Vec<Appended>, AppendError> {
        self.append_queued(stream, entries, Some(fence), false)
            .await
    }

    /// See [`crate::Log::append_fenced_unique`].
    pub async fn append_fenced_unique(
        &self,
        stream: StreamKind,
        entry: Entry,
        fence: u64,
    ) -> Result<Appended, AppendError> {
        self.append_queued(stream, vec![entry], Some(fence), true)
            .await?
            .pop()
            .ok_or_else(|| AppendError::Invalid("nothing appended".into()))
    }

    /// See [`crate::Log::append_after`].
    pub async fn append_after(
        &self,
        stream: StreamKind,
        entry: Entry,
        expected_last: u64,
    ) -> Result<Appended, AppendError> {
        let mut appended = self
            .append_queued(stream, vec![entry], Some(expected_last), false)
            .await?;
        appended
            .pop()
            .ok_or_else(|| AppendError::Invalid("nothing appended".into()))
    }

    async fn append_queued(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
        expected_last: Option<u64>,
        unique: bool,
    ) -> Result<Vec<Appended>, AppendError> {
        let state = &self.inner.streams[&stream];
        let entries = entries
            .into_iter()
            .map(|e| Ok((self.partition_index(stream, &e.target)?, e)))
            .collect::<Result<Vec<_>, AppendError>>()?;
        let (done, mut written) = oneshot::channel();
        state.queue.lock().expect("append queue").push(Queued {
            entries,
            unique,
            expected_last,
            done,
        });
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
            state
                .segments
                .sync()
                .await
                .map_err(|e| AppendError::Unavailable(format!("syncing the log: {e}")))?;
        }
        for (p, seq) in written.touched {
            let partition = &state.partitions[p];
            partition.committed.fetch_max(seq, Ordering::SeqCst);
            partition.notify.notify_waiters();
        }
        Ok(written.results)
    }

    /// Writes queued appends in one write: a chunk per partition (or a few, for many
    /// entries). Each append gets its own result; a full stream refuses only the appends
    /// that do not fit. A write that fails takes nothing: no sequence, no window entry.
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
        let before = (appending.next_seq.clone(), appending.entries);
        let mut inserted = 0;
        let mut chunks: Vec<Vec<Chunk>> = (0..state.partitions.len()).map(|_| Vec::new()).collect();
        let mut answers = Vec::with_capacity(queued.len());
        for Queued {
            entries,
            unique,
            expected_last,
            done,
        } in queued
        {
            let known = |id: &str| (!unique).then(|| appending.window.get(id)).flatten();
            let fresh = entries
                .iter()
                .filter(|(_, e)| known(&e.id).is_none())
                .count() as u64;
            // Earlier appends of this same write count: they come first.
            // The partition of the append (one partition; of DEFS, the stream) must still
            // end where the caller expects.
            if let Some(expected) = expected_last
                && fresh > 0
                && entries
                    .first()
                    .is_some_and(|(p, _)| appending.next_seq[*p] - 1 != expected)
            {
                let _ = done.send(Err(AppendError::Conflict(stream.name())));
                continue;
            }
            if let Some(max) = self.inner.config.max_entries
                && appending.entries + fresh > max
            {
                let _ = done.send(Err(AppendError::Full(stream.name())));
                continue;
            }
            let mut results = Vec::with_capacity(entries.len());
            let mut touched: Vec<(usize, u64)> = Vec::new();
            for (p, entry) in entries {
                if let Some(seq) = (!unique).then(|| appending.window.get(&entry.id)).flatten() {
                    results.push(Appended {
                        seq,
                        duplicate: true,
                    });
                    continue;
                }
                let seq = appending.next_seq[p];
                appending.next_seq[p] += 1;
                let open = &mut chunks[p];
                // A unique entry's id is not stored: nothing will ever ask for it again.
                let id = if unique { "" } else { entry.id.as_str() };
                match open.last_mut() {
                    Some(chunk) if (chunk.count as usize) < CHUNK_ENTRIES => {
                        chunk.push(id, &entry.payload)
                    }
                    _ => {
                        let mut chunk = Chunk::new(seq);
                        chunk.push(id, &entry.payload);
                        open.push(chunk);
                    }
                }
                if !unique {
                    appending.window.insert(&entry.id, seq, now);
                    inserted += 1;
                }
                appending.entries += 1;
                match touched.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, last)) => *last = seq,
                    None => touched.push((p, seq)),
                }
                results.push(Appended {
                    seq,
                    duplicate: false,
                });
            }
            answers.push((done, Written { results, touched }));
        }
        let mut frames = Vec::new();
        let mut locs = Vec::new();
        for (p, open) in chunks.iter().enumerate() {
            for chunk in open {
                locs.push((
                    p,
                    chunk.frame(p as u32, now, self.inner.seal.as_deref(), &mut frames),
                ));
            }
        }
        let outcome = if frames.is_empty() {
            Ok(())
        } else {
            state.segments.write(&frames).map(|(segment, base)| {
                for (p, (at, mut loc)) in locs {
                    loc.segment = segment;
                    loc.offset = base + at as u64;
                    state.partitions[p].index.write().expect("index").push(loc);
                }
            })
        };
        if let Err(e) = &outcome {
            tracing::error!(stream = stream.name(), error = %e, "writing to the embedded log failed");
            appending.window.undo(inserted);
            (appending.next_seq, appending.entries) = before;
        }
        for (done, written) in answers {
            let _ = done.send(match &outcome {
                Ok(()) => Ok(written),
                Err(e) => Err(AppendError::Unavailable(format!("writing the log: {e}"))),
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
            Start::Resume => self.inner.cursors.get(&key),
        };
        Ok(EmbeddedReader {
            inner: self.inner.clone(),
            stream,
            partition: partition as usize,
            cursor_key: key,
            pos,
            chunk: None,
        })
    }

    /// See [`crate::Log::last_seq`].
    pub fn last_seq(&self, stream: StreamKind, partition: u32) -> u64 {
        self.inner.streams[&stream]
            .partitions
            .get(partition as usize)
            .map_or(0, |p| p.committed.load(Ordering::SeqCst))
    }

    /// Makes everything durable, cursors included (at shutdown).
    pub async fn flush(&self) -> Result<(), LogError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            for state in inner.streams.values() {
                state.segments.sync_now().map_err(storage)?;
            }
            inner.cursors.flush()
        })
        .await
        .map_err(|e| LogError::Storage(StorageError::Task(e.to_string())))?
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.cursors.flush() {
            tracing::warn!(error = %e, "saving the embedded log's cursors failed");
        }
    }
}

/// Opens one stream: its segments, where each partition's chunks are, and the ids appended
/// inside the dedup window.
fn open_stream(
    dir: &Path,
    kind: StreamKind,
    config: &LogConfig,
    window_start: u64,
    seal: Option<&Sealer>,
) -> Result<StreamState, LogError> {
    let count = if kind.is_partitioned() {
        config.partitions as usize
    } else {
        1
    };
    let mut indexes: Vec<Vec<Loc>> = vec![Vec::new(); count];
    let mut recent = Vec::new();
    let segments = Segments::open(&dir.join(kind.name()), SEGMENT_BYTES, |found, file| {
        let header = found.header;
        let index = indexes.get_mut(header.partition as usize).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: a frame of partition {}", kind.name(), header.partition),
            )
        })?;
        let expected = index.last().map_or(1, |l| l.first + u64::from(l.count));
        if header.first != expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}/{}: a frame at {} where {expected} was next",
                    kind.name(),
                    header.partition,
                    header.first
                ),
            ));
        }
        if header.at_ms >= window_start {
            use std::os::unix::fs::FileExt;
            let mut raw = vec![0; found.loc.len as usize];
            file.read_exact_at(&mut raw, found.loc.offset)?;
            let at = (header.partition, header.first, header.count);
            let entries = read_chunk(raw, header.encoding, at, seal, true).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}/{} at {}: {e}",
                        kind.name(),
                        header.partition,
                        header.first
                    ),
                )
            })?;
            for (i, entry) in entries.into_iter().enumerate() {
                if let Some(id) = entry.id.filter(|id| !id.is_empty()) {
                    recent.push((header.at_ms, id, header.first + i as u64));
                }
            }
        }
        index.push(found.loc);
        Ok(())
    })
    .map_err(storage)?;
    recent.sort();
    let mut window = DedupWindow::default();
    for (at, id, seq) in recent {
        window.insert(&id, seq, at);
    }
    let next_seq: Vec<u64> = indexes
        .iter()
        .map(|index| index.last().map_or(1, |l| l.first + u64::from(l.count)))
        .collect();
    let entries = next_seq.iter().map(|next| next - 1).sum();
    let partitions = indexes
        .into_iter()
        .zip(&next_seq)
        .map(|(index, next)| PartitionState {
            index: RwLock::new(index),
            committed: AtomicU64::new(next - 1),
            notify: Notify::new(),
        })
        .collect();
    Ok(StreamState {
        segments,
        partitions,
        queue: std::sync::Mutex::new(Vec::new()),
        appending: Mutex::new(Appending {
            window,
            entries,
            next_seq,
        }),
    })
}

/// A reader of one partition of the embedded log.
pub struct EmbeddedReader {
    inner: Arc<Inner>,
    stream: StreamKind,
    partition: usize,
    cursor_key: String,
    pos: u64,
    /// The chunk read last (a batch often ends inside one): its first sequence and payloads.
    chunk: Option<(u64, Vec<Bytes>)>,
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
    /// Entries after the last one read (positions are dense per partition).
    pub fn pending(&self) -> u64 {
        let state = &self.inner.streams[&self.stream];
        let committed = state.partitions[self.partition]
            .committed
            .load(Ordering::SeqCst);
        committed.saturating_sub(self.pos)
    }

    fn read_available(&mut self, max: usize) -> Result<Vec<Record>, LogError> {
        let state = &self.inner.streams[&self.stream];
        let partition = &state.partitions[self.partition];
        let committed = partition.committed.load(Ordering::SeqCst);
        let mut out = Vec::new();
        while self.pos < committed && out.len() < max {
            let next = self.pos + 1;
            let cached = matches!(&self.chunk, Some((first, payloads))
                if *first <= next && next < first + payloads.len() as u64);
            if !cached {
                let loc = {
                    let index = partition.index.read().expect("index");
                    let i = index.partition_point(|l| l.first <= next);
                    i.checked_sub(1).map(|i| index[i])
                };
                let loc = loc.ok_or_else(|| {
                    corrupt(format!("{}: entry {next} is missing", self.cursor_key))
                })?;
                let raw = state.segments.read(&loc).map_err(storage)?;
                let at = (self.partition as u32, loc.first, loc.count);
                let entries = read_chunk(raw, loc.encoding, at, self.inner.seal.as_deref(), false)
                    .map_err(|e| corrupt(format!("{} at {}: {e}", self.cursor_key, loc.first)))?;
                let payloads: Vec<Bytes> = entries.into_iter().map(|e| e.payload).collect();
                if next >= loc.first + payloads.len() as u64 {
                    return Err(corrupt(format!(
                        "{}: entry {next} is missing",
                        self.cursor_key
                    )));
                }
                self.chunk = Some((loc.first, payloads));
            }
            let (first, payloads) = self.chunk.as_ref().expect("chunk read above");
            for (i, payload) in payloads.iter().enumerate().skip((next - first) as usize) {
                let seq = first + i as u64;
                if seq > committed || out.len() >= max {
                    break;
                }
                out.push(Record {
                    seq,
                    payload: payload.clone(),
                });
                self.pos = seq;
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

    /// See [`crate::Reader::ack`]. The cursor is kept in memory and written out within a
    /// second and at every flush: after a crash a consumer may see its last entries again.
    pub fn ack(&mut self, seq: u64) -> Result<(), LogError> {
        self.inner.cursors.set(&self.cursor_key, seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(partition: u32, id: &str) -> Entry {
        Entry {
            target: Target::Partition(partition),
            id: id.into(),
            payload: id.as_bytes().to_vec(),
        }
    }

    fn sealer(dir: &Path, byte: u8) -> Arc<Sealer> {
        let key = crate::seal::DataKey::from_bytes([byte; crate::seal::KEY_LEN]);
        Arc::new(crate::seal::unlock(dir, Some(&key), &[]).unwrap().unwrap())
    }

    async fn read_all(
        log: &EmbeddedLog,
        partition: u32,
        count: usize,
    ) -> Result<Vec<Bytes>, LogError> {
        let mut reader = log.reader(StreamKind::Stats, partition, "t", Start::After(0))?;
        let mut out = Vec::new();
        while out.len() < count {
            let batch = reader.next_batch(64, Duration::from_secs(1)).await?;
            assert!(!batch.is_empty(), "entries missing after {}", out.len());
            out.extend(batch.into_iter().map(|r| r.payload));
        }
        Ok(out)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_altered_sealed_frame_is_an_error_never_other_entries() {
        let keys = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let seal = sealer(keys.path(), 1);
        {
            let log =
                EmbeddedLog::open_sealed(dir.path(), LogConfig::default(), Some(seal.clone()))
                    .unwrap();
            log.append(StreamKind::Stats, vec![entry(0, "a"), entry(0, "b")])
                .await
                .unwrap();
        }
        // Flip a byte of the ciphertext and fix the frame's CRC, as a deliberate edit would.
        let path = dir.path().join("stats").join("00000000.seg");
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 20;
        raw[last] ^= 1;
        let crc = {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&raw[..segments::HEADER - 4]);
            hasher.update(&raw[segments::HEADER..]);
            hasher.finalize()
        };
        raw[segments::HEADER - 4..segments::HEADER].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(&path, raw).unwrap();
        // Inside the dedup window, the frame is read at open: the log is refused.
        let refused =
            EmbeddedLog::open_sealed(dir.path(), LogConfig::default(), Some(seal.clone()));
        assert!(
            matches!(&refused, Err(LogError::Storage(StorageError::Corrupt(e))) if e.contains("authentication")),
            "{refused:?}"
        );
        // Past it, the read of the frame fails.
        std::thread::sleep(Duration::from_millis(5));
        let config = LogConfig {
            duplicate_window: Duration::ZERO,
            ..LogConfig::default()
        };
        let log = EmbeddedLog::open_sealed(dir.path(), config, Some(seal)).unwrap();
        let read = read_all(&log, 0, 2).await;
        assert!(
            matches!(&read, Err(LogError::Storage(StorageError::Corrupt(e))) if e.contains("authentication")),
            "{read:?}"
        );
    }
}
