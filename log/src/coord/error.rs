//! How a coordination operation fails, by kind.

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

pub(super) fn unavailable(what: impl Into<String>, reason: impl std::fmt::Display) -> CoordError {
    CoordError::Unavailable {
        what: what.into(),
        reason: reason.to_string(),
    }
}
