//! What every Laurel role runs on, in one place:
//! - [`Shutdown`]: the one signal that tells every task of a process to stop, and the
//!   [`Stopper`] that gives it;
//! - [`Supervisor`]: the tasks of a role, named, joined, and stopped together;
//! - [`retrying`]: an operation tried again with backoff while its failure is transient,
//!   never past a shutdown;
//! - [`blocking`] and [`block_here`]: blocking work (disk scans, derived-state stores) off the async
//!   runtime's threads;
//! - [`WriteBehind`]: one write (engine state, views) running beside its owner's live work.

mod behind;
mod blocking;
mod retry;
mod shutdown;
mod supervisor;

pub use behind::WriteBehind;
pub use blocking::{block_here, blocking};
pub use retry::retrying;
pub use shutdown::{Shutdown, Stopper};
pub use supervisor::{Stopped, Supervisor, TaskFailed};
