//! A player's evaluation state: aggregated stat values, earned achievements, where each
//! repeatable achievement's next earn counts from, and rewards waiting for a claim.

use laurel_schemas::{AchievementId, Millis, Period, PeriodKey, Repeat, Rewards, StatName, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::defs::{AchIdx, Definitions, StatIdx};

/// One player's state, held by definition index for fast evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerState {
    stats: Vec<Option<Value>>,
    earned: Vec<u64>,
    /// Repeatable achievements earned at least once (few per player: a list).
    repeats: Vec<RepeatState>,
    /// Earns whose rewards wait for the player's claim.
    pending: Vec<PendingReward>,
    /// Periodic stats' values by period: the last [`Period::KEPT`] periods of each, in
    /// order of stat and period.
    periods: Vec<(StatIdx, PeriodKey, Value)>,
    /// Periodic achievements' earns: the last [`Period::KEPT`] periods of each.
    period_earns: Vec<(AchIdx, PeriodKey)>,
    /// How many times the player was reset: their earns' ids count from it.
    resets: u32,
}

/// Where a repeatable achievement stands for a player.
#[derive(Debug, Clone, PartialEq)]
struct RepeatState {
    ach: AchIdx,
    times: u32,
    last_at: Millis,
    /// The condition stats' values at the last earn.
    baseline: Vec<(StatIdx, Value)>,
}

/// An earn's rewards waiting for the player's claim.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingReward {
    pub(crate) unlock_id: Uuid,
    pub(crate) ach: AchIdx,
    pub(crate) rewards: Rewards,
}

impl PlayerState {
    /// A player with no stats and nothing earned.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times the player was reset.
    pub fn resets(&self) -> u32 {
        self.resets
    }

    /// Forgets everything of the player (a test player's reset) but how many times this
    /// happened.
    pub(crate) fn reset(&mut self) {
        *self = Self {
            resets: self.resets + 1,
            ..Self::default()
        };
    }

    /// Forgets what the player earned (recovery, at a reset found on OUTPUT: the values
    /// were folded again already).
    fn clear_earns(&mut self) {
        self.earned.clear();
        self.repeats.clear();
        self.pending.clear();
        self.period_earns.clear();
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

    /// A periodic stat's value in period `key`, if any event set it.
    pub fn period_value(&self, idx: StatIdx, key: PeriodKey) -> Option<Value> {
        self.periods
            .iter()
            .find(|(s, k, _)| *s == idx && *k == key)
            .map(|(_, _, v)| *v)
    }

    /// Whether period `key` of a periodic stat is older than every period kept while
    /// [`Period::KEPT`] are kept: an event of it can no longer count.
    pub(crate) fn period_closed(&self, idx: StatIdx, key: PeriodKey) -> bool {
        let (mut kept, mut older) = (0, true);
        for (_, k, _) in self.periods.iter().filter(|(s, _, _)| *s == idx) {
            kept += 1;
            older &= key < *k;
        }
        kept >= Period::KEPT && older
    }

    /// Sets a periodic stat's value in period `key`, keeping the last [`Period::KEPT`]
    /// periods of the stat.
    pub(crate) fn set_period_value(&mut self, idx: StatIdx, key: PeriodKey, value: Value) {
        match self
            .periods
            .binary_search_by(|(s, k, _)| (s.0, *k).cmp(&(idx.0, key)))
        {
            Ok(i) => self.periods[i].2 = value,
            Err(i) => self.periods.insert(i, (idx, key, value)),
        }
        let count = self.periods.iter().filter(|(s, _, _)| *s == idx).count();
        if count > Period::KEPT {
            // The stat's entries are contiguous and in period order: drop its oldest.
            if let Some(oldest) = self.periods.iter().position(|(s, _, _)| *s == idx) {
                self.periods.remove(oldest);
            }
        }
    }

    /// Whether the player earned a periodic achievement in period `key`.
    pub fn earned_in(&self, idx: AchIdx, key: PeriodKey) -> bool {
        self.period_earns.contains(&(idx, key))
    }

    /// Records an earn of a periodic achievement in period `key`, keeping the last
    /// [`Period::KEPT`] periods of it.
    pub(crate) fn record_period_earn(&mut self, idx: AchIdx, key: PeriodKey) {
        self.mark_earned(idx);
        if self.earned_in(idx, key) {
            return;
        }
        self.period_earns.push((idx, key));
        let mut mine: Vec<PeriodKey> = self
            .period_earns
            .iter()
            .filter(|(a, _)| *a == idx)
            .map(|(_, k)| *k)
            .collect();
        if mine.len() > Period::KEPT {
            mine.sort_unstable();
            let oldest = mine[0];
            self.period_earns.retain(|e| *e != (idx, oldest));
        }
    }

    /// How many times the player earned the achievement.
    pub fn times_earned(&self, idx: AchIdx) -> u32 {
        match self.repeats.iter().find(|r| r.ach == idx) {
            Some(r) => r.times,
            None => u32::from(self.has_earned(idx)),
        }
    }

    /// Whether the player's earns of the achievement are counted as a repeatable's.
    pub(crate) fn has_counts(&self, idx: AchIdx) -> bool {
        self.repeats.iter().any(|r| r.ach == idx)
    }

    /// Whether the achievement, repeatable as `repeat` says, may be earned again: below its
    /// `max`, and (unless `ignore_cooldown`) past its cooldown at `at`.
    pub(crate) fn may_earn_again(
        &self,
        idx: AchIdx,
        repeat: Repeat,
        at: Millis,
        ignore_cooldown: bool,
    ) -> bool {
        let times = self.times_earned(idx);
        if repeat.max.is_some_and(|max| times >= max) {
            return false;
        }
        let last = self.repeats.iter().find(|r| r.ach == idx);
        ignore_cooldown
            || last.is_none_or(|r| at >= r.last_at + i64::from(repeat.cooldown_secs) * 1_000)
    }

    /// The value of `stat` at the achievement's last earn, if it is repeatable and was
    /// earned: its `at_least` conditions count from there.
    pub(crate) fn baseline(&self, idx: AchIdx, stat: StatIdx) -> Option<Value> {
        let r = self.repeats.iter().find(|r| r.ach == idx)?;
        r.baseline.iter().find(|(s, _)| *s == stat).map(|(_, v)| *v)
    }

    /// Records an earn of a repeatable achievement: its number, time and the values its
    /// next earn counts from.
    pub(crate) fn record_earn(
        &mut self,
        idx: AchIdx,
        occurrence: u32,
        at: Millis,
        baseline: Vec<(StatIdx, Value)>,
    ) {
        self.mark_earned(idx);
        let state = RepeatState {
            ach: idx,
            times: occurrence,
            last_at: at,
            baseline,
        };
        match self.repeats.iter_mut().find(|r| r.ach == idx) {
            Some(r) if r.times >= occurrence => {}
            Some(r) => *r = state,
            None => self.repeats.push(state),
        }
    }

    /// Keeps an earn's rewards until the player claims them (once: an earn found again,
    /// by recovery, is not added twice).
    pub(crate) fn add_pending(&mut self, unlock_id: Uuid, ach: AchIdx, rewards: Rewards) {
        if !self.pending.iter().any(|p| p.unlock_id == unlock_id) {
            self.earned_pending(unlock_id, ach, rewards);
        }
    }

    /// Keeps the rewards of an earn just made (its id is new: no earn has it).
    pub(crate) fn earned_pending(&mut self, unlock_id: Uuid, ach: AchIdx, rewards: Rewards) {
        self.pending.push(PendingReward {
            unlock_id,
            ach,
            rewards,
        });
    }

    /// Takes the rewards waiting for a claim of `unlock_id`, if any wait.
    pub(crate) fn take_pending(&mut self, unlock_id: Uuid) -> Option<PendingReward> {
        let i = self.pending.iter().position(|p| p.unlock_id == unlock_id)?;
        Some(self.pending.remove(i))
    }

    /// Applies an earn found on OUTPUT (recovery): an `unlocked` output marks the
    /// achievement earned (a repeatable's earn with its number, time and baseline), a
    /// `reward` to claim waits, a `reward_claimed` no longer does. Returns whether it was an
    /// unlock; a `player_reset` forgets the earns before it. Outputs naming what `defs` does
    /// not know change nothing.
    pub fn restore_earn(&mut self, defs: &Definitions, output: &laurel_schemas::Output) -> bool {
        use laurel_schemas::Output;
        match output {
            Output::Unlocked(u) => {
                let Some(idx) = defs.achievement_idx(u.achievement_id.as_str()) else {
                    return false;
                };
                let entry = &defs.achievements[idx.get()];
                if u.period.is_some()
                    && let Some(key) = entry
                        .period
                        .as_ref()
                        .and_then(|p| defs.period_key(p, u.unlocked_at))
                {
                    self.record_period_earn(idx, key);
                    return true;
                }
                // A repeatable's earn carries what the next counts from (an earn of it
                // before it was repeatable does not, and is counted as it is live).
                if u.occurrence > 1 || !u.baseline.is_empty() {
                    let baseline = u
                        .baseline
                        .iter()
                        .filter_map(|(name, v)| Some((defs.stat_idx(name.as_str())?, *v)))
                        .collect();
                    self.record_earn(idx, u.occurrence, u.unlocked_at, baseline);
                } else {
                    self.mark_earned(idx);
                }
                true
            }
            Output::Reward(r) if r.claim => {
                if let Some(idx) = defs.achievement_idx(r.achievement_id.as_str()) {
                    self.add_pending(r.unlock_id, idx, r.rewards.clone());
                }
                false
            }
            Output::RewardClaimed(c) => {
                self.take_pending(c.unlock_id);
                false
            }
            // Earns before a reset are gone; those after come next on OUTPUT.
            Output::PlayerReset(_) => {
                self.clear_earns();
                false
            }
            _ => false,
        }
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
        let repeats = self
            .repeats
            .iter()
            .map(|r| RepeatSnapshot {
                id: defs.achievements[r.ach.get()].id.clone(),
                times: r.times,
                last_at: r.last_at,
                baseline: r
                    .baseline
                    .iter()
                    .map(|(s, v)| (defs.stats[s.get()].name.clone(), *v))
                    .collect(),
            })
            .collect();
        let pending = self
            .pending
            .iter()
            .map(|p| PendingSnapshot {
                unlock_id: p.unlock_id,
                id: defs.achievements[p.ach.get()].id.clone(),
                rewards: p.rewards.clone(),
            })
            .collect();
        let periods = self
            .periods
            .iter()
            .map(|(s, k, v)| (defs.stats[s.get()].name.clone(), *k, *v))
            .collect();
        let period_earns = self
            .period_earns
            .iter()
            .map(|(a, k)| (defs.achievements[a.get()].id.clone(), *k))
            .collect();
        PlayerSnapshot {
            stats,
            earned,
            repeats,
            pending,
            periods,
            period_earns,
            resets: self.resets,
        }
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
        let ach = |id: &AchievementId| {
            defs.achievement_idx(id.as_str())
                .ok_or_else(|| id.to_string())
        };
        for r in &snapshot.repeats {
            let baseline = r
                .baseline
                .iter()
                .map(|(name, v)| {
                    Ok((
                        defs.stat_idx(name.as_str())
                            .ok_or_else(|| name.to_string())?,
                        *v,
                    ))
                })
                .collect::<Result<_, String>>()?;
            state.record_earn(ach(&r.id)?, r.times, r.last_at, baseline);
        }
        for p in &snapshot.pending {
            state.add_pending(p.unlock_id, ach(&p.id)?, p.rewards.clone());
        }
        for (name, key, value) in &snapshot.periods {
            let idx = defs
                .stat_idx(name.as_str())
                .ok_or_else(|| name.to_string())?;
            state.set_period_value(idx, *key, *value);
        }
        for (id, key) in &snapshot.period_earns {
            state.record_period_earn(ach(id)?, *key);
        }
        state.resets = snapshot.resets;
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
        for r in &snapshot.repeats {
            let baseline = r
                .baseline
                .iter()
                .map(|(name, v)| (defs.intern_stat_name(name), *v))
                .collect();
            let idx = defs.intern_achievement_id(&r.id);
            state.record_earn(idx, r.times, r.last_at, baseline);
        }
        for p in &snapshot.pending {
            let idx = defs.intern_achievement_id(&p.id);
            state.add_pending(p.unlock_id, idx, p.rewards.clone());
        }
        for (name, key, value) in &snapshot.periods {
            state.set_period_value(defs.intern_stat_name(name), *key, *value);
        }
        for (id, key) in &snapshot.period_earns {
            state.record_period_earn(defs.intern_achievement_id(id), *key);
        }
        state.resets = snapshot.resets;
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
    /// Repeatable achievements earned at least once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<RepeatSnapshot>,
    /// Earns whose rewards wait for the player's claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingSnapshot>,
    /// Periodic stats' values: stat, period, value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub periods: Vec<(StatName, PeriodKey, Value)>,
    /// Periodic achievements' earns: achievement, period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub period_earns: Vec<(AchievementId, PeriodKey)>,
    /// How many times the player was reset.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resets: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A repeatable achievement's standing, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatSnapshot {
    /// The achievement.
    pub id: AchievementId,
    /// How many times it was earned.
    pub times: u32,
    /// When it was last earned.
    pub last_at: Millis,
    /// The condition stats' values at the last earn.
    pub baseline: Vec<(StatName, Value)>,
}

/// Rewards waiting for a claim, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSnapshot {
    /// The earn.
    pub unlock_id: Uuid,
    /// Its achievement.
    pub id: AchievementId,
    /// The rewards as they were when earned.
    pub rewards: Rewards,
}
