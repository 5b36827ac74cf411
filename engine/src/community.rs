//! Community goals: a `global` stat's total is every player's contributions summed. Each
//! partition holds its share (the sum of its players' values, moved by their `stat`
//! outputs) and the goals it learnt were reached (from `community_reached` messages on its
//! STATS partition, which the gateways append once the total meets a goal).

use std::collections::{BTreeMap, BTreeSet};

use laurel_schemas::{AchievementId, CommunityShare, Output, StatName, Value};
use serde::{Deserialize, Serialize};

use crate::defs::{AchIdx, Definitions};

/// One partition's community state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Community {
    /// The partition's share of each `global` stat's total.
    #[serde(default)]
    pub shares: BTreeMap<StatName, Value>,
    /// The community goals this partition learnt were reached.
    #[serde(default)]
    pub reached: BTreeSet<AchievementId>,
}

impl Community {
    /// Adds the contributions that `outputs` (a fold's, uncoalesced: each `stat` output's
    /// `previous` is the value before its event) made to `global` stats; returns the stats
    /// whose share moved.
    pub fn add(&mut self, defs: &Definitions, outputs: &[Output]) -> Vec<StatName> {
        let mut moved = Vec::new();
        if !defs.any_global() {
            return moved;
        }
        for output in outputs {
            let Output::Stat(change) = output else {
                continue;
            };
            if !defs.is_global(change.stat.as_str()) {
                continue;
            }
            let delta = change.value.minus(change.previous.unwrap_or(Value::Int(0)));
            let share = self
                .shares
                .entry(change.stat.clone())
                .or_insert(Value::Int(0));
            *share = share.plus(delta);
            if !moved.contains(&change.stat) {
                moved.push(change.stat.clone());
            }
        }
        moved
    }

    /// Records that `goal` was reached; whether that is news.
    pub fn reach(&mut self, goal: &AchievementId) -> bool {
        self.reached.insert(goal.clone())
    }

    /// The reached goals as indices of `defs` (those it defines).
    pub fn reached_in(&self, defs: &Definitions) -> Vec<AchIdx> {
        self.reached
            .iter()
            .filter_map(|id| defs.achievement_idx(id.as_str()))
            .collect()
    }

    /// The shares of `stats`, as a `changes` entry carries them.
    pub fn shares_of(&self, stats: &[StatName]) -> Vec<CommunityShare> {
        stats
            .iter()
            .filter_map(|stat| {
                Some(CommunityShare {
                    stat: stat.clone(),
                    share: *self.shares.get(stat)?,
                })
            })
            .collect()
    }
}
