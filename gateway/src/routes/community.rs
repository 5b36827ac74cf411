//! Community totals and their goals.

use axum::Json;
use axum::extract::{Path, State};
use laurel_app::community::{self, CommunityOut};

use crate::auth::Principal;
use crate::error::{ApiError, Problem, TokenProblems};
use crate::state::AppState;

/// A community total (a stat with `"scope": "global"`) and its goals, live; a player's token
/// also reads its own contribution and earns.
#[utoipa::path(get, path = "/v1/community/{stat}", tag = "players", security(("bearer" = [])),
    params(("stat" = laurel_schemas::StatName, Path)),
    responses((status = 200, body = CommunityOut),
        TokenProblems,
        (status = 404, description = "No community stat by that name", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn community(
    State(state): State<AppState>,
    principal: Principal,
    Path(stat): Path<String>,
) -> Result<Json<CommunityOut>, ApiError> {
    let caller = principal.caller();
    let player = (!caller.is_server()).then_some(principal.subject.as_str());
    Ok(Json(community::view(&state.app, &stat, player).await?))
}
