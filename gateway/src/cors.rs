//! Cross-origin requests (CORS) for browser games served from another origin than the API:
//! `--cors-origins`. Tokens travel in `Authorization`, never in cookies, so no credentials
//! are allowed; the headers the API and the SDKs use are.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Why a configured origin cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an origin (`https://game.example.com`, or `*` for any)")]
pub struct BadOrigin(String);

/// Checks `origins` as `--cors-origins` gives them.
pub fn check(origins: &[String]) -> Result<(), BadOrigin> {
    allowed(origins).map(|_| ())
}

/// The origins allowed (`None`: no cross-origin request is).
fn allowed(origins: &[String]) -> Result<Option<AllowOrigin>, BadOrigin> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return Ok(None);
    }
    if origins.contains(&"*") {
        return Ok(Some(AllowOrigin::any()));
    }
    let values = origins
        .iter()
        .map(|o| {
            let host = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"));
            let valid = host.is_some_and(|h| !h.is_empty() && !h.contains('/'));
            HeaderValue::from_str(o)
                .ok()
                .filter(|_| valid)
                .ok_or_else(|| BadOrigin((*o).to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(AllowOrigin::list(values)))
}

/// `router` answering cross-origin requests from `origins` (`*`: any); unchanged when none.
pub fn with_cors(router: Router, origins: &[String]) -> Result<Router, BadOrigin> {
    let Some(allow) = allowed(origins)? else {
        return Ok(router);
    };
    let cors = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::ACCEPT_LANGUAGE,
            header::IF_MATCH,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::ETAG,
            header::LOCATION,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600));
    Ok(router.layer(cors))
}
