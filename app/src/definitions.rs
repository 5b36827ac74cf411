//! Definitions: every change to stats and achievements, decided on definitions caught up
//! with DEFS and appended to it with optimistic concurrency ([`propose`]), so a version is
//! never handed out twice and what is answered is exactly what every reader applies.

use laurel_log::{Entry, StreamKind, Target};
use laurel_schemas::{
    AchievementDefinition, AchievementId, AchievementSpec, DefinitionEvent, SchemaVersion,
    SeasonDefinition, SeasonId, SeasonSpec, StatDefinition, StatName, StatSpec, ValidationError,
    encode,
};
use uuid::Uuid;

use crate::App;
use crate::now_ms;
use crate::{AppError, ItemError};

/// A 422 with the fields at fault.
pub fn invalid(detail: &str, errors: Vec<ValidationError>) -> AppError {
    AppError::Invalid(
        detail.into(),
        errors.into_iter().map(ItemError::from).collect(),
    )
}

/// The DEFS entry of a change, once its encoding is known to decode: what is answered 2xx is
/// exactly what every reader applies, and a reader stops at an entry it cannot decode.
fn entry_of(event: &DefinitionEvent) -> Result<Entry, AppError> {
    let (kind, id) = event.subject();
    let payload = encode(event);
    if let Err(e) = laurel_schemas::decode::<DefinitionEvent>(&payload) {
        tracing::warn!(error = %e, "a definition change does not decode from its own encoding");
        return Err(AppError::Invalid(
            format!("the definition cannot be stored: its log entry would not decode ({e})"),
            Vec::new(),
        ));
    }
    Ok(Entry {
        target: Target::Definition {
            kind,
            id: id.to_string(),
        },
        id: event.event_id().to_string(),
        payload,
    })
}

/// How many times [`propose`] makes its change again after losing to another writer.
const PROPOSE_ATTEMPTS: usize = 8;

/// Appends the definition change `make` builds from the definitions in force (`None`: no
/// change), with optimistic concurrency through the log: the change goes in only if DEFS
/// still ends where the definitions `make` read end. When another writer (another gateway,
/// a replay) appended first, this process's definitions catch up and `make` runs again on
/// them, so a version is never handed out twice, and a write whose `If-Match` names a
/// version that moved on gets its 412 from `make`. The change is recorded as `by`'s (the
/// audit log reads it off the entry). Waits (bounded) until this process's definitions
/// hold the change.
pub async fn propose<T>(
    app: &App,
    by: &str,
    mut make: impl FnMut() -> Result<(Option<DefinitionEvent>, T), AppError>,
) -> Result<T, AppError> {
    // Decide on definitions at least as new as DEFS when the request arrived: behind a
    // load balancer, the stat this change names may have been defined on another gateway
    // a moment ago.
    app.catch_up_defs().await?;
    for _ in 0..PROPOSE_ATTEMPTS {
        // Read before `make` reads the definitions: they hold at least this much, and any
        // more makes the append below a conflict, never a lost update.
        let at = app.defs.seq();
        let (event, out) = make()?;
        let Some(event) = event else {
            return Ok(out);
        };
        // Who made it goes on the entry itself: the audit log reads it from there.
        let event = event.made_by(by);
        match app
            .log
            .append_after(StreamKind::Defs, entry_of(&event)?, at)
            .await
        {
            Ok(ack) => {
                app.defs.wait_for(ack.seq, app.limits.max_wait).await;
                return Ok(out);
            }
            Err(laurel_log::AppendError::Conflict(_)) => {
                let last = app.log.last_seq(StreamKind::Defs, 0).await?;
                app.defs.wait_for(last, app.limits.max_wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Unavailable(
        "definitions are changing faster than this change could be made on them: try again".into(),
    ))
}

/// Lays a definitions file over the definitions in force (see
/// `Definitions::overlay_pruning`): checked whole, then appended as one DEFS entry, all or
/// nothing, through [`propose`] (a file laid over definitions another writer changed
/// meanwhile is laid again over the new ones). Refuses a file naming an icon not uploaded.
/// Returns the changes, appended unless `dry_run`, and the definitions as they are after.
pub async fn apply_file(
    app: &App,
    by: &str,
    file: &laurel_schemas::DefinitionsFile,
    prune: bool,
    dry_run: bool,
) -> Result<laurel_engine::Overlaid, AppError> {
    let missing = app.icons.missing_in_file(file).await?;
    if !missing.is_empty() {
        return Err(invalid("invalid definitions", missing));
    }
    let _writing = app.admin.lock().await;
    propose(app, by, || {
        let overlaid = app
            .defs
            .read(|d| d.overlay_pruning(file, prune, now_ms()))
            .map_err(|errors| invalid("invalid definitions", errors))?;
        let event = match overlaid.changes.as_slice() {
            _ if dry_run => None,
            [] => None,
            [one] => Some(one.clone()),
            many => Some(DefinitionEvent::ChangeSet {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::new_v4(),
                changes: many.to_vec(),
                by: None,
                at: now_ms(),
            }),
        };
        Ok((event, overlaid))
    })
    .await
}

/// An achievement's new definition, as a change.
pub fn achievement_defined(definition: &AchievementDefinition) -> DefinitionEvent {
    DefinitionEvent::AchievementDefined {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        definition: definition.clone(),
        by: None,
        at: now_ms(),
    }
}

/// Archives an achievement (through [`propose`]): its definition as it is after, archived
/// (unchanged when it was archived already); 404 when there is no such achievement.
pub async fn archive(app: &App, by: &str, id: &str) -> Result<AchievementDefinition, AppError> {
    let _writing = app.admin.lock().await;
    propose(app, by, || {
        let mut def = app
            .achievement(id)
            .ok_or_else(|| AppError::NotFound(format!("no achievement `{id}`")))?;
        if def.archived {
            return Ok((None, def));
        }
        def.archived = true;
        def.version += 1;
        let event = DefinitionEvent::AchievementArchived {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::new_v4(),
            id: def.id.clone(),
            version: def.version,
            by: None,
            at: now_ms(),
        };
        Ok((Some(event), def))
    })
    .await
}

/// Defines a stat or changes one (its `aggregation` and `kind` are fixed once defined: 409):
/// whether it was created, and its definition as stored.
pub async fn define_stat(
    app: &App,
    by: &str,
    name: String,
    spec: StatSpec,
) -> Result<(bool, StatDefinition), AppError> {
    let name = StatName::new(name)
        .map_err(|r| invalid("invalid stat name", vec![ValidationError::new("name", r)]))?;
    spec.validate()
        .map_err(|e| invalid("invalid stat definition", e))?;
    let _writing = app.admin.lock().await;
    let (created, definition) = propose(app, by, || {
        app.defs
            .read(|d| d.check_stat(&spec))
            .map_err(|e| invalid("invalid stat definition", e))?;
        let current = app.stat_definition(name.as_str());
        // Stored totals were folded under one meaning: a sum that became a min (or an int
        // that became a float) would silently mean something else. A new stat is the
        // migration.
        if let Some(current) = &current
            && (current.aggregation != spec.aggregation
                || current.kind != spec.kind
                || current.period != spec.period)
        {
            let wire = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let period = current
                .period
                .as_ref()
                .map_or("none".to_string(), ToString::to_string);
            return Err(AppError::Conflict(format!(
                "stat {name} has aggregation {}, kind {} and period {period}, fixed once defined: define a new stat and point the achievements at it",
                wire(serde_json::json!(current.aggregation)),
                wire(serde_json::json!(current.kind)),
            )));
        }
        let version = current.as_ref().map_or(0, |d| d.version) + 1;
        let definition = StatDefinition::from_spec(name.clone(), spec.clone(), version);
        let event = DefinitionEvent::StatDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::new_v4(),
            definition: definition.clone(),
            by: None,
            at: now_ms(),
        };
        Ok((Some(event), (current.is_none(), definition)))
    })
    .await?;
    Ok((created, definition))
}

/// Defines a season or changes its window: whether it was created, and its definition.
pub async fn define_season(
    app: &App,
    by: &str,
    id: String,
    spec: SeasonSpec,
) -> Result<(bool, SeasonDefinition), AppError> {
    let id = SeasonId::new(id)
        .map_err(|r| invalid("invalid season id", vec![ValidationError::new("id", r)]))?;
    spec.validate().map_err(|e| invalid("invalid season", e))?;
    let _writing = app.admin.lock().await;
    propose(app, by, || {
        let current = app.defs.read(|d| d.season(id.as_str()).cloned());
        if current.as_ref().is_some_and(|d| d.to_spec() == spec) {
            let current = current.clone().expect("checked above");
            return Ok((None, (false, current)));
        }
        let definition = SeasonDefinition {
            id: id.clone(),
            starts_at: spec.starts_at,
            ends_at: spec.ends_at,
            version: current.as_ref().map_or(0, |d| d.version) + 1,
        };
        let event = DefinitionEvent::SeasonDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::new_v4(),
            definition: definition.clone(),
            by: None,
            at: now_ms(),
        };
        Ok((Some(event), (current.is_none(), definition)))
    })
    .await
}

/// Every season, by id.
pub fn seasons(app: &App) -> Vec<SeasonDefinition> {
    app.defs.read(|d| d.seasons().cloned().collect())
}

/// Defines an achievement or changes one; `expected` is `If-Match` (`Some(None)`: `*`), 412
/// when the achievement is not at that version. Whether it was created, and its definition.
pub async fn define_achievement(
    app: &App,
    by: &str,
    id: String,
    spec: AchievementSpec,
    expected: Option<Option<u64>>,
) -> Result<(bool, AchievementDefinition), AppError> {
    let id = AchievementId::new(id).map_err(|r| {
        invalid(
            "invalid achievement id",
            vec![ValidationError::new("id", r)],
        )
    })?;
    // The body's own rules first: an invalid body is 422 whatever If-Match says.
    spec.validate(&id)
        .map_err(|e| invalid("invalid achievement definition", e))?;
    let missing = app.icons.missing(&spec, None).await?;
    if !missing.is_empty() {
        return Err(invalid("invalid achievement definition", missing));
    }
    let _writing = app.admin.lock().await;
    let (created, definition) = propose(app, by, || {
        let current = app.achievement(id.as_str());
        let current_version = current.as_ref().map(|d| d.version);
        match (expected, current_version) {
            (Some(Some(want)), have) if have != Some(want) => {
                return Err(AppError::VersionMismatch(format!(
                    "If-Match names version {want}, but the current version is {}",
                    have.map_or("none (it does not exist)".to_string(), |v| v.to_string())
                )));
            }
            (Some(None), None) => {
                return Err(AppError::VersionMismatch(
                    "If-Match: * but the achievement does not exist".into(),
                ));
            }
            _ => {}
        }
        app.defs
            .read(|d| d.check_achievement(&id, &spec))
            .map_err(|e| invalid("invalid achievement definition", e))?;
        let version = current_version.unwrap_or(0) + 1;
        let definition = AchievementDefinition::from_spec(id.clone(), spec.clone(), version);
        Ok((
            Some(achievement_defined(&definition)),
            (current.is_none(), definition),
        ))
    })
    .await?;
    Ok((created, definition))
}

/// Sets an uploaded icon (`digest`, stored already) as an achievement's locked or unlocked
/// icon, a new version unless it is that icon already; `expected` is `If-Match` (412).
pub async fn set_icon(
    app: &App,
    by: &str,
    id: &str,
    locked: bool,
    digest: &str,
    expected: Option<Option<u64>>,
) -> Result<AchievementDefinition, AppError> {
    let _writing = app.admin.lock().await;
    let definition = propose(app, by, || {
        let current = app
            .achievement(id)
            .ok_or_else(|| AppError::NotFound(format!("no achievement `{id}`")))?;
        check_version(expected, current.version)?;
        let mut spec = current.to_spec();
        let field = if locked {
            &mut spec.locked_icon
        } else {
            &mut spec.unlocked_icon
        };
        if field.as_deref() == Some(digest) {
            return Ok((None, current));
        }
        *field = Some(digest.to_string());
        let definition =
            AchievementDefinition::from_spec(current.id.clone(), spec, current.version + 1);
        Ok((Some(achievement_defined(&definition)), definition))
    })
    .await?;
    Ok(definition)
}

/// An achievement's definition (archived ones included): 404 only when DEFS has none, on
/// definitions caught up with it (it may have been defined through another gateway a
/// moment ago).
pub async fn achievement(app: &App, id: &str) -> Result<AchievementDefinition, AppError> {
    app.decide_on_latest(|| {
        app.achievement(id)
            .ok_or_else(|| AppError::NotFound(format!("no achievement `{id}`")))
    })
    .await
}

/// `If-Match`'s version against the achievement's.
pub fn check_version(expected: Option<Option<u64>>, current: u64) -> Result<(), AppError> {
    match expected {
        Some(Some(want)) if want != current => Err(AppError::VersionMismatch(format!(
            "If-Match names version {want}, but the current version is {current}"
        ))),
        _ => Ok(()),
    }
}
