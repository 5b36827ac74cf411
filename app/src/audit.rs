//! The audit log: every admin action, who and when. Definition changes say who made them
//! on DEFS itself; grants, resets and replays' applies are recorded there too, as
//! `admin_action` entries appended before the action. Every process follows DEFS whole
//! (`SharedDefs`), so every gateway answers the same log.

use laurel_schemas::{AdminAction, DefinitionEvent, SchemaVersion};
use serde::Serialize;
use uuid::Uuid;

use crate::definitions::propose;
use crate::{App, AppError, now_ms, rfc3339};

/// The namespace of audit records' ids, derived from the action's own id (a retried
/// action is recorded once).
const AUDIT_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_7572_656c_4a55_8000_6175_6469_7400);

/// The most entries an answer holds.
pub const MAX_ENTRIES: usize = 1000;

/// One admin action.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When the server accepted it.
    pub at: Option<String>,
    /// The admin (the token's subject); absent for changes recorded before it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `define`, `archive`, `grant`, `reset` or `replay` (a definitions file's changes
    /// are each an entry, at the position they share).
    pub action: &'static str,
    /// What it was about, in words (`achievement first_win (version 3)`, `player p-1:
    /// first_win`).
    pub what: String,
    /// The DEFS position that records it.
    pub position: u64,
}

/// Records that `by` does `action`, whose own id is `cause`, before it is done.
pub async fn record(app: &App, by: &str, cause: Uuid, action: AdminAction) -> Result<(), AppError> {
    let event = DefinitionEvent::AdminAction {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v5(&AUDIT_NAMESPACE, cause.as_bytes()),
        by: by.to_string(),
        action,
        at: now_ms(),
    };
    propose(app, by, || Ok((Some(event.clone()), ()))).await
}

/// The last `limit` admin actions, newest first.
pub fn entries(app: &App, limit: usize) -> Vec<AuditEntry> {
    app.defs
        .changes_after(0)
        .into_iter()
        .rev()
        .take(limit.clamp(1, MAX_ENTRIES))
        .map(|(position, event)| AuditEntry {
            at: rfc3339(event.at()),
            by: event.by().map(str::to_string),
            action: action_of(&event),
            what: describe(&event),
            position,
        })
        .collect()
}

fn action_of(event: &DefinitionEvent) -> &'static str {
    match event {
        DefinitionEvent::StatDefined { .. }
        | DefinitionEvent::SeasonDefined { .. }
        | DefinitionEvent::AchievementDefined { .. } => "define",
        DefinitionEvent::AchievementArchived { .. } => "archive",
        // Never here: the history answers a set's changes one by one.
        DefinitionEvent::ChangeSet { .. } => "apply",
        DefinitionEvent::AdminAction { action, .. } => action.name(),
    }
}

/// A definition change or admin action in words: `stat kills (version 2)`,
/// `achievement first_win archived (version 4)`, `player p-1: first_win`.
pub fn describe(change: &DefinitionEvent) -> String {
    match change {
        DefinitionEvent::StatDefined { definition, .. } => {
            format!("stat {} (version {})", definition.name, definition.version)
        }
        DefinitionEvent::SeasonDefined { definition, .. } => {
            format!("season {} (version {})", definition.id, definition.version)
        }
        DefinitionEvent::AchievementDefined { definition, .. } => {
            format!(
                "achievement {} (version {})",
                definition.id, definition.version
            )
        }
        DefinitionEvent::AchievementArchived { id, version, .. } => {
            format!("achievement {id} archived (version {version})")
        }
        DefinitionEvent::ChangeSet { changes, .. } => {
            changes.iter().map(describe).collect::<Vec<_>>().join("; ")
        }
        DefinitionEvent::AdminAction { action, .. } => match action {
            AdminAction::Grant {
                player_id,
                achievement_id,
            } => format!("player {player_id}: {achievement_id}"),
            AdminAction::Reset { player_id } => format!("player {player_id}"),
            AdminAction::Replay { replay_id, gained } => {
                format!("replay {replay_id}: {gained} gains to grant")
            }
        },
    }
}
