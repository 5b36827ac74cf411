//! A player's evaluation state: aggregated stat values and earned achievements.

use laurel_schemas::{AchievementId, StatName, Value};
use serde::{Deserialize, Serialize};

use crate::defs::{AchIdx, Definitions, StatIdx};

/// One player's state, held by definition index for fast evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerState {
    stats: Vec<Option<Value>>,
    earned: Vec<u64>,
}

impl PlayerState {
    /// A player with no stats and nothing earned.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stat's current value, if any event set it.
    pub fn stat(&self, idx: StatIdx) -> Option<Value> {
        self.stats.get(idx.get()).copied().flatten()
    }

    pub(crate) fn set_stat(&mut self, idx: StatIdx, value: Value) {
        let i = idx.get();
        if self.stats.len() <= i {
            self.stats.resize(i + 1, None);
        }
        self.stats[i] = Some(value);
    }

    /// Whether the achievement is earned.
    pub fn has_earned(&self, idx: AchIdx) -> bool {
        let i = idx.get();
        self.earned
            .get(i / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    pub(crate) fn mark_earned(&mut self, idx: AchIdx) {
        let i = idx.get();
        if self.earned.len() <= i / 64 {
            self.earned.resize(i / 64 + 1, 0);
        }
        self.earned[i / 64] |= 1 << (i % 64);
    }

    /// The state by name, for storage: independent of definition indices.
    pub fn to_snapshot(&self, defs: &Definitions) -> PlayerSnapshot {
        let stats = self
            .stats
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((defs.stats[i].name.clone(), (*v)?)))
            .collect();
        let earned = (0..defs.achievements.len())
            .filter(|i| self.has_earned(AchIdx(*i as u32)))
            .map(|i| defs.achievements[i].id.clone())
            .collect();
        PlayerSnapshot { stats, earned }
    }

    /// The state from a stored snapshot, against definitions that know every name in it
    /// (stats are never deleted, achievements only archived). Returns the first unknown name.
    pub fn try_from_snapshot(
        snapshot: &PlayerSnapshot,
        defs: &Definitions,
    ) -> Result<Self, String> {
        let mut state = Self::new();
        for (name, value) in &snapshot.stats {
            let idx = defs
                .stat_idx(name.as_str())
                .ok_or_else(|| name.to_string())?;
            state.set_stat(idx, *value);
        }
        for id in &snapshot.earned {
            let idx = defs
                .achievement_idx(id.as_str())
                .ok_or_else(|| id.to_string())?;
            state.mark_earned(idx);
        }
        Ok(state)
    }

    /// The state from a stored snapshot. Names the definitions do not know yet are
    /// interned, so nothing stored is dropped.
    pub fn from_snapshot(snapshot: &PlayerSnapshot, defs: &mut Definitions) -> Self {
        let mut state = Self::new();
        for (name, value) in &snapshot.stats {
            state.set_stat(defs.intern_stat_name(name), *value);
        }
        for id in &snapshot.earned {
            state.mark_earned(defs.intern_achievement_id(id));
        }
        state
    }
}

/// A player's state by name: what the engine shell stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerSnapshot {
    /// Aggregated stat values.
    pub stats: Vec<(StatName, Value)>,
    /// Earned achievements.
    pub earned: Vec<AchievementId>,
}
