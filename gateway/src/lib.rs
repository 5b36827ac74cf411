//! Laurel's gateway: the HTTP API over the application layer (crate `laurel-app`): routes,
//! tokens, bodies, problems, OpenAPI, live notifications, metrics, listening and TLS. The
//! `laurel` binary builds its state and serves it.

pub mod auth;
pub mod body;
mod console;
pub mod cors;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod query;
mod routes;
pub mod state;
pub mod tls;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use laurel_app::Limits;
pub use state::AppState;

/// Lowercase hex of `bytes` (digests, signatures, keys).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route with its documentation: the router and `/openapi.json` come from here.
fn routes() -> OpenApiRouter<AppState> {
    use routes::{
        admin, audit, community, icons, ingest, insights, notifications, ops, players, replay,
        rewards, session, timeline,
    };
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(utoipa_axum::routes!(ingest::post_events))
        .routes(utoipa_axum::routes!(players::my_achievements))
        .routes(utoipa_axum::routes!(players::my_achievement))
        .routes(utoipa_axum::routes!(players::my_stats))
        .routes(utoipa_axum::routes!(rewards::my_rewards))
        .routes(utoipa_axum::routes!(rewards::claim))
        .routes(utoipa_axum::routes!(notifications::my_notifications))
        .routes(utoipa_axum::routes!(notifications::all_notifications))
        .routes(utoipa_axum::routes!(session::session))
        .routes(utoipa_axum::routes!(audit::audit))
        .routes(utoipa_axum::routes!(players::player_achievements))
        .routes(utoipa_axum::routes!(players::player_stats))
        .routes(utoipa_axum::routes!(players::player_refusals))
        .routes(utoipa_axum::routes!(players::published))
        .routes(utoipa_axum::routes!(community::community))
        .routes(utoipa_axum::routes!(admin::list_stats))
        .routes(utoipa_axum::routes!(admin::put_stat))
        .routes(utoipa_axum::routes!(insights::stat_summary))
        .routes(utoipa_axum::routes!(insights::rarity_history))
        .routes(utoipa_axum::routes!(admin::put_season))
        .routes(utoipa_axum::routes!(admin::list_seasons))
        .routes(utoipa_axum::routes!(admin::apply_definitions))
        .routes(utoipa_axum::routes!(admin::list_achievements))
        .routes(utoipa_axum::routes!(
            admin::put_achievement,
            admin::get_achievement,
            admin::archive_achievement
        ))
        .routes(utoipa_axum::routes!(icons::upload))
        .routes(utoipa_axum::routes!(icons::serve))
        .routes(utoipa_axum::routes!(admin::grant))
        .routes(utoipa_axum::routes!(admin::reset))
        .routes(utoipa_axum::routes!(timeline::player_timeline))
        .routes(utoipa_axum::routes!(replay::replay))
        .routes(utoipa_axum::routes!(ops::healthz))
        .routes(utoipa_axum::routes!(ops::readyz))
        .routes(utoipa_axum::routes!(metrics::serve))
        .routes(utoipa_axum::routes!(openapi::serve))
}

/// The HTTP API over `state`, with other surfaces over the same application layer (the
/// GameKit routes) beside it: every route gets the same body limits, problem documents,
/// request ids, traces and metrics.
pub fn app(state: AppState, surfaces: impl IntoIterator<Item = Router>) -> Router {
    let (router, _) = routes().split_for_parts();
    let mut router: Router = router.with_state(state.clone());
    for surface in surfaces.into_iter().chain([console::router()]) {
        router = router.merge(surface);
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Bodies are read whole and limited (with a problem+json 413) by `read_bodies`.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::read_bodies,
        ))
        .layer(axum::middleware::from_fn(error::problems_only))
        .layer(axum::middleware::from_fn(body::msgpack_replies))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
