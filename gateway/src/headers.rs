//! HTTP headers the routes share: conditional requests (`If-Match`, `ETag`) and content
//! negotiation (`Accept-Language`).

use axum::http::{HeaderMap, HeaderValue, header};

use crate::error::ApiError;

/// A definition's version as a strong `ETag`.
pub(crate) fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

/// The version an `If-Match` header names (`"3"`, `3`, `W/"3"`), `Some(None)` for `*`.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<Option<u64>>, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = raw.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(Some(None));
    }
    let digits = raw.trim_start_matches("W/").trim_matches('"');
    digits
        .parse()
        .map(|v| Some(Some(v)))
        .map_err(|_| ApiError::BadRequest(format!("If-Match: `{raw}` is not a version")))
}

/// Language tags of `Accept-Language`, most preferred first.
pub(crate) fn languages(headers: &HeaderMap) -> Vec<String> {
    let Some(raw) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    let mut tags: Vec<(f32, usize, String)> = raw
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim().to_string();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0);
            (!tag.is_empty() && tag != "*" && q > 0.0).then_some((q, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().map(|(_, _, t)| t).collect()
}
