//! Deduplication: the ids appended inside the window, held compactly, rebuilt on open.

use std::collections::{HashMap, VecDeque};

/// Ids appended inside the window, with their sequence. A UUID id is held as its 16 bytes,
/// once per map: at 100,000 events/s a two-minute window holds millions of ids.
#[derive(Default)]
pub(super) struct DedupWindow {
    pub(super) ids: HashMap<IdKey, u64>,
    pub(super) order: VecDeque<(u64, IdKey)>,
}

/// An id as the window holds it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum IdKey {
    /// A UUID in canonical (hyphenated, lowercase) form.
    Uuid(u128),
    /// Any other id.
    Other(Box<str>),
}

impl IdKey {
    pub(super) fn of(id: &str) -> Self {
        match canonical_uuid(id) {
            Some(u) => IdKey::Uuid(u.as_u128()),
            None => IdKey::Other(id.into()),
        }
    }
}

/// The UUID `id` is, when it is one written in canonical form (so the id comes back the
/// same from it).
pub(super) fn canonical_uuid(id: &str) -> Option<uuid::Uuid> {
    let u = uuid::Uuid::try_parse(id).ok()?;
    let mut buf = uuid::Uuid::encode_buffer();
    (u.hyphenated().encode_lower(&mut buf) == id).then_some(u)
}

impl DedupWindow {
    pub(super) fn get(&self, id: &str) -> Option<u64> {
        self.ids.get(&IdKey::of(id)).copied()
    }

    pub(super) fn insert(&mut self, id: &str, seq: u64, at_ms: u64) {
        let key = IdKey::of(id);
        self.ids.insert(key.clone(), seq);
        self.order.push_back((at_ms, key));
    }

    /// Takes back the last `n` insertions (of an append that was not written).
    pub(super) fn undo(&mut self, n: usize) {
        for _ in 0..n {
            if let Some((_, key)) = self.order.pop_back() {
                self.ids.remove(&key);
            }
        }
    }

    pub(super) fn prune(&mut self, before_ms: u64) {
        while let Some((at, _)) = self.order.front() {
            if *at >= before_ms {
                break;
            }
            let (_, key) = self.order.pop_front().expect("front exists");
            self.ids.remove(&key);
        }
    }
}
