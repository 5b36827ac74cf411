//! The player reads: achievements with progress, stats, and the published list with rarity.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use laurel_projections::{PlayerView, Rarity};
use laurel_schemas::{AchievementDefinition, PlayerId, Value, Visibility};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::{ApiError, Problem, TokenProblems};
use crate::icons::Icons;
use crate::position::ReadToken;
use crate::routes::now_ms;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadQuery {
    /// A `token` from `POST /v1/events`: wait (bounded) until its events are reflected.
    #[param(pattern = "^,*([0-9]{1,9}:[0-9]{1,19}(,+[0-9]{1,9}:[0-9]{1,19})*)?,*$")]
    wait_for: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ProgressOut {
    stat: String,
    #[schema(value_type = f64)]
    current: Value,
    #[schema(value_type = f64)]
    required: Value,
}

/// Where now stands in a time-limited achievement's availability window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Window {
    /// Before `available_from`: it cannot be earned yet.
    Upcoming,
    /// Inside the window: it can be earned now.
    Open,
    /// At or past `available_until`: it can no longer be earned.
    Closed,
}

/// One achievement as a player sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AchievementOut {
    id: String,
    title: String,
    description: String,
    icon_url: Option<String>,
    points: u32,
    order: i32,
    visibility: Visibility,
    earned: bool,
    /// RFC 3339.
    earned_at: Option<String>,
    progress: Vec<ProgressOut>,
    /// When it can first be earned (RFC 3339), for a time-limited achievement.
    #[serde(skip_serializing_if = "Option::is_none")]
    available_from: Option<String>,
    /// When it can no longer be earned (RFC 3339, exclusive), for a time-limited achievement.
    #[serde(skip_serializing_if = "Option::is_none")]
    available_until: Option<String>,
    /// Where now stands in its window; absent for an achievement without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<Window>,
    /// With `wait_for`, on the one-achievement route: true when the wait ended before the
    /// token's events were reflected (the answer is what the views held then).
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_timed_out: Option<bool>,
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
    #[schema(value_type = BTreeMap<String, f64>)]
    stats: BTreeMap<String, Value>,
    points_total: u64,
    /// With `wait_for`: true when the wait ended before the token's events were reflected.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_timed_out: Option<bool>,
}

/// The header that says how a `wait_for` ended: `reached` or `timed-out`.
const WAIT_HEADER: &str = "laurel-wait";

/// Language tags of `Accept-Language`, most preferred first.
pub(crate) fn languages(headers: &HeaderMap) -> Vec<String> {
    let Some(raw) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    let mut tags: Vec<(f32, usize, String)> = raw
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim().to_string();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0);
            (!tag.is_empty() && tag != "*" && q > 0.0).then_some((q, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().map(|(_, _, t)| t).collect()
}

/// The texts of `def` in the best language the client accepts.
fn texts<'a>(def: &'a AchievementDefinition, langs: &[String]) -> (&'a str, &'a str, &'a str) {
    let loc = langs.iter().find_map(|want| {
        let want = want.to_ascii_lowercase();
        def.localizations
            .iter()
            .find(|(tag, _)| tag.to_ascii_lowercase() == want)
            .or_else(|| {
                let primary = want.split('-').next().unwrap_or_default();
                def.localizations
                    .iter()
                    .find(|(tag, _)| tag.to_ascii_lowercase().split('-').next() == Some(primary))
            })
            .map(|(_, l)| l)
    });
    let pick = |over: Option<&'a String>, base: &'a str| over.map_or(base, String::as_str);
    (
        pick(loc.and_then(|l| l.title.as_ref()), &def.title),
        pick(
            loc.and_then(|l| l.locked_description.as_ref()),
            &def.locked_description,
        ),
        pick(
            loc.and_then(|l| l.unlocked_description.as_ref()),
            &def.unlocked_description,
        ),
    )
}

pub(crate) fn rfc3339(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Where `now` stands in `def`'s availability window, if it has one.
fn window(def: &AchievementDefinition, now: i64) -> Option<Window> {
    let from = def.available_from.map(laurel_schemas::to_millis);
    let until = def.available_until.map(laurel_schemas::to_millis);
    match (from, until) {
        (None, None) => None,
        (Some(from), _) if now < from => Some(Window::Upcoming),
        (_, Some(until)) if now >= until => Some(Window::Closed),
        _ => Some(Window::Open),
    }
}

/// The player's view of `def` at `now`, or `None` when the player may not see it: archived,
/// hidden, or time-limited with its window closed, unless earned.
pub(crate) fn achievement_out(
    def: &AchievementDefinition,
    icons: &Icons,
    player: &PlayerView,
    langs: &[String],
    now: i64,
) -> Option<AchievementOut> {
    let earned = player.earned.get(def.id.as_str());
    let window = window(def, now);
    if earned.is_none()
        && (def.archived || def.visibility == Visibility::Hidden || window == Some(Window::Closed))
    {
        return None;
    }
    let (title, locked, unlocked) = texts(def, langs);
    let description = match (earned, def.visibility) {
        (Some(_), _) => unlocked,
        (None, Visibility::Secret) => "",
        (None, _) => locked,
    };
    let icon = if earned.is_some() {
        def.unlocked_icon.as_ref().or(def.locked_icon.as_ref())
    } else {
        def.locked_icon.as_ref()
    };
    // A secret achievement does not tell how to earn it until earned.
    let secret = earned.is_none() && def.visibility == Visibility::Secret;
    let progress = def
        .conditions
        .iter()
        .filter(|_| !secret)
        .map(|c| ProgressOut {
            stat: c.stat.to_string(),
            current: player
                .stats
                .get(c.stat.as_str())
                .copied()
                .unwrap_or(Value::Int(0)),
            required: c.threshold.value(),
        })
        .collect();
    Some(AchievementOut {
        id: def.id.to_string(),
        title: title.to_string(),
        description: description.to_string(),
        icon_url: icon.map(|i| icons.url(i)),
        points: def.points,
        order: def.order,
        visibility: def.visibility,
        earned: earned.is_some(),
        earned_at: earned.and_then(|e| rfc3339(e.unlocked_at)),
        progress,
        available_from: def
            .available_from
            .and_then(|t| rfc3339(laurel_schemas::to_millis(t))),
        available_until: def
            .available_until
            .and_then(|t| rfc3339(laurel_schemas::to_millis(t))),
        window,
        wait_timed_out: None,
    })
}

/// Waits (bounded) for the player's part of a `wait_for` token. `None` without one, else
/// whether the wait timed out: a bounded wait is not an error, the answer is then what the
/// views hold, and says so.
async fn wait(state: &AppState, player: &str, query: &ReadQuery) -> Result<Option<bool>, ApiError> {
    let Some(raw) = &query.wait_for else {
        return Ok(None);
    };
    let token = ReadToken::parse(raw)?;
    let own = laurel_log::partition_of(player, state.views.partitions());
    let deadline = tokio::time::Instant::now() + state.limits.max_wait;
    let mut timed_out = false;
    for (&p, &seq) in token.0.iter().filter(|(p, _)| **p == own) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        timed_out |= !state.views.wait_for(p, seq, left).await;
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
    query: &ReadQuery,
    headers: &HeaderMap,
) -> Result<AchievementsOut, ApiError> {
    let wait_timed_out = wait(state, player, query).await?;
    let view = state.views.player(player)?;
    let langs = languages(headers);
    let now = now_ms();
    let achievements = sorted(state.achievements())
        .iter()
        .filter_map(|d| achievement_out(d, &state.icons, &view, &langs, now))
        .collect();
    Ok(AchievementsOut {
        achievements,
        points_total: view.points_total,
        wait_timed_out,
    })
}

/// The caller's achievements, with progress.
#[utoipa::path(get, path = "/v1/players/me/achievements", tag = "players", security(("bearer" = [])),
    params(ReadQuery, ("Accept-Language" = Option<String>, Header, description = "Picks localizations")),
    responses((status = 200, body = AchievementsOut, headers(("laurel-wait" = String, description = "With `wait_for`: `reached`, or `timed-out` when the wait ended before the token's events were reflected"))),
        TokenProblems,
    ))]
pub(crate) async fn my_achievements(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<ReadQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let out = achievements_of(&state, &principal.subject, &query, &headers).await?;
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
    let view = state.views.player(&principal.subject)?;
    let not_found = || ApiError::NotFound(format!("no achievement `{id}`"));
    let def = state.achievement(&id).ok_or_else(not_found)?;
    let mut out = achievement_out(&def, &state.icons, &view, &languages(&headers), now_ms())
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
    let timed_out = wait(&state, &principal.subject, &query).await?;
    let view = state.views.player(&principal.subject)?;
    let out = StatsOut {
        stats: view.stats,
        points_total: view.points_total,
        wait_timed_out: timed_out,
    };
    Ok(waited(out, timed_out))
}

/// Any player's achievements (servers and admins).
#[utoipa::path(get, path = "/v1/players/{player_id}/achievements", tag = "players", security(("bearer" = [])),
    params(("player_id" = laurel_schemas::PlayerId, Path), ReadQuery),
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require_server()?;
    no_such_player_unless_valid(&player)?;
    let out = achievements_of(&state, &player, &query, &headers).await?;
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
    params(("player_id" = laurel_schemas::PlayerId, Path), ReadQuery),
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
    let refusals = state
        .views
        .refusals(&player)?
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
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PublishedList {
    achievements: Vec<PublishedOut>,
    players: u64,
}

/// Published achievements (hidden ones omitted) with global rarity.
#[utoipa::path(get, path = "/v1/achievements", tag = "players", security(("bearer" = [])),
    responses((status = 200, body = PublishedList),
        TokenProblems,
    ))]
pub(crate) async fn published(
    State(state): State<AppState>,
    _principal: Principal,
    headers: HeaderMap,
) -> Result<Json<PublishedList>, ApiError> {
    let rarity: Rarity = state.views.rarity()?;
    let langs = languages(&headers);
    let achievements = sorted(state.achievements())
        .iter()
        .filter(|d| !d.archived && d.visibility != Visibility::Hidden)
        .map(|d| {
            let (title, locked, _) = texts(d, &langs);
            PublishedOut {
                id: d.id.to_string(),
                title: title.to_string(),
                description: if d.visibility == Visibility::Secret {
                    String::new()
                } else {
                    locked.to_string()
                },
                icon_url: d.locked_icon.as_ref().map(|i| state.icons.url(i)),
                points: d.points,
                order: d.order,
                visibility: d.visibility,
                earned_percent: rarity.percent(d.id.as_str()),
            }
        })
        .collect();
    Ok(Json(PublishedList {
        achievements,
        players: rarity.players,
    }))
}
