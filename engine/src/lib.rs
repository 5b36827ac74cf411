//! Laurel's evaluation engine.
//!
//! The decision logic is a pure, deterministic fold ([`Fold`]): given a player's state, the
//! definitions and one event, it updates the state and appends outputs (`stat`, `progress`,
//! `unlocked`, `rejected`). It reads no clock and does no I/O; time comes from the event.
//! [`Definitions`] is the compiled definitions cache, with an index from each stat to the
//! achievements that read it, so an event only touches what it can affect.

mod coalesce;
mod community;
mod defs;
mod file;
mod fold;
mod memory;
#[cfg(feature = "role")]
pub mod role;
pub mod shell;
mod state;

pub use coalesce::coalesce;
pub use community::Community;
pub use defs::{AchIdx, Definitions, DefsChange, StatIdx};
pub use file::Overlaid;
pub use fold::{Fold, aggregate, milestone};
pub use memory::Engine;
pub use state::{PendingSnapshot, PlayerSnapshot, PlayerState, RepeatSnapshot};
