//! How the JetStream log fails, by kind.

use crate::LogError;

/// NATS did not answer as asked: trying again may succeed.
pub(super) fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}
