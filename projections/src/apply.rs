//! How log entries change the views: a fold into an overlay of one tree, committed as one
//! atomic batch with the position it reaches.

use std::collections::{BTreeMap, HashMap};

use laurel_schemas::{Millis, Output, Reason, Rejected, StatChanged, Value, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys;
use crate::staged::Staged;

/// An earned achievement, as a player's view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Earned {
    /// The unlock's deterministic id.
    pub unlock_id: Uuid,
    /// When it was earned (server time of the causing event).
    pub unlocked_at: Millis,
    /// Points it awarded.
    pub points: u32,
    /// The definition version that unlocked.
    pub definition_version: u64,
    /// The stat event, grant or definition change that caused it (absent in views written
    /// before it was kept).
    #[serde(default)]
    pub caused_by: Option<Uuid>,
    /// How many times it was earned (a repeatable's earns; 1 otherwise).
    #[serde(default = "one")]
    pub times: u32,
    /// When it was last earned (a repeatable's latest earn; absent: `unlocked_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_unlocked_at: Option<Millis>,
    /// For a repeatable, the condition stats' values at the last earn: progress towards the
    /// next counts from them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baseline: BTreeMap<String, Value>,
    /// For a periodic achievement, the periods it was earned in (the last
    /// [`laurel_schemas::Period::KEPT`]) and when.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub periods: BTreeMap<String, Millis>,
}

fn one() -> u32 {
    1
}

/// One earn's rewards, as a player's view holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardRecord {
    /// The earn that pays them.
    pub unlock_id: Uuid,
    /// Its achievement.
    pub achievement_id: String,
    /// Which earn of the achievement.
    pub occurrence: u32,
    /// The rewards as defined when earned.
    pub rewards: laurel_schemas::Rewards,
    /// Whether the player claims them.
    pub claim: bool,
    /// When they were earned.
    pub earned_at: Millis,
    /// When the player claimed them (a reward to claim, once claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Millis>,
}

impl RewardRecord {
    /// Whether it still waits for the player's claim.
    pub fn pending(&self) -> bool {
        self.claim && self.claimed_at.is_none()
    }
}

/// Settled rewards (paid on earn, or claimed) a player's view keeps, besides every reward
/// still waiting for a claim.
pub const RECENT_REWARDS: usize = 50;

/// An event the engine refused, as a player's refusals record holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// The refused event (or grant).
    pub event_id: Uuid,
    /// The stat it reported (absent for a grant).
    pub stat: Option<String>,
    /// The value it reported (absent for a grant).
    pub value: Option<Value>,
    /// Why.
    pub reason: Reason,
    /// When the gateway received it.
    pub at: Millis,
}

/// Refusals a player's record keeps, newest first.
pub const RECENT_REFUSALS: usize = 20;

/// A player's most recent refusals, newest first.
pub(crate) type RefusalsRecord = Vec<Refusal>;

/// Reads through a batch's writes to the view; stages them with the position they reach.
pub(crate) struct Overlay<'a> {
    view: &'a Staged,
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Players' stats records touched by the batch, decoded once and encoded at commit.
    stats: HashMap<String, StatsRecord>,
    /// Players' earned records touched by the batch (only unlocks touch them).
    earned: HashMap<String, EarnedRecord>,
    /// Players' refusals records touched by the batch (only refusals touch them).
    refusals: HashMap<String, RefusalsRecord>,
    /// Players' periodic stats records touched by the batch.
    periods: HashMap<String, PeriodsRecord>,
}

/// A player's stats, as the view stores them.
pub(crate) type StatsRecord = BTreeMap<String, Value>;

/// A player's periodic stats, as the view stores them: stat, then period label, to value.
pub(crate) type PeriodsRecord = BTreeMap<String, BTreeMap<String, Value>>;

/// A player's earned achievements and points, as the view stores them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct EarnedRecord {
    pub(crate) earned: BTreeMap<String, Earned>,
    pub(crate) points_total: u64,
    /// Rewards in the order earned: every one waiting for a claim, and the last
    /// [`RECENT_REWARDS`] settled.
    pub(crate) rewards: Vec<RewardRecord>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(view: &'a Staged) -> Self {
        Self {
            view,
            writes: BTreeMap::new(),
            stats: HashMap::new(),
            earned: HashMap::new(),
            refusals: HashMap::new(),
            periods: HashMap::new(),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, laurel_derived::StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None => self.view.get(key),
        }
    }

    fn get_u64(&self, key: &[u8]) -> Result<u64, laurel_derived::StoreError> {
        Ok(keys::u64_of(self.get(key)?.as_deref()))
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, value);
    }

    fn add(&mut self, key: Vec<u8>, delta: u64) -> Result<(), laurel_derived::StoreError> {
        let value = self.get_u64(&key)? + delta;
        self.put(key, value.to_be_bytes().to_vec());
        Ok(())
    }

    /// Stages everything with the position reached (written to disk together, later);
    /// returns how many keys the view has staged.
    pub(crate) fn commit(mut self, position: u64) -> usize {
        for (player, record) in &self.stats {
            self.writes.insert(keys::stats(player), encode(record));
        }
        for (player, record) in &self.earned {
            self.writes.insert(keys::earned(player), encode(record));
        }
        for (player, record) in &self.refusals {
            self.writes.insert(keys::refusals(player), encode(record));
        }
        for (player, record) in &self.periods {
            self.writes.insert(keys::periods(player), encode(record));
        }
        self.writes
            .insert(keys::POSITION.to_vec(), position.to_be_bytes().to_vec());
        self.view.stage(self.writes)
    }

    /// Whether the player has a record of `key`'s kind, in this batch or stored.
    fn stored(&self, key: &[u8]) -> Result<bool, laurel_derived::StoreError> {
        Ok(self.view.get(key)?.is_some())
    }

    /// The player's stats record as the batch has it so far; a player seen for the first
    /// time is counted.
    fn stats_of(&mut self, player: &str) -> Result<&mut StatsRecord, laurel_derived::StoreError> {
        if !self.stats.contains_key(player) {
            let record = match self.view.get(&keys::stats(player))? {
                Some(raw) => decode(&raw).unwrap_or_else(|e| {
                    tracing::error!(player, error = %e, "unreadable player stats; starting them again");
                    StatsRecord::default()
                }),
                None => {
                    if !self.earned.contains_key(player) && !self.stored(&keys::earned(player))? {
                        self.add(keys::PLAYERS.to_vec(), 1)?;
                    }
                    StatsRecord::default()
                }
            };
            self.stats.insert(player.to_string(), record);
        }
        Ok(self.stats.get_mut(player).expect("inserted above"))
    }

    /// The player's earned record as the batch has it so far; a player seen for the first
    /// time is counted.
    fn earned_of(&mut self, player: &str) -> Result<&mut EarnedRecord, laurel_derived::StoreError> {
        if !self.earned.contains_key(player) {
            let record = match self.view.get(&keys::earned(player))? {
                Some(raw) => decode(&raw).unwrap_or_else(|e| {
                    tracing::error!(player, error = %e, "unreadable player achievements; starting them again");
                    EarnedRecord::default()
                }),
                None => {
                    if !self.stats.contains_key(player) && !self.stored(&keys::stats(player))? {
                        self.add(keys::PLAYERS.to_vec(), 1)?;
                    }
                    EarnedRecord::default()
                }
            };
            self.earned.insert(player.to_string(), record);
        }
        Ok(self.earned.get_mut(player).expect("inserted above"))
    }

    /// Takes `delta` off a count (never below zero).
    fn sub(&mut self, key: Vec<u8>, delta: u64) -> Result<(), laurel_derived::StoreError> {
        let value = self.get_u64(&key)?.saturating_sub(delta);
        self.put(key, value.to_be_bytes().to_vec());
        Ok(())
    }

    /// A test player's reset: their stats, earns, rewards and refusals are gone, and what
    /// they had earned no longer counts toward rarity. They stay a player seen.
    fn reset(&mut self, player: &str) -> Result<(), laurel_derived::StoreError> {
        let seen = self.stats.contains_key(player)
            || self.earned.contains_key(player)
            || self.stored(&keys::stats(player))?
            || self.stored(&keys::earned(player))?;
        if !seen {
            return Ok(());
        }
        let record = std::mem::take(self.earned_of(player)?);
        for (id, earned) in &record.earned {
            self.sub(keys::rarity(id), 1)?;
            self.sub(keys::rarity_day(id, &day_of(earned.unlocked_at)), 1)?;
            for period in earned.periods.keys() {
                self.sub(keys::period_rarity(id, period), 1)?;
            }
        }
        self.stats
            .insert(player.to_string(), StatsRecord::default());
        self.periods
            .insert(player.to_string(), PeriodsRecord::default());
        self.refusals
            .insert(player.to_string(), RefusalsRecord::default());
        Ok(())
    }

    pub(crate) fn apply_output(
        &mut self,
        output: &Output,
    ) -> Result<(), laurel_derived::StoreError> {
        match output {
            Output::PlayerReset(r) => self.reset(r.player_id.as_str())?,
            Output::Stat(s) => self.stat(s)?,
            Output::Unlocked(u) => {
                let record = self.earned_of(u.player_id.as_str())?;
                let id = u.achievement_id.as_str();
                let baseline = || {
                    u.baseline
                        .iter()
                        .map(|(s, v)| (s.to_string(), *v))
                        .collect()
                };
                if let Some(period) = &u.period {
                    return self.period_earned(u, period);
                }
                match record.earned.get_mut(id) {
                    None => {
                        let earned = Earned {
                            unlock_id: u.unlock_id,
                            unlocked_at: u.unlocked_at,
                            points: u.points,
                            definition_version: u.definition_version,
                            caused_by: Some(u.caused_by),
                            times: u.occurrence,
                            last_unlocked_at: None,
                            baseline: baseline(),
                            periods: BTreeMap::new(),
                        };
                        record.earned.insert(id.to_string(), earned);
                        record.points_total += u64::from(u.points);
                        self.first_earned(id, u.unlocked_at)?;
                    }
                    // A repeatable's next earn (earns come in order: a number not above
                    // the count is one applied before).
                    Some(earned) if u.occurrence > earned.times => {
                        earned.times = u.occurrence;
                        earned.last_unlocked_at = Some(u.unlocked_at);
                        earned.baseline = baseline();
                        record.points_total += u64::from(u.points);
                    }
                    Some(_) => {}
                }
            }
            Output::Reward(r) => {
                let record = self.earned_of(r.player_id.as_str())?;
                if !record.rewards.iter().any(|x| x.unlock_id == r.unlock_id) {
                    record.rewards.push(RewardRecord {
                        unlock_id: r.unlock_id,
                        achievement_id: r.achievement_id.to_string(),
                        occurrence: r.occurrence,
                        rewards: r.rewards.clone(),
                        claim: r.claim,
                        earned_at: r.at,
                        claimed_at: None,
                    });
                    trim_settled(&mut record.rewards);
                }
            }
            Output::RewardClaimed(c) => {
                let record = self.earned_of(c.player_id.as_str())?;
                if let Some(reward) = record
                    .rewards
                    .iter_mut()
                    .find(|x| x.unlock_id == c.unlock_id && x.claimed_at.is_none())
                {
                    reward.claimed_at = Some(c.at);
                    trim_settled(&mut record.rewards);
                }
            }
            Output::Checkpoint(c) => self.checkpoint(c.stats_seq)?,
            Output::Changes(c) => {
                for s in &c.stats {
                    self.stat(s)?;
                }
                for r in &c.rejected {
                    self.refused(r)?;
                }
                // Shares are absolute: the batch folded again writes the same.
                for share in &c.community {
                    self.put(
                        keys::community_share(share.stat.as_str()),
                        encode(&share.share),
                    );
                }
                for goal in &c.reached {
                    self.put(keys::community_reached(goal.as_str()), vec![1]);
                }
                if c.complete {
                    self.checkpoint(c.stats_seq)?;
                }
            }
            Output::Rejected(r) => self.refused(r)?,
            // Progress is derived at read time from stats and definitions.
            Output::Progress(_) => {}
        }
        Ok(())
    }

    /// Counts a refusal by reason and keeps it among the player's most recent.
    fn refused(&mut self, r: &Rejected) -> Result<(), laurel_derived::StoreError> {
        self.add(keys::refusal_count(r.reason.code()), 1)?;
        if let Some(stat) = &r.stat {
            self.add(keys::stat_refusal_count(stat.as_str(), r.reason.code()), 1)?;
        }
        let player = r.player_id.as_str();
        if !self.refusals.contains_key(player) {
            let record = match self.view.get(&keys::refusals(player))? {
                Some(raw) => decode(&raw).unwrap_or_else(|e| {
                    tracing::error!(player, error = %e, "unreadable player refusals; starting them again");
                    RefusalsRecord::default()
                }),
                None => RefusalsRecord::default(),
            };
            self.refusals.insert(player.to_string(), record);
        }
        let record = self.refusals.get_mut(player).expect("inserted above");
        record.insert(
            0,
            Refusal {
                event_id: r.event_id,
                stat: r.stat.as_ref().map(|s| s.to_string()),
                value: r.value,
                reason: r.reason.clone(),
                at: r.at,
            },
        );
        record.truncate(RECENT_REFUSALS);
        Ok(())
    }

    fn stat(&mut self, s: &StatChanged) -> Result<(), laurel_derived::StoreError> {
        if let Some(period) = &s.period {
            return self.period_stat(s, period);
        }
        let record = self.stats_of(s.player_id.as_str())?;
        record.insert(s.stat.as_str().to_string(), s.value);
        Ok(())
    }

    /// A periodic stat's value in a period: kept with the stat's last periods.
    fn period_stat(
        &mut self,
        s: &StatChanged,
        period: &str,
    ) -> Result<(), laurel_derived::StoreError> {
        let player = s.player_id.as_str();
        // The player is seen (counted) as for any stat.
        self.stats_of(player)?;
        if !self.periods.contains_key(player) {
            let record = match self.view.get(&keys::periods(player))? {
                Some(raw) => decode(&raw).unwrap_or_else(|e| {
                    tracing::error!(player, error = %e, "unreadable player periods; starting them again");
                    PeriodsRecord::default()
                }),
                None => PeriodsRecord::default(),
            };
            self.periods.insert(player.to_string(), record);
        }
        let record = self.periods.get_mut(player).expect("inserted above");
        let values = record.entry(s.stat.as_str().to_string()).or_default();
        values.insert(period.to_string(), s.value);
        // Labels of one kind sort as their periods: drop the oldest past what is kept.
        while values.len() > laurel_schemas::Period::KEPT {
            values.pop_first();
        }
        Ok(())
    }

    /// A periodic achievement earned in a period: points and the period's rarity count per
    /// period; the achievement's own rarity counts the player once.
    fn period_earned(
        &mut self,
        u: &laurel_schemas::Unlocked,
        period: &str,
    ) -> Result<(), laurel_derived::StoreError> {
        let id = u.achievement_id.as_str();
        let record = self.earned_of(u.player_id.as_str())?;
        let first = !record.earned.contains_key(id);
        let earned = record
            .earned
            .entry(id.to_string())
            .or_insert_with(|| Earned {
                unlock_id: u.unlock_id,
                unlocked_at: u.unlocked_at,
                points: u.points,
                definition_version: u.definition_version,
                caused_by: Some(u.caused_by),
                times: 0,
                last_unlocked_at: None,
                baseline: BTreeMap::new(),
                periods: BTreeMap::new(),
            });
        if earned.periods.contains_key(period) {
            return Ok(());
        }
        earned.periods.insert(period.to_string(), u.unlocked_at);
        while earned.periods.len() > laurel_schemas::Period::KEPT {
            earned.periods.pop_first();
        }
        earned.times += 1;
        earned.last_unlocked_at = Some(u.unlocked_at);
        record.points_total += u64::from(u.points);
        if first {
            self.first_earned(id, u.unlocked_at)?;
        }
        self.add(keys::period_rarity(id, period), 1)
    }

    /// Counts a player's first earn of `id`, overall and on its UTC day.
    fn first_earned(&mut self, id: &str, at: Millis) -> Result<(), laurel_derived::StoreError> {
        self.add(keys::rarity(id), 1)?;
        self.add(keys::rarity_day(id, &day_of(at)), 1)
    }

    fn checkpoint(&mut self, stats_seq: u64) -> Result<(), laurel_derived::StoreError> {
        let seq = self.get_u64(keys::CHECKPOINT)?.max(stats_seq);
        self.put(keys::CHECKPOINT.to_vec(), seq.to_be_bytes().to_vec());
        Ok(())
    }
}

/// Drops the oldest settled rewards past [`RECENT_REWARDS`]; rewards waiting for a claim stay.
fn trim_settled(rewards: &mut Vec<RewardRecord>) {
    let mut extra = rewards
        .iter()
        .filter(|r| !r.pending())
        .count()
        .saturating_sub(RECENT_REWARDS);
    rewards.retain(|r| {
        if extra > 0 && !r.pending() {
            extra -= 1;
            return false;
        }
        true
    });
}

/// The UTC day of `at`, as `YYYY-MM-DD`.
pub(crate) fn day_of(at: Millis) -> String {
    let daily = laurel_schemas::Period::Daily;
    daily.label(daily.key(at, None).unwrap_or_default())
}
