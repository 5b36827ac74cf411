//! One partition's durable engine state: player snapshots and positions in a derived-state tree, the
//! hot players in a bounded in-memory cache, written behind: the changed players are encoded
//! between batches and written by a blocking task while the partition folds on.
//!
//! Keys: `P<player id>` → msgpack [`PlayerSnapshot`]; `M:stats` → the last STATS position
//! applied; `M:output` → the OUTPUT position of the checkpoint that says so; `M:defs` → the
//! last DEFS position re-evaluated; `M:community` → the partition's [`Community`] state. A
//! batch's players, positions and community state go in one atomic batch, so they are stored
//! together or not at all.

use laurel_derived::{Store, Tree};
use laurel_runtime::WriteBehind;
use laurel_schemas::{PlayerId, decode, encode};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::community::Community;
use crate::defs::Definitions;
use crate::state::{PlayerSnapshot, PlayerState};

const STATS_POS: &[u8] = b"M:stats";
const COMMUNITY: &[u8] = b"M:community";

fn read_community(tree: &Tree) -> Result<Community, StoreError> {
    match tree.get(COMMUNITY)? {
        None => Ok(Community::default()),
        Some(raw) => decode(&raw).map_err(|e| StoreError::Corrupt {
            player: String::new(),
            reason: format!("the partition's community state: {e}"),
        }),
    }
}
const OUTPUT_POS: &[u8] = b"M:output";
const DEFS_POS: &[u8] = b"M:defs";

fn player_key(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1);
    key.push(b'P');
    key.extend_from_slice(id.as_bytes());
    key
}

fn read_u64(tree: &Tree, key: &[u8]) -> Result<u64, laurel_derived::StoreError> {
    Ok(tree
        .get(key)?
        .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}

/// Reading or writing a partition's state failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The derived-state store failed.
    #[error("engine state: {0}")]
    Storage(#[from] laurel_derived::StoreError),
    /// A stored player state cannot be read back: it is never replaced by an empty one, the
    /// partition is rebuilt from the log instead.
    #[error("player {player}'s stored state is unreadable: {reason}")]
    Corrupt {
        /// The player.
        player: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The state of one partition.
pub(super) struct PartitionStore {
    tree: Tree,
    cache: FxHashMap<PlayerId, PlayerState>,
    dirty: FxHashSet<PlayerId>,
    cap: usize,
    /// Last STATS position applied.
    pub(super) stats_pos: u64,
    /// OUTPUT position of the checkpoint that published `stats_pos` (0 before any).
    pub(super) output_pos: u64,
    /// Last DEFS position re-evaluated.
    pub(super) defs_pos: u64,
    /// Shares of community totals and goals reached.
    pub(super) community: Community,
    /// The write running behind the fold, if any.
    writer: WriteBehind<laurel_derived::StoreError>,
    /// Player states found in memory, and read from disk or started, since last taken.
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl PartitionStore {
    pub(super) fn open(db: &Store, partition: u32, cap: usize) -> Result<Self, StoreError> {
        let tree = db.tree(&tree_name(partition))?;
        Ok(Self {
            stats_pos: read_u64(&tree, STATS_POS)?,
            output_pos: read_u64(&tree, OUTPUT_POS)?,
            defs_pos: read_u64(&tree, DEFS_POS)?,
            community: read_community(&tree)?,
            tree,
            cache: FxHashMap::default(),
            dirty: FxHashSet::default(),
            cap: cap.max(1),
            writer: WriteBehind::default(),
            hits: 0,
            misses: 0,
        })
    }

    /// Forgets everything, on disk and in memory: the partition starts from nothing.
    pub(super) fn reset(&mut self) -> Result<(), laurel_derived::StoreError> {
        // A write still running would land after the clear; its outcome no longer matters.
        let _ = self.writer.wait();
        self.tree.clear()?;
        self.tree.flush()?;
        self.cache.clear();
        self.dirty.clear();
        self.stats_pos = 0;
        self.output_pos = 0;
        self.defs_pos = 0;
        self.community = Community::default();
        Ok(())
    }

    /// The player's state, loaded from disk if it is not cached; marked dirty.
    pub(super) fn player_mut(
        &mut self,
        id: &PlayerId,
        defs: &Definitions,
    ) -> Result<&mut PlayerState, StoreError> {
        if self.cache.contains_key(id.as_str()) {
            self.hits += 1;
        } else {
            self.misses += 1;
            let state = match self.tree.get(&player_key(id.as_str()))? {
                None => PlayerState::new(),
                Some(raw) => restore(id, &raw, defs)?,
            };
            self.cache.insert(id.clone(), state);
        }
        if !self.dirty.contains(id.as_str()) {
            self.dirty.insert(id.clone());
        }
        Ok(self.cache.get_mut(id.as_str()).expect("cached above"))
    }

    /// A cached player's state (every player touched by the current batch is cached).
    pub(super) fn cached(&self, id: &str) -> Option<&PlayerState> {
        self.cache.get(id)
    }

    /// Every player id stored or cached in this partition.
    pub(super) fn player_ids(&self) -> Result<Vec<PlayerId>, laurel_derived::StoreError> {
        let mut ids: FxHashSet<PlayerId> = self.cache.keys().cloned().collect();
        for (key, _) in self.tree.scan_kind(b'P')? {
            match std::str::from_utf8(&key[1..])
                .ok()
                .and_then(|s| PlayerId::stored(s).ok())
            {
                Some(id) => {
                    ids.insert(id);
                }
                None => tracing::warn!("skipping an unreadable player key"),
            }
        }
        let mut ids: Vec<PlayerId> = ids.into_iter().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Writes the dirty players and the positions in one atomic batch, and waits until
    /// they are on disk.
    pub(super) fn persist(&mut self, defs: &Definitions) -> Result<(), laurel_derived::StoreError> {
        self.persist_behind(defs, |_| {})?;
        self.writer.wait()
    }

    /// Starts writing the dirty players and the positions in one atomic batch behind the
    /// caller's back (`done` gets the write's duration), once the write before is on disk;
    /// then trims the cache of players that write held. A player leaves the cache only once
    /// its state is on disk, so a read from disk never finds an older one.
    pub(super) fn persist_behind(
        &mut self,
        defs: &Definitions,
        done: impl FnOnce(std::time::Duration) + Send + 'static,
    ) -> Result<(), laurel_derived::StoreError> {
        self.writer.wait()?;
        if self.cache.len() > self.cap {
            // Clean players (on disk by now) go, an arbitrary half of the cap stays.
            let excess = self.cache.len() - self.cap / 2;
            let evict: Vec<PlayerId> = self
                .cache
                .keys()
                .filter(|id| !self.dirty.contains(id.as_str()))
                .take(excess)
                .cloned()
                .collect();
            for id in evict {
                self.cache.remove(id.as_str());
            }
        }
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(self.dirty.len() + 4);
        for id in self.dirty.drain() {
            if let Some(state) = self.cache.get(id.as_str()) {
                records.push((player_key(id.as_str()), encode(&state.to_snapshot(defs))));
            }
        }
        records.push((STATS_POS.to_vec(), self.stats_pos.to_be_bytes().to_vec()));
        records.push((OUTPUT_POS.to_vec(), self.output_pos.to_be_bytes().to_vec()));
        records.push((DEFS_POS.to_vec(), self.defs_pos.to_be_bytes().to_vec()));
        records.push((COMMUNITY.to_vec(), encode(&self.community)));
        let tree = self.tree.clone();
        self.writer.start(move || {
            let started = std::time::Instant::now();
            tree.write(records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
            done(started.elapsed());
            Ok(())
        })
    }

    /// Whether a write started by [`Self::persist_behind`] is still running.
    pub(super) fn writing(&mut self) -> bool {
        self.writer.busy()
    }

    /// Drops the changes not yet persisted: the players they touched are read from disk
    /// again when next needed, and the positions are the stored ones.
    pub(super) fn forget_unpersisted(&mut self) {
        // What a failed write held is neither dirty nor on disk: start from disk whole.
        let _ = self.writer.wait();
        self.dirty.clear();
        self.cache.clear();
        self.stats_pos = read_u64(&self.tree, STATS_POS).unwrap_or(self.stats_pos);
        self.output_pos = read_u64(&self.tree, OUTPUT_POS).unwrap_or(self.output_pos);
        self.defs_pos = read_u64(&self.tree, DEFS_POS).unwrap_or(self.defs_pos);
        if let Ok(community) = read_community(&self.tree) {
            self.community = community;
        }
    }

    /// Persists, then exports the partition's stored state (see [`export`]): consistent,
    /// since the caller (the partition's worker, between batches) is its only writer.
    pub(super) fn persist_and_export(
        &mut self,
        defs: &Definitions,
        identity: &str,
        partition: u32,
    ) -> Result<Vec<u8>, laurel_derived::StoreError> {
        self.persist(defs)?;
        export_tree(&self.tree, identity, partition)
    }

    /// Whether more players are held in memory than the cache allows.
    pub(super) fn over_capacity(&self) -> bool {
        self.cache.len() > self.cap
    }

    /// Whether the cache holds twice what it allows: past this the fold waits for the
    /// write behind it rather than grow further.
    pub(super) fn far_over_capacity(&self) -> bool {
        self.cache.len() > self.cap.saturating_mul(2)
    }

    /// How many player states the cache holds before it is trimmed.
    pub(super) fn capacity(&self) -> usize {
        self.cap
    }

    /// How many players are held in memory.
    pub(super) fn cached_players(&self) -> usize {
        self.cache.len()
    }
}

/// A partition's stored state, whole, as one engine hands it to another (see
/// [`export`] and [`import`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    /// The identity of the log the state was folded from.
    identity: String,
    partition: u32,
    stats_pos: u64,
    output_pos: u64,
    defs_pos: u64,
    /// Every player's stored record: key and msgpack [`PlayerSnapshot`].
    players: Vec<(Vec<u8>, Vec<u8>)>,
    /// The partition's community state, msgpack (absent in snapshots of earlier versions).
    #[serde(default)]
    community: Option<Vec<u8>>,
}

/// The partition's stored state as one blob, to hand to another engine. Only a partition no
/// worker is writing gives a consistent snapshot (the records are read one by one).
pub(crate) fn export(
    db: &Store,
    identity: &str,
    partition: u32,
) -> Result<Vec<u8>, laurel_derived::StoreError> {
    export_tree(&db.tree(&tree_name(partition))?, identity, partition)
}

fn export_tree(
    tree: &Tree,
    identity: &str,
    partition: u32,
) -> Result<Vec<u8>, laurel_derived::StoreError> {
    let snapshot = Snapshot {
        identity: identity.to_string(),
        partition,
        stats_pos: read_u64(tree, STATS_POS)?,
        output_pos: read_u64(tree, OUTPUT_POS)?,
        defs_pos: read_u64(tree, DEFS_POS)?,
        players: tree.scan_kind(b'P')?,
        community: tree.get(COMMUNITY)?,
    };
    Ok(encode(&snapshot))
}

/// Replaces the partition's stored state with `blob` (from [`export`]) when the blob is of
/// this log and partition and ahead of what is stored; returns its STATS position then.
/// Recovery checks it against OUTPUT like any stored state.
pub(crate) fn import(
    db: &Store,
    identity: &str,
    partition: u32,
    blob: &[u8],
) -> Result<Option<u64>, StoreError> {
    let snapshot: Snapshot = decode(blob).map_err(|e| StoreError::Corrupt {
        player: String::new(),
        reason: format!("an unreadable snapshot: {e}"),
    })?;
    let tree = db.tree(&tree_name(partition))?;
    if snapshot.identity != identity
        || snapshot.partition != partition
        || snapshot.stats_pos <= read_u64(&tree, STATS_POS)?
    {
        return Ok(None);
    }
    tree.clear()?;
    let positions = [
        (
            STATS_POS.to_vec(),
            snapshot.stats_pos.to_be_bytes().to_vec(),
        ),
        (
            OUTPUT_POS.to_vec(),
            snapshot.output_pos.to_be_bytes().to_vec(),
        ),
        (DEFS_POS.to_vec(), snapshot.defs_pos.to_be_bytes().to_vec()),
    ];
    let community = snapshot
        .community
        .map(|raw| (COMMUNITY.to_vec(), raw))
        .into_iter()
        .collect::<Vec<_>>();
    tree.write(
        snapshot
            .players
            .iter()
            .chain(positions.iter())
            .chain(community.iter())
            .map(|(k, v)| (k.as_slice(), v.as_slice())),
    )?;
    tree.flush()?;
    Ok(Some(snapshot.stats_pos))
}

/// The tree of a partition's engine state.
pub(super) fn tree_name(partition: u32) -> String {
    format!("engine/{partition}")
}

fn restore(id: &PlayerId, raw: &[u8], defs: &Definitions) -> Result<PlayerState, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        player: id.to_string(),
        reason,
    };
    let snapshot: PlayerSnapshot = decode(raw).map_err(|e| corrupt(e.to_string()))?;
    PlayerState::try_from_snapshot(&snapshot, defs)
        .map_err(|name| corrupt(format!("it names {name}, which no definition defines")))
}
