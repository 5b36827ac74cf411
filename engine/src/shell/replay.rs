//! Replay: the STATS history folded again against other definitions, and how the outcome
//! differs from what players hold (`laurel replay`).
//!
//! A partition at a time: its players' states are built in memory from the beginning of
//! STATS up to a given position, with the pure fold and the replayed definitions; what the
//! fold earns is compared with what the players hold. Nothing is written: the caller decides
//! whether to grant the gains (as grants on STATS, so that the engine, which owns each
//! player's earned set, unlocks each exactly once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use laurel_log::{Log, StreamKind};
use laurel_schemas::{
    AchievementDiff, AchievementId, Millis, Output, PlayerId, ReplayReport, StatsEntry, decode,
};
use rustc_hash::FxHashMap;

use super::error::ShellError;
use super::recover::read_batches;
use crate::defs::{AchIdx, Definitions};
use crate::fold::Fold;
use crate::state::PlayerState;

/// An achievement a player holds now, with the points it awarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// The achievement.
    pub achievement: String,
    /// The points its unlock awarded.
    pub points: u32,
    /// How many times it was earned (a repeatable's earns; 1 otherwise).
    pub times: u32,
    /// The periods it was earned in, for a periodic achievement.
    pub periods: Vec<String>,
}

/// An achievement the replayed history earns a player who does not hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gain {
    /// The player.
    pub player: PlayerId,
    /// The achievement.
    pub achievement: AchievementId,
    /// When the history earned it.
    pub earned_at: Millis,
    /// Which earn: a repeatable's occurrence (1 for the first).
    pub occurrence: u32,
    /// The period of the earn, for a periodic achievement.
    pub period: Option<String>,
}

/// One player, folded again.
#[derive(Default)]
struct Refolded {
    state: PlayerState,
    /// What the fold unlocked, in order: the achievement, when, which occurrence, in
    /// which period.
    earned: Vec<(AchIdx, Millis, u32, Option<String>)>,
}

#[derive(Default)]
struct Tally {
    gain: u64,
    earns: u64,
    rewards: laurel_schemas::Rewards,
    lose: u64,
    gain_sample: BTreeSet<PlayerId>,
    lose_sample: BTreeSet<PlayerId>,
    points_gained: u64,
    points_at_stake: u64,
}

/// Keeps the `n` smallest.
fn sample(set: &mut BTreeSet<PlayerId>, player: &PlayerId, n: usize) {
    if set.len() < n || set.last().is_some_and(|last| player < last) {
        set.insert(player.clone());
        if set.len() > n {
            set.pop_last();
        }
    }
}

/// A replay in progress: partitions are folded one after the other into it.
pub struct Replay<'a> {
    defs: &'a Definitions,
    samples: usize,
    consumer: String,
    tallies: BTreeMap<String, Tally>,
    gains: Vec<Gain>,
    events: u64,
    players: u64,
}

impl<'a> Replay<'a> {
    /// A replay against `defs`, naming at most `samples` players per achievement, reading
    /// with the consumer name `consumer`.
    pub fn new(defs: &'a Definitions, samples: usize, consumer: &str) -> Self {
        Self {
            defs,
            samples,
            consumer: consumer.to_string(),
            tallies: BTreeMap::new(),
            gains: Vec::new(),
            events: 0,
            players: 0,
        }
    }

    /// Folds `partition`'s STATS up to `upto` (inclusive) and compares the outcome with
    /// `holdings`, what its players hold. `read` counts the STATS entries read, as they are.
    pub async fn partition(
        &mut self,
        log: &Log,
        partition: u32,
        upto: u64,
        mut holdings: FxHashMap<PlayerId, Vec<Holding>>,
        read: &AtomicU64,
    ) -> Result<(), ShellError> {
        let fold = Fold::live(self.defs);
        // The community goals this partition's history reached, as it went.
        let mut reached: Vec<crate::defs::AchIdx> = Vec::new();
        let mut players: FxHashMap<PlayerId, Refolded> = FxHashMap::default();
        let mut scratch = Vec::new();
        let mut events = 0u64;
        read_batches(
            log,
            StreamKind::Stats,
            partition,
            &self.consumer,
            0,
            upto,
            |records| {
                // A batch is CPU work for a while: other tasks of this thread move meanwhile.
                laurel_runtime::block_here(|| {
                    for record in records {
                        let entry = decode::<StatsEntry>(&record.payload).map_err(|e| {
                            ShellError::undecodable(StreamKind::Stats, partition, record.seq, e)
                        })?;
                        for msg in entry.into_messages() {
                            let Some(id) = msg.player_id() else {
                                // A community goal reached in this partition: its players
                                // whose contribution is enough earn it then, as live.
                                if let laurel_schemas::StatsMessage::CommunityReached(c) = &msg
                                    && let Some(goal) =
                                        self.defs.achievement_idx(c.achievement_id.as_str())
                                    && !reached.contains(&goal)
                                {
                                    reached.push(goal);
                                    let fold = fold.with_reached(&reached);
                                    for (id, player) in players.iter_mut() {
                                        fold.community_reached(
                                            &mut player.state,
                                            id,
                                            goal,
                                            c.event_id,
                                            c.received_at,
                                            &mut scratch,
                                        );
                                        for output in scratch.drain(..) {
                                            if let Output::Unlocked(u) = output
                                                && let Some(idx) = self
                                                    .defs
                                                    .achievement_idx(u.achievement_id.as_str())
                                            {
                                                player.earned.push((
                                                    idx,
                                                    u.unlocked_at,
                                                    u.occurrence,
                                                    u.period,
                                                ));
                                            }
                                        }
                                    }
                                }
                                continue;
                            };
                            let player = match players.get_mut(id) {
                                Some(player) => player,
                                None => players.entry(id.clone()).or_default(),
                            };
                            let fold = fold.with_reached(&reached);
                            fold.apply(&mut player.state, &msg, &mut scratch);
                            for output in scratch.drain(..) {
                                // A reset player's earns before it are gone.
                                if let Output::PlayerReset(_) = output {
                                    player.earned.clear();
                                }
                                if let Output::Unlocked(u) = output
                                    && let Some(idx) =
                                        self.defs.achievement_idx(u.achievement_id.as_str())
                                {
                                    player.earned.push((
                                        idx,
                                        u.unlocked_at,
                                        u.occurrence,
                                        u.period,
                                    ));
                                }
                            }
                            events += 1;
                        }
                    }
                    Ok::<_, ShellError>(())
                })?;
                read.fetch_add(records.len() as u64, Ordering::Relaxed);
                Ok(())
            },
        )
        .await?;
        self.events += events;
        for (player_id, player) in players {
            let held = holdings.remove(&player_id).unwrap_or_default();
            self.compare(&player_id, Some(&player), &held);
        }
        // Holders with no history up to `upto` (their first event came later).
        for (player_id, held) in holdings {
            self.compare(&player_id, None, &held);
        }
        Ok(())
    }

    fn compare(&mut self, player_id: &PlayerId, refolded: Option<&Refolded>, held: &[Holding]) {
        self.players += 1;
        let holding = |id: &str| held.iter().find(|h| h.achievement == id);
        // Achievements this player gains at least one earn of.
        let mut gaining: Vec<AchIdx> = Vec::new();
        for (idx, earned_at, occurrence, period) in refolded.map_or(&[][..], |r| &r.earned) {
            let entry = &self.defs.achievements[idx.get()];
            let Some(def) = entry.live() else { continue };
            let held = holding(entry.id.as_str());
            // An earn is held when the player holds that period's earn, or as many earns.
            let already = match (period, held) {
                (_, None) => false,
                (Some(period), Some(h)) => h.periods.contains(period),
                (None, Some(h)) => *occurrence <= h.times,
            };
            if already {
                continue;
            }
            let tally = self.tallies.entry(entry.id.to_string()).or_default();
            if !gaining.contains(idx) {
                gaining.push(*idx);
                tally.gain += 1;
                sample(&mut tally.gain_sample, player_id, self.samples);
            }
            tally.earns += 1;
            tally.points_gained += u64::from(def.points);
            tally.rewards.clone_from(&def.rewards);
            self.gains.push(Gain {
                player: player_id.clone(),
                achievement: entry.id.clone(),
                earned_at: *earned_at,
                occurrence: *occurrence,
                period: period.clone(),
            });
        }
        for holding in held {
            // Archived or unknown achievements are not the replay's to judge.
            let Some(idx) = self.defs.achievement_idx(&holding.achievement) else {
                continue;
            };
            if self.defs.achievements[idx.get()].live().is_none() {
                continue;
            }
            if refolded.is_some_and(|r| r.state.has_earned(idx)) {
                continue;
            }
            let tally = self.tallies.entry(holding.achievement.clone()).or_default();
            tally.lose += 1;
            tally.points_at_stake += u64::from(holding.points);
            sample(&mut tally.lose_sample, player_id, self.samples);
        }
    }

    /// The report (without what an apply adds) and the gains, in player order.
    pub fn finish(mut self) -> (ReplayReport, Vec<Gain>) {
        let achievements: Vec<AchievementDiff> = self
            .tallies
            .into_iter()
            .map(|(id, t)| AchievementDiff {
                title: self
                    .defs
                    .achievement(&id)
                    .map(|d| d.title.clone())
                    .unwrap_or_default(),
                id,
                gain: t.gain,
                lose: t.lose,
                gain_sample: t.gain_sample.into_iter().collect(),
                lose_sample: t.lose_sample.into_iter().collect(),
                points_gained: t.points_gained,
                points_at_stake: t.points_at_stake,
                earns: t.earns,
                rewards: t.rewards,
            })
            .collect();
        self.gains
            .sort_by(|a, b| (&a.player, a.earned_at).cmp(&(&b.player, b.earned_at)));
        let report = ReplayReport {
            events: self.events,
            players: self.players,
            gained: achievements.iter().map(|a| a.gain).sum(),
            lost: achievements.iter().map(|a| a.lose).sum(),
            points_gained: achievements.iter().map(|a| a.points_gained).sum(),
            achievements,
            ..ReplayReport::default()
        };
        (report, self.gains)
    }
}
