//! `POST /v1/admin/replay`: the replay (`laurel_app::replay`) answered as
//! newline-delimited JSON.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use laurel_schemas::{ReplayLine, ReplayRequest};

use crate::auth::Admin;
use crate::body::Parsed;
use crate::error::{AdminProblems, ApiError, Problem};
use crate::state::AppState;

/// Re-fold the STATS history against definitions and report who would gain and who would
/// not earn again; with `apply`, apply the definitions and grant the gains.
#[utoipa::path(post, path = "/v1/admin/replay", tag = "admin", security(("bearer" = [])),
    request_body = ReplayRequest,
    responses(
        (status = 200, description = "Newline-delimited JSON: `progress` lines, then one `report` (or `error`) line", body = ReplayLine, content_type = "application/x-ndjson"),
        AdminProblems,
        (status = 409, description = "Another replay is running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The definitions are invalid: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn replay(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Parsed(request): Parsed<ReplayRequest>,
) -> Result<Response, ApiError> {
    let mut receiver = laurel_app::replay::start(state.app, admin.subject, request).await?;
    let body = futures::stream::poll_fn(move |cx| {
        receiver
            .poll_recv(cx)
            .map(|line| line.map(|line| Ok::<_, std::convert::Infallible>(ndjson(&line))))
    });
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// One line of the answer.
fn ndjson(line: &ReplayLine) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(line).expect("a replay line serializes");
    bytes.push(b'\n');
    bytes
}
