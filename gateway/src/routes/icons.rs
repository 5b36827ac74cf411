//! Icons: upload (admin) and serve (anyone, immutable, CDN-friendly).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use laurel_schemas::{AchievementDefinition, Reason, ValidationError, is_icon_digest};
use serde::Serialize;

use crate::auth::Admin;
use crate::error::{AdminProblems, ApiError, ItemError, Problem};
use crate::headers::{etag, if_match};
use crate::state::AppState;
use laurel_app::definitions;
use laurel_app::icons::{IconError, Normalized, StoreError};

/// What every served icon says about caching: its URL names its bytes, so it never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<IconError> for ApiError {
    fn from(e: IconError) -> Self {
        match e {
            IconError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
            IconError::NotAnImage => ApiError::UnsupportedMediaType(e.to_string()),
            IconError::TooManyPixels { .. } | IconError::Undecodable { .. } => {
                ApiError::Unprocessable(
                    "the image was refused".into(),
                    vec![ItemError::from(ValidationError::new(
                        "body",
                        Reason::Image {
                            problem: e.to_string(),
                        },
                    ))],
                )
            }
        }
    }
}

/// An uploaded icon, and the definition that now shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IconUploaded {
    /// The icon's name: the SHA-256 of its stored PNG, in hex.
    digest: String,
    /// Where clients fetch it.
    url: String,
    /// What it is stored as (always `image/png`).
    content_type: &'static str,
    /// Its side, in pixels (the icon is square).
    side: u32,
    /// The type the upload was.
    source_type: &'static str,
    /// The upload's width, in pixels.
    source_width: u32,
    /// The upload's height, in pixels.
    source_height: u32,
    /// The achievement, with the icon in place.
    achievement: AchievementDefinition,
}

/// An upload's body in the OpenAPI document: any bytes (what makes them an image is told by
/// the bytes themselves).
struct ImageBytes;

impl utoipa::PartialSchema for ImageBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl utoipa::ToSchema for ImageBytes {}

/// Upload an achievement's icon (the raw image as the body: PNG, JPEG or WebP, told by its
/// bytes, at most 512 KiB and 4096 pixels a side). It is redrawn as a square PNG, stored
/// under its digest, and set as the achievement's `locked_icon` or `unlocked_icon`.
#[utoipa::path(put, path = "/v1/admin/achievements/{id}/icons/{slot}", tag = "admin", security(("bearer" = [])),
    params(
        ("id" = laurel_schemas::AchievementId, Path),
        ("slot" = String, Path, pattern = "^(locked|unlocked)$", description = "`locked` or `unlocked`"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "The achievement's version being replaced, or `*`"),
    ),
    request_body(description = "The image", content((ImageBytes = "image/png"), (ImageBytes = "image/jpeg"), (ImageBytes = "image/webp"), (ImageBytes = "application/octet-stream"))),
    responses((status = 200, description = "Stored and set", body = IconUploaded),
        AdminProblems,
        (status = 404, description = "No such achievement", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` is not the current version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 512 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a PNG, JPEG or WebP image", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Declares too many pixels, or does not decode", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The icon store or the log is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((id, slot)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let locked = match slot.as_str() {
        "locked" => true,
        "unlocked" => false,
        _ => {
            return Err(ApiError::NotFound(format!(
                "no icon slot `{slot}`: locked or unlocked"
            )));
        }
    };
    let expected = if_match(&headers)?;
    // Checked before anything is stored (on definitions caught up with DEFS: the achievement
    // may have been defined through another gateway a moment ago), and again under the
    // admin lock below.
    let current = definitions::achievement(&state.app, &id).await?;
    definitions::check_version(expected, current.version)?;
    let side = state.app.icons.side;
    let icon: Normalized =
        laurel_runtime::blocking(move || laurel_app::icons::normalize::normalize(&body, side))
            .await?;
    // Written before the definition names it: a definition never references a missing icon.
    // Until the definition is in force, the collection leaves it.
    let _uploading = state.app.icons.uploading(&icon.digest);
    state
        .app
        .icons
        .store
        .put(&icon.digest, icon.png.clone().into())
        .await?;
    let definition = definitions::set_icon(
        &state.app,
        &admin.subject,
        &id,
        locked,
        &icon.digest,
        expected,
    )
    .await?;
    let version = definition.version;
    let body = IconUploaded {
        url: state.app.icons.url(&icon.digest),
        digest: icon.digest,
        content_type: "image/png",
        side,
        source_type: icon.source.media_type(),
        source_width: icon.source_size.0,
        source_height: icon.source_size.1,
        achievement: definition,
    };
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}

/// An icon's bytes (`HEAD` too), immutable: `Cache-Control: public, max-age=31536000,
/// immutable`, a strong `ETag`, `304` on a matching `If-None-Match`. No token needed.
#[utoipa::path(get, path = "/v1/icons/{digest}", tag = "icons",
    params(
        ("digest" = String, Path, pattern = "^[0-9a-f]{64}$", description = "The icon's digest"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "An `ETag` this client holds"),
    ),
    responses(
        (status = 200, description = "The icon", content_type = "image/png", body = Vec<u8>),
        (status = 304, description = "The client's copy is current"),
        (status = 404, description = "No such icon", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The icon store is unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn serve(
    State(state): State<AppState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound(format!("no icon `{digest}`"));
    if !is_icon_digest(&digest) {
        return Err(missing());
    }
    let tag = format!("\"{digest}\"");
    let cached = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t == tag || t.strip_prefix("W/") == Some(tag.as_str()));
    let mut response = if cached && state.app.icons.store.contains(&digest).await? {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let bytes = state
            .app
            .icons
            .store
            .get(&digest)
            .await?
            .ok_or_else(missing)?;
        let mut response = bytes.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).expect("hex digits are a valid header"),
    );
    // Served as an image and nothing else, whatever a browser would guess.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}
