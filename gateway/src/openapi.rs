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
    modifiers(&Bearer),
    // Named by `localizations`' schema (a map keyed by language tag), and by the player
    // lookups' path parameter, not by a handler's types.
    components(schemas(laurel_schemas::Localization, laurel_schemas::StoredPlayerId))
)]
pub(crate) struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = crate::routes().into_openapi();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
        ];
        for operation in operations.into_iter().flatten() {
            document_common_refusals(operation);
        }
    }
    doc
}

/// Adds the refusals any route gives from the layers before its handler, where the route
/// does not document them itself: a 400 for a malformed path, query, header or body, and,
/// for a route with a body, a 408 for a body that did not arrive in time, a 413 for one
/// over the limit and a 415 for one neither JSON nor msgpack.
fn document_common_refusals(operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    let has_body = operation.request_body.is_some();
    let has_input = has_body || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut refusals = Vec::new();
    if has_input {
        refusals.push((
            "400",
            "Malformed request: a path, query, header or body the schema does not admit",
        ));
    }
    if has_body {
        refusals.push(("408", "The body did not arrive within the body timeout"));
        refusals.push(("413", "The body is larger than the limit"));
        refusals.push((
            "415",
            "The body's Content-Type is neither application/json nor application/msgpack",
        ));
    }
    for (status, description) in refusals {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description).into());
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `points` is a u32: the document says so (it said int32, while 3,000,000,000 was
    /// accepted).
    #[test]
    fn points_are_documented_as_the_server_takes_them() {
        let document = serde_json::to_value(super::document()).unwrap();
        for schema in ["AchievementSpec", "AchievementDefinition"] {
            let points = &document["components"]["schemas"][schema]["properties"]["points"];
            assert_eq!(
                (&points["format"], &points["minimum"], &points["maximum"]),
                (
                    &serde_json::json!("int64"),
                    &serde_json::json!(0),
                    &serde_json::json!(u32::MAX)
                ),
                "{schema}"
            );
        }
    }

    /// Every rule JSON Schema can state is stated, so a schema-valid request is not refused
    /// for it: a non-empty batch, `max_delta` above 0, the keys of definitions files and
    /// localizations, and a 415 for a body neither JSON nor msgpack.
    #[test]
    fn the_document_states_the_rules_json_schema_can() {
        let document = serde_json::to_value(super::document()).unwrap();
        let schemas = &document["components"]["schemas"];
        assert_eq!(schemas["IngestBody"]["properties"]["events"]["minItems"], 1);
        assert_eq!(
            schemas["StatSpec"]["properties"]["max_delta"]["exclusiveMinimum"],
            0
        );
        let file = &schemas["DefinitionsFile"]["properties"];
        for (map, pattern) in [
            ("stats", laurel_schemas::names::STAT_NAME_PATTERN),
            (
                "achievements",
                laurel_schemas::names::ACHIEVEMENT_ID_PATTERN,
            ),
        ] {
            assert_eq!(file[map]["propertyNames"]["pattern"], pattern, "{map}");
            assert_eq!(file[map]["propertyNames"]["minLength"], 1, "{map}");
        }
        let localizations = &schemas["AchievementSpec"]["properties"]["localizations"];
        assert_eq!(
            localizations["propertyNames"]["pattern"],
            laurel_schemas::defs::LANGUAGE_TAG_PATTERN
        );
        let events = &document["paths"]["/v1/events"]["post"]["responses"];
        assert!(events.get("415").is_some(), "{events}");
    }

    /// docs/reference.md documents exactly the fields each schema it names has: each section
    /// says `Schema: \`Name\`` and has a table row per field.
    #[test]
    fn the_field_reference_matches_the_schemas() {
        let text = include_str!("../../docs/reference.md");
        let document = serde_json::to_value(super::document()).unwrap();
        let schemas = &document["components"]["schemas"];
        let mut checked = 0;
        for section in text.split("\n#").skip(1) {
            let Some(name) = section
                .split("Schema: `")
                .nth(1)
                .and_then(|rest| rest.split('`').next())
            else {
                continue;
            };
            let documented: BTreeSet<&str> = section
                .lines()
                .filter_map(|l| l.strip_prefix("| `"))
                .filter_map(|l| l.split('`').next())
                .collect();
            let properties = schemas[name]["properties"].as_object().unwrap_or_else(|| {
                panic!("docs/reference.md names `{name}`, which is not a schema")
            });
            let actual: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
            assert_eq!(
                documented, actual,
                "docs/reference.md's `{name}` section against the code"
            );
            checked += 1;
        }
        assert!(checked >= 7, "the reference has its sections ({checked})");
    }
}
