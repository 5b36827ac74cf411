//! Admin routes: definitions (through DEFS) and grants (through STATS).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use laurel_log::{Entry, StreamKind, Target, partition_of};
use laurel_schemas::{
    AchievementDefinition, AchievementId, AchievementSpec, DefinitionEvent, Grant, PlayerId,
    Reason, SchemaVersion, Source, StatDefinition, StatName, StatSpec, StatsMessage,
    ValidationError, encode,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Admin;
use crate::body::Parsed;
use crate::error::{AdminProblems, ApiError, ItemError, Problem};
use crate::position::ReadToken;
use crate::routes::now_ms;
use crate::state::AppState;

fn invalid(detail: &str, errors: Vec<ValidationError>) -> ApiError {
    ApiError::Unprocessable(
        detail.into(),
        errors.into_iter().map(ItemError::from).collect(),
    )
}

/// The DEFS entry of a change, once its encoding is known to decode: what is answered 2xx is
/// exactly what every reader applies, and a reader stops at an entry it cannot decode.
fn entry_of(event: &DefinitionEvent) -> Result<Entry, ApiError> {
    let (kind, id) = event.subject();
    let payload = encode(event);
    if let Err(e) = laurel_schemas::decode::<DefinitionEvent>(&payload) {
        tracing::warn!(error = %e, "a definition change does not decode from its own encoding");
        return Err(ApiError::Unprocessable(
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
/// version that moved on gets its 412 from `make`. Waits (bounded) until this process's
/// definitions hold the change.
pub(crate) async fn propose<T>(
    state: &AppState,
    mut make: impl FnMut() -> Result<(Option<DefinitionEvent>, T), ApiError>,
) -> Result<T, ApiError> {
    // Decide on definitions at least as new as DEFS when the request arrived: behind a
    // load balancer, the stat this change names may have been defined on another gateway
    // a moment ago.
    state.catch_up_defs().await?;
    for _ in 0..PROPOSE_ATTEMPTS {
        // Read before `make` reads the definitions: they hold at least this much, and any
        // more makes the append below a conflict, never a lost update.
        let at = state.defs.seq();
        let (event, out) = make()?;
        let Some(event) = event else {
            return Ok(out);
        };
        match state
            .log
            .append_after(StreamKind::Defs, entry_of(&event)?, at)
            .await
        {
            Ok(ack) => {
                state.defs.wait_for(ack.seq, state.limits.max_wait).await;
                return Ok(out);
            }
            Err(laurel_log::AppendError::Conflict(_)) => {
                let last = state.log.last_seq(StreamKind::Defs, 0).await?;
                state.defs.wait_for(last, state.limits.max_wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(
        "definitions are changing faster than this change could be made on them: try again".into(),
    ))
}

/// A definitions file to lay over the definitions in force.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefinitionsRequest {
    /// The stats and achievements the file defines.
    definitions: laurel_schemas::DefinitionsFile,
    /// Archive the achievements in force that the file leaves out.
    #[serde(default)]
    prune: bool,
    /// Check the file and say what would change; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// One change a definitions file makes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DefinitionChange {
    /// `stat` or `achievement`.
    kind: &'static str,
    /// The stat's name or the achievement's id.
    id: String,
    /// `define` (create, update, or bring back an archived achievement) or `archive`.
    action: &'static str,
    /// The version it gets.
    version: u64,
}

/// What applying a definitions file did (or, on a dry run, would do).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DefinitionsApplied {
    /// Whether the changes were made: false on a dry run or when nothing changes.
    applied: bool,
    /// The changes, in the order they apply.
    changes: Vec<DefinitionChange>,
}

impl DefinitionChange {
    fn of(change: &DefinitionEvent) -> Vec<Self> {
        change
            .each()
            .into_iter()
            .filter_map(|change| match change {
                DefinitionEvent::StatDefined { definition, .. } => Some(Self {
                    kind: "stat",
                    id: definition.name.to_string(),
                    action: "define",
                    version: definition.version,
                }),
                DefinitionEvent::AchievementDefined { definition, .. } => Some(Self {
                    kind: "achievement",
                    id: definition.id.to_string(),
                    action: "define",
                    version: definition.version,
                }),
                DefinitionEvent::AchievementArchived { id, version, .. } => Some(Self {
                    kind: "achievement",
                    id: id.to_string(),
                    action: "archive",
                    version: *version,
                }),
                DefinitionEvent::ChangeSet { .. } => None,
            })
            .collect()
    }
}

/// Lays a definitions file over the definitions in force (see
/// `Definitions::overlay_pruning`): checked whole, then appended as one DEFS entry, all or
/// nothing, through [`propose`] (a file laid over definitions another writer changed
/// meanwhile is laid again over the new ones). Refuses a file naming an icon not uploaded.
/// Returns the changes, appended unless `dry_run`, and the definitions as they are after.
pub(crate) async fn apply_file(
    state: &AppState,
    file: &laurel_schemas::DefinitionsFile,
    prune: bool,
    dry_run: bool,
) -> Result<laurel_engine::Overlaid, ApiError> {
    let missing = state.icons.missing_in_file(file).await?;
    if !missing.is_empty() {
        return Err(invalid("invalid definitions", missing));
    }
    let _writing = state.admin.lock().await;
    propose(state, || {
        let overlaid = state
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
                at: now_ms(),
            }),
        };
        Ok((event, overlaid))
    })
    .await
}

/// Apply a definitions file: every stat and achievement it holds, checked whole against the
/// definitions as they would be, then made in one step, all or nothing. What the file
/// leaves out stays as it is, unless `prune` archives it.
#[utoipa::path(put, path = "/v1/admin/definitions", tag = "admin", security(("bearer" = [])),
    request_body = DefinitionsRequest,
    responses((status = 200, body = DefinitionsApplied),
        AdminProblems,
        (status = 422, description = "The file is invalid: nothing was changed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn apply_definitions(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Parsed(request): Parsed<DefinitionsRequest>,
) -> Result<Json<DefinitionsApplied>, ApiError> {
    let overlaid = apply_file(&state, &request.definitions, request.prune, request.dry_run).await?;
    Ok(Json(DefinitionsApplied {
        applied: !request.dry_run && !overlaid.changes.is_empty(),
        changes: overlaid
            .changes
            .iter()
            .flat_map(DefinitionChange::of)
            .collect(),
    }))
}

/// An achievement's new definition, as a change.
pub(crate) fn achievement_defined(definition: &AchievementDefinition) -> DefinitionEvent {
    DefinitionEvent::AchievementDefined {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        definition: definition.clone(),
        at: now_ms(),
    }
}

pub(crate) fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

fn created_or_ok<T: Serialize>(created: bool, body: &T, version: u64) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

/// Create or update a stat definition.
#[utoipa::path(put, path = "/v1/admin/stats/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = laurel_schemas::StatName, Path)),
    request_body = StatSpec,
    responses((status = 201, description = "Created", body = StatDefinition), (status = 200, description = "Updated", body = StatDefinition),
        AdminProblems,
        (status = 409, description = "The stat's `aggregation` or `kind` would change: both are fixed once defined", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_stat(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(name): Path<String>,
    Parsed(spec): Parsed<StatSpec>,
) -> Result<Response, ApiError> {
    let name = StatName::new(name)
        .map_err(|r| invalid("invalid stat name", vec![ValidationError::new("name", r)]))?;
    spec.validate()
        .map_err(|e| invalid("invalid stat definition", e))?;
    let _writing = state.admin.lock().await;
    let (created, definition) = propose(&state, || {
        let current = state.stat_definition(name.as_str());
        // Stored totals were folded under one meaning: a sum that became a min (or an int
        // that became a float) would silently mean something else. A new stat is the
        // migration.
        if let Some(current) = &current
            && (current.aggregation != spec.aggregation || current.kind != spec.kind)
        {
            let wire = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
            return Err(ApiError::Conflict(format!(
                "stat {name} has aggregation {} and kind {}, fixed once defined: define a new stat and point the achievements at it",
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
            at: now_ms(),
        };
        Ok((Some(event), (current.is_none(), definition)))
    })
    .await?;
    Ok(created_or_ok(created, &definition, definition.version))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatList {
    stats: Vec<StatDefinition>,
}

/// Every stat definition.
#[utoipa::path(get, path = "/v1/admin/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = StatList),
        AdminProblems,
    ))]
pub(crate) async fn list_stats(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<StatList>, ApiError> {
    Ok(Json(StatList {
        stats: state.stat_definitions(),
    }))
}

/// The version an `If-Match` header names (`"3"`, `3`, `W/"3"`), `Some(None)` for `*`.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<Option<u64>>, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = raw.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(Some(None));
    }
    let digits = raw.trim_start_matches("W/").trim_matches('"');
    digits
        .parse()
        .map(|v| Some(Some(v)))
        .map_err(|_| ApiError::BadRequest(format!("If-Match: `{raw}` is not a version")))
}

/// Create or update an achievement; `If-Match: <version>` guards concurrent edits.
#[utoipa::path(put, path = "/v1/admin/achievements/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = laurel_schemas::AchievementId, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "The version being replaced, or `*`")),
    request_body = AchievementSpec,
    responses((status = 201, description = "Created", body = AchievementDefinition), (status = 200, description = "Updated", body = AchievementDefinition),
        AdminProblems,
        (status = 412, description = "`If-Match` is not the current version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_achievement(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    Parsed(spec): Parsed<AchievementSpec>,
) -> Result<Response, ApiError> {
    let id = AchievementId::new(id).map_err(|r| {
        invalid(
            "invalid achievement id",
            vec![ValidationError::new("id", r)],
        )
    })?;
    let expected = if_match(&headers)?;
    let missing = state.icons.missing(&spec, None).await?;
    if !missing.is_empty() {
        return Err(invalid("invalid achievement definition", missing));
    }
    let _writing = state.admin.lock().await;
    let (created, definition) = propose(&state, || {
        let current = state.achievement(id.as_str());
        let current_version = current.as_ref().map(|d| d.version);
        match (expected, current_version) {
            (Some(Some(want)), have) if have != Some(want) => {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-Match names version {want}, but the current version is {}",
                    have.map_or("none (it does not exist)".to_string(), |v| v.to_string())
                )));
            }
            (Some(None), None) => {
                return Err(ApiError::PreconditionFailed(
                    "If-Match: * but the achievement does not exist".into(),
                ));
            }
            _ => {}
        }
        state
            .defs
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
    Ok(created_or_ok(created, &definition, definition.version))
}

/// One achievement definition, with its `ETag`.
#[utoipa::path(get, path = "/v1/admin/achievements/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = laurel_schemas::AchievementId, Path)),
    responses((status = 200, body = AchievementDefinition),
        AdminProblems,
        (status = 404, description = "No such achievement", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_achievement(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let def = state
        .decide_on_latest(|| {
            state
                .achievement(&id)
                .ok_or_else(|| ApiError::NotFound(format!("no achievement `{id}`")))
        })
        .await?;
    Ok(created_or_ok(false, &def, def.version))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AchievementList {
    achievements: Vec<AchievementDefinition>,
}

/// Every achievement definition, archived ones included.
#[utoipa::path(get, path = "/v1/admin/achievements", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AchievementList),
        AdminProblems,
    ))]
pub(crate) async fn list_achievements(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<AchievementList>, ApiError> {
    Ok(Json(AchievementList {
        achievements: state.achievements(),
    }))
}

/// Archive an achievement: it unlocks no more; earned ones stay earned.
#[utoipa::path(delete, path = "/v1/admin/achievements/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = laurel_schemas::AchievementId, Path)),
    responses((status = 200, body = AchievementDefinition),
        AdminProblems,
        (status = 404, description = "No such achievement", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn archive_achievement(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let def = archive(&state, &id).await?;
    Ok(created_or_ok(false, &def, def.version))
}

/// Archives an achievement (through [`propose`]): its definition as it is after, archived
/// (unchanged when it was archived already); 404 when there is no such achievement.
pub(crate) async fn archive(state: &AppState, id: &str) -> Result<AchievementDefinition, ApiError> {
    let _writing = state.admin.lock().await;
    propose(state, || {
        let mut def = state
            .achievement(id)
            .ok_or_else(|| ApiError::NotFound(format!("no achievement `{id}`")))?;
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
            at: now_ms(),
        };
        Ok((Some(event), def))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantBody {
    #[schema(value_type = laurel_schemas::AchievementId)]
    achievement_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct GrantAccepted {
    accepted: usize,
    duplicates: usize,
    token: String,
}

/// Grant an achievement to a player, through the log.
#[utoipa::path(post, path = "/v1/admin/players/{player_id}/grants", tag = "admin", security(("bearer" = [])),
    params(("player_id" = laurel_schemas::PlayerId, Path)),
    request_body = GrantBody,
    responses((status = 202, body = GrantAccepted),
        AdminProblems,
        (status = 422, description = "Unknown or archived achievement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The log is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn grant(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(player): Path<String>,
    Parsed(body): Parsed<GrantBody>,
) -> Result<(StatusCode, Json<GrantAccepted>), ApiError> {
    let player_id = PlayerId::new(player).map_err(|r| {
        invalid(
            "invalid player id",
            vec![ValidationError::new("player_id", r)],
        )
    })?;
    let achievement_id = AchievementId::new(body.achievement_id).map_err(|r| {
        invalid(
            "invalid achievement id",
            vec![ValidationError::new("achievement_id", r)],
        )
    })?;
    state
        .decide_on_latest(|| match state.achievement(achievement_id.as_str()) {
            None => {
                let reason = Reason::UnknownAchievement {
                    id: achievement_id.to_string(),
                };
                Err(invalid(
                    "cannot grant",
                    vec![ValidationError::new("achievement_id", reason)],
                ))
            }
            Some(d) if d.archived => {
                let reason = Reason::Archived {
                    id: achievement_id.to_string(),
                };
                Err(invalid(
                    "cannot grant",
                    vec![ValidationError::new("achievement_id", reason)],
                ))
            }
            Some(_) => Ok(()),
        })
        .await?;
    let grant = Grant {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        player_id: player_id.clone(),
        achievement_id,
        received_at: now_ms(),
        source: Source::Admin,
        replay: None,
        earned_at: None,
    };
    let partition = partition_of(player_id.as_str(), state.log.config().partitions);
    let entry = Entry {
        target: Target::Partition(partition),
        id: grant.event_id.to_string(),
        payload: encode(&StatsMessage::Grant(grant)),
    };
    let acks = state.log.append(StreamKind::Stats, vec![entry]).await?;
    let mut token = ReadToken::default();
    for ack in &acks {
        token.reach(partition, ack.seq);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(GrantAccepted {
            accepted: 1,
            duplicates: 0,
            token: token.to_string(),
        }),
    ))
}
