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

    /// The tree called `name`.
    pub fn tree(&self, name: &str) -> Result<Tree, sled::Error> {
        Ok(Tree {
            tree: self.db.open_tree(name)?,
            seal: self.seal.clone(),
        })
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

/// Records ready to be written by [`Tree::apply`].
pub struct Batch(sled::Batch);

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
        let mut batch = sled::Batch::default();
        for (key, value) in records {
            match &self.seal {
                None => batch.insert(key, value),
                Some(seal) => {
                    let (key, value) = seal.seal_record(key, value);
                    batch.insert(key, value);
                }
            }
        }
        Batch(batch)
    }

    /// Writes a batch atomically.
    pub fn apply(&self, batch: Batch) -> Result<(), sled::Error> {
        self.tree.apply_batch(batch.0)
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
