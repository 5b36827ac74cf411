//! `POST /v1/events`: a batch of stat events, validated whole, appended to STATS.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use laurel_schemas::Source;
use serde::Serialize;

use crate::auth::Principal;
use crate::body::Parsed;
use crate::error::{ApiError, Problem, TokenProblems};
use crate::metrics::IngestOutcome;
use crate::state::AppState;
use laurel_app::ingest::{IngestBody, append, check_on_latest, throttle};
use laurel_app::now_ms;

/// The ingest answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    accepted: usize,
    duplicates: usize,
    token: String,
}

/// Report stat events: a batch validated whole, appended to the log.
#[utoipa::path(post, path = "/v1/events", tag = "ingest", security(("bearer" = [])),
    request_body(content(
        (IngestBody = "application/json"),
        (IngestBody = "application/msgpack"),
    )),
    responses(
        (status = 202, description = "Appended; `token` is a read-your-writes position", body = Accepted),
        (status = 400, description = "Malformed body or unknown field", body = Problem, content_type = "application/problem+json"),
        TokenProblems,
        (status = 403, description = "Another player's events, or a stat players may not write", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or batch too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid events: `errors` names each by index, field and reason", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-player rate exceeded; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The log is unreachable; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn post_events(
    State(state): State<AppState>,
    principal: Principal,
    Parsed(body): Parsed<IngestBody>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if body.len() > state.app.limits.max_batch {
        return Err(ApiError::TooLarge(format!(
            "a batch holds at most {} events; this one has {}",
            state.app.limits.max_batch,
            body.len()
        )));
    }
    let received_at = now_ms();
    let count = body.len();
    let caller = principal.caller();
    let checked = check_on_latest(&state.app, &body, &caller, received_at).await;
    let events = match checked {
        Ok(events) => events,
        Err(e) => {
            state.metrics.ingested(IngestOutcome::Refused, count);
            return Err(e.into());
        }
    };
    let source = caller.source;
    if source == Source::Player
        && let Err(e) = throttle(&state.app, &principal.subject, events.len())
    {
        state
            .metrics
            .ingested(IngestOutcome::Throttled, events.len());
        return Err(e.into());
    }
    let (token, accepted, duplicates) = append(&state.app, events).await?;
    state.metrics.ingested(IngestOutcome::Accepted, accepted);
    state.metrics.ingested(IngestOutcome::Duplicate, duplicates);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted,
            duplicates,
            token: token.to_string(),
        }),
    ))
}
