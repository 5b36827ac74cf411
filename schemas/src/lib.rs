//! Laurel's wire types: everything that crosses a process boundary.
//!
//! Every message on every log is a msgpack map with named fields and a `type` tag, so a
//! consumer in any language decodes it without Laurel's code. The same types serialize to
//! JSON for the HTTP API. Nothing in this crate does I/O.
//!
//! - [`defs`]: stat and achievement definitions and the DEFS log's [`DefinitionEvent`].
//! - [`events`]: what the gateway appends to the STATS log ([`StatsMessage`]).
//! - [`outputs`]: what the engine appends to the OUTPUT log ([`Output`]).
//! - [`replay`]: definitions files and what `POST /v1/admin/replay` answers.
//! - [`validation`]: typed errors naming the field and the reason.

pub mod codec;
pub mod defs;
pub mod events;
pub mod integral;
pub mod names;
pub mod outputs;
pub mod period;
pub mod replay;
pub mod validation;
pub mod value;

pub use codec::{DecodeError, decode, encode};
pub use defs::{
    AchievementDefinition, AchievementSpec, AdminAction, Aggregation, Condition, DefinitionEvent,
    Localization, Repeat, Scope, SeasonDefinition, SeasonSpec, StatDefinition, StatKind, StatSpec,
    Threshold, Visibility, is_icon_digest, is_icon_reference, is_tag,
};
pub use events::{
    Claim, CommunityReached, Grant, Reset, Source, StatEvent, StatEvents, StatsEntry, StatsMessage,
    claim_id,
};
#[cfg(feature = "openapi")]
pub use names::StoredPlayerId;
pub use names::{AchievementId, PlayerId, SeasonId, StatName};
pub use outputs::{
    CauseKind, Changes, Checkpoint, CommunityShare, Output, PlayerReset, Progress, Rejected,
    RewardClaimed, RewardEarned, Rewards, StatChanged, Unlocked, after_resets, earn_id,
    period_earn_id,
};
pub use period::{Period, PeriodKey};
pub use replay::{
    AchievementDiff, DefinitionsFile, ReplayLine, ReplayProgress, ReplayReport, ReplayRequest,
};
pub use validation::{Reason, ValidationError, note_refusal, take_refusal};
pub use value::Value;

/// The version of the wire schema this crate writes, carried in every message's `v` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SchemaVersion(pub u16);

impl SchemaVersion {
    /// The version written by this build.
    pub const CURRENT: SchemaVersion = SchemaVersion(1);
}

impl Default for SchemaVersion {
    fn default() -> Self {
        Self::CURRENT
    }
}

/// Milliseconds since the Unix epoch, UTC: the unit of every timestamp on the wire.
pub type Millis = i64;

#[cfg(test)]
mod tests;

/// An instant as [`Millis`] (milliseconds since the Unix epoch).
pub fn to_millis(t: time::OffsetDateTime) -> Millis {
    (t.unix_timestamp_nanos() / 1_000_000) as Millis
}
