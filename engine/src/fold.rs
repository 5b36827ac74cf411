//! The evaluation fold: `(player state, definitions, event) -> (player state', outputs)`.
//!
//! A fold emits `stat`, `unlocked` and `rejected` outputs per event. `progress` is derived
//! once per batch: [`coalesce`](crate::coalesce) keeps the last `stat` output per player
//! stat, and [`Fold::progress`] expands each into the conditions it moves.
//!
//! Pure and deterministic: no I/O, no clock. Time is the event's time as stored (the
//! trusted `occurred_at`, else the server's `received_at`; a definition change's `at`), so
//! replaying the same events against the same definitions gives the same outputs.
//!
//! A repeatable achievement is earned again once it may be (below its `max`, past its
//! cooldown) and its `at_least` conditions hold counted from the stat values at the last
//! earn; `at_most` conditions read the values as they are. Each earn is its own `unlocked`
//! output ([`earn_id`] of its occurrence), and, when the achievement has rewards, its own
//! `reward` output keyed by the same id.

use laurel_schemas::{
    Aggregation, CauseKind, Claim, Grant, Millis, Output, Period, PeriodKey, PlayerId, PlayerReset,
    Progress, Reason, Rejected, RewardClaimed, RewardEarned, SchemaVersion, StatChanged, StatEvent,
    StatsMessage, Threshold, Unlocked, Value, after_resets, earn_id, period_earn_id,
};
use uuid::Uuid;

use crate::defs::{AchEntry, AchIdx, Definitions, StatIdx, check_report};
use crate::state::PlayerState;

/// The facts a fold needs besides the event: the definitions, and whether this is a replay.
#[derive(Debug, Clone, Copy)]
pub struct Fold<'a> {
    /// The definitions in force.
    pub defs: &'a Definitions,
    /// Whether outputs are emitted by a replay rather than live play.
    pub replay: bool,
    /// Whether achievements are evaluated. Without it a fold only moves values: recovery
    /// folds events that were folded before, perhaps under other definitions, and what they
    /// unlocked then is on OUTPUT, which alone says what was earned.
    pub unlocks: bool,
    /// The community goals reached, as the partition knows them: a goal unlocks for a
    /// player only once reached.
    pub reached: &'a [AchIdx],
}

/// The message a refusal is about.
#[derive(Clone, Copy)]
enum Refused<'m> {
    Stat(&'m StatEvent),
    Grant(&'m Grant),
}

/// What caused an evaluation: carried into any unlock it produces.
#[derive(Debug, Clone, Copy)]
struct Cause {
    id: Uuid,
    kind: CauseKind,
    at: Millis,
}

impl<'a> Fold<'a> {
    /// A live fold against `defs`.
    pub fn live(defs: &'a Definitions) -> Self {
        Self {
            defs,
            replay: false,
            unlocks: true,
            reached: &[],
        }
    }

    /// This fold, knowing that the community goals `reached` were reached.
    pub fn with_reached(self, reached: &'a [AchIdx]) -> Self {
        Self { reached, ..self }
    }

    /// A fold that moves stat values and unlocks nothing (recovery: see
    /// [`Fold::unlocks`]).
    pub fn values_only(defs: &'a Definitions) -> Self {
        Self {
            unlocks: false,
            ..Self::live(defs)
        }
    }

    /// Folds one STATS message into the player's state, appending its outputs.
    pub fn apply(&self, player: &mut PlayerState, msg: &StatsMessage, out: &mut Vec<Output>) {
        match msg {
            StatsMessage::Stat(event) => self.apply_stat(player, event, out),
            StatsMessage::Grant(grant) => self.apply_grant(player, grant, out),
            StatsMessage::Claim(claim) => self.apply_claim(player, claim, out),
            // A partition's message, not a player's: see [`Fold::community_reached`].
            StatsMessage::CommunityReached(_) => {}
            StatsMessage::Reset(reset) => {
                player.reset();
                out.push(Output::PlayerReset(PlayerReset {
                    v: SchemaVersion::CURRENT,
                    player_id: reset.player_id.clone(),
                    caused_by: reset.event_id,
                    resets: player.resets(),
                    at: reset.received_at,
                }));
            }
        }
    }

    /// Unlocks the community goal `ach` for the player, now that it was reached (`caused_by`
    /// the `community_reached` message, at `at`), if their contribution is enough. The fold
    /// must know the goal reached ([`Fold::with_reached`]).
    pub fn community_reached(
        &self,
        player: &mut PlayerState,
        player_id: &PlayerId,
        ach: AchIdx,
        caused_by: Uuid,
        at: Millis,
        out: &mut Vec<Output>,
    ) {
        let cause = Cause {
            id: caused_by,
            kind: CauseKind::Community,
            at,
        };
        self.try_unlock(player, player_id, ach, cause, out);
    }

    /// Pays out the rewards waiting for this claim, once: a claim of an earn with nothing
    /// waiting (claimed before, or not a claim's to make) changes nothing.
    fn apply_claim(&self, player: &mut PlayerState, c: &Claim, out: &mut Vec<Output>) {
        if !self.unlocks {
            return;
        }
        let Some(pending) = player.take_pending(c.unlock_id) else {
            return;
        };
        out.push(Output::RewardClaimed(RewardClaimed {
            v: SchemaVersion::CURRENT,
            unlock_id: pending.unlock_id,
            player_id: c.player_id.clone(),
            achievement_id: self.defs.achievements[pending.ach.get()].id.clone(),
            rewards: pending.rewards,
            caused_by: c.event_id,
            at: c.received_at,
        }));
    }

    fn reject(&self, msg: Refused<'_>, reason: Reason, out: &mut Vec<Output>) {
        let (event_id, player_id, at, stat, value) = match msg {
            Refused::Stat(e) => (
                e.event_id,
                &e.player_id,
                e.received_at,
                Some(e.stat.clone()),
                Some(e.value),
            ),
            Refused::Grant(g) => (g.event_id, &g.player_id, g.received_at, None, None),
        };
        out.push(Output::Rejected(Rejected {
            v: SchemaVersion::CURRENT,
            event_id,
            player_id: player_id.clone(),
            stat,
            value,
            reason,
            at,
        }));
    }

    fn apply_stat(&self, player: &mut PlayerState, e: &StatEvent, out: &mut Vec<Output>) {
        let defs = self.defs;
        let Some((idx, def)) = defs
            .stat_idx(e.stat.as_str())
            .and_then(|i| Some((i, defs.stats[i.get()].def.as_ref()?)))
        else {
            let reason = Reason::UnknownStat {
                stat: e.stat.to_string(),
            };
            return self.reject(Refused::Stat(e), reason, out);
        };
        let reported = match check_report(def, e.value, e.source) {
            Ok(v) => v,
            Err(reason) => return self.reject(Refused::Stat(e), reason, out),
        };
        // A periodic stat folds into the period of the event's time.
        let period = match &defs.stats[idx.get()].period {
            None => None,
            Some(p) => match defs.period_key(p, e.time()) {
                None => {
                    let season = match p {
                        Period::Season(id) => id.to_string(),
                        other => other.to_string(),
                    };
                    return self.reject(Refused::Stat(e), Reason::OutsideSeason { season }, out);
                }
                Some(key) if player.period_closed(idx, key) => {
                    let reason = Reason::PeriodClosed {
                        period: p.label(key),
                        kept: Period::KEPT,
                    };
                    return self.reject(Refused::Stat(e), reason, out);
                }
                Some(key) => Some((p, key)),
            },
        };
        let old = match period {
            None => player.stat(idx),
            Some((_, key)) => player.period_value(idx, key),
        };
        let new = clamp(
            aggregate(def.aggregation, old, reported),
            def.min_value,
            def.max_value,
        );
        if let Some(max_delta) = def.max_delta {
            let delta = new.distance(old.unwrap_or(Value::Int(0)));
            if delta > max_delta.as_f64() {
                let reason = Reason::DeltaTooLarge {
                    delta,
                    max_delta: max_delta.as_f64(),
                };
                return self.reject(Refused::Stat(e), reason, out);
            }
        }
        if old.is_some_and(|o| o == new) {
            return;
        }
        match period {
            None => player.set_stat(idx, new),
            Some((_, key)) => player.set_period_value(idx, key, new),
        }
        out.push(Output::Stat(StatChanged {
            v: SchemaVersion::CURRENT,
            player_id: e.player_id.clone(),
            stat: e.stat.clone(),
            value: new,
            previous: old,
            at: e.time(),
            period: period.map(|(p, key)| p.label(key)),
        }));
        let cause = Cause {
            id: e.event_id,
            kind: CauseKind::Stat,
            at: e.time(),
        };
        for &ach in &defs.by_stat[idx.get()] {
            self.try_unlock(player, &e.player_id, ach, cause, out);
        }
    }

    /// Appends the `progress` outputs a stat change means for the player: one per condition
    /// reading the stat, of each live achievement the player has not earned and that is
    /// available at the change's time (no progress towards what cannot be earned then),
    /// whose [`milestone`] the change moved. Called once per coalesced `stat` output, so a
    /// batch reports each condition at most once, and a condition at most five times ever.
    pub fn progress(&self, player: &PlayerState, change: &StatChanged, out: &mut Vec<Output>) {
        let Some(stat) = self.defs.stat_idx(change.stat.as_str()) else {
            return;
        };
        for &ach in &self.defs.by_stat[stat.get()] {
            let entry = &self.defs.achievements[ach.get()];
            let open = match (self.period_of(entry, change.at), entry.repeat) {
                (Some(key), _) => key.is_some_and(|key| !player.earned_in(ach, key)),
                (None, None) => !player.has_earned(ach),
                (None, Some(repeat)) => player.may_earn_again(ach, repeat, change.at, true),
            };
            if !open || entry.live().is_none() || !entry.available_at(change.at) {
                continue;
            }
            for (i, (s, threshold)) in entry.conditions.iter().enumerate() {
                if *s != stat {
                    continue;
                }
                // A repeatable's progress counts from its last earn (the baseline is the
                // same before and after this change: only an earn moves it).
                let toward = |v: Value| counted(entry, player, ach, stat, *threshold, v);
                let previous = change.previous.map(toward);
                let current = toward(change.value);
                if milestone(previous, *threshold) != milestone(Some(current), *threshold) {
                    out.push(Output::Progress(Progress {
                        v: SchemaVersion::CURRENT,
                        player_id: change.player_id.clone(),
                        achievement_id: entry.id.clone(),
                        condition: i as u32,
                        stat: change.stat.clone(),
                        current,
                        required: threshold.value(),
                        at: change.at,
                    }));
                }
            }
        }
    }

    fn apply_grant(&self, player: &mut PlayerState, g: &Grant, out: &mut Vec<Output>) {
        let defined = self
            .defs
            .achievement_idx(g.achievement_id.as_str())
            .and_then(|idx| Some((idx, self.defs.achievements[idx.get()].def.as_ref()?)));
        let id = g.achievement_id.to_string();
        match defined {
            None => self.reject(Refused::Grant(g), Reason::UnknownAchievement { id }, out),
            Some((_, def)) if def.archived => {
                self.reject(Refused::Grant(g), Reason::Archived { id }, out)
            }
            Some(_) if !self.unlocks => {}
            Some((idx, def)) => {
                let entry = &self.defs.achievements[idx.get()];
                let at = g
                    .earned_at
                    .filter(|_| g.replay.is_some())
                    .unwrap_or(g.received_at);
                let open = match (self.period_of(entry, at), def.repeat) {
                    // A periodic achievement is granted in the period of the grant's time.
                    (Some(None), _) => {
                        let season = entry
                            .period
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        return self.reject(
                            Refused::Grant(g),
                            Reason::OutsideSeason { season },
                            out,
                        );
                    }
                    (Some(Some(key)), _) => !player.earned_in(idx, key),
                    // A grant earns a repeatable achievement again (below its `max`,
                    // whatever its cooldown); a replay's grant the earn it names, while
                    // the player has fewer.
                    (None, Some(r)) if g.replay.is_none() => {
                        !player.has_earned(idx) || player.may_earn_again(idx, r, at, true)
                    }
                    (None, Some(r)) => match g.occurrence {
                        Some(n) => {
                            player.times_earned(idx) < n && player.may_earn_again(idx, r, at, true)
                        }
                        None => !player.has_earned(idx),
                    },
                    (None, _) => !player.has_earned(idx),
                };
                if !open {
                    return;
                }
                let cause = match g.replay {
                    None => Cause {
                        id: g.event_id,
                        kind: CauseKind::Grant,
                        at: g.received_at,
                    },
                    Some(replay) => Cause {
                        id: replay,
                        kind: CauseKind::Replay,
                        at: g.earned_at.unwrap_or(g.received_at),
                    },
                };
                self.unlock(player, &g.player_id, idx, cause, out);
            }
        }
    }

    /// For a periodic achievement, the period of an event at `at` (`Some(None)` outside its
    /// season); `None` for an achievement that is not periodic.
    fn period_of(&self, entry: &AchEntry, at: Millis) -> Option<Option<PeriodKey>> {
        let period = entry.period.as_ref()?;
        Some(self.defs.period_key(period, at))
    }

    /// The value a condition reads of `stat` at `at`: a periodic stat's in the period of
    /// `at`.
    fn value_at(&self, player: &PlayerState, stat: StatIdx, at: Millis) -> Option<Value> {
        match &self.defs.stats[stat.get()].period {
            None => player.stat(stat),
            Some(p) => {
                let key = self.defs.period_key(p, at)?;
                player.period_value(stat, key)
            }
        }
    }

    /// Unlocks `ach` for the player if their current state satisfies it now, as a definition
    /// change (`caused_by`, at `at`) demands: the player need not send another event.
    pub fn reevaluate(
        &self,
        player: &mut PlayerState,
        player_id: &PlayerId,
        ach: AchIdx,
        caused_by: Uuid,
        at: Millis,
        out: &mut Vec<Output>,
    ) {
        let cause = Cause {
            id: caused_by,
            kind: CauseKind::Definition,
            at,
        };
        self.try_unlock(player, player_id, ach, cause, out);
    }

    /// Unlocks `ach` if it is live, available at the cause's time, its requirements are
    /// earned and all its conditions hold.
    fn try_unlock(
        &self,
        player: &mut PlayerState,
        player_id: &PlayerId,
        ach: AchIdx,
        cause: Cause,
        out: &mut Vec<Output>,
    ) {
        if !self.unlocks {
            return;
        }
        let entry = &self.defs.achievements[ach.get()];
        let period = self.period_of(entry, cause.at);
        if let Some(key) = period {
            // A periodic achievement: once per period, none outside its season.
            if key.is_none_or(|key| player.earned_in(ach, key)) {
                return;
            }
        } else if entry.repeat.is_some() && player.has_earned(ach) && !player.has_counts(ach) {
            // Earned before it became repeatable: what that earn counted is not known, so
            // the next earn counts from the values now.
            let now = condition_values(entry, player);
            player.record_earn(ach, 1, cause.at, now);
            return;
        }
        let open = match (period, entry.repeat) {
            (Some(_), _) => true,
            (None, None) => !player.has_earned(ach),
            (None, Some(repeat)) => player.may_earn_again(ach, repeat, cause.at, false),
        };
        if !open
            || entry.live().is_none()
            || entry.conditions.is_empty()
            || !entry.available_at(cause.at)
        {
            return;
        }
        let requirements_met = entry.requires.iter().all(|r| player.has_earned(*r));
        if let Some(min) = entry.community {
            // A community goal: reached by the community, and the player's own
            // contribution (their value of the global stat) at least `min`.
            let contributed = entry
                .conditions
                .iter()
                .all(|(stat, _)| player.stat(*stat).is_some_and(|v| v.compare(min).is_ge()));
            if requirements_met && self.reached.contains(&ach) && contributed {
                self.unlock(player, player_id, ach, cause, out);
            }
            return;
        }
        let conditions_hold = entry.conditions.iter().all(|(stat, threshold)| {
            self.value_at(player, *stat, cause.at)
                .is_some_and(|v| threshold.holds(counted(entry, player, ach, *stat, *threshold, v)))
        });
        if requirements_met && conditions_hold {
            self.unlock(player, player_id, ach, cause, out);
        }
    }

    /// Marks `ach` earned, emits the unlock, and evaluates what required it.
    fn unlock(
        &self,
        player: &mut PlayerState,
        player_id: &PlayerId,
        ach: AchIdx,
        cause: Cause,
        out: &mut Vec<Output>,
    ) {
        let entry = &self.defs.achievements[ach.get()];
        let Some(def) = entry.def.as_ref() else {
            return;
        };
        let mut occurrence = player.times_earned(ach).saturating_add(1);
        let mut baseline = Vec::new();
        let mut period = None;
        if let Some(Some(key)) = self.period_of(entry, cause.at) {
            player.record_period_earn(ach, key);
            occurrence = 1;
            period = entry.period.as_ref().map(|p| p.label(key));
        } else if entry.repeat.is_some() {
            let at_earn = condition_values(entry, player);
            baseline = at_earn
                .iter()
                .map(|(s, v)| (self.defs.stats[s.get()].name.clone(), *v))
                .collect();
            player.record_earn(ach, occurrence, cause.at, at_earn);
        } else {
            player.mark_earned(ach);
        }
        // A reset player's earns are new unlocks: their ids count from the resets.
        let unlock_id = after_resets(
            match &period {
                Some(label) => period_earn_id(player_id, &entry.id, label),
                None => earn_id(player_id, &entry.id, occurrence),
            },
            player.resets(),
        );
        // The reward goes before its unlock: an unlock found on OUTPUT is never emitted
        // again (recovery marks it earned), so its reward must be there already; a reward
        // emitted again is deduplicated by its id (the unlock id).
        if !def.rewards.is_empty() {
            out.push(Output::Reward(RewardEarned {
                v: SchemaVersion::CURRENT,
                unlock_id,
                player_id: player_id.clone(),
                achievement_id: entry.id.clone(),
                occurrence,
                rewards: def.rewards.clone(),
                claim: def.claim,
                at: cause.at,
            }));
            if def.claim {
                player.earned_pending(unlock_id, ach, def.rewards.clone());
            }
        }
        out.push(Output::Unlocked(Unlocked {
            v: SchemaVersion::CURRENT,
            unlock_id,
            player_id: player_id.clone(),
            achievement_id: entry.id.clone(),
            definition_version: def.version,
            points: def.points,
            unlocked_at: cause.at,
            caused_by: cause.id,
            cause: cause.kind,
            replay: self.replay || cause.kind == CauseKind::Replay,
            occurrence,
            baseline,
            period,
        }));
        let cascade = Cause {
            kind: CauseKind::Requirement,
            ..cause
        };
        for &dependent in &self.defs.required_by[ach.get()] {
            self.try_unlock(player, player_id, dependent, cascade, out);
        }
    }
}

/// The current values of the stats `entry`'s conditions read, each once.
fn condition_values(entry: &AchEntry, player: &PlayerState) -> Vec<(StatIdx, Value)> {
    let mut values: Vec<(StatIdx, Value)> = Vec::new();
    for (stat, _) in &entry.conditions {
        if let Some(v) = player.stat(*stat)
            && !values.iter().any(|(s, _)| s == stat)
        {
            values.push((*stat, v));
        }
    }
    values
}

/// The value a condition of `entry` reads from `value` of `stat`: for a repeatable earned
/// before, an `at_least` condition counts from the value at the last earn.
fn counted(
    entry: &AchEntry,
    player: &PlayerState,
    ach: AchIdx,
    stat: StatIdx,
    threshold: Threshold,
    value: Value,
) -> Value {
    if entry.repeat.is_none() || !matches!(threshold, Threshold::AtLeast(_)) {
        return value;
    }
    match player.baseline(ach, stat) {
        Some(base) => value.minus(base),
        None => value,
    }
}

/// How far a value is towards a threshold, in quarters: 0 to 3 on the way, 4 when the
/// condition holds. `at_most` conditions (and non-positive `at_least` thresholds) have no
/// way, only 0 or 4. `progress` outputs are emitted when this changes.
pub fn milestone(value: Option<Value>, threshold: Threshold) -> u8 {
    let Some(value) = value else {
        return 0;
    };
    if threshold.holds(value) {
        return 4;
    }
    match threshold {
        Threshold::AtLeast(t) if t.as_f64() > 0.0 => {
            let fraction = value.as_f64() / t.as_f64();
            (fraction * 4.0).floor().clamp(0.0, 3.0) as u8
        }
        Threshold::AtLeast(_) | Threshold::AtMost(_) => 0,
    }
}

/// Folds a reported value into the current one.
pub fn aggregate(aggregation: Aggregation, old: Option<Value>, reported: Value) -> Value {
    let Some(old) = old else {
        return reported;
    };
    match aggregation {
        Aggregation::Sum => match (old, reported) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_add(b)),
            (a, b) => Value::Float(saturating_float(a.as_f64() + b.as_f64())),
        },
        Aggregation::Max => {
            if reported.compare(old).is_gt() {
                reported
            } else {
                old
            }
        }
        Aggregation::Min => {
            if reported.compare(old).is_lt() {
                reported
            } else {
                old
            }
        }
        Aggregation::Latest => reported,
    }
}

/// A float sum that overflowed stays at the largest finite value of its sign, as an integer
/// sum saturates at `i64::MIN`/`i64::MAX`: a stat is never infinite.
fn saturating_float(sum: f64) -> f64 {
    if sum.is_finite() {
        sum
    } else {
        f64::MAX.copysign(sum)
    }
}

fn clamp(value: Value, min: Option<Value>, max: Option<Value>) -> Value {
    match (min, max) {
        (Some(min), _) if value.compare(min).is_lt() => min,
        (_, Some(max)) if value.compare(max).is_gt() => max,
        _ => value,
    }
}
