//! `GET /v1/admin/audit`: every admin action, who and when, newest first.

use axum::Json;
use axum::extract::{Query, State};
use laurel_app::audit::{self, AuditEntry, MAX_ENTRIES};
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::error::{AdminProblems, ApiError, Problem};
use crate::state::AppState;

/// `?limit=`: how many entries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// How many entries, newest first (default 200, 1 to 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The audit log's entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditOut {
    /// Newest first.
    entries: Vec<AuditEntry>,
}

/// Every admin action (definition changes, icon uploads, definitions files, grants,
/// replays' applies): who, when, what; newest first. Every gateway
/// answers the same: it is read from DEFS.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditOut),
        AdminProblems,
        (status = 400, description = "`limit` is not 1 to 1000", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditOut>, ApiError> {
    let limit = query.limit.unwrap_or(200);
    if !(1..=MAX_ENTRIES).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be 1 to {MAX_ENTRIES}, not {limit}"
        )));
    }
    // Caught up with DEFS first: an action made through another gateway a moment ago shows.
    state.app.catch_up_defs().await?;
    Ok(Json(AuditOut {
        entries: audit::entries(&state.app, limit),
    }))
}
