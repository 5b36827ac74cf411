//! The OpenAPI 3.1 document of the HTTP API, generated from the route handlers and types:
//! the router and the document are built from the same list (`crate::routes()`), so a
//! route cannot be served undocumented or documented unserved.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Adds the bearer-token scheme the routes name.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// What the document says besides its paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Laurel",
        description = "An event-sourced achievements backend for games."
    ),
    modifiers(&Bearer)
)]
pub(crate) struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::routes().into_openapi()
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API")))]
pub(crate) async fn serve() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the document serializes")
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.as_str(),
    )
}
