//! Opening a deployment's log and data dir: the one place that picks the backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::seal::{DataKey, SealError, Sealer};
use crate::{EmbeddedLog, Log, LogConfig, LogError, NatsLog, NatsTls};

/// Where a deployment's log and derived state are.
#[derive(Debug, Clone, Default)]
pub struct Location {
    /// The data dir: the embedded log, engine state, views, keys.
    pub data_dir: PathBuf,
    /// NATS server URLs; without them, the embedded log in the data dir.
    pub nats: Option<String>,
    /// TLS to NATS.
    pub nats_tls: NatsTls,
    /// The data key that encrypts the data dir, if it is encrypted.
    pub data_key_file: Option<PathBuf>,
    /// The previous data key, while rotating.
    pub data_old_key_file: Option<PathBuf>,
    /// The block cache of each derived store, in bytes (`None`: [`STORE_CACHE_BYTES`]).
    pub store_cache_bytes: Option<u64>,
}

/// Opening failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data dir's keys are missing, wrong, or do not open it.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The data dir could not be made or read.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The log could not be opened or reached.
    #[error("opening the log at {at}")]
    Log {
        /// The data dir or NATS URLs.
        at: String,
        /// Why.
        #[source]
        source: LogError,
    },
}

/// An opened log, and what seals the data dir's derived state.
pub struct Opened {
    /// The log.
    pub log: Log,
    store_cache_bytes: u64,
    /// The data dir's sealer, when it is encrypted.
    pub seal: Option<Arc<Sealer>>,
    data_dir: PathBuf,
}

/// The block cache of each derived store (engine state, views) unless told otherwise
/// (`laurel_derived::StoreMemory`).
pub const STORE_CACHE_BYTES: u64 = 32 << 20;

impl Opened {
    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The block cache of each derived store, in bytes.
    pub fn store_cache_bytes(&self) -> u64 {
        self.store_cache_bytes
    }
}

impl Location {
    /// The data dir's sealer: `None` in clear; refused when the keys given do not open it.
    pub fn unlock(&self) -> Result<Option<Arc<Sealer>>, OpenError> {
        let key = self
            .data_key_file
            .as_deref()
            .map(DataKey::from_file)
            .transpose()?;
        let old = self
            .data_old_key_file
            .as_deref()
            .map(DataKey::from_file)
            .transpose()?;
        std::fs::create_dir_all(&self.data_dir).map_err(|source| OpenError::Io {
            path: self.data_dir.clone(),
            source,
        })?;
        let seal = crate::seal::unlock(&self.data_dir, key.as_ref(), old.as_slice())?;
        Ok(seal.map(Arc::new))
    }

    /// Opens the log laid out as `config`, and the data dir's sealer.
    pub async fn open(&self, config: LogConfig) -> Result<Opened, OpenError> {
        let seal = self.unlock()?;
        let log = match &self.nats {
            Some(urls) => Log::Nats(
                NatsLog::connect_with(urls, config, &self.nats_tls)
                    .await
                    .map_err(|source| OpenError::Log {
                        at: crate::nats::redacted(urls),
                        source,
                    })?,
            ),
            None => {
                let dir = self.data_dir.join("log");
                Log::Embedded(
                    EmbeddedLog::open_sealed(&dir, config, seal.clone()).map_err(|source| {
                        OpenError::Log {
                            at: dir.display().to_string(),
                            source,
                        }
                    })?,
                )
            }
        };
        Ok(Opened {
            log,
            store_cache_bytes: self.store_cache_bytes.unwrap_or(STORE_CACHE_BYTES),
            seal,
            data_dir: self.data_dir.clone(),
        })
    }
}
