//! Laurel's read models, folded from the OUTPUT log into derived-state stores (fjall).
//!
//! - Per partition of OUTPUT (tree `views/<p>`): each player's aggregated stats, earned
//!   achievements and points total; per achievement how many of the partition's players
//!   earned it, and how many players the partition has; the last STATS checkpoint.
//!
//! Definitions are not a view: each process follows DEFS once, into the engine's
//! `SharedDefs`, which the application layer reads.
//!
//! Every batch of log entries is staged in memory together with the log position it reaches
//! (reads see it at once) and written behind, data and position in one atomic batch, so a
//! view and its cursor never disagree on disk; re-delivered entries (at or below the
//! cursor) are skipped: applying is idempotent. Views are derived: deleting them and
//! re-running the projector from the start of the logs rebuilds them exactly; after a crash
//! the projector folds OUTPUT again from the last write.

mod apply;
mod keys;
mod projector;
mod staged;
mod views;

pub use apply::{Earned, RECENT_REFUSALS, RECENT_REWARDS, Refusal, RewardRecord};
pub use projector::{ProjectorConfig, ProjectorError, run};
pub use views::{Applied, PartitionEarned, PlayerView, Rarity, Views};
