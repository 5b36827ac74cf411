//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use laurel_log::StreamKind;
use serde_json::json;

use crate::state::AppState;

/// How far (in STATS entries) the views of a partition may trail the log and still be ready.
const READY_LAG: u64 = 100_000;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is up")))]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the log is reachable and the views are caught up within bounds.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "Ready"), (status = 503, description = "Log unreachable or views catching up")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let mut lag = 0;
    for p in 0..state.app.views.partitions() {
        match state.app.log.last_seq(StreamKind::Stats, p).await {
            Ok(last) => lag = lag.max(last.saturating_sub(state.app.views.checkpoint(p))),
            Err(e) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"status": "log unreachable", "detail": e.to_string()})),
                );
            }
        }
    }
    if lag > READY_LAG {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "catching up", "lag": lag})),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ready", "lag": lag})))
}
