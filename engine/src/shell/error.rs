//! How the engine shell fails, by kind.

use laurel_log::{AppendError, LogError};
use laurel_runtime::TaskFailed;

use super::store::StoreError;

/// The engine shell failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Appending outputs failed for good.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The state store failed.
    #[error("engine state: {0}")]
    Storage(#[from] laurel_derived::StoreError),
    /// A partition's state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Recovery from OUTPUT could not complete.
    #[error("engine recovery: {0}")]
    Recovery(String),
    /// Shutdown came while work waited on the log; what was not stored is folded again on
    /// the next start.
    #[error("interrupted by shutdown")]
    Interrupted,
    /// The partition's lease lapsed, or another writer appended to the partition's OUTPUT:
    /// the worker stopped without appending. Its owner checks the lease before going on.
    #[error("partition {0}: fenced off (the lease lapsed or another engine appended)")]
    Fenced(u32),
    /// An unleased worker's fenced append found the partition's OUTPUT longer than it
    /// knew (an earlier try of the append was stored after all, or another writer): the
    /// worker recovers from OUTPUT and goes on.
    #[error("partition {0}: OUTPUT ends elsewhere than this engine knew; recovering")]
    Interleaved(u32),
    /// A task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] TaskFailed),
    /// An entry on a log could not be decoded: the reader stops rather than skip it, since
    /// what it would skip was answered 2xx to someone.
    #[error("{stream} partition {partition} entry {seq} is undecodable: {source}")]
    Undecodable {
        /// The stream (`stats`, `defs`, `output`).
        stream: &'static str,
        /// Its partition (0 for DEFS).
        partition: u32,
        /// The entry's position.
        seq: u64,
        /// Why it could not be decoded.
        #[source]
        source: laurel_schemas::DecodeError,
    },
}

impl ShellError {
    /// An entry of `stream` that could not be decoded.
    pub fn undecodable(
        stream: laurel_log::StreamKind,
        partition: u32,
        seq: u64,
        source: laurel_schemas::DecodeError,
    ) -> Self {
        ShellError::Undecodable {
            stream: stream.name(),
            partition,
            seq,
            source,
        }
    }

    /// Whether trying again later may succeed (the log was unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            ShellError::Log(e) => e.is_transient(),
            ShellError::Append(e) => e.is_transient(),
            ShellError::Recovery(_) | ShellError::Interleaved(_) => true,
            ShellError::Storage(_)
            | ShellError::Store(_)
            | ShellError::Interrupted
            | ShellError::Fenced(_)
            | ShellError::Task(_)
            | ShellError::Undecodable { .. } => false,
        }
    }
}
