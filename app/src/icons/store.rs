//! Where icons are kept: behind [`IconStore`], a directory (the default), the JetStream
//! object store (every gateway on one NATS serves every icon) or an S3-compatible bucket.
//! Objects are named by their digest, so nothing is ever overwritten with other bytes.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use laurel_log::Log;
use laurel_log::coord::Blobs;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

/// A store failed (unreachable, refused).
#[derive(Debug, thiserror::Error)]
#[error("icon store: {0}")]
pub struct StoreError(pub String);

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// An icon a store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its digest (its name).
    pub digest: String,
    /// When it was written, in Unix milliseconds.
    pub written_ms: u64,
}

/// A content-addressed place for icons.
pub trait IconStore: Send + Sync + std::fmt::Debug {
    /// Keeps `png` under `digest` (written again when it is there: the same bytes, with a
    /// new time, which restarts the collection's grace).
    fn put<'a>(&'a self, digest: &'a str, png: Bytes) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The icon's bytes, `None` when there is none by that digest.
    fn get<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>>;
    /// Whether an icon by that digest is kept.
    fn contains<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Every icon kept.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Stored>, StoreError>>;
    /// Removes an icon (a no-op when it is gone).
    fn delete<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Opens the store `spec` names: `dir:PATH`, `nats` (needs the NATS log) or
/// `s3://BUCKET[/PREFIX]` (with the usual `AWS_*` environment: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and `AWS_ENDPOINT_URL` plus `AWS_ALLOW_HTTP` for
/// an S3-compatible server).
pub async fn open(spec: &str, log: &Log) -> anyhow::Result<Arc<dyn IconStore>> {
    if let Some(path) = spec.strip_prefix("dir:") {
        return Ok(Arc::new(Objects::dir(Path::new(path))?));
    }
    if spec == "nats" {
        if !log.has_shared_state() {
            anyhow::bail!("--icons-store nats needs --nats: the embedded log has no object store");
        }
        return Ok(Arc::new(JetStreamObjects::open(log).await?));
    }
    if let Some(rest) = spec.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(
            !bucket.is_empty(),
            "--icons-store s3://BUCKET/PREFIX: no bucket"
        );
        return Ok(Arc::new(Objects::s3(bucket, prefix)?));
    }
    anyhow::bail!("--icons-store `{spec}`: expected dir:PATH, nats or s3://BUCKET/PREFIX")
}

/// A store through the `object_store` crate: a local directory or an S3 bucket.
#[derive(Debug)]
pub struct Objects {
    store: Box<dyn ObjectStore>,
    prefix: ObjectPath,
    what: String,
}

impl Objects {
    /// Icons as files in `dir` (created if missing).
    pub fn dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self {
            store: Box::new(store),
            prefix: ObjectPath::default(),
            what: format!("dir:{}", dir.display()),
        })
    }

    /// Icons as objects under `prefix` in the S3 bucket `bucket`, configured from the
    /// `AWS_*` environment.
    pub fn s3(bucket: &str, prefix: &str) -> anyhow::Result<Self> {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()?;
        Ok(Self {
            store: Box::new(store),
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            what: format!("s3://{bucket}/{prefix}"),
        })
    }

    fn path(&self, digest: &str) -> ObjectPath {
        self.prefix.child(format!("{digest}.png"))
    }
}

impl IconStore for Objects {
    fn put<'a>(&'a self, digest: &'a str, png: Bytes) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.store
                .put(&self.path(digest), png.into())
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move {
            match self.store.get(&self.path(digest)).await {
                Ok(found) => Ok(Some(found.bytes().await.map_err(failed)?)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn contains<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            match self.store.head(&self.path(digest)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(failed(e)),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Stored>, StoreError>> {
        Box::pin(async move {
            let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
            let mut listed = self.store.list(prefix);
            let mut found = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(failed)?;
                let Some(digest) = meta
                    .location
                    .filename()
                    .and_then(|name| name.strip_suffix(".png"))
                    .filter(|d| is_digest(d))
                else {
                    continue;
                };
                found.push(Stored {
                    digest: digest.to_string(),
                    written_ms: meta.last_modified.timestamp_millis().max(0) as u64,
                });
            }
            Ok(found)
        })
    }

    fn delete<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            match self.store.delete(&self.path(digest)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(failed(e)),
            }
        })
    }
}

impl std::fmt::Display for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// A store in the deployment's blob bucket on JetStream (`{STREAM_PREFIX}_ICONS`).
#[derive(Debug, Clone)]
pub struct JetStreamObjects {
    bucket: Blobs,
}

impl JetStreamObjects {
    /// Opens (or creates) the bucket of the deployment on `log`.
    pub async fn open(log: &Log) -> Result<Self, StoreError> {
        let bucket = log
            .blobs("ICONS", "Laurel achievement icons, named by digest")
            .await
            .map_err(failed)?;
        Ok(Self { bucket })
    }
}

impl IconStore for JetStreamObjects {
    fn put<'a>(&'a self, digest: &'a str, png: Bytes) -> BoxFuture<'a, Result<(), StoreError>> {
        // Written again when present: its time restarts the collection's grace.
        Box::pin(async move { self.bucket.put(digest, &png).await.map_err(failed) })
    }

    fn get<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move {
            let found = self.bucket.get(digest).await.map_err(failed)?;
            Ok(found.map(Bytes::from))
        })
    }

    fn contains<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.bucket.contains(digest).await.map_err(failed) })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Stored>, StoreError>> {
        Box::pin(async move {
            let listed = self.bucket.list().await.map_err(failed)?;
            Ok(listed
                .into_iter()
                .filter(|blob| is_digest(&blob.name))
                .map(|blob| Stored {
                    digest: blob.name,
                    written_ms: blob.written_ms,
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.bucket.delete(digest).await.map_err(failed) })
    }
}

/// Whether `s` is a digest as icons are named: 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    laurel_schemas::is_icon_digest(s)
}

impl From<StoreError> for crate::AppError {
    fn from(e: StoreError) -> Self {
        crate::AppError::Unavailable(e.to_string())
    }
}
