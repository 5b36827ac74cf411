//! `POST /v1/events`: a batch of stat events, validated whole, appended to STATS.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use laurel_schemas::Source;
use serde::Serialize;

use crate::app::ingest::{IngestBody, append, check_batch, source_of, throttle};
use crate::app::now_ms;
use crate::auth::Principal;
use crate::body::Parsed;
use crate::error::{ApiError, Problem, TokenProblems};
use crate::metrics::IngestOutcome;
use crate::state::AppState;

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
    if body.len() > state.limits.max_batch {
        return Err(ApiError::TooLarge(format!(
            "a batch holds at most {} events; this one has {}",
            state.limits.max_batch,
            body.len()
        )));
    }
    let received_at = now_ms();
    let count = body.len();
    // A refusal is decided on definitions at least as new as DEFS when the request came:
    // a stat defined a moment ago through another gateway counts.
    let checked = state
        .decide_on_latest(|| {
            state
                .defs
                .read(|defs| check_batch(&body, &principal, defs, received_at))
        })
        .await;
    let events = match checked {
        Ok(events) => events,
        Err(e) => {
            state.metrics.ingested(IngestOutcome::Refused, count);
            return Err(e);
        }
    };
    let source = source_of(&principal);
    if source == Source::Player
        && let Err(e) = throttle(&state, &principal.subject, events.len())
    {
        state
            .metrics
            .ingested(IngestOutcome::Throttled, events.len());
        return Err(e);
    }
    let (token, accepted, duplicates) = append(&state, events).await?;
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
