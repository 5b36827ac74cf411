//! The gateway's one error type: every failure becomes an RFC 9457 problem document.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use laurel_app::ItemError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not what the route takes (malformed, unknown fields).
    #[error("{0}")]
    BadRequest(String),
    /// No valid token.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token that may not do this.
    #[error("{0}")]
    Forbidden(String, Vec<ItemError>),
    /// Nothing here.
    #[error("{0}")]
    NotFound(String),
    /// The route exists, not with this method.
    #[error("this route does not take this method")]
    MethodNotAllowed,
    /// The change would contradict what is stored.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` did not match the current version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body or batch is too large.
    #[error("{0}")]
    TooLarge(String),
    /// The body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// The body is of a type the route does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The content is well-formed but refused, with the reasons.
    #[error("{0}")]
    Unprocessable(String, Vec<ItemError>),
    /// Too many requests for this player.
    #[error("{0}")]
    TooManyRequests(String, u64),
    /// The log cannot take writes now.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged, and answered generically.
    #[error("{0}")]
    Internal(String),
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind in words.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened.
    pub detail: String,
    /// Each refused event or field, when there are some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ItemError>,
}

/// The problems of a route that needs a valid token (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Never built: it only describes answers ApiError makes.
pub(crate) enum TokenProblems {
    /// No valid token.
    #[response(
        status = 401,
        description = "No valid token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
}

/// The problems of a route that needs an admin token (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Never built: it only describes answers ApiError makes.
pub(crate) enum AdminProblems {
    /// No valid token.
    #[response(
        status = 401,
        description = "No valid token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// A valid token without `laurel:admin`.
    #[response(
        status = 403,
        description = "Needs `laurel:admin`",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
}

impl ApiError {
    /// The status, the problem type slug and title of each kind.
    fn describe(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(..) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "version-mismatch",
                "Version mismatch",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "Request timeout",
            ),
            ApiError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::Unprocessable(..) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "Invalid content",
            ),
            ApiError::TooManyRequests(..) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.describe();
        let detail = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "the server failed; the error is logged".to_string()
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "unavailable");
                "the event log is unavailable; retry later".to_string()
            }
            other => other.to_string(),
        };
        let retry = match &self {
            ApiError::TooManyRequests(_, secs) => Some(*secs),
            ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        let errors = match self {
            ApiError::Unprocessable(_, e) | ApiError::Forbidden(_, e) => e,
            _ => Vec::new(),
        };
        let body = Problem {
            kind: format!("https://laurel.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<laurel_app::AppError> for ApiError {
    fn from(e: laurel_app::AppError) -> Self {
        use laurel_app::AppError;
        match e {
            AppError::Malformed(detail) => ApiError::BadRequest(detail),
            AppError::Forbidden(detail, items) => ApiError::Forbidden(detail, items),
            AppError::NotFound(detail) => ApiError::NotFound(detail),
            AppError::Conflict(detail) => ApiError::Conflict(detail),
            AppError::VersionMismatch(detail) => ApiError::PreconditionFailed(detail),
            AppError::TooLarge(detail) => ApiError::TooLarge(detail),
            AppError::Invalid(detail, items) => ApiError::Unprocessable(detail, items),
            AppError::Throttled(detail, retry_after) => {
                ApiError::TooManyRequests(detail, retry_after)
            }
            AppError::Unavailable(detail) => ApiError::Unavailable(detail),
            AppError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

/// Store and log failures mean what the application layer says they mean (one mapping,
/// in `laurel_app::AppError`), whichever layer meets them.
macro_rules! through_app_error {
    ($($source:ty),*) => {$(
        impl From<$source> for ApiError {
            fn from(e: $source) -> Self {
                ApiError::from(laurel_app::AppError::from(e))
            }
        }
    )*};
}

through_app_error!(
    laurel_derived::StoreError,
    laurel_log::AppendError,
    laurel_log::LogError
);

/// Marks a response whose body is another API's contract (the GameKit envelope), which
/// `problems_only` must leave as it is.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim;

/// Answers every refusal as a problem document, whatever layer made it: axum's own path and
/// query rejections (an undecodable path, a repeated query parameter) answer in plain text,
/// which this turns into `application/problem+json` with that text as the detail. Headers
/// (`Retry-After`, the request id) are kept.
pub(crate) async fn problems_only(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if response.extensions().get::<Verbatim>().is_some() {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let title = status.canonical_reason().unwrap_or("Error");
    let problem = Problem {
        kind: format!(
            "https://laurel.dev/problems/{}",
            title.to_lowercase().replace(' ', "-")
        ),
        title,
        status: status.as_u16(),
        detail: if text.is_empty() {
            title.to_lowercase()
        } else {
            text
        },
        errors: Vec::new(),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}
