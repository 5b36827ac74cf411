//! Bodies: requests size-limited, JSON or msgpack by `Content-Type`, unknown fields
//! refused; answers JSON, or msgpack by `Accept`.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::IntoResponse as _;
use serde::de::DeserializeOwned;

use laurel_schemas::ValidationError;

use crate::error::{ApiError, ItemError};
use crate::state::AppState;

/// A body parsed as `T`, in JSON or (with `Content-Type: application/msgpack`) msgpack.
#[derive(Debug)]
pub(crate) struct Parsed<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for Parsed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let msgpack = match encoding_of(req.headers().get(header::CONTENT_TYPE)) {
            Some(Encoding::Json) => false,
            Some(Encoding::Msgpack) => true,
            None => {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be JSON (Content-Type: application/json) or msgpack (Content-Type: application/msgpack)".into(),
                ));
            }
        };
        // Read whole (and bounded) by `read_bodies` before anything answered the request.
        let bytes = axum::body::to_bytes(req.into_body(), state.app.limits.max_body)
            .await
            .map_err(|_| ApiError::TooLarge("the body is too large".into()))?;
        let parsed = parse(&bytes, msgpack)?;
        Ok(Parsed(parsed))
    }
}

/// The encodings a body may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Msgpack,
}

/// A body's encoding by its `Content-Type` (`application/json` or `application/msgpack`,
/// parameters such as `charset` aside, in any case), or `None` for any other type or none.
fn encoding_of(content_type: Option<&axum::http::HeaderValue>) -> Option<Encoding> {
    let media = content_type?.to_str().ok()?.split(';').next()?.trim();
    if media.eq_ignore_ascii_case("application/json") {
        Some(Encoding::Json)
    } else if media.eq_ignore_ascii_case("application/msgpack") {
        Some(Encoding::Msgpack)
    } else {
        None
    }
}

/// Parses a request body as `T`: one JSON value, or one msgpack value with nothing after it.
/// A refusal names the field at fault (`conditions[0]`, `events[2].stat`). A value of the
/// right shape that fails a rule of its own (an id's pattern, exactly one of `at_least` and
/// `at_most`) is a 422 with the rule's code; anything else malformed is a 400.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8], msgpack: bool) -> Result<T, ApiError> {
    laurel_schemas::take_refusal();
    let (encoding, result) = if msgpack {
        let mut rest = bytes;
        let result = {
            let mut de = rmp_serde::Deserializer::new(&mut rest).with_human_readable();
            de.set_max_depth(laurel_schemas::codec::MAX_DEPTH);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                (path, e.into_inner().to_string())
            })
        };
        let result = match result {
            Ok(_) if !rest.is_empty() => Err((
                String::new(),
                format!("{} bytes follow the msgpack value", rest.len()),
            )),
            other => other,
        };
        ("msgpack", result)
    } else {
        let mut json = serde_json::Deserializer::from_slice(bytes);
        let result = serde_path_to_error::deserialize(&mut json)
            .map_err(|e| {
                let path = e.path().to_string();
                (path, e.into_inner().to_string())
            })
            .and_then(|v| {
                json.end().map_err(|e| (String::new(), e.to_string()))?;
                Ok(v)
            });
        ("JSON", result)
    };
    let (path, message) = match result {
        Ok(value) => return Ok(value),
        Err(failure) => failure,
    };
    let path = if path == "." { String::new() } else { path };
    // A noted refusal is this failure's only when serde's message is the reason's own.
    if let Some(reason) = laurel_schemas::take_refusal()
        && !path.is_empty()
        && message.starts_with(&reason.to_string())
    {
        return Err(ApiError::Unprocessable(
            format!("invalid {encoding} body: `{path}` is invalid"),
            vec![ItemError::from(ValidationError::new(path, reason))],
        ));
    }
    Err(ApiError::BadRequest(if path.is_empty() {
        format!("invalid {encoding} body: {message}")
    } else {
        format!("invalid {encoding} body: `{path}`: {message}")
    }))
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
    let limit = state.app.limits.max_body;
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
    let timeout = state.app.limits.body_timeout;
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

#[cfg(test)]
mod tests {
    use super::*;
    use laurel_schemas::{AchievementSpec, Reason};

    fn refusal<T: DeserializeOwned + std::fmt::Debug>(
        body: &serde_json::Value,
        msgpack: bool,
    ) -> ApiError {
        let bytes = if msgpack {
            laurel_schemas::encode(body)
        } else {
            serde_json::to_vec(body).unwrap()
        };
        parse::<T>(&bytes, msgpack).unwrap_err()
    }

    #[test]
    fn only_json_and_msgpack_bodies_are_taken() {
        let of = |v: &str| encoding_of(Some(&axum::http::HeaderValue::from_str(v).unwrap()));
        assert_eq!(of("application/json"), Some(Encoding::Json));
        assert_eq!(of("Application/JSON; charset=utf-8"), Some(Encoding::Json));
        assert_eq!(of("application/msgpack"), Some(Encoding::Msgpack));
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/msgpackish",
            "",
        ] {
            assert_eq!(of(other), None, "{other}");
        }
        assert_eq!(encoding_of(None), None);
    }

    #[test]
    fn one_value_in_either_encoding_and_nothing_after_it() {
        let body = serde_json::json!({"events": [{"stat": "kills", "value": 1}]});
        let mut bytes = laurel_schemas::encode(&body);
        let one: serde_json::Value = parse(&bytes, true).unwrap();
        assert_eq!(one["events"][0]["value"], 1);
        bytes.push(0xc0); // a msgpack nil after the value
        let ApiError::BadRequest(message) = parse::<serde_json::Value>(&bytes, true).unwrap_err()
        else {
            panic!("trailing msgpack bytes must be a 400");
        };
        assert!(message.contains("1 bytes follow"), "{message}");
        let mut json = serde_json::to_vec(&body).unwrap();
        json.extend_from_slice(b" x");
        assert!(matches!(
            parse::<serde_json::Value>(&json, false),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_rule_broken_inside_a_body_is_a_422_naming_the_field_and_code() {
        for msgpack in [false, true] {
            let both = serde_json::json!({"title": "t", "conditions": [
                {"stat": "kills", "at_least": 1}, {"stat": "kills", "at_least": 1, "at_most": 5}]});
            let ApiError::Unprocessable(_, errors) = refusal::<AchievementSpec>(&both, msgpack)
            else {
                panic!("at_least with at_most must be a 422 ({msgpack})");
            };
            assert_eq!(errors[0].field.as_deref(), Some("conditions[1]"));
            assert_eq!(errors[0].code.code(), "exactly_one_of");

            let neither = serde_json::json!({"title": "t", "conditions": [{"stat": "kills"}]});
            assert!(matches!(
                refusal::<AchievementSpec>(&neither, msgpack),
                ApiError::Unprocessable(..)
            ));

            let empty_id = serde_json::json!({"title": "t", "requires": ["a", ""]});
            let ApiError::Unprocessable(_, errors) = refusal::<AchievementSpec>(&empty_id, msgpack)
            else {
                panic!("an empty id must be a 422 ({msgpack})");
            };
            assert_eq!(errors[0].field.as_deref(), Some("requires[1]"));
            assert!(matches!(errors[0].code, Reason::Empty), "{:?}", errors[0]);
        }
    }

    #[test]
    fn deep_nesting_is_refused_in_either_encoding_before_it_overflows_the_stack() {
        // [[[...1...]]] 10,000 deep, as an event's free-form value (found by the fuzzer: a
        // msgpack body nested 1,000 deep overflowed a 2 MiB stack).
        let depth = 10_000;
        let mut msgpack =
            laurel_schemas::encode(&serde_json::json!({"events": [{"stat": "kills"}]}));
        msgpack[0] += 1; // a map of two entries: the value follows
        msgpack.extend(laurel_schemas::encode("value"));
        msgpack.extend(std::iter::repeat_n(0x91, depth)); // arrays of one element
        msgpack.push(0x01);
        let json = format!(
            r#"{{"events": [{{"stat": "kills", "value": {}1{}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        for (bytes, msgpack) in [(msgpack, true), (json.into_bytes(), false)] {
            let refusal = std::thread::Builder::new()
                .stack_size(2 << 20) // a tokio worker's
                .spawn(move || parse::<serde_json::Value>(&bytes, msgpack).unwrap_err())
                .unwrap()
                .join()
                .expect("no overflow");
            let ApiError::BadRequest(message) = refusal else {
                panic!("deep nesting must be a 400 ({msgpack})");
            };
            assert!(
                message.contains("depth") || message.contains("recursion"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_malformed_body_is_a_400_naming_the_field() {
        let wrong_type = serde_json::json!({"title": "t", "points": "ten"});
        let ApiError::BadRequest(message) = refusal::<AchievementSpec>(&wrong_type, false) else {
            panic!("a string for a number must be a 400");
        };
        assert!(message.contains("`points`"), "{message}");
        let unknown = serde_json::json!({"title": "t", "colour": "red"});
        assert!(matches!(
            refusal::<AchievementSpec>(&unknown, true),
            ApiError::BadRequest(_)
        ));
    }
}
