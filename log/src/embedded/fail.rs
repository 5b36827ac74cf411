//! The embedded log's storage failures, by kind.

use std::io;

use crate::{LogError, StorageError};

/// A file operation failed. Data that reads back as something else than what was written
/// (`InvalidData`: a frame that does not decode, a seal that does not open) is corruption;
/// anything else is the file system's failure.
pub(super) fn storage(e: io::Error) -> LogError {
    if e.kind() == io::ErrorKind::InvalidData {
        return corrupt(e);
    }
    LogError::Storage(StorageError::Io(e))
}

/// What is stored is not what was written.
pub(super) fn corrupt(what: impl std::fmt::Display) -> LogError {
    LogError::Storage(StorageError::Corrupt(what.to_string()))
}
