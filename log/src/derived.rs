//! State derived from a log (engine state, views): which log it came from, and its records,
//! sealed when the data dir is encrypted.

use std::sync::Arc;

use crate::seal::Sealer;

/// A sled store of derived state, with the data dir's sealer when it is encrypted. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    seal: Option<Arc<Sealer>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("sealed", &self.seal.as_ref().map(|s| s.id()))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Derived state in `db`, sealed with `seal` when given.
    pub fn new(db: sled::Db, seal: Option<Arc<Sealer>>) -> Self {
        Self { db, seal }
    }

    /// The tree called `name`, with a batch that was being written when the process
    /// stopped written whole (see [`Tree::apply`]). So a tree is opened where nobody is
    /// writing it: at start, or once its writer has stopped (as the engine's exports are).
    pub fn tree(&self, name: &str) -> Result<Tree, sled::Error> {
        let tree = Tree {
            tree: self.db.open_tree(name)?,
            seal: self.seal.clone(),
        };
        tree.redo()?;
        Ok(tree)
    }

    /// Makes sure the derived state in the trees whose names start with `prefix` was
    /// derived from the log called `identity` (see [`crate::Log::identity`]; a caller may
    /// add its own layout to it, so that state of an earlier layout is rebuilt too) and
    /// sealed as this store seals. State derived from another log (another data dir's
    /// embedded log, a JetStream stream deleted and created again, a switch between backends)
    /// or sealed otherwise (encryption turned on, off, or a new keyring) is dropped, so that
    /// it is rebuilt from this log: its positions mean nothing here, and trusting them would
    /// skip this log's entries. Returns whether anything was dropped.
    pub fn bind(&self, prefix: &str, identity: &str) -> Result<bool, sled::Error> {
        match &self.seal {
            Some(seal) => bind(
                &self.db,
                prefix,
                &format!("{identity}, sealed by {}", seal.id()),
            ),
            None => bind(&self.db, prefix, identity),
        }
    }

    /// Writes everything to disk.
    pub async fn flush_async(&self) -> Result<(), sled::Error> {
        self.db.flush_async().await.map(drop)
    }
}

/// A tree of derived records. With a sealer, a key is stored blinded and its record sealed
/// (see [`Sealer::seal_record`]); callers see plain keys and values either way.
#[derive(Clone)]
pub struct Tree {
    tree: sled::Tree,
    seal: Option<Arc<Sealer>>,
}

/// Keys and values.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Records ready to be written by [`Tree::apply`]: keys and values as stored (sealed when
/// the store is).
pub struct Batch(Records);

/// The key of a batch being written (see [`Tree::apply`]). No record kind starts with 0xFF,
/// sealed or not, so no scan meets it.
const REDO: &[u8] = b"\xffredo";

impl Tree {
    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, sled::Error> {
        match &self.seal {
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
            Some(seal) => {
                let blinded = seal.blind(key);
                match self.tree.get(&blinded)? {
                    None => Ok(None),
                    Some(raw) => Ok(Some(seal.open_record(&blinded, &raw)?.1)),
                }
            }
        }
    }

    /// Every record whose key starts with `kind`, in no particular order when sealed.
    pub fn scan_kind(&self, kind: u8) -> Result<Records, sled::Error> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([kind]) {
            let (key, value) = item?;
            out.push(match &self.seal {
                None => (key.to_vec(), value.to_vec()),
                Some(seal) => seal.open_record(&key, &value)?,
            });
        }
        Ok(out)
    }

    /// Writes `records` in one atomic batch.
    pub fn write<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), sled::Error> {
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

    /// Writes a batch atomically: first the whole batch as one record, then each of its
    /// records, then the whole one is removed; a tree opened with it still there writes it
    /// again ([`Store::tree`]), so after a crash the batch is there whole or not at all (sled
    /// recovers a prefix of its writes).
    ///
    /// Not sled's `apply_batch`: that takes a lock global to the process, which every sled
    /// read of every store in it waits behind (and which itself waits for sled's flusher), so
    /// writing a large batch of views or engine state held up every read on the live path:
    /// the unlock latency tail after a flood (docs/performance.md).
    pub fn apply(&self, batch: Batch) -> Result<(), sled::Error> {
        let Batch(records) = batch;
        if let [(key, value)] = records.as_slice() {
            self.tree.insert(key.as_slice(), value.as_slice())?;
            return Ok(());
        }
        self.tree.insert(REDO, encode_records(&records))?;
        for (key, value) in records {
            self.tree.insert(key, value)?;
        }
        self.tree.remove(REDO)?;
        Ok(())
    }

    /// Writes again the batch whose writing stopped, if any.
    fn redo(&self) -> Result<(), sled::Error> {
        let Some(raw) = self.tree.get(REDO)? else {
            return Ok(());
        };
        let records =
            decode_records(&raw).ok_or_else(|| sled::Error::Corruption { at: None, bt: () })?;
        tracing::info!(
            records = records.len(),
            "writing again a batch of derived state that was cut short"
        );
        for (key, value) in records {
            self.tree.insert(key, value)?;
        }
        self.tree.remove(REDO)?;
        Ok(())
    }

    /// Removes every record.
    pub fn clear(&self) -> Result<(), sled::Error> {
        self.tree.clear()
    }

    /// Writes the tree to disk.
    pub fn flush(&self) -> Result<(), sled::Error> {
        self.tree.flush().map(drop)
    }
}

/// Records as one value: each key and value preceded by its length (u32, big-endian).
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

/// See [`encode_records`]; `None` when cut or malformed.
fn decode_records(raw: &[u8]) -> Option<Records> {
    let mut at = 0;
    let mut part = || {
        let len = u32::from_be_bytes(raw.get(at..at + 4)?.try_into().ok()?) as usize;
        let bytes = raw.get(at + 4..at + 4 + len)?.to_vec();
        at += 4 + len;
        Some(bytes)
    };
    let mut records = Vec::new();
    while let Some(key) = part() {
        records.push((key, part()?));
    }
    (encode_records(&records).len() == raw.len()).then_some(records)
}

/// See [`Store::bind`].
fn bind(db: &sled::Db, prefix: &str, identity: &str) -> Result<bool, sled::Error> {
    let meta = db.open_tree(format!("{prefix}meta"))?;
    let stored = meta.get("log")?;
    if stored.as_deref() == Some(identity.as_bytes()) {
        return Ok(false);
    }
    let stale: Vec<_> = db
        .tree_names()
        .into_iter()
        .filter(|name| name.starts_with(prefix.as_bytes()) && name.as_ref() != meta.name().as_ref())
        .collect();
    let mut dropped = false;
    for name in stale {
        let tree = db.open_tree(&name)?;
        if !tree.is_empty() {
            dropped = true;
        }
        tree.clear()?;
    }
    if dropped {
        tracing::warn!(
            state = prefix.trim_end_matches('/'),
            previous = %String::from_utf8_lossy(stored.as_deref().unwrap_or(b"unrecorded")),
            log = identity,
            "derived state came from another log, an earlier layout or another sealing; rebuilding it from the log"
        );
    }
    meta.insert("log", identity.as_bytes())?;
    db.flush()?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(sled::Config::new().temporary(true).open().unwrap(), None)
    }

    #[test]
    fn a_batch_cut_short_is_written_whole_when_its_tree_opens_again() {
        let store = store();
        let tree = store.tree("views/0").unwrap();
        tree.write([(&b"Pann"[..], &b"1"[..]), (b"M:pos", b"7")])
            .unwrap();
        assert_eq!(tree.get(b"Pann").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            tree.tree.get(REDO).unwrap(),
            None,
            "nothing left once written"
        );
        // As if the process stopped after the batch and one of its records were written.
        let batch: Records = vec![
            (b"Pann".to_vec(), b"2".to_vec()),
            (b"M:pos".to_vec(), b"9".to_vec()),
        ];
        tree.tree.insert(REDO, encode_records(&batch)).unwrap();
        tree.tree.insert(b"Pann", b"2").unwrap();
        let reopened = store.tree("views/0").unwrap();
        assert_eq!(reopened.get(b"M:pos").unwrap(), Some(b"9".to_vec()));
        assert_eq!(reopened.get(b"Pann").unwrap(), Some(b"2".to_vec()));
        assert_eq!(reopened.tree.get(REDO).unwrap(), None);
        assert!(reopened.scan_kind(0xff).unwrap().is_empty());
    }

    #[test]
    fn records_come_back_as_they_went_and_a_cut_blob_is_refused() {
        let records: Records = vec![(b"k".to_vec(), Vec::new()), (Vec::new(), b"v".to_vec())];
        let raw = encode_records(&records);
        assert_eq!(decode_records(&raw), Some(records));
        assert_eq!(decode_records(&raw[..raw.len() - 1]), None);
    }
}
