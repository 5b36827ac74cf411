//! What engines and gateways of one deployment share beside the streams, as typed
//! operations: partition [`Leases`] (a key-value bucket whose keys expire) and [`Blobs`]
//! (an object bucket: partition snapshots, icons). Both live on NATS JetStream; the
//! embedded log, which one process owns, has neither ([`CoordError::Unsupported`]).
//! Callers never see the JetStream context or its error messages, only these kinds.

mod blobs;
mod error;
mod leases;

pub use blobs::{Blob, Blobs};
pub use error::CoordError;
pub use leases::Leases;

use crate::Log;

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
