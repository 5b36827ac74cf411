//! Bodies: requests size-limited, JSON or msgpack by `Content-Type`, unknown fields
//! refused; answers JSON, or msgpack by `Accept`.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::IntoResponse as _;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A body parsed as `T`, in JSON or (with `Content-Type: application/msgpack`) msgpack.
#[derive(Debug)]
pub(crate) struct Parsed<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for Parsed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let msgpack = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/msgpack"));
        // Read whole (and bounded) by `read_bodies` before anything answered the request.
        let bytes = axum::body::to_bytes(req.into_body(), state.limits.max_body)
            .await
            .map_err(|_| ApiError::TooLarge("the body is too large".into()))?;
        let parsed = if msgpack {
            laurel_schemas::decode_whole(&bytes)
                .map_err(|e| ApiError::BadRequest(format!("invalid msgpack body: {e}")))?
        } else {
            // The path names the field at fault (`available_until`, `conditions[0]`).
            let mut json = serde_json::Deserializer::from_slice(&bytes);
            let parsed = serde_path_to_error::deserialize(&mut json).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                match path.as_str() {
                    "" | "." => ApiError::BadRequest(format!("invalid JSON body: {inner}")),
                    _ => ApiError::BadRequest(format!("invalid JSON body: `{path}`: {inner}")),
                }
            })?;
            json.end()
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
            parsed
        };
        Ok(Parsed(parsed))
    }
}

/// Reads each request's body whole, up to `--max-body-bytes` and within
/// `--body-timeout-secs`, before anything answers the request. An answer given while the
/// client is still sending its body (a 401 or 403 from the headers alone) races that body:
/// the server stops reading, and the bytes still arriving draw a reset that can destroy the
/// answer before the client reads it. A body announced far over the limit (more than twice
/// it) is refused before it is read; one less far over is read up to the limit first, for
/// the same reason.
pub(crate) async fn read_bodies(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = state.limits.max_body;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = announced.filter(|&l| l > (limit as u64).saturating_mul(2)) {
        return ApiError::TooLarge(format!(
            "the body is larger than {limit} bytes (Content-Length {length})"
        ))
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let timeout = state.limits.body_timeout;
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => {
            return ApiError::RequestTimeout(format!(
                "the body did not arrive within {} s",
                timeout.as_secs()
            ))
            .into_response();
        }
        Ok(Err(_)) => {
            return ApiError::TooLarge(format!("the body is larger than {limit} bytes"))
                .into_response();
        }
        Ok(Ok(bytes)) => bytes,
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Whether the client asks for msgpack answers (`Accept: application/msgpack`).
fn wants_msgpack(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|t| t.trim().starts_with("application/msgpack"))
        })
}

/// Answers in msgpack (maps with named fields, as on the log) when the client accepts it;
/// problem documents stay `application/problem+json` as RFC 9457 defines them.
pub(crate) async fn msgpack_replies(
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let msgpack = wants_msgpack(request.headers());
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !msgpack || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::Internal("reading a response body failed".into()).into_response();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return ApiError::Internal("a JSON response did not parse".into()).into_response();
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/msgpack"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    axum::response::Response::from_parts(
        parts,
        axum::body::Body::from(laurel_schemas::encode(&value)),
    )
}
