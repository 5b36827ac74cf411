//! Request bodies: size-limited, JSON or msgpack by `Content-Type`, unknown fields refused.

use axum::extract::{FromRequest, Request};
use axum::http::header;
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
        let limit = state.limits.max_body;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::TooLarge(format!("the body is larger than {limit} bytes")))?;
        let parsed = if msgpack {
            laurel_schemas::decode(&bytes).map_err(|e| ApiError::BadRequest(e.to_string()))?
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
        };
        Ok(Parsed(parsed))
    }
}
