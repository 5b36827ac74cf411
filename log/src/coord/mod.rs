//! What engines and gateways of one deployment share beside the streams, as typed
//! operations: partition [`Leases`] (a key-value bucket whose keys expire) and [`Blobs`]
//! (an object bucket: partition snapshots, icons). Both live on NATS JetStream; the
//! embedded log, which one process owns, has neither ([`CoordError::Unsupported`]).
//! Callers never see the JetStream context or its error messages, only these kinds.

mod blobs;
mod leases;

pub use blobs::{Blob, Blobs};
pub use leases::Leases;

use crate::Log;

/// A coordination operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The log has no such state (the embedded log has neither leases nor blobs).
    #[error("{0} needs the NATS log (--nats)")]
    Unsupported(&'static str),
    /// Creating a key that exists (another engine took it first).
    #[error("`{0}` is held by another")]
    Taken(String),
    /// Updating a key on a revision that is no longer its last (it went to another).
    #[error("`{0}` was changed by another")]
    Lost(String),
    /// NATS did not answer as asked (unreachable, timed out, refused); trying again may
    /// succeed.
    #[error("{what}: {reason}")]
    Unavailable {
        /// The operation.
        what: String,
        /// NATS's answer, in words.
        reason: String,
    },
}

fn unavailable(what: impl Into<String>, reason: impl std::fmt::Display) -> CoordError {
    CoordError::Unavailable {
        what: what.into(),
        reason: reason.to_string(),
    }
}

impl Log {
    /// Whether this log has leases and blobs (NATS does; the embedded log does not).
    pub fn has_shared_state(&self) -> bool {
        matches!(self, Log::Nats(_))
    }

    /// The deployment's lease bucket (`{STREAM_PREFIX}_LEASES`), created on first use; a
    /// key is forgotten `ttl` after its last write.
    pub async fn leases(&self, ttl: std::time::Duration) -> Result<Leases, CoordError> {
        match self {
            Log::Nats(nats) => Leases::open(nats, ttl).await,
            Log::Embedded(_) => Err(CoordError::Unsupported("sharing partitions")),
        }
    }

    /// The deployment's blob bucket `{STREAM_PREFIX}_{suffix}`, created on first use.
    pub async fn blobs(&self, suffix: &str, description: &str) -> Result<Blobs, CoordError> {
        match self {
            Log::Nats(nats) => Blobs::open(nats, suffix, description).await,
            Log::Embedded(_) => Err(CoordError::Unsupported("a shared object bucket")),
        }
    }
}
