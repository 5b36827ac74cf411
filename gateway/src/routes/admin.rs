//! Admin routes: definitions (through DEFS) and grants (through STATS).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use laurel_schemas::{
    AchievementDefinition, AchievementSpec, DefinitionEvent, SeasonDefinition, SeasonSpec,
    StatDefinition, StatSpec,
};
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::body::Parsed;
use crate::error::{AdminProblems, ApiError, Problem};
use crate::headers::{etag, if_match};
use crate::query::TagQuery;
use crate::state::AppState;
use laurel_app::definitions::{self, apply_file};
use laurel_app::ingest;

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
    /// `season`, `stat` or `achievement`.
    kind: &'static str,
    /// The season's id, the stat's name or the achievement's id.
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
                DefinitionEvent::SeasonDefined { definition, .. } => Some(Self {
                    kind: "season",
                    id: definition.id.to_string(),
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
                DefinitionEvent::ChangeSet { .. } | DefinitionEvent::AdminAction { .. } => None,
            })
            .collect()
    }
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
    Admin(admin): Admin,
    Parsed(request): Parsed<DefinitionsRequest>,
) -> Result<Json<DefinitionsApplied>, ApiError> {
    let overlaid = apply_file(
        &state.app,
        &admin.subject,
        &request.definitions,
        request.prune,
        request.dry_run,
    )
    .await?;
    Ok(Json(DefinitionsApplied {
        applied: !request.dry_run && !overlaid.changes.is_empty(),
        changes: overlaid
            .changes
            .iter()
            .flat_map(DefinitionChange::of)
            .collect(),
    }))
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
        (status = 409, description = "The stat's `aggregation`, `kind` or `period` would change: they are fixed once defined", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_stat(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
    Parsed(spec): Parsed<StatSpec>,
) -> Result<Response, ApiError> {
    let (created, definition) =
        definitions::define_stat(&state.app, &admin.subject, name, spec).await?;
    Ok(created_or_ok(created, &definition, definition.version))
}

/// Create a season or change its window: the stats whose `period` names it count the events
/// within it.
#[utoipa::path(put, path = "/v1/admin/seasons/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = laurel_schemas::SeasonId, Path)),
    request_body = SeasonSpec,
    responses((status = 201, description = "Created", body = SeasonDefinition), (status = 200, description = "Updated, or unchanged", body = SeasonDefinition),
        AdminProblems,
        (status = 422, description = "Invalid season", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_season(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    Parsed(spec): Parsed<SeasonSpec>,
) -> Result<Response, ApiError> {
    let (created, definition) =
        definitions::define_season(&state.app, &admin.subject, id, spec).await?;
    Ok(created_or_ok(created, &definition, definition.version))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SeasonList {
    seasons: Vec<SeasonDefinition>,
}

/// Every season.
#[utoipa::path(get, path = "/v1/admin/seasons", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = SeasonList),
        AdminProblems,
    ))]
pub(crate) async fn list_seasons(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<SeasonList>, ApiError> {
    Ok(Json(SeasonList {
        seasons: definitions::seasons(&state.app),
    }))
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
        stats: state.app.stat_definitions(),
    }))
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
    Admin(admin): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    Parsed(spec): Parsed<AchievementSpec>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let (created, definition) =
        definitions::define_achievement(&state.app, &admin.subject, id, spec, expected).await?;
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
    let def = definitions::achievement(&state.app, &id).await?;
    Ok(created_or_ok(false, &def, def.version))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AchievementList {
    achievements: Vec<AchievementDefinition>,
}

/// Every achievement definition, archived ones included.
#[utoipa::path(get, path = "/v1/admin/achievements", tag = "admin", security(("bearer" = [])),
    params(TagQuery),
    responses((status = 200, body = AchievementList),
        AdminProblems,
    ))]
pub(crate) async fn list_achievements(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Query(tag): Query<TagQuery>,
) -> Result<Json<AchievementList>, ApiError> {
    Ok(Json(AchievementList {
        achievements: state.app.achievements_tagged(tag.tag.as_deref())?,
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
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let def = definitions::archive(&state.app, &admin.subject, &id).await?;
    Ok(created_or_ok(false, &def, def.version))
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
    Admin(admin): Admin,
    Path(player): Path<String>,
    Parsed(body): Parsed<GrantBody>,
) -> Result<(StatusCode, Json<GrantAccepted>), ApiError> {
    let token = ingest::grant(&state.app, &admin.subject, player, body.achievement_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(GrantAccepted {
            accepted: 1,
            duplicates: 0,
            token: token.to_string(),
        }),
    ))
}

/// What a reset answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ResetAccepted {
    /// The read-your-writes position of the reset (`wait_for`).
    token: String,
}

/// Reset a test player through the log: their stats, earned achievements, rewards and
/// refusals are gone, what they earn next are new unlocks, and the audit log names who did
/// it. Only for ids matching a `--test-players` pattern (else 403). Community totals keep
/// what the player contributed.
#[utoipa::path(post, path = "/v1/admin/players/{player_id}/reset", tag = "admin", security(("bearer" = [])),
    params(("player_id" = laurel_schemas::PlayerId, Path)),
    responses((status = 202, body = ResetAccepted),
        AdminProblems,
        (status = 422, description = "No player can have this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The log is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn reset(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(player): Path<String>,
) -> Result<(StatusCode, Json<ResetAccepted>), ApiError> {
    let token = ingest::reset(&state.app, &admin.subject, player).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetAccepted {
            token: token.to_string(),
        }),
    ))
}
