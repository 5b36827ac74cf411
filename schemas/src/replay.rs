//! Definitions as a file (`laurel defs`, `laurel replay`) and what a replay answers.
//!
//! `POST /v1/admin/replay` takes a [`ReplayRequest`] and answers a stream of [`ReplayLine`]s
//! as newline-delimited JSON: progress while the STATS history is folded again (and while
//! an apply appends its grants), then one report, or one error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::defs::{AchievementSpec, SeasonSpec, StatSpec};
use crate::names::PlayerId;

/// A definitions file: stats by name and achievements by id, as the admin API takes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DefinitionsFile {
    /// Stat definitions by name.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::names::openapi::stats_by_name))]
    pub stats: BTreeMap<String, StatSpec>,
    /// Achievement definitions by id. An achievement absent here is left as it is (archived
    /// by `laurel defs apply --prune`); stats are never deleted.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::names::openapi::achievements_by_id))]
    pub achievements: BTreeMap<String, AchievementSpec>,
    /// Seasons by id (the windows of stats whose `period` is a season).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seasons: BTreeMap<String, SeasonSpec>,
}

/// The most player ids a replay's diff names per achievement (`samples`).
pub const SAMPLES_MAX: usize = 1000;

/// What to replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The definitions to fold the history against, over the current ones (what the file
    /// leaves out stays as it is); without them, the current definitions.
    #[serde(default)]
    pub definitions: Option<DefinitionsFile>,
    /// Apply the definitions, then grant every gained achievement (marked `replay`).
    #[serde(default)]
    pub apply: bool,
    /// How many player ids each achievement's diff names, at most (default 5, up to 1000).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1000))]
    pub samples: Option<usize>,
}

/// One line of a replay's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplayLine {
    /// How far a phase is.
    Progress(ReplayProgress),
    /// The outcome: the last line.
    Report(ReplayReport),
    /// The replay failed after its answer began: the last line.
    Error {
        /// What went wrong.
        detail: String,
    },
}

/// How far a replay's phase is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayProgress {
    /// `fold` (reading and folding STATS, counted in log entries) or `apply` (appending
    /// grants, counted in grants).
    pub phase: String,
    /// Done so far.
    pub done: u64,
    /// The total, as known when the phase began.
    pub total: u64,
}

/// What a replay found, and what it applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayReport {
    /// The replay's id: derived from the definitions it folded against, so the same file
    /// replayed again is the same replay (the `caused_by` of its unlocks).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub replay_id: Uuid,
    /// STATS messages folded (stat events and grants).
    pub events: u64,
    /// The definition changes the replayed definitions make, as `stat NAME (version N)` or
    /// `achievement ID (version N)`; applied with `apply`.
    #[serde(default)]
    pub definitions_changed: Vec<String>,
    /// Players seen, in the history or holding an achievement.
    pub players: u64,
    /// Per achievement whose outcome differs, in id order.
    pub achievements: Vec<AchievementDiff>,
    /// Players newly earning something, summed over achievements.
    pub gained: u64,
    /// Players holding something the new rules would not award, summed over achievements
    /// (never revoked).
    pub lost: u64,
    /// Points the gains award.
    pub points_gained: u64,
    /// Whether the definitions were applied and the gains granted.
    pub applied: bool,
    /// Grants appended by this apply (a gain already granted by an earlier, interrupted
    /// apply of the same replay is not appended again).
    pub granted: u64,
    /// Milliseconds the replay took.
    pub elapsed_ms: u64,
}

/// How one achievement's holders change under the replayed definitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AchievementDiff {
    /// The achievement.
    pub id: String,
    /// Its title under the replayed definitions.
    pub title: String,
    /// Players who would newly earn it.
    pub gain: u64,
    /// Players who hold it but would not earn it under the new rules (they keep it).
    pub lose: u64,
    /// Some players who would gain it, in id order.
    pub gain_sample: Vec<PlayerId>,
    /// Some players who would not earn it again, in id order.
    pub lose_sample: Vec<PlayerId>,
    /// Points the gains award (`gain` times its points).
    pub points_gained: u64,
    /// Points the holders who would not earn it again hold through it.
    pub points_at_stake: u64,
    /// Earns gained: more than `gain` for a repeatable (each further earn) or periodic
    /// achievement (each period).
    #[serde(default)]
    pub earns: u64,
    /// What each gained earn pays out (the achievement's `rewards`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub rewards: crate::outputs::Rewards,
}
