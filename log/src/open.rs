//! Opening a deployment's log and data dir: the one place that picks the backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::derived::Store;
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
    /// sled's page cache per derived store, in bytes (`None`: [`STORE_CACHE_BYTES`]).
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
    /// A derived-state store could not be opened.
    #[error("opening {name}")]
    Store {
        /// The store.
        name: String,
        /// Why.
        #[source]
        source: sled::Error,
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

/// sled's page cache per derived store (engine state, views) unless told otherwise; sled's
/// default is 1 GiB each. sled counts it in bytes on disk, and holds several times that in
/// memory (docs/performance.md, "Memory").
pub const STORE_CACHE_BYTES: u64 = 64 << 20;

/// Opens a derived sled store with a page cache of `cache_bytes`.
pub fn open_store(path: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .open()
}

impl Opened {
    /// The derived-state store `name` in the data dir (engine state, views), sealed as the
    /// data dir is.
    pub fn store(&self, name: &str) -> Result<Store, OpenError> {
        let path = self.data_dir.join(name);
        let db = open_store(&path, self.store_cache_bytes).map_err(|source| OpenError::Store {
            name: name.into(),
            source,
        })?;
        Ok(Store::new(db, self.seal.clone()))
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
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
