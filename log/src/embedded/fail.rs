//! The embedded log's storage failures, by kind.

use std::io;

use crate::{LogError, StorageError};

pub(super) fn storage(e: io::Error) -> LogError {
    LogError::Storage(StorageError::Io(e))
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> LogError {
    LogError::Storage(StorageError::Corrupt(what.to_string()))
}
