//! `GET /v1/admin/players/{player_id}/timeline`: a player's recent history, for support.

use axum::Json;
use axum::extract::{Path, Query, State};
use laurel_app::timeline::{self, MAX_ENTRIES, Timeline};
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::{AdminProblems, ApiError, Problem};
use crate::state::AppState;

/// `?limit=`: how many entries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitQuery {
    /// How many entries, newest first (default 100, 1 to 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// What happened to a player lately, newest first: each stat change (from what to what),
/// milestone, unlock, reward and refused event (with the reason), read from the player's
/// OUTPUT partition (its last 20,000 positions).
#[utoipa::path(get, path = "/v1/admin/players/{player_id}/timeline", tag = "admin", security(("bearer" = [])),
    params(("player_id" = laurel_schemas::StoredPlayerId, Path), LimitQuery),
    responses((status = 200, body = Timeline),
        AdminProblems,
        (status = 400, description = "`limit` is not 1 to 500", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No player can have this id (it breaks the player id rules)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The log is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn player_timeline(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(player): Path<String>,
    Query(query): Query<LimitQuery>,
) -> Result<Json<Timeline>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_ENTRIES).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be 1 to {MAX_ENTRIES}, not {limit}"
        )));
    }
    laurel_schemas::PlayerId::stored(player.as_str()).map_err(|reason| {
        ApiError::NotFound(format!("no player can have the id {player:?}: it {reason}"))
    })?;
    Ok(Json(timeline::timeline(&state.app, &player, limit).await?))
}
