//! Laurel's gateway: the HTTP API and the `laurel` command line.

pub mod auth;
mod body;
pub mod cli;
pub mod error;
pub mod metrics;
pub mod notify;
mod position;
mod routes;
pub mod serve;
pub mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post, put};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::{AppState, Limits};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The HTTP API over `state`.
pub fn app(state: AppState) -> Router {
    use routes::{admin, ingest, notifications, ops, players};
    Router::new()
        .route("/v1/events", post(ingest::post_events))
        .route("/v1/players/me/achievements", get(players::my_achievements))
        .route("/v1/players/me/achievements/{id}", get(players::my_achievement))
        .route("/v1/players/me/stats", get(players::my_stats))
        .route("/v1/players/me/notifications", get(notifications::my_notifications))
        .route("/v1/players/{player_id}/achievements", get(players::player_achievements))
        .route("/v1/achievements", get(players::published))
        .route("/v1/admin/stats", get(admin::list_stats))
        .route("/v1/admin/stats/{name}", put(admin::put_stat))
        .route("/v1/admin/achievements", get(admin::list_achievements))
        .route(
            "/v1/admin/achievements/{id}",
            put(admin::put_achievement).get(admin::get_achievement).delete(admin::archive_achievement),
        )
        .route("/v1/admin/players/{player_id}/grants", post(admin::grant))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(metrics::serve))
        .route_layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        // Bodies are limited (with a problem+json 413) by the `Parsed` extractor.
        .layer(DefaultBodyLimit::disable())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
