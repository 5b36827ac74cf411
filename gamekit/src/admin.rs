//! GameKit's admin routes (`{base}/admin`): list, add or update, delete achievements, signed
//! with AWS SigV4 as GameKit's editor plugin signs them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use laurel_schemas::DefinitionsFile;
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{GameKitExtra, python_isoformat};
use super::sigv4::{Signed, verify};
use super::{Envelope, GameKitAchievement};
use crate::GameKit;
use laurel_app::AppError;
use laurel_app::definitions::{apply_file, archive};
use laurel_app::now_ms;

/// API Gateway's answer when `AWS_IAM` authorization refuses a call: 403 with a message.
fn forbidden(message: &str) -> Response {
    let mut response = (StatusCode::FORBIDDEN, Json(json!({"message": message}))).into_response();
    response
        .extensions_mut()
        .insert(laurel_gateway::error::Verbatim);
    response
}

/// The request's body and query once its signature checks out, with who signed it (as the
/// audit log names them: `gamekit:<access key id>`), or API Gateway's 403.
async fn signed_body(
    state: &GameKit,
    request: Request,
) -> Result<(Bytes, Option<String>, String), Response> {
    let config = &state.config;
    let (parts, body) = request.into_parts();
    // Read whole (and bounded) by `read_bodies` before this runs.
    let body = axum::body::to_bytes(body, state.app.limits.max_body)
        .await
        .map_err(|_| forbidden("the body could not be read"))?;
    let signed = Signed {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let now = now_ms() / 1000;
    match verify(&config.admin_keys, &signed, now) {
        Ok(access_key) => Ok((
            body,
            parts.uri.query().map(str::to_string),
            format!("gamekit:{access_key}"),
        )),
        Err(why) => {
            tracing::info!(why, "a GameKit admin call was refused");
            Err(forbidden(&why))
        }
    }
}

fn query_of<T: for<'de> Deserialize<'de>>(query: Option<&str>) -> Result<T, Envelope> {
    Query::<T>::try_from_uri(
        &format!("/?{}", query.unwrap_or_default())
            .parse()
            .map_err(|_| Envelope::refuse(StatusCode::BAD_REQUEST, "an unreadable query"))?,
    )
    .map(|Query(q)| q)
    .map_err(|e| Envelope::refuse(StatusCode::BAD_REQUEST, e.body_text()))
}

/// `GET {base}/admin`: every achievement, a page at a time (`limit`, `start_key`,
/// `wait_for_all_pages`), with GameKit's `next_start_key` (no paging token: GameKit's
/// admin lists have none).
pub(crate) async fn list(State(state): State<GameKit>, request: Request) -> Response {
    let (_, query, _) = match signed_body(&state, request).await {
        Ok(signed) => signed,
        Err(refused) => return refused,
    };
    let query: super::player::ListQuery = match query_of(query.as_deref()) {
        Ok(q) => q,
        Err(refusal) => return refusal.into_response(),
    };
    let page = match super::player::page_of(&query, super::achievements(&state, true), None) {
        Ok(page) => page,
        Err(refusal) => return refusal.into_response(),
    };
    let achievements: Vec<Value> = page
        .items
        .iter()
        .filter_map(|gk| state.app.achievement(&gk.achievement_id))
        .filter_map(|def| admin_item(&def))
        .collect();
    let paging = page.next.map(|next| json!({"next_start_key": next}));
    Envelope::ok(json!({"achievements": achievements}))
        .with_paging(paging)
        .into_response()
}

#[derive(Debug, Deserialize)]
struct AddBody {
    achievements: Option<Vec<GameKitAchievement>>,
}

/// `POST {base}/admin` `{"achievements": [...]}`: adds or updates each, all or nothing.
pub(crate) async fn add(State(state): State<GameKit>, request: Request) -> Response {
    let (body, _, by) = match signed_body(&state, request).await {
        Ok(signed) => signed,
        Err(refused) => return refused,
    };
    add_achievements(&state, &body, &by).await.into_response()
}

async fn add_achievements(state: &GameKit, body: &[u8], by: &str) -> Envelope {
    let bad = |why: String| Envelope::refuse(StatusCode::BAD_REQUEST, why);
    let achievements = match serde_json::from_slice::<AddBody>(body) {
        Ok(AddBody {
            achievements: Some(list),
        }) if !list.is_empty() => list,
        Ok(_) => return bad("`achievements` must be a list of at least one achievement".into()),
        Err(e) => return bad(format!("the body is not GameKit's achievements: {e}")),
    };
    // As AdminAddAchievements stores them: sanitized, `created_at` kept from the first
    // store and `updated_at` now.
    let achievements: Vec<GameKitAchievement> = achievements
        .iter()
        .map(GameKitAchievement::sanitized)
        .collect();
    let now = python_isoformat(time::OffsetDateTime::now_utc());
    let mut file = DefinitionsFile::default();
    for gk in &achievements {
        let (stat, stat_spec, mut spec) = gk.to_laurel();
        let created_at = state
            .app
            .achievement(&gk.achievement_id)
            .as_ref()
            .and_then(GameKitExtra::of)
            .and_then(|extra| extra.created_at)
            .unwrap_or_else(|| now.clone());
        if let Some(Value::Object(extra)) = spec.metadata.get_mut("gamekit") {
            extra.insert("created_at".into(), json!(created_at));
            extra.insert("updated_at".into(), json!(now));
        }
        file.stats.insert(stat, stat_spec);
        file.achievements.insert(gk.achievement_id.clone(), spec);
    }
    let overlaid = match apply_file(&state.app, by, &file, false, false).await {
        Ok(overlaid) => overlaid,
        Err(AppError::Invalid(_, errors)) => {
            let why: Vec<String> = errors
                .iter()
                .map(|e| match &e.field {
                    Some(field) => format!("{field}: {}", e.reason),
                    None => e.reason.clone(),
                })
                .collect();
            return bad(why.join("; "));
        }
        Err(e) => {
            tracing::warn!(error = %e, "a GameKit admin change was not stored");
            return Envelope::refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the log or the icon store is unreachable",
            );
        }
    };
    let stored: Vec<Value> = achievements
        .iter()
        .filter_map(|gk| admin_item(overlaid.defs.achievement(&gk.achievement_id)?))
        .collect();
    Envelope::ok(json!({"achievements": stored}))
}

/// An achievement as GameKit's admin API gives it: its fields, and `created_at` and
/// `updated_at` where its admin API stored it (`None`: not a GameKit achievement).
fn admin_item(def: &laurel_schemas::AchievementDefinition) -> Option<Value> {
    let mut item = serde_json::to_value(GameKitAchievement::from_laurel(def)?).ok()?;
    let extra = GameKitExtra::of(def)?;
    for (name, at) in [
        ("created_at", extra.created_at),
        ("updated_at", extra.updated_at),
    ] {
        if let Some(at) = at {
            item[name] = json!(at);
        }
    }
    Some(item)
}

#[derive(Debug, Deserialize)]
struct DeleteQuery {
    payload: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeletePayload {
    achievement_ids: Option<Vec<String>>,
}

/// `DELETE {base}/admin?payload=...`: GameKit's client sends `{"achievement_ids": [...]}`
/// URL-encoded twice in `payload`. Each is archived (earned stays earned); ids not defined
/// are skipped, as GameKit's batch delete skips them. 204.
pub(crate) async fn delete(State(state): State<GameKit>, request: Request) -> Response {
    let (_, query, by) = match signed_body(&state, request).await {
        Ok(signed) => signed,
        Err(refused) => return refused,
    };
    let bad = |why: &str| Envelope::refuse(StatusCode::BAD_REQUEST, why).into_response();
    let payload = match query_of::<DeleteQuery>(query.as_deref()) {
        Ok(DeleteQuery { payload: Some(p) }) => p,
        Ok(_) => return bad("`payload` is required"),
        Err(refusal) => return refusal.into_response(),
    };
    let decoded = super::sigv4::percent_decode(&payload);
    let ids = match serde_json::from_str::<DeletePayload>(&decoded) {
        Ok(DeletePayload {
            achievement_ids: Some(ids),
        }) if !ids.is_empty() => ids,
        Ok(_) => return bad("`achievement_ids` must list at least one achievement"),
        Err(_) => return bad("`payload` is not {\"achievement_ids\": [...]} URL-encoded"),
    };
    for id in ids {
        match archive(&state.app, &by, &id).await {
            Ok(_) | Err(AppError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "a GameKit delete was not stored");
                return Envelope::refuse(StatusCode::SERVICE_UNAVAILABLE, "the log is unreachable")
                    .into_response();
            }
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .extensions_mut()
        .insert(laurel_gateway::error::Verbatim);
    response
}
