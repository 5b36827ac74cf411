//! What the engine appends to the OUTPUT log (`laurel.output.<partition>`).
//!
//! Analytics consume these straight from NATS: each is a msgpack map with named fields and a
//! `type` tag (`unlocked`, `progress`, `stat`, `rejected`, `checkpoint`).

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

/// A message on the OUTPUT log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}
