//! A view tree with its writes staged in memory and written behind.
//!
//! The projector stages each batch's writes (with the log position they reach) in memory,
//! where reads see them at once, and writes them to the store in one atomic batch every flush
//! interval or when too many are staged. A crash loses only what was staged: the position
//! on disk is the one written with the data, so the projector folds OUTPUT again from there.
//! The flush interval bounds that work, never what is lost (OUTPUT keeps everything).

use std::collections::BTreeMap;
use std::sync::RwLock;

/// Keys and values, in key order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A derived tree (sealed when the data dir is) with writes staged in memory, in clear.
pub(crate) struct Staged {
    tree: laurel_derived::Tree,
    maps: RwLock<Maps>,
}

/// Staged writes: the newest, and those being written to the store (still read from here until
/// they are there, so a read never sees a value go back).
#[derive(Default)]
struct Maps {
    pending: BTreeMap<Vec<u8>, Vec<u8>>,
    flushing: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Staged {
    pub(crate) fn new(tree: laurel_derived::Tree) -> Self {
        Self {
            tree,
            maps: RwLock::default(),
        }
    }

    /// A key's value: staged, else stored.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, laurel_derived::StoreError> {
        {
            let maps = self.maps.read().expect("staged lock");
            if let Some(v) = maps.pending.get(key).or_else(|| maps.flushing.get(key)) {
                return Ok(Some(v.clone()));
            }
        }
        self.tree.get(key)
    }

    /// Every key of the record kind `kind` (its first byte), in order, with its value:
    /// staged over stored.
    pub(crate) fn scan_kind(&self, kind: u8) -> Result<Pairs, laurel_derived::StoreError> {
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> =
            self.tree.scan_kind(kind)?.into_iter().collect();
        let prefix = [kind];
        let maps = self.maps.read().expect("staged lock");
        // Older first, so the newest value of a key wins.
        for map in [&maps.flushing, &maps.pending] {
            for (k, v) in map
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
            {
                found.insert(k.clone(), v.clone());
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Stages `writes`; returns how many keys are staged now.
    pub(crate) fn stage(&self, writes: BTreeMap<Vec<u8>, Vec<u8>>) -> usize {
        let mut maps = self.maps.write().expect("staged lock");
        maps.pending.extend(writes);
        maps.pending.len()
    }

    /// Writes what is staged to the store in one atomic batch; reads go on meanwhile. Only the
    /// projector worker of this view flushes, so one flush runs at a time.
    pub(crate) fn flush(&self) -> Result<(), laurel_derived::StoreError> {
        {
            let mut maps = self.maps.write().expect("staged lock");
            if maps.pending.is_empty() {
                return Ok(());
            }
            maps.flushing = std::mem::take(&mut maps.pending);
        }
        // Made (sealed, when the store is) under the read lock: reads go on meanwhile.
        let batch = {
            let maps = self.maps.read().expect("staged lock");
            self.tree.batch(
                maps.flushing
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice())),
            )
        };
        let written = self.tree.apply(batch);
        let mut maps = self.maps.write().expect("staged lock");
        match written {
            Ok(()) => maps.flushing.clear(),
            // Not written: staged again, under anything newer.
            Err(_) => {
                let flushing = std::mem::take(&mut maps.flushing);
                for (k, v) in flushing {
                    maps.pending.entry(k).or_insert(v);
                }
            }
        }
        written
    }
}
