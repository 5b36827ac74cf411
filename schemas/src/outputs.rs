//! What the engine appends to the OUTPUT log (`laurel.output.<partition>`).
//!
//! Analytics consume these straight from NATS: each is a msgpack map with named fields and a
//! `type` tag. The engine appends `unlocked` entries one by one, and per batch of a partition
//! one `changes` entry holding its `stat`, `progress` and `rejected` outputs and the STATS
//! position it reached. `stat`, `progress`, `rejected` and `checkpoint` entries of their own
//! are what earlier versions appended; readers still accept them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::names::{AchievementId, PlayerId, StatName};
use crate::validation::Reason;
use crate::value::Value;
use crate::{Millis, SchemaVersion};

/// The namespace of deterministic unlock ids (UUIDv5 of `player_id NUL achievement_id`).
pub const UNLOCK_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_7572_656c_4000_8000_756e_6c6f_636b);

/// The deterministic id of `player` earning `achievement`: the same on every re-emission,
/// so consumers can upsert and the log can deduplicate.
pub fn unlock_id(player: &PlayerId, achievement: &AchievementId) -> Uuid {
    // Player ids hold no control characters, so NUL separates the two unambiguously.
    let mut name = Vec::with_capacity(player.as_str().len() + achievement.as_str().len() + 1);
    name.extend_from_slice(player.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(achievement.as_str().as_bytes());
    Uuid::new_v5(&UNLOCK_NAMESPACE, &name)
}

/// The id of a player's `occurrence`-th earn of `achievement`: the first earn's is
/// [`unlock_id`]; a repeatable achievement's later earns are UUIDv5 of `player_id NUL
/// achievement_id NUL occurrence`.
pub fn earn_id(player: &PlayerId, achievement: &AchievementId, occurrence: u32) -> Uuid {
    if occurrence <= 1 {
        return unlock_id(player, achievement);
    }
    let mut name = Vec::with_capacity(player.as_str().len() + achievement.as_str().len() + 12);
    name.extend_from_slice(player.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(achievement.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(occurrence.to_string().as_bytes());
    Uuid::new_v5(&UNLOCK_NAMESPACE, &name)
}

/// The id of a player's earn of a periodic `achievement` in `period` (its label): UUIDv5 of
/// `player_id NUL achievement_id NUL "period:" label`.
pub fn period_earn_id(player: &PlayerId, achievement: &AchievementId, period: &str) -> Uuid {
    let mut name = Vec::with_capacity(player.as_str().len() + achievement.as_str().len() + 72);
    name.extend_from_slice(player.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(achievement.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(b"period:");
    name.extend_from_slice(period.as_bytes());
    Uuid::new_v5(&UNLOCK_NAMESPACE, &name)
}

/// The id of an earn made after the player's `resets`-th reset: `id` itself before any
/// reset, else UUIDv5 of `id`'s bytes and `NUL "reset:" resets`, so a reset player's earns
/// are new unlocks, never taken for the ones before.
pub fn after_resets(id: Uuid, resets: u32) -> Uuid {
    if resets == 0 {
        return id;
    }
    let mut name = id.as_bytes().to_vec();
    name.extend_from_slice(b"\0reset:");
    name.extend_from_slice(resets.to_string().as_bytes());
    Uuid::new_v5(&UNLOCK_NAMESPACE, &name)
}

fn first() -> u32 {
    1
}

fn is_first(occurrence: &u32) -> bool {
    *occurrence == 1
}

/// An achievement's rewards as defined: free-form JSON objects, shared (every earn's
/// `reward` output carries the definition's, without copying them).
pub type Rewards = std::sync::Arc<Vec<serde_json::Map<String, serde_json::Value>>>;

/// Whether there are no rewards (for `skip_serializing_if`).
pub fn no_rewards(rewards: &Rewards) -> bool {
    rewards.is_empty()
}

/// What caused an unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// A stat event.
    Stat,
    /// An explicit grant.
    Grant,
    /// A definition change that the player's stats already satisfied.
    Definition,
    /// Another achievement that this one requires was just earned.
    Requirement,
    /// A replay found that the history earns it under new definitions (`laurel replay
    /// --apply`); `caused_by` is the replay's id.
    Replay,
    /// A community goal was reached (`caused_by`: the `community_reached` message) and the
    /// player's contribution had reached its minimum.
    Community,
}

/// A player earned an achievement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unlocked {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// Deterministic: UUIDv5 of player and achievement (see [`unlock_id`]).
    pub unlock_id: Uuid,
    /// The player.
    pub player_id: PlayerId,
    /// The achievement.
    pub achievement_id: AchievementId,
    /// The definition's version that unlocked.
    pub definition_version: u64,
    /// The points it awards.
    pub points: u32,
    /// Server time of the causing event, ms since the epoch.
    pub unlocked_at: Millis,
    /// The id of the stat event, grant or definition change that caused it.
    pub caused_by: Uuid,
    /// What kind of thing caused it.
    pub cause: CauseKind,
    /// Whether a replay (not live play) emitted it.
    pub replay: bool,
    /// Which earn of the achievement this is: 1 for the first (the only one of an
    /// achievement that is not repeatable).
    #[serde(default = "first", skip_serializing_if = "is_first")]
    pub occurrence: u32,
    /// For a repeatable achievement, the values of its condition stats at this earn: the
    /// next earn counts from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<(StatName, Value)>,
    /// For an achievement on a periodic stat, the period it was earned in (`2026-W49`,
    /// a season's id): such an achievement is earned once per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

/// An earn's rewards (the achievement's `rewards` when it was earned), keyed by the earn's
/// `unlock_id`: an economy service grants each exactly once by remembering the unlock ids
/// it granted. With `claim`, the player claims them first: grant on the `reward_claimed`
/// output instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardEarned {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The earn that pays out.
    pub unlock_id: Uuid,
    /// The player.
    pub player_id: PlayerId,
    /// The achievement.
    pub achievement_id: AchievementId,
    /// Which earn of the achievement.
    pub occurrence: u32,
    /// The rewards, as defined.
    pub rewards: Rewards,
    /// Whether the player must claim them first.
    pub claim: bool,
    /// The earn's time.
    pub at: Millis,
}

/// A player claimed an earn's rewards: grant them now (each `unlock_id` once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardClaimed {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The earn whose rewards were claimed.
    pub unlock_id: Uuid,
    /// The player.
    pub player_id: PlayerId,
    /// The achievement.
    pub achievement_id: AchievementId,
    /// The rewards, as they were when earned.
    pub rewards: Rewards,
    /// The claim event.
    pub caused_by: Uuid,
    /// Server time of the claim.
    pub at: Millis,
}

/// A test player was reset: their stats, earns and rewards are gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerReset {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The player.
    pub player_id: PlayerId,
    /// The reset event.
    pub caused_by: Uuid,
    /// How many times the player has been reset, this one included.
    pub resets: u32,
    /// Server time of the reset.
    pub at: Millis,
}

/// A player's progress on one condition of an achievement reached a new milestone (25, 50,
/// 75 or 100 % of the threshold). Exact values are on `stat` outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The player.
    pub player_id: PlayerId,
    /// The achievement.
    pub achievement_id: AchievementId,
    /// The condition's index in the achievement's `conditions`.
    pub condition: u32,
    /// The stat the condition reads.
    pub stat: StatName,
    /// The stat's current value.
    pub current: Value,
    /// The condition's threshold.
    pub required: Value,
    /// Server time of the latest event folded in.
    pub at: Millis,
}

/// A player's aggregated stat changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatChanged {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The player.
    pub player_id: PlayerId,
    /// The stat.
    pub stat: StatName,
    /// Its new aggregated value.
    pub value: Value,
    /// Its value before (before the batch, once a batch is coalesced); absent for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Value>,
    /// Server time of the latest event folded in.
    pub at: Millis,
    /// For a periodic stat, the period this value is of (`2026-12-03`, `2026-W49`,
    /// `2026-12`, a season's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

/// The engine refused an event (definitions changed since the gateway checked it, or a
/// check only the engine can make, such as `max_delta` against the current value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The refused event.
    pub event_id: Uuid,
    /// The player.
    pub player_id: PlayerId,
    /// The stat the refused event reported (absent for a grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<StatName>,
    /// The value the refused event reported (absent for a grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Why.
    pub reason: Reason,
    /// Server time the event was received.
    pub at: Millis,
}

/// The engine has applied every STATS event of `partition` up to `stats_seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The partition.
    pub partition: u32,
    /// The last STATS sequence applied in that partition.
    pub stats_seq: u64,
}

/// A partition's share of a community total: the sum of its players' contributions to a
/// `global` stat, as of the batch that carries it (an absolute value, so a batch folded
/// again gives the same share).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityShare {
    /// The `global` stat.
    pub stat: StatName,
    /// The partition's share.
    pub share: Value,
}

/// What one engine batch of a partition changed, in one OUTPUT entry: every stat change,
/// progress milestone and refusal of the STATS events `first_seq..=stats_seq`, in the order
/// the engine produced them (coalesced: one `stat` per player and stat, one `progress` per
/// player, achievement and condition). The batch's unlocks are separate `unlocked` entries,
/// appended before it.
///
/// A `complete` entry is the batch's checkpoint: every output of those events is on OUTPUT
/// before it. A batch too large for one message is split into parts; only the last is
/// `complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Wire schema version.
    #[serde(default)]
    pub v: SchemaVersion,
    /// The partition.
    pub partition: u32,
    /// The first STATS sequence of the batch.
    pub first_seq: u64,
    /// The last STATS sequence of the batch: the partition's position once `complete`.
    pub stats_seq: u64,
    /// Whether this entry completes the batch (see above).
    pub complete: bool,
    /// Aggregated stats that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<StatChanged>,
    /// Progress milestones reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<Progress>,
    /// Events the engine refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    /// The partition's shares of community totals that the batch changed (on the
    /// `complete` entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub community: Vec<CommunityShare>,
    /// Community goals this partition learnt were reached in the batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reached: Vec<AchievementId>,
}

impl Changes {
    /// The outputs this entry holds, one by one: its `stat`, `progress` and `rejected`
    /// outputs, then a `checkpoint` when it is `complete`.
    pub fn into_outputs(self) -> Vec<Output> {
        let mut out = Vec::with_capacity(self.stats.len() + self.progress.len() + 1);
        out.extend(self.stats.into_iter().map(Output::Stat));
        out.extend(self.progress.into_iter().map(Output::Progress));
        out.extend(self.rejected.into_iter().map(Output::Rejected));
        if self.complete {
            out.push(Output::Checkpoint(Checkpoint {
                v: self.v,
                partition: self.partition,
                stats_seq: self.stats_seq,
            }));
        }
        out
    }
}

/// A message on the OUTPUT log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// A player earned an achievement.
    Unlocked(Unlocked),
    /// Progress on a condition changed.
    Progress(Progress),
    /// An aggregated stat changed.
    Stat(StatChanged),
    /// An event was refused.
    Rejected(Rejected),
    /// A partition's position.
    Checkpoint(Checkpoint),
    /// What one engine batch changed (the engine's form of `stat`, `progress`, `rejected`
    /// and `checkpoint`).
    Changes(Changes),
    /// An earn's rewards.
    Reward(RewardEarned),
    /// A player claimed an earn's rewards.
    RewardClaimed(RewardClaimed),
    /// A test player was reset.
    PlayerReset(PlayerReset),
}

impl Output {
    /// The outputs this entry stands for: a `changes` entry's contents, or the entry itself.
    pub fn into_outputs(self) -> Vec<Output> {
        match self {
            Output::Changes(c) => c.into_outputs(),
            other => vec![other],
        }
    }
}

/// Every field any OUTPUT entry has, read in one pass: the projector decodes each entry, and
/// serde's tagged-enum decoding would first copy it whole into an intermediate tree (a
/// `changes` entry holds hundreds of outputs).
#[derive(Deserialize)]
struct FlatOutput {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    v: SchemaVersion,
    unlock_id: Option<Uuid>,
    player_id: Option<PlayerId>,
    achievement_id: Option<AchievementId>,
    definition_version: Option<u64>,
    points: Option<u32>,
    unlocked_at: Option<Millis>,
    caused_by: Option<Uuid>,
    cause: Option<CauseKind>,
    replay: Option<bool>,
    condition: Option<u32>,
    stat: Option<StatName>,
    current: Option<Value>,
    required: Option<Value>,
    at: Option<Millis>,
    value: Option<Value>,
    previous: Option<Value>,
    event_id: Option<Uuid>,
    reason: Option<Reason>,
    partition: Option<u32>,
    first_seq: Option<u64>,
    stats_seq: Option<u64>,
    complete: Option<bool>,
    stats: Option<Vec<StatChanged>>,
    progress: Option<Vec<Progress>>,
    rejected: Option<Vec<Rejected>>,
    community: Option<Vec<CommunityShare>>,
    reached: Option<Vec<AchievementId>>,
    occurrence: Option<u32>,
    baseline: Option<Vec<(StatName, Value)>>,
    rewards: Option<Rewards>,
    claim: Option<bool>,
    period: Option<String>,
    resets: Option<u32>,
}

impl<'de> Deserialize<'de> for Output {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let f = FlatOutput::deserialize(deserializer)?;
        fn need<T, E: Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
            value.ok_or_else(|| E::missing_field(field))
        }
        let v = f.v;
        Ok(match f.kind.as_str() {
            "unlocked" => Output::Unlocked(Unlocked {
                v,
                unlock_id: need(f.unlock_id, "unlock_id")?,
                player_id: need(f.player_id, "player_id")?,
                achievement_id: need(f.achievement_id, "achievement_id")?,
                definition_version: need(f.definition_version, "definition_version")?,
                points: need(f.points, "points")?,
                unlocked_at: need(f.unlocked_at, "unlocked_at")?,
                caused_by: need(f.caused_by, "caused_by")?,
                cause: need(f.cause, "cause")?,
                replay: need(f.replay, "replay")?,
                occurrence: f.occurrence.unwrap_or(1),
                baseline: f.baseline.unwrap_or_default(),
                period: f.period,
            }),
            "progress" => Output::Progress(Progress {
                v,
                player_id: need(f.player_id, "player_id")?,
                achievement_id: need(f.achievement_id, "achievement_id")?,
                condition: need(f.condition, "condition")?,
                stat: need(f.stat, "stat")?,
                current: need(f.current, "current")?,
                required: need(f.required, "required")?,
                at: need(f.at, "at")?,
            }),
            "stat" => Output::Stat(StatChanged {
                v,
                player_id: need(f.player_id, "player_id")?,
                stat: need(f.stat, "stat")?,
                value: need(f.value, "value")?,
                previous: f.previous,
                at: need(f.at, "at")?,
                period: f.period,
            }),
            "rejected" => Output::Rejected(Rejected {
                v,
                event_id: need(f.event_id, "event_id")?,
                player_id: need(f.player_id, "player_id")?,
                stat: f.stat,
                value: f.value,
                reason: need(f.reason, "reason")?,
                at: need(f.at, "at")?,
            }),
            "checkpoint" => Output::Checkpoint(Checkpoint {
                v,
                partition: need(f.partition, "partition")?,
                stats_seq: need(f.stats_seq, "stats_seq")?,
            }),
            "changes" => Output::Changes(Changes {
                v,
                partition: need(f.partition, "partition")?,
                first_seq: need(f.first_seq, "first_seq")?,
                stats_seq: need(f.stats_seq, "stats_seq")?,
                complete: need(f.complete, "complete")?,
                stats: f.stats.unwrap_or_default(),
                progress: f.progress.unwrap_or_default(),
                rejected: f.rejected.unwrap_or_default(),
                community: f.community.unwrap_or_default(),
                reached: f.reached.unwrap_or_default(),
            }),
            "reward" => Output::Reward(RewardEarned {
                v,
                unlock_id: need(f.unlock_id, "unlock_id")?,
                player_id: need(f.player_id, "player_id")?,
                achievement_id: need(f.achievement_id, "achievement_id")?,
                occurrence: need(f.occurrence, "occurrence")?,
                rewards: need(f.rewards, "rewards")?,
                claim: need(f.claim, "claim")?,
                at: need(f.at, "at")?,
            }),
            "reward_claimed" => Output::RewardClaimed(RewardClaimed {
                v,
                unlock_id: need(f.unlock_id, "unlock_id")?,
                player_id: need(f.player_id, "player_id")?,
                achievement_id: need(f.achievement_id, "achievement_id")?,
                rewards: need(f.rewards, "rewards")?,
                caused_by: need(f.caused_by, "caused_by")?,
                at: need(f.at, "at")?,
            }),
            "player_reset" => Output::PlayerReset(PlayerReset {
                v,
                player_id: need(f.player_id, "player_id")?,
                caused_by: need(f.caused_by, "caused_by")?,
                resets: need(f.resets, "resets")?,
                at: need(f.at, "at")?,
            }),
            other => {
                return Err(D::Error::unknown_variant(
                    other,
                    &[
                        "player_reset",
                        "unlocked",
                        "progress",
                        "stat",
                        "rejected",
                        "checkpoint",
                        "changes",
                        "reward",
                        "reward_claimed",
                    ],
                ));
            }
        })
    }
}
