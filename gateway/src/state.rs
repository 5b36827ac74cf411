//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use laurel_engine::Definitions;
use laurel_log::Log;
use laurel_projections::Views;
use laurel_schemas::{DefinitionEvent, SchemaVersion};
use uuid::Uuid;

use tokio::sync::watch;

use crate::auth::AuthConfig;
use crate::notify::Hub;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (413 past it).
    pub max_body: usize,
    /// Most events in one ingest batch (413 past it).
    pub max_batch: usize,
    /// Longest `?wait_for=` wait before answering with what is there.
    pub max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_batch: 1000,
            max_wait: Duration::from_secs(5),
        }
    }
}

/// The gateway's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The logs.
    pub log: Log,
    /// The read models.
    pub views: Views,
    /// How tokens are checked.
    pub auth: Arc<AuthConfig>,
    /// Request limits.
    pub limits: Limits,
    /// Serializes definition writes of this gateway, so versions go up by exactly one.
    pub admin: Arc<tokio::sync::Mutex<()>>,
    /// Live notifications by player.
    pub hub: Hub,
    /// Turns true when the server stops (ends live streams).
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// The definitions the views hold, compiled for validation.
    pub fn definitions(&self) -> Result<Definitions, sled::Error> {
        let mut defs = Definitions::new();
        for definition in self.views.stat_definitions()? {
            defs.apply(&DefinitionEvent::StatDefined {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::nil(),
                definition,
                at: 0,
            });
        }
        for definition in self.views.achievements()? {
            defs.apply(&DefinitionEvent::AchievementDefined {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::nil(),
                definition,
                at: 0,
            });
        }
        Ok(defs)
    }
}
