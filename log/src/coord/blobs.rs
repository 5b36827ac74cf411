//! An object bucket on JetStream: named blobs, written whole and read whole.

use async_nats::jetstream::object_store::{self, GetErrorKind, InfoErrorKind, ObjectStore};
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use super::error::{CoordError, unavailable};
use crate::NatsLog;

/// A bucket of named blobs shared by every process of a deployment.
#[derive(Clone)]
pub struct Blobs {
    bucket: ObjectStore,
    name: String,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").field("name", &self.name).finish()
    }
}

/// A blob a bucket holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its name.
    pub name: String,
    /// When it was last written, in Unix milliseconds.
    pub written_ms: u64,
}

impl Blobs {
    pub(super) async fn open(
        nats: &NatsLog,
        suffix: &str,
        description: &str,
    ) -> Result<Self, CoordError> {
        let config = nats.config();
        let name = format!("{}_{suffix}", config.stream_prefix);
        let js = nats.jetstream();
        let bucket = match js.get_object_store(&name).await {
            Ok(bucket) => bucket,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: name.clone(),
                    description: Some(description.into()),
                    num_replicas: config.replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(format!("creating the bucket {name}"), e))?,
        };
        Ok(Self { bucket, name })
    }

    /// Writes `bytes` under `name`, replacing what was there.
    pub async fn put(&self, name: &str, bytes: &[u8]) -> Result<(), CoordError> {
        let mut reader = bytes;
        self.bucket
            .put(name, &mut reader)
            .await
            .map_err(|e| unavailable(format!("writing {name} to {}", self.name), e))?;
        Ok(())
    }

    /// The blob named `name`, `None` when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, CoordError> {
        let what = || format!("reading {name} from {}", self.name);
        let mut object = match self.bucket.get(name).await {
            Ok(object) => object,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(what(), e)),
        };
        let mut bytes = Vec::with_capacity(object.info().size);
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| unavailable(what(), e))?;
        Ok(Some(bytes))
    }

    /// Whether a blob named `name` is kept.
    pub async fn contains(&self, name: &str) -> Result<bool, CoordError> {
        match self.bucket.info(name).await {
            Ok(info) => Ok(!info.deleted),
            Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(false),
            Err(e) => Err(unavailable(
                format!("looking up {name} in {}", self.name),
                e,
            )),
        }
    }

    /// Every blob kept.
    pub async fn list(&self) -> Result<Vec<Blob>, CoordError> {
        let what = || format!("listing {}", self.name);
        let mut listed = self
            .bucket
            .list()
            .await
            .map_err(|e| unavailable(what(), e))?;
        let mut found = Vec::new();
        while let Some(info) = listed.next().await {
            let info = info.map_err(|e| unavailable(what(), e))?;
            if info.deleted {
                continue;
            }
            let written_ms = info
                .modified
                .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64);
            found.push(Blob {
                name: info.name,
                written_ms,
            });
        }
        Ok(found)
    }

    /// Removes the blob named `name` (a no-op when there is none).
    pub async fn delete(&self, name: &str) -> Result<(), CoordError> {
        if !self.contains(name).await? {
            return Ok(());
        }
        self.bucket
            .delete(name)
            .await
            .map_err(|e| unavailable(format!("deleting {name} from {}", self.name), e))
    }
}
