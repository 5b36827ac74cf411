//! Achievement icons (SPEC 4b): uploads checked and redrawn as square PNGs
//! ([`normalize`]), kept content-addressed in a store ([`store`]), referenced by digest from
//! definitions, served immutable at `GET /v1/icons/{digest}`, and collected when no
//! definition has referenced them for a grace period.

pub mod normalize;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use laurel_engine::shell::SharedDefs;
use laurel_runtime::Shutdown;
use laurel_schemas::{AchievementSpec, DefinitionsFile, Reason, ValidationError, is_icon_digest};

pub use normalize::{IconError, Normalized};
pub use store::{IconStore, StoreError, Stored};

/// Icons as a process serves them.
#[derive(Debug, Clone)]
pub struct Icons {
    /// Where they are kept.
    pub store: Arc<dyn IconStore>,
    /// The side of the square every upload is redrawn to, in pixels.
    pub side: u32,
    /// Where players' clients fetch icons (a CDN in front of `/v1/icons`), without a
    /// trailing slash; `None`: this server's `/v1/icons`.
    pub base_url: Option<String>,
    /// Icons this process is uploading: stored, their definition not yet in force. The
    /// collection leaves them, whatever the grace.
    pub uploading: Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

/// An upload in progress (see [`Icons::uploading`]); dropping it ends it.
#[derive(Debug)]
pub struct Uploading {
    digest: String,
    set: Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

impl Drop for Uploading {
    fn drop(&mut self) {
        let mut set = self.set.lock().expect("uploading lock");
        if let Some(n) = set.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                set.remove(&self.digest);
            }
        }
    }
}

impl Icons {
    /// Icons in `store`, redrawn to `side` pixels, linked on `base_url`.
    pub fn new(store: Arc<dyn IconStore>, side: u32, base_url: Option<String>) -> Self {
        Self {
            store,
            side,
            base_url,
            uploading: Arc::default(),
        }
    }

    /// Marks `digest` as being uploaded until the guard is dropped.
    pub fn uploading(&self, digest: &str) -> Uploading {
        *self
            .uploading
            .lock()
            .expect("uploading lock")
            .entry(digest.to_string())
            .or_default() += 1;
        Uploading {
            digest: digest.to_string(),
            set: self.uploading.clone(),
        }
    }

    /// The URL a client fetches an icon reference from: an uploaded icon's digest becomes
    /// `{base}/{digest}`; a URL or a relative path is handed on as it is.
    pub fn url(&self, reference: &str) -> String {
        if is_icon_digest(reference) {
            match &self.base_url {
                Some(base) => format!("{base}/{reference}"),
                None => format!("/v1/icons/{reference}"),
            }
        } else {
            reference.to_string()
        }
    }

    /// The digests `spec` references that no uploaded icon has, as errors on the fields
    /// (under `parent` when given: `achievements.X`).
    pub async fn missing(
        &self,
        spec: &AchievementSpec,
        parent: Option<&str>,
    ) -> Result<Vec<ValidationError>, StoreError> {
        let mut errors = Vec::new();
        for (field, icon) in [
            ("locked_icon", &spec.locked_icon),
            ("unlocked_icon", &spec.unlocked_icon),
        ] {
            let Some(digest) = icon.as_deref().filter(|i| is_icon_digest(i)) else {
                continue;
            };
            if !self.store.contains(digest).await? {
                let error = ValidationError::new(
                    field,
                    Reason::UnknownIcon {
                        digest: digest.to_string(),
                    },
                );
                errors.push(match parent {
                    Some(parent) => error.under(parent),
                    None => error,
                });
            }
        }
        Ok(errors)
    }

    /// [`Icons::missing`] for every achievement of a definitions file
    /// (`achievements.ID.locked_icon`).
    pub async fn missing_in_file(
        &self,
        file: &DefinitionsFile,
    ) -> Result<Vec<ValidationError>, StoreError> {
        let mut errors = Vec::new();
        for (id, spec) in &file.achievements {
            errors.extend(
                self.missing(spec, Some(&format!("achievements.{id}")))
                    .await?,
            );
        }
        Ok(errors)
    }

    /// Removes the icons no definition references (archived ones included: players who
    /// earned them still see them) that were written more than `grace` ago; returns how
    /// many went. The grace covers an upload racing a definition that is about to
    /// reference it.
    pub async fn collect(
        &self,
        defs: &SharedDefs,
        grace: Duration,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        let stored = self.store.list().await?;
        // Read after the listing: an icon referenced by then is kept.
        let referenced: HashSet<String> = defs.read(|d| {
            d.achievements()
                .flat_map(|def| [def.locked_icon.clone(), def.unlocked_icon.clone()])
                .flatten()
                .filter(|i| is_icon_digest(i))
                .collect()
        });
        let cutoff = now_ms.saturating_sub(grace.as_millis() as u64);
        let mut removed = 0;
        for icon in stored {
            let uploading = self
                .uploading
                .lock()
                .expect("uploading lock")
                .contains_key(&icon.digest);
            if uploading || referenced.contains(&icon.digest) || icon.written_ms > cutoff {
                continue;
            }
            self.store.delete(&icon.digest).await?;
            tracing::info!(
                digest = icon.digest,
                "removed an icon no definition references"
            );
            removed += 1;
        }
        Ok(removed)
    }

    /// Collects unreferenced icons every `every` until shutdown.
    pub async fn collect_every(
        self,
        defs: Arc<SharedDefs>,
        grace: Duration,
        every: Duration,
        shutdown: Shutdown,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self
                .collect(&defs, grace, crate::now_ms().max(0) as u64)
                .await
            {
                tracing::warn!(error = %e, "collecting unreferenced icons failed; trying again later");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use laurel_log::{EmbeddedLog, Log, LogConfig};

    #[tokio::test]
    async fn the_collection_leaves_an_upload_in_progress_whatever_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::Embedded(
            EmbeddedLog::open(&dir.path().join("log"), LogConfig::default()).unwrap(),
        );
        let (defs, _follower) = SharedDefs::load(&log, "test").await.unwrap();
        let store = store::open(&format!("dir:{}", dir.path().join("icons").display()), &log)
            .await
            .unwrap();
        let icons = Icons::new(store, 100, None);
        let digest = "ab".repeat(32);
        icons
            .store
            .put(&digest, vec![1, 2, 3].into())
            .await
            .unwrap();
        let uploading = icons.uploading(&digest);
        let far_ahead = u64::MAX / 2;
        assert_eq!(
            icons
                .collect(&defs, Duration::ZERO, far_ahead)
                .await
                .unwrap(),
            0
        );
        assert!(icons.store.contains(&digest).await.unwrap());
        drop(uploading);
        assert_eq!(
            icons
                .collect(&defs, Duration::ZERO, far_ahead)
                .await
                .unwrap(),
            1
        );
        assert!(!icons.store.contains(&digest).await.unwrap());
        assert!(icons.uploading.lock().unwrap().is_empty());
    }
}
