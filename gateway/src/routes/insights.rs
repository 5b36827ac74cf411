//! Across players, for the console: a stat's spread and refusals
//! (`GET /v1/admin/stats/{name}/summary`), an achievement's earners day by day
//! (`GET /v1/admin/achievements/{id}/rarity`).

use axum::Json;
use axum::extract::{Path, Query, State};
use laurel_app::insights::{self, MAX_BUCKETS, RarityHistory, StatSummary};
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::{AdminProblems, ApiError, Problem};
use crate::state::AppState;

/// `?buckets=`: how many histogram buckets.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct BucketsQuery {
    /// How many equal-width buckets (default 20, 1 to 100).
    #[param(minimum = 1, maximum = 100)]
    buckets: Option<usize>,
}

/// How a stat's values spread over the players (a histogram), and its events the engine
/// refused, by reason.
#[utoipa::path(get, path = "/v1/admin/stats/{name}/summary", tag = "admin", security(("bearer" = [])),
    params(("name" = laurel_schemas::StatName, Path), BucketsQuery),
    responses((status = 200, body = StatSummary),
        AdminProblems,
        (status = 400, description = "`buckets` is not 1 to 100", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stat", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn stat_summary(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(name): Path<String>,
    Query(query): Query<BucketsQuery>,
) -> Result<Json<StatSummary>, ApiError> {
    let buckets = query.buckets.unwrap_or(20);
    if !(1..=MAX_BUCKETS).contains(&buckets) {
        return Err(ApiError::BadRequest(format!(
            "`buckets` must be 1 to {MAX_BUCKETS}, not {buckets}"
        )));
    }
    Ok(Json(
        insights::stat_summary(&state.app, &name, buckets).await?,
    ))
}

/// How many players earned an achievement, and how many first earned it on each day.
#[utoipa::path(get, path = "/v1/admin/achievements/{id}/rarity", tag = "admin", security(("bearer" = [])),
    params(("id" = laurel_schemas::AchievementId, Path)),
    responses((status = 200, body = RarityHistory),
        AdminProblems,
        (status = 404, description = "No such achievement", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn rarity_history(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
) -> Result<Json<RarityHistory>, ApiError> {
    Ok(Json(insights::rarity_history(&state.app, &id).await?))
}
