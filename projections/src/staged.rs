//! A view tree with its writes staged in memory and written behind.
//!
//! The projector stages each batch's writes (with the log position they reach) in memory,
//! where reads see them at once, and writes them to sled in one atomic batch every flush
//! interval or when too many are staged. A crash loses only what was staged: the position
//! on disk is the one written with the data, so the projector folds OUTPUT again from there.
//! The flush interval bounds that work, never what is lost (OUTPUT keeps everything).

use std::collections::BTreeMap;
use std::sync::RwLock;

/// Keys and values, in key order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A sled tree with writes staged in memory.
pub(crate) struct Staged {
    tree: sled::Tree,
    pending: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Staged {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            pending: RwLock::default(),
        }
    }

    /// A key's value: staged, else stored.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, sled::Error> {
        if let Some(v) = self.pending.read().expect("staged lock").get(key) {
            return Ok(Some(v.clone()));
        }
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    /// Every key starting with `prefix`, in order, with its value: staged over stored.
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, sled::Error> {
        let mut found = BTreeMap::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item?;
            found.insert(k.to_vec(), v.to_vec());
        }
        let pending = self.pending.read().expect("staged lock");
        for (k, v) in pending
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            found.insert(k.clone(), v.clone());
        }
        Ok(found.into_iter().collect())
    }

    /// Stages `writes`; returns how many keys are staged now.
    pub(crate) fn stage(&self, writes: BTreeMap<Vec<u8>, Vec<u8>>) -> usize {
        let mut pending = self.pending.write().expect("staged lock");
        pending.extend(writes);
        pending.len()
    }

    /// Writes what is staged to sled in one atomic batch.
    pub(crate) fn flush(&self) -> Result<(), sled::Error> {
        let mut pending = self.pending.write().expect("staged lock");
        if pending.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in pending.iter() {
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.tree.apply_batch(batch)?;
        pending.clear();
        Ok(())
    }
}
