//! The player reads: achievements with progress, stats, and the published list with rarity.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use laurel_projections::Rarity;
use laurel_schemas::{AchievementDefinition, PlayerId, Value, Visibility};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::{ApiError, Problem, TokenProblems};
use crate::headers::languages;
use crate::query::TagQuery;
use crate::state::AppState;
use laurel_app::ReadToken;
use laurel_app::players::{self, AchievementOut, achievement_out, texts};
use laurel_app::{now_ms, rfc3339};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadQuery {
    /// A `token` from `POST /v1/events`: wait (bounded) until its events are reflected.
    #[param(pattern = "^,*([0-9]{1,9}:[0-9]{1,19}(,+[0-9]{1,9}:[0-9]{1,19})*)?,*$")]
    wait_for: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AchievementsOut {
    achievements: Vec<AchievementOut>,
    points_total: u64,
    /// With `wait_for`: true when the wait ended before the token's events were reflected.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_timed_out: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatsOut {
    /// Every stat the player has: a periodic stat's value in the current period (0 when
    /// nothing was reported in it), the others' over the player's history.
    #[schema(value_type = BTreeMap<String, f64>)]
    stats: BTreeMap<String, Value>,
    /// Periodic stats' values in their last periods (at most 8 each; a season's for good):
    /// stat, then period (`2026-12-03`, `2026-W49`, `2026-12`, a season's id), to value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, BTreeMap<String, f64>>)]
    periods: BTreeMap<String, BTreeMap<String, Value>>,
    points_total: u64,
    /// With `wait_for`: true when the wait ended before the token's events were reflected.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_timed_out: Option<bool>,
}

/// The header that says how a `wait_for` ended: `reached` or `timed-out`.
const WAIT_HEADER: &str = "laurel-wait";

/// Waits (bounded) for the player's part of a `wait_for` token. `None` without one, else
/// whether the wait timed out: a bounded wait is not an error, the answer is then what the
/// views hold, and says so.
async fn wait(state: &AppState, player: &str, query: &ReadQuery) -> Result<Option<bool>, ApiError> {
    let Some(raw) = &query.wait_for else {
        return Ok(None);
    };
    let token = ReadToken::parse(raw)?;
    let own = laurel_log::partition_of(player, state.app.views.partitions());
    let deadline = tokio::time::Instant::now() + state.app.limits.max_wait;
    let mut timed_out = false;
    for (&p, &seq) in token.0.iter().filter(|(p, _)| **p == own) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        timed_out |= !state.app.views.wait_for(p, seq, left).await;
    }
    Ok(Some(timed_out))
}

/// `body` as JSON, with the `laurel-wait` header when the read waited.
fn waited<T: Serialize>(body: T, timed_out: Option<bool>) -> Response {
    let mut response = Json(body).into_response();
    if let Some(timed_out) = timed_out {
        let value = if timed_out { "timed-out" } else { "reached" };
        response
            .headers_mut()
            .insert(WAIT_HEADER, HeaderValue::from_static(value));
    }
    response
}

fn sorted(mut defs: Vec<AchievementDefinition>) -> Vec<AchievementDefinition> {
    defs.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.id.cmp(&b.id)));
    defs
}

async fn achievements_of(
    state: &AppState,
    player: &str,
    (query, tag): (&ReadQuery, &TagQuery),
    headers: &HeaderMap,
) -> Result<AchievementsOut, ApiError> {
    let defs = state.app.achievements_tagged(tag.tag.as_deref())?;
    let wait_timed_out = wait(state, player, query).await?;
    let view = players::view(&state.app, player).await?;
    let langs = languages(headers);
    let now = now_ms();
    let achievements = sorted(defs)
        .iter()
        .filter_map(|d| achievement_out(&state.app, d, &view, &langs, now))
        .collect();
    Ok(AchievementsOut {
        achievements,
        points_total: view.points_total,
        wait_timed_out,
    })
}

/// The caller's achievements, with progress.
#[utoipa::path(get, path = "/v1/players/me/achievements", tag = "players", security(("bearer" = [])),
    params(ReadQuery, TagQuery, ("Accept-Language" = Option<String>, Header, description = "Picks localizations")),
    responses((status = 200, body = AchievementsOut, headers(("laurel-wait" = String, description = "With `wait_for`: `reached`, or `timed-out` when the wait ended before the token's events were reflected"))),
        TokenProblems,
    ))]
pub(crate) async fn my_achievements(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ReadQuery>,
    Query(tag): Query<TagQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let out = achievements_of(&state, &principal.subject, (&query, &tag), &headers).await?;
    let timed_out = out.wait_timed_out;
    Ok(waited(out, timed_out))
}

/// One of the caller's achievements.
#[utoipa::path(get, path = "/v1/players/me/achievements/{id}", tag = "players", security(("bearer" = [])),
    params(("id" = laurel_schemas::AchievementId, Path), ReadQuery),
    responses((status = 200, body = AchievementOut, headers(("laurel-wait" = String, description = "With `wait_for`: `reached`, or `timed-out` when the wait ended before the token's events were reflected"))),
        TokenProblems,
        (status = 404, description = "No such achievement, or hidden from the player", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn my_achievement(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<ReadQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let timed_out = wait(&state, &principal.subject, &query).await?;
    let view = players::view(&state.app, &principal.subject).await?;
    let not_found = || ApiError::NotFound(format!("no achievement `{id}`"));
    let def = state.app.achievement(&id).ok_or_else(not_found)?;
    let mut out = achievement_out(&state.app, &def, &view, &languages(&headers), now_ms())
        .ok_or_else(not_found)?;
    out.wait_timed_out = timed_out;
    Ok(waited(out, timed_out))
}

/// The caller's aggregated stats and points.
#[utoipa::path(get, path = "/v1/players/me/stats", tag = "players", security(("bearer" = [])),
    params(ReadQuery),
    responses((status = 200, body = StatsOut, headers(("laurel-wait" = String, description = "With `wait_for`: `reached`, or `timed-out` when the wait ended before the token's events were reflected"))),
        TokenProblems,
    ))]
pub(crate) async fn my_stats(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ReadQuery>,
) -> Result<Response, ApiError> {
    stats_of(&state, &principal.subject, &query).await
}

/// `player`'s stats as of now, once `query`'s wait is over.
async fn stats_of(state: &AppState, player: &str, query: &ReadQuery) -> Result<Response, ApiError> {
    let timed_out = wait(state, player, query).await?;
    let view = players::view(&state.app, player).await?;
    let (stats, periods) = players::stats_now(&state.app, &view, now_ms());
    let out = StatsOut {
        stats,
        periods,
        points_total: view.points_total,
        wait_timed_out: timed_out,
    };
    Ok(waited(out, timed_out))
}

/// Any player's aggregated stats and points (servers and admins).
#[utoipa::path(get, path = "/v1/players/{player_id}/stats", tag = "players", security(("bearer" = [])),
    params(("player_id" = laurel_schemas::StoredPlayerId, Path), ReadQuery),
    responses((status = 200, body = StatsOut, headers(("laurel-wait" = String, description = "With `wait_for`: `reached`, or `timed-out` when the wait ended before the token's events were reflected"))),
        TokenProblems,
        (status = 403, description = "Needs `laurel:server` or `laurel:admin`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No player can have this id (it breaks the player id rules)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn player_stats(
    State(state): State<AppState>,
    principal: Principal,
    Path(player): Path<String>,
    Query(query): Query<ReadQuery>,
) -> Result<Response, ApiError> {
    principal.require_server()?;
    no_such_player_unless_valid(&player)?;
    stats_of(&state, &player, &query).await
}

/// Any player's achievements (servers and admins).
#[utoipa::path(get, path = "/v1/players/{player_id}/achievements", tag = "players", security(("bearer" = [])),
    params(("player_id" = laurel_schemas::StoredPlayerId, Path), ReadQuery, TagQuery),
    responses((status = 200, body = AchievementsOut, headers(("laurel-wait" = String, description = "With `wait_for`: `reached`, or `timed-out` when the wait ended before the token's events were reflected"))),
        TokenProblems,
        (status = 403, description = "Needs `laurel:server` or `laurel:admin`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No player can have this id (it breaks the player id rules)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn player_achievements(
    State(state): State<AppState>,
    principal: Principal,
    Path(player): Path<String>,
    Query(query): Query<ReadQuery>,
    Query(tag): Query<TagQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require_server()?;
    no_such_player_unless_valid(&player)?;
    let out = achievements_of(&state, &player, (&query, &tag), &headers).await?;
    let timed_out = out.wait_timed_out;
    Ok(waited(out, timed_out))
}

/// A player id in a path that no player can have is a player that does not exist (a valid
/// id of a player who never played reads as empty).
fn no_such_player_unless_valid(player: &str) -> Result<(), ApiError> {
    PlayerId::stored(player).map(drop).map_err(|reason| {
        ApiError::NotFound(format!("no player can have the id {player:?}: it {reason}"))
    })
}

/// One event the engine refused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RefusalOut {
    /// The refused event (or grant).
    event_id: String,
    /// The stat it reported (absent for a grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    stat: Option<String>,
    /// The value it reported (absent for a grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    value: Option<Value>,
    /// Why, in words.
    reason: String,
    /// Why, as a code and its data.
    code: laurel_schemas::Reason,
    /// When the gateway received it (RFC 3339).
    at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RefusalList {
    /// Newest first; at most the last 20.
    refusals: Vec<RefusalOut>,
}

/// A player's most recent refused events (servers and admins): what the engine refused
/// after the gateway accepted it (a change past `max_delta`, a stat since undefined...).
/// The player's own token cannot read them: a cheater learns nothing from them.
#[utoipa::path(get, path = "/v1/players/{player_id}/refusals", tag = "players", security(("bearer" = [])),
    params(("player_id" = laurel_schemas::StoredPlayerId, Path), ReadQuery),
    responses((status = 200, body = RefusalList, headers(("laurel-wait" = String, description = "With `wait_for`: `reached` or `timed-out`"))),
        TokenProblems,
        (status = 403, description = "Needs `laurel:server` or `laurel:admin`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No player can have this id (it breaks the player id rules)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn player_refusals(
    State(state): State<AppState>,
    principal: Principal,
    Path(player): Path<String>,
    Query(query): Query<ReadQuery>,
) -> Result<Response, ApiError> {
    principal.require_server()?;
    no_such_player_unless_valid(&player)?;
    let timed_out = wait(&state, &player, &query).await?;
    let refusals = players::refusals(&state.app, &player)
        .await?
        .into_iter()
        .map(|r| RefusalOut {
            event_id: r.event_id.to_string(),
            stat: r.stat,
            value: r.value,
            reason: r.reason.to_string(),
            code: r.reason,
            at: rfc3339(r.at),
        })
        .collect();
    Ok(waited(RefusalList { refusals }, timed_out))
}

/// One published achievement with its rarity.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PublishedOut {
    id: String,
    title: String,
    description: String,
    icon_url: Option<String>,
    points: u32,
    order: i32,
    visibility: Visibility,
    earned_percent: f64,
    /// Its categories.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// Whether it can be earned more than once.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    repeatable: bool,
    /// For an achievement on a periodic stat, the current period: `earned_percent` is this
    /// period's.
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PublishedList {
    achievements: Vec<PublishedOut>,
    players: u64,
}

/// Published achievements (hidden ones omitted) with global rarity.
#[utoipa::path(get, path = "/v1/achievements", tag = "players", security(("bearer" = [])),
    params(TagQuery),
    responses((status = 200, body = PublishedList),
        TokenProblems,
    ))]
pub(crate) async fn published(
    State(state): State<AppState>,
    _principal: Principal,
    Query(tag): Query<TagQuery>,
    headers: HeaderMap,
) -> Result<Json<PublishedList>, ApiError> {
    let defs = state.app.achievements_tagged(tag.tag.as_deref())?;
    let rarity: Rarity = players::rarity(&state.app).await?;
    let langs = languages(&headers);
    let achievements = sorted(defs)
        .iter()
        .filter(|d| !d.archived && d.visibility != Visibility::Hidden)
        .map(|d| {
            let (title, locked, _) = texts(d, &langs);
            let period = players::current_period(&state.app, d, now_ms()).map(|(_, label)| label);
            let earned_percent = match &period {
                None => rarity.percent(d.id.as_str()),
                Some(label) => label
                    .as_deref()
                    .map_or(0.0, |l| rarity.percent_in(d.id.as_str(), l)),
            };
            PublishedOut {
                id: d.id.to_string(),
                title: title.to_string(),
                description: if d.visibility == Visibility::Secret {
                    String::new()
                } else {
                    locked.to_string()
                },
                icon_url: d.locked_icon.as_ref().map(|i| state.app.icons.url(i)),
                points: d.points,
                order: d.order,
                visibility: d.visibility,
                earned_percent,
                tags: d.tags.clone(),
                repeatable: d.repeat.is_some(),
                period: period.flatten(),
            }
        })
        .collect();
    Ok(Json(PublishedList {
        achievements,
        players: rarity.players,
    }))
}
