//! State derived from a log (engine state, views): which log it came from, and its records,
//! sealed when the data dir is encrypted.
//!
//! Kept in fjall, an LSM tree whose memory is bounded by its block cache and its in-memory
//! table whatever it holds (sled, which kept it before, grew with the number of records:
//! docs/performance.md, "Memory"). A store is one fjall keyspace; a [`Tree`] is the records
//! under its name, so a store has one in-memory table however many partitions it holds. A
//! store an earlier version kept in sled is imported on open ([`Store::open`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use laurel_log::open::Opened;
use laurel_log::seal::{SealError, Sealer};

/// A derived-state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store failed to read or write.
    #[error("derived-state store: {0}")]
    Store(#[from] fjall::Error),
    /// A file could not be read or written, or a record does not open (sealed with a key
    /// that is not in the keyring, or damaged).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Another process holds the store.
    #[error("{0} is in use by another process")]
    InUse(PathBuf),
    /// A store an earlier version kept in sled could not be imported.
    #[error("importing {path} (kept in sled by an earlier version)")]
    Import {
        /// The store.
        path: PathBuf,
        /// Why.
        #[source]
        source: sled::Error,
    },
    /// A record does not decode: the store stops rather than guess.
    #[error("derived state is corrupt: {0}")]
    Corrupt(String),
}

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        StoreError::Io(e.into())
    }
}

/// How much memory a store may use (docs/logs.md, "Derived-state stores"): a block cache of
/// records read or written recently, and an in-memory table of records written and not yet
/// in its files ([`MEMTABLE_BYTES`]).
#[derive(Debug, Clone, Copy)]
pub struct StoreMemory {
    /// The block cache.
    pub cache_bytes: u64,
}

impl StoreMemory {
    /// A block cache of `cache_bytes`.
    pub fn with_cache(cache_bytes: u64) -> Self {
        Self { cache_bytes }
    }
}

/// A store's in-memory table goes to a file once a write leaves it holding this much (fjall
/// keeps up to four more waiting for their files before it holds writes back).
pub const MEMTABLE_BYTES: u64 = 4 << 20;

/// The keyspace holding a store's records.
const RECORDS: &str = "records";

/// A store of derived state, with the data dir's sealer when it is encrypted. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    db: fjall::Database,
    records: fjall::Keyspace,
    synced: Arc<Synced>,
    seal: Option<Arc<Sealer>>,
}

/// When a store's writes were last made durable: [`Tree::apply`] syncs the store's journal
/// when this is older than [`SYNC_INTERVAL`] (a write reaches the operating system at once,
/// so a killed process loses nothing; the sync bounds what a machine crash loses).
#[derive(Debug)]
struct Synced(std::sync::Mutex<std::time::Instant>);

/// See [`Synced`]; sled, which kept derived state before, synced every 500 ms too.
const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl Synced {
    fn new() -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(std::time::Instant::now())))
    }

    /// Syncs `db` if the last sync is older than [`SYNC_INTERVAL`].
    fn sync_if_due(&self, db: &fjall::Database) -> Result<(), StoreError> {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= SYNC_INTERVAL {
            db.persist(fjall::PersistMode::SyncData)?;
            *last = std::time::Instant::now();
        }
        Ok(())
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("sealed", &self.seal.as_ref().map(|s| s.id()))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or makes) the store at `path`, sealed with `seal` when given. A store an
    /// earlier version kept in sled there is imported first, whole, and kept beside it as
    /// `<path>.sled-imported` for the operator to delete. Refused with
    /// [`StoreError::InUse`] while another process holds it.
    pub fn open(
        path: &Path,
        memory: StoreMemory,
        seal: Option<Arc<Sealer>>,
    ) -> Result<Self, StoreError> {
        import_sled(path, memory)?;
        let db = open_db(path, memory)?;
        Ok(Self {
            records: db.keyspace(RECORDS, keyspace_options)?,
            db,
            synced: Synced::new(),
            seal,
        })
    }

    /// The derived-state store `name` in an opened data dir (`engine`, `views`), with the
    /// cache the deployment was given, sealed as the data dir is.
    pub fn open_in(opened: &Opened, name: &str) -> Result<Self, StoreError> {
        Self::open(
            &opened.data_dir().join(name),
            StoreMemory::with_cache(opened.store_cache_bytes()),
            opened.seal.clone(),
        )
    }

    /// Fails with [`StoreError::InUse`] when another process holds the store at `path`
    /// (kept in fjall, or in sled by an earlier version); the other errors say it does not
    /// open.
    pub fn check_unused(path: &Path) -> Result<(), StoreError> {
        if is_sled(path) {
            return match sled::open(path) {
                Ok(_) => Ok(()),
                Err(e) if sled_in_use(&e) => Err(StoreError::InUse(path.to_path_buf())),
                Err(source) => Err(StoreError::Import {
                    path: path.to_path_buf(),
                    source,
                }),
            };
        }
        open_db(path, StoreMemory::with_cache(1 << 20)).map(drop)
    }

    /// The tree called `name`: the records stored under it (none if there are none).
    pub fn tree(&self, name: &str) -> Result<Tree, StoreError> {
        Ok(Tree {
            db: self.db.clone(),
            records: self.records.clone(),
            prefix: tree_prefix(name),
            synced: self.synced.clone(),
            seal: self.seal.clone(),
        })
    }

    /// Makes sure the derived state in the trees whose names start with `prefix` was
    /// derived from the log called `identity` (see [`laurel_log::Log::identity`]; a caller may
    /// add its own layout to it, so that state of an earlier layout is rebuilt too) and
    /// sealed as this store seals. State derived from another log (another data dir's
    /// embedded log, a JetStream stream deleted and created again, a switch between backends)
    /// or sealed otherwise (encryption turned on, off, or a new keyring) is dropped, so that
    /// it is rebuilt from this log: its positions mean nothing here, and trusting them would
    /// skip this log's entries. Returns whether anything was dropped.
    pub fn bind(&self, prefix: &str, identity: &str) -> Result<bool, StoreError> {
        match &self.seal {
            Some(seal) => self.bind_to(prefix, &format!("{identity}, sealed by {}", seal.id())),
            None => self.bind_to(prefix, identity),
        }
    }

    /// See [`Store::bind`].
    fn bind_to(&self, prefix: &str, identity: &str) -> Result<bool, StoreError> {
        let meta_name = format!("{prefix}meta");
        let meta = self.tree(&meta_name)?;
        let stored = self.records.get(meta.stored(b"log"))?;
        if stored.as_deref() == Some(identity.as_bytes()) {
            return Ok(false);
        }
        // Every record of every tree named `prefix...` but the binding. Removed in chunks:
        // the binding is written only once all are gone, so a bind cut short drops the rest
        // when it runs again.
        let meta_prefix = tree_prefix(&meta_name);
        let mut dropped = false;
        let mut removing = self.db.batch();
        for item in self.records.prefix(prefix.as_bytes()) {
            let key = item.key()?;
            if key.starts_with(&meta_prefix) {
                continue;
            }
            dropped = true;
            removing.remove(&self.records, key);
            if removing.len() >= 10_000 {
                std::mem::replace(&mut removing, self.db.batch()).commit()?;
            }
        }
        removing.commit()?;
        if dropped {
            tracing::warn!(
                state = prefix.trim_end_matches('/'),
                previous = %String::from_utf8_lossy(stored.as_deref().unwrap_or(b"unrecorded")),
                log = identity,
                "derived state came from another log, an earlier layout or another sealing; rebuilding it from the log"
            );
        }
        self.records
            .insert(meta.stored(b"log"), identity.as_bytes())?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(dropped)
    }

    /// Writes everything to disk.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.persist(fjall::PersistMode::SyncAll))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        Ok(())
    }
}

/// The keyspace's options, fixed when it is made. Index and filter blocks are not pinned in
/// memory (fjall pins those of the first levels by default): they go through the block
/// cache like the records, so what a store holds in memory does not grow with its files.
fn keyspace_options() -> fjall::KeyspaceCreateOptions {
    use fjall::config::PinningPolicy;
    fjall::KeyspaceCreateOptions::default()
        .max_memtable_size(MEMTABLE_BYTES)
        .filter_block_pinning_policy(PinningPolicy::all(false))
        .index_block_pinning_policy(PinningPolicy::all(false))
}

fn open_db(path: &Path, memory: StoreMemory) -> Result<fjall::Database, StoreError> {
    fjall::Database::builder(path)
        .cache_size(memory.cache_bytes)
        .open()
        .map_err(|e| match e {
            fjall::Error::Locked => StoreError::InUse(path.to_path_buf()),
            other => StoreError::Store(other),
        })
}

/// A tree of derived records. With a sealer, a key is stored blinded and its record sealed
/// (see [`Sealer::seal_record`]); callers see plain keys and values either way.
#[derive(Clone)]
pub struct Tree {
    db: fjall::Database,
    records: fjall::Keyspace,
    /// The tree's name and a NUL: what its records' keys start with in the store.
    prefix: Vec<u8>,
    synced: Arc<Synced>,
    seal: Option<Arc<Sealer>>,
}

/// What the keys of tree `name` start with in its store. Names hold no NUL.
fn tree_prefix(name: &str) -> Vec<u8> {
    debug_assert!(!name.contains('\0'), "a tree name holds no NUL");
    let mut prefix = Vec::with_capacity(name.len() + 1);
    prefix.extend_from_slice(name.as_bytes());
    prefix.push(0);
    prefix
}

/// Keys and values.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Records ready to be written by [`Tree::apply`]: keys and values as stored (sealed when
/// the store is).
pub struct Batch(Records);

/// The key under which sled-era versions kept a batch being written; imported batches
/// are written whole ([`import_sled`]). No record kind starts with 0xFF, sealed or not.
const REDO: &[u8] = b"\xffredo";

impl Tree {
    /// `key` (as stored: blinded when sealed) as the store keeps it.
    fn stored(&self, key: &[u8]) -> Vec<u8> {
        let mut stored = Vec::with_capacity(self.prefix.len() + key.len());
        stored.extend_from_slice(&self.prefix);
        stored.extend_from_slice(key);
        stored
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.seal {
            None => Ok(self.records.get(self.stored(key))?.map(|v| v.to_vec())),
            Some(seal) => {
                let blinded = seal.blind(key);
                match self.records.get(self.stored(&blinded))? {
                    None => Ok(None),
                    Some(raw) => Ok(Some(seal.open_record(&blinded, &raw)?.1)),
                }
            }
        }
    }

    /// Every record whose key starts with `kind`, in no particular order when sealed.
    pub fn scan_kind(&self, kind: u8) -> Result<Records, StoreError> {
        let mut out = Vec::new();
        for item in self.records.prefix(self.stored(&[kind])) {
            let (stored, value) = item.into_inner()?;
            let key = &stored[self.prefix.len()..];
            out.push(match &self.seal {
                None => (key.to_vec(), value.to_vec()),
                Some(seal) => seal.open_record(key, &value)?,
            });
        }
        Ok(out)
    }

    /// Writes `records` in one atomic batch.
    pub fn write<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), StoreError> {
        self.apply(self.batch(records))
    }

    /// `records` as one batch to [`Tree::apply`], sealed when the store is.
    pub fn batch<'a>(&self, records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Batch {
        Batch(
            records
                .into_iter()
                .map(|(key, value)| match &self.seal {
                    None => (key.to_vec(), value.to_vec()),
                    Some(seal) => seal.seal_record(key, value),
                })
                .collect(),
        )
    }

    /// Writes a batch atomically: after a crash it is there whole or not at all (the
    /// store's journal keeps a batch as one unit). Readers go on meanwhile: a write takes
    /// no lock that a read waits for. The write is with the operating system when this
    /// returns, and on disk within [`SYNC_INTERVAL`] of it or at the next [`Tree::flush`].
    pub fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let Batch(records) = batch;
        let mut writing = self.db.batch();
        for (key, value) in records {
            writing.insert(&self.records, self.stored(&key), value);
        }
        writing.commit()?;
        self.synced.sync_if_due(&self.db)
    }

    /// Removes every record, in one atomic batch.
    pub fn clear(&self) -> Result<(), StoreError> {
        let mut removing = self.db.batch();
        for item in self.records.prefix(&self.prefix) {
            removing.remove(&self.records, item.key()?);
        }
        removing.commit()?;
        Ok(())
    }

    /// Writes the store to disk (every tree of it).
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(self.db.persist(fjall::PersistMode::SyncAll)?)
    }
}

/// Records as one value: each key and value preceded by its length (u32, big-endian).
#[cfg(test)]
fn encode_records(records: &Records) -> Vec<u8> {
    let size = records.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(size);
    for (key, value) in records {
        for part in [key, value] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// Records as sled-era versions wrote a batch under [`REDO`]; `None` when cut or malformed.
fn decode_records(raw: &[u8]) -> Option<Records> {
    let mut at = 0;
    let mut part = || {
        let len = u32::from_be_bytes(raw.get(at..at + 4)?.try_into().ok()?) as usize;
        let bytes = raw.get(at + 4..at + 4 + len)?.to_vec();
        at += 4 + len;
        Some(bytes)
    };
    let mut records = Vec::new();
    let mut used = 0;
    while let Some(key) = part() {
        let value = part()?;
        used += 8 + key.len() + value.len();
        records.push((key, value));
    }
    (used == raw.len()).then_some(records)
}

/// Whether `path` holds a store as sled-era versions kept it.
fn is_sled(path: &Path) -> bool {
    path.join("conf").is_file() && path.join("db").is_file()
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Whether sled refused to open a store because something holds its lock: sled 0.34 says so
/// only in words (an `Other` I/O error, "could not acquire lock on ..."), not by the
/// `WouldBlock` the lock call gave it.
fn sled_in_use(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(e)
        if e.kind() == std::io::ErrorKind::WouldBlock
            || e.to_string().contains("could not acquire lock"))
}

/// Imports the store a sled-era version kept at `path`, if that is what it holds: every
/// tree and record (a batch that was being written when that version stopped, written
/// whole), into a new store beside it that is then swapped in. Stopped at any point, it
/// starts again on the next open (or finishes the swap).
fn import_sled(path: &Path, memory: StoreMemory) -> Result<(), StoreError> {
    let importing = sibling(path, "importing");
    let imported = sibling(path, "sled-imported");
    if !path.exists() && importing.exists() && imported.exists() {
        // Stopped between the two renames below.
        std::fs::rename(&importing, path)?;
        return Ok(());
    }
    if !is_sled(path) {
        return Ok(());
    }
    let failed = |source| StoreError::Import {
        path: path.to_path_buf(),
        source,
    };
    let old = sled::open(path).map_err(|e| {
        if sled_in_use(&e) {
            StoreError::InUse(path.to_path_buf())
        } else {
            failed(e)
        }
    })?;
    if importing.exists() {
        std::fs::remove_dir_all(&importing)?;
    }
    let new = open_db(&importing, memory)?;
    let to = new.keyspace(RECORDS, keyspace_options)?;
    let mut trees = 0;
    let mut records = 0u64;
    for name in old.tree_names() {
        let Ok(name) = std::str::from_utf8(&name) else {
            continue;
        };
        let from = old.open_tree(name).map_err(failed)?;
        if from.is_empty() {
            continue;
        }
        let prefix = tree_prefix(name);
        let stored = |key: &[u8]| [prefix.as_slice(), key].concat();
        let mut batch = new.batch();
        for item in from.iter() {
            let (key, value) = item.map_err(failed)?;
            if key.as_ref() == REDO {
                continue;
            }
            batch.insert(&to, stored(&key), value.as_ref());
            records += 1;
            if batch.len() >= 10_000 {
                std::mem::replace(&mut batch, new.batch()).commit()?;
            }
        }
        if let Some(redo) = from.get(REDO).map_err(failed)? {
            let cut = decode_records(&redo).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{}: a batch cut short in tree {name}",
                    path.display()
                ))
            })?;
            for (key, value) in cut {
                batch.insert(&to, stored(&key), value);
            }
        }
        batch.commit()?;
        trees += 1;
    }
    new.persist(fjall::PersistMode::SyncAll)?;
    drop((to, new));
    drop(old);
    std::fs::rename(path, &imported)?;
    std::fs::rename(&importing, path)?;
    tracing::info!(
        store = %path.display(),
        trees,
        records,
        kept = %imported.display(),
        "imported derived state kept in sled by an earlier version"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> StoreMemory {
        StoreMemory::with_cache(1 << 20)
    }

    #[test]
    fn a_sled_store_is_imported_whole_with_a_batch_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views");
        {
            let old = sled::open(&path).unwrap();
            let tree = old.open_tree("views/0").unwrap();
            tree.insert(b"Pann", b"1").unwrap();
            tree.insert(b"Sbob", b"3").unwrap();
            // As if a sled-era version stopped after a batch and one of its records were
            // written.
            let batch: Records = vec![
                (b"Pann".to_vec(), b"2".to_vec()),
                (b"M:pos".to_vec(), b"9".to_vec()),
            ];
            tree.insert(REDO, encode_records(&batch)).unwrap();
            tree.insert(b"Pann", b"2").unwrap();
            old.open_tree("engine/meta")
                .unwrap()
                .insert("log", "L")
                .unwrap();
            old.flush().unwrap();
            // Held (here by this process): in use, not a store that failed to import.
            assert!(matches!(
                Store::check_unused(&path),
                Err(StoreError::InUse(_))
            ));
        }
        // sled's background threads may hold its lock a moment after the last handle is
        // gone: until then the store is in use (and nothing is imported).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let store = loop {
            match Store::open(&path, memory(), None) {
                Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                    assert!(
                        !sibling(&path, "importing").exists(),
                        "nothing imported yet"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => break opened.unwrap(),
            }
        };
        let tree = store.tree("views/0").unwrap();
        assert_eq!(tree.get(b"Pann").unwrap(), Some(b"2".to_vec()));
        assert_eq!(tree.get(b"Sbob").unwrap(), Some(b"3".to_vec()));
        assert_eq!(tree.get(b"M:pos").unwrap(), Some(b"9".to_vec()));
        assert_eq!(tree.get(REDO).unwrap(), None);
        assert!(
            !store.bind("engine/", "L").unwrap(),
            "the binding came along"
        );
        assert!(dir.path().join("views.sled-imported/db").is_file());
        assert!(!is_sled(&path));
        drop((tree, store));
        // Opened again: nothing to import, the same records.
        let store = Store::open(&path, memory(), None).unwrap();
        assert_eq!(
            store.tree("views/0").unwrap().get(b"Sbob").unwrap(),
            Some(b"3".to_vec())
        );
    }

    #[test]
    fn a_store_held_by_a_process_is_in_use_and_a_batch_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), memory(), None).unwrap();
        assert!(matches!(
            Store::check_unused(dir.path()),
            Err(StoreError::InUse(_))
        ));
        assert!(!store.bind("views/", "L1").unwrap(), "nothing to drop");
        let tree = store.tree("views/0").unwrap();
        let other = store.tree("views/01").unwrap();
        tree.write([(&b"Pann"[..], &b"1"[..]), (b"M:pos", b"7")])
            .unwrap();
        other.write([(&b"Pbob"[..], &b"2"[..])]).unwrap();
        assert_eq!(
            tree.scan_kind(b'P').unwrap(),
            vec![(b"Pann".to_vec(), b"1".to_vec())]
        );
        assert_eq!(
            other.get(b"Pann").unwrap(),
            None,
            "trees do not share records"
        );
        tree.clear().unwrap();
        assert_eq!(tree.get(b"M:pos").unwrap(), None);
        assert_eq!(
            other.get(b"Pbob").unwrap(),
            Some(b"2".to_vec()),
            "a clear keeps to its tree"
        );
        // Bound to another log: every tree under the prefix is dropped, the binding kept.
        assert!(store.bind("views/", "L2").unwrap());
        assert_eq!(other.get(b"Pbob").unwrap(), None);
        assert!(!store.bind("views/", "L2").unwrap());
        drop((tree, other, store));
        Store::check_unused(dir.path()).unwrap();
    }

    #[test]
    fn records_come_back_as_they_went_and_a_cut_blob_is_refused() {
        let records: Records = vec![(b"k".to_vec(), Vec::new()), (Vec::new(), b"v".to_vec())];
        let raw = encode_records(&records);
        assert_eq!(decode_records(&raw), Some(records));
        assert_eq!(decode_records(&raw[..raw.len() - 1]), None);
    }
}
