//! Leases on JetStream: a key-value bucket whose keys are forgotten a TTL after their last
//! write, with writes conditional on what the writer saw last.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::stream;
use futures::TryStreamExt;

use super::error::{CoordError, unavailable};
use crate::NatsLog;

/// The lease bucket of a deployment (`{STREAM_PREFIX}_LEASES`).
#[derive(Clone)]
pub struct Leases {
    kv: kv::Store,
    js: async_nats::jetstream::Context,
    bucket: String,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl Leases {
    pub(super) async fn open(nats: &NatsLog, ttl: Duration) -> Result<Self, CoordError> {
        let config = nats.config();
        let bucket = format!("{}_LEASES", config.stream_prefix);
        let js = nats.jetstream().clone();
        if let Ok(kv) = js.get_key_value(&bucket).await {
            return Ok(Self { kv, js, bucket });
        }
        // The bucket's stream made directly: async-nats's `create_key_value` asks for
        // settings that nats-server 2.9 (Debian's) does not know.
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            description: Some("laurel leases".into()),
            max_messages_per_subject: 1,
            max_age: ttl,
            num_replicas: config.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("creating the lease bucket {bucket}"), e))?;
        let kv = js
            .get_key_value(&bucket)
            .await
            .map_err(|e| unavailable(format!("opening the lease bucket {bucket}"), e))?;
        Ok(Self { kv, js, bucket })
    }

    /// Writes `key` whatever it held (a member saying it is alive); its new revision.
    pub async fn put(&self, key: &str, holder: &str) -> Result<u64, CoordError> {
        self.kv
            .put(key, holder.to_string().into())
            .await
            .map_err(|e| unavailable(format!("writing {key}"), e))
    }

    /// Takes `key` if no one holds it: its revision, or [`CoordError::Taken`].
    pub async fn create(&self, key: &str, holder: &str) -> Result<u64, CoordError> {
        match self.kv.create(key, holder.to_string().into()).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                Err(CoordError::Taken(key.into()))
            }
            Err(e) => Err(unavailable(format!("taking {key}"), e)),
        }
    }

    /// Renews `key` if its last revision is still `revision`: the new one, or
    /// [`CoordError::Lost`] when another wrote it since.
    pub async fn renew(&self, key: &str, holder: &str, revision: u64) -> Result<u64, CoordError> {
        match self
            .kv
            .update(key, holder.to_string().into(), revision)
            .await
        {
            Ok(next) => Ok(next),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                Err(CoordError::Lost(key.into()))
            }
            Err(e) => Err(unavailable(format!("renewing {key}"), e)),
        }
    }

    /// Whether someone holds `key` (it was written and has neither expired nor been
    /// released).
    pub async fn is_held(&self, key: &str) -> Result<bool, CoordError> {
        self.kv
            .get(key)
            .await
            .map(|value| value.is_some())
            .map_err(|e| unavailable(format!("reading {key}"), e))
    }

    /// Releases `key` if its last revision is still `revision` (`None`: whatever it is).
    pub async fn release(&self, key: &str, revision: Option<u64>) -> Result<(), CoordError> {
        self.kv
            .delete_expect_revision(key, revision)
            .await
            .map_err(|e| unavailable(format!("releasing {key}"), e))
    }

    /// The keys under `prefix` that someone holds, without the prefix.
    pub async fn held_under(&self, prefix: &str) -> Result<Vec<String>, CoordError> {
        let what = || format!("listing {prefix}* in {}", self.bucket);
        let subjects = format!("$KV.{}.{prefix}*", self.bucket);
        let stream = self
            .js
            .get_stream(format!("KV_{}", self.bucket))
            .await
            .map_err(|e| unavailable(what(), e))?;
        let mut listed = stream
            .info_with_subjects(subjects)
            .await
            .map_err(|e| unavailable(what(), e))?;
        let mut held = Vec::new();
        let start = format!("$KV.{}.", self.bucket);
        while let Some((subject, _)) = listed
            .try_next()
            .await
            .map_err(|e| unavailable(what(), e))?
        {
            let key = subject.trim_start_matches(&start);
            if let Some(rest) = key.strip_prefix(prefix)
                && self.is_held(key).await?
            {
                held.push(rest.to_string());
            }
        }
        Ok(held)
    }
}
