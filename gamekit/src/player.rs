//! GameKit's player routes: list, one, unlock.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use laurel_projections::PlayerView;
use laurel_schemas::{PlayerId, SchemaVersion, Source, StatEvent, StatName, Value};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{Envelope, GameKitAchievement, GameKitPlayer, PagingKey, paging, stat_of};
use crate::GameKit;
use laurel_app::ingest::{append, throttle};
use laurel_app::{now_ms, rfc3339};

/// A page holds at most this many achievements (GameKit's limit and default).
const PAGE_MAX: usize = 100;

/// The query of `GET {base}`, as GameKit's client sends it.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<String>,
    start_key: Option<String>,
    paging_token: Option<String>,
    wait_for_all_pages: Option<String>,
    use_consistent_read: Option<String>,
}

/// Python's `strtobool`, which GameKit reads its flags with (`1`/`0` from its client).
fn flag(name: &str, raw: Option<&str>) -> Result<bool, Envelope> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("1" | "y" | "yes" | "t" | "true" | "on") => Ok(true),
        Some("0" | "n" | "no" | "f" | "false" | "off") => Ok(false),
        Some(other) => Err(Envelope::refuse(
            StatusCode::BAD_REQUEST,
            format!("`{name}` must be 1 or 0 (true or false), not {other:?}"),
        )),
    }
}

/// Where a page starts: after this achievement in list order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
struct StartKey {
    achievement_id: String,
    #[serde(default)]
    order_number: i32,
}

/// One achievement as a player sees it in GameKit: its fields, with the player's
/// `current_value` (at most `max_value`), `earned` and `earned_at`.
fn player_item(gk: &GameKitAchievement, view: &PlayerView) -> Json {
    let mut item = serde_json::to_value(gk).expect("plain fields serialize");
    let current = match view.stats.get(&stat_of(&gk.achievement_id)) {
        Some(Value::Int(n)) => *n,
        Some(Value::Float(f)) => *f as i64,
        None => 0,
    };
    let earned = view.earned.get(&gk.achievement_id);
    item["current_value"] = json!(current.clamp(0, i64::from(gk.max_value)));
    item["earned"] = json!(earned.is_some());
    item["earned_at"] = json!(earned.and_then(|e| rfc3339(e.unlocked_at)));
    item
}

async fn player_view(state: &GameKit, player: &str) -> Result<PlayerView, Envelope> {
    laurel_app::players::view(&state.app, player)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading a player view");
            Envelope::refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the views are unreadable",
            )
        })
}

/// `GET {base}`: the player's achievements, a page at a time (`limit`, at most 100), or all
/// of them (`wait_for_all_pages=1`). A next page is asked for with the `next_start_key`
/// and `paging_token` of the previous answer.
pub(crate) async fn list(
    State(state): State<GameKit>,
    GameKitPlayer(player): GameKitPlayer,
    Query(query): Query<ListQuery>,
) -> Envelope {
    list_page(&state, &player, &query)
        .await
        .unwrap_or_else(|refusal| refusal)
}

async fn list_page(state: &GameKit, player: &str, query: &ListQuery) -> Result<Envelope, Envelope> {
    let config = &state.config;
    let page = page_of(
        query,
        super::achievements(state, false),
        Some((player, &config.paging)),
    )?;
    let view = player_view(state, player).await?;
    let achievements: Vec<Json> = page.items.iter().map(|gk| player_item(gk, &view)).collect();
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let paging = page.next.map(|next| {
        json!({
            "next_start_key": next,
            "paging_token": config.paging.issue(player, &next.to_string(), now),
            "version": paging::VERSION,
        })
    });
    Ok(Envelope::ok(json!({"achievements": achievements})).with_paging(paging))
}

/// A page of a list, and where the next one starts.
pub(crate) struct Page {
    pub(crate) items: Vec<GameKitAchievement>,
    /// The `next_start_key` (`None`: this is the last page).
    pub(crate) next: Option<Json>,
}

/// Reads a list query as GameKit does and takes its page of `all` (in list order). With
/// `paging`, a start key must come with a paging token issued to that player for it.
pub(crate) fn page_of(
    query: &ListQuery,
    all: Vec<GameKitAchievement>,
    paging: Option<(&str, &PagingKey)>,
) -> Result<Page, Envelope> {
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let all_pages = flag("wait_for_all_pages", query.wait_for_all_pages.as_deref())?;
    // Laurel's reads are always of the latest views; the flag is taken and checked.
    flag("use_consistent_read", query.use_consistent_read.as_deref())?;
    let limit = match query.limit.as_deref() {
        None => PAGE_MAX,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if n > 0 && n <= PAGE_MAX as i64 => n as usize,
            Ok(_) => PAGE_MAX,
            Err(_) => {
                return Err(Envelope::refuse(
                    StatusCode::BAD_REQUEST,
                    format!("`limit` must be an integer, not {raw:?}"),
                ));
            }
        },
    };
    let start = match query.start_key.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let key: StartKey = serde_json::from_str(raw).map_err(|_| {
                Envelope::refuse(
                    StatusCode::BAD_REQUEST,
                    "`start_key` must be the `next_start_key` of the previous page",
                )
            })?;
            if let Some((player, signer)) = paging {
                let token = query.paging_token.as_deref().unwrap_or_default();
                // The key as the token signed it: compact JSON, as GameKit's client sends it.
                let compact = serde_json::to_string(&key).expect("plain fields serialize");
                if !signer.check(token, player, &compact, now) {
                    return Err(Envelope::refuse_saying(
                        StatusCode::FORBIDDEN,
                        "Invalid paging token",
                    ));
                }
            }
            Some(key)
        }
    };
    let from = start.as_ref().map_or(0, |key| {
        all.partition_point(|gk| {
            (gk.order_number, gk.achievement_id.as_str())
                <= (key.order_number, key.achievement_id.as_str())
        })
    });
    let mut rest: Vec<GameKitAchievement> = all.into_iter().skip(from).collect();
    let take = if all_pages {
        rest.len()
    } else {
        limit.min(rest.len())
    };
    let more = take < rest.len();
    rest.truncate(take);
    let next = more.then(|| {
        let last = rest.last().expect("a page that has more is not empty");
        serde_json::to_value(StartKey {
            achievement_id: last.achievement_id.clone(),
            order_number: last.order_number,
        })
        .expect("plain fields serialize")
    });
    Ok(Page { items: rest, next })
}

/// A GameKit achievement the player may address: not hidden, not archived (`None`: 404).
fn addressable(state: &GameKit, id: &str) -> Option<GameKitAchievement> {
    state.app.defs.read(|defs| {
        let def = defs.achievement(id).filter(|def| !def.archived)?;
        GameKitAchievement::from_laurel(def).filter(|gk| !gk.is_hidden)
    })
}

/// `GET {base}/{achievement_id}`: one achievement; 404 for a hidden one, and for a secret
/// one the player has not earned.
pub(crate) async fn one(
    State(state): State<GameKit>,
    GameKitPlayer(player): GameKitPlayer,
    Path(id): Path<String>,
) -> Envelope {
    let Some(gk) = addressable(&state, &id) else {
        return Envelope::refuse(StatusCode::NOT_FOUND, format!("no achievement {id:?}"));
    };
    let view = match player_view(&state, &player).await {
        Ok(view) => view,
        Err(refusal) => return refusal,
    };
    if gk.is_secret && !view.earned.contains_key(&gk.achievement_id) {
        return Envelope::refuse(StatusCode::NOT_FOUND, format!("no achievement {id:?}"));
    }
    Envelope::ok(player_item(&gk, &view))
}

/// The body of an unlock.
#[derive(Debug, Deserialize)]
struct UnlockBody {
    #[serde(default, deserialize_with = "laurel_schemas::integral::optional")]
    increment_by: Option<i64>,
}

/// `POST {base}/{achievement_id}/unlock` `{"increment_by": n}`: adds `n` (a positive
/// integer) to the player's progress, through the log. The answer is the achievement as
/// the views hold it once they reflect the increment: `current_value` at most `max_value`,
/// and `newly_earned: true` on the one call whose increment earned it (absent on others).
pub(crate) async fn unlock(
    State(state): State<GameKit>,
    GameKitPlayer(player): GameKitPlayer,
    Path(id): Path<String>,
    body: Bytes,
) -> Envelope {
    let bad = |why: &str| Envelope::refuse(StatusCode::BAD_REQUEST, why);
    let Ok(body) = serde_json::from_slice::<UnlockBody>(&body) else {
        return bad("the body must be JSON: {\"increment_by\": <a positive integer>}");
    };
    let increment = match body.increment_by {
        None => return bad("`increment_by` is required"),
        Some(n) if n <= 0 => return bad("`increment_by` must be greater than zero"),
        Some(n) => n,
    };
    let Ok(player_id) = PlayerId::new(player.as_str()) else {
        return bad("the token's player id is not one Laurel can store");
    };
    // The achievement must be there, and its stat take the increment as any report
    // (defined, writable by players), on definitions at least as new as DEFS now.
    let decide = || {
        let gk = addressable(&state, &id).ok_or_else(|| {
            Envelope::refuse(StatusCode::NOT_FOUND, format!("no achievement {id:?}"))
        })?;
        let stat = StatName::new(stat_of(&gk.achievement_id))
            .map_err(|_| bad("the achievement's id makes no stat name"))?;
        state
            .app
            .defs
            .read(|defs| defs.check_report(stat.as_str(), Value::Int(increment), Source::Player))
            .map_err(|reason| bad(&format!("`increment_by`: {reason}")))?;
        Ok((gk, stat))
    };
    let decided = match decide() {
        Ok(decided) => decided,
        Err(refusal) => match state.app.catch_up_defs().await {
            Ok(true) => match decide() {
                Ok(decided) => decided,
                Err(refusal) => return refusal,
            },
            Ok(false) => return refusal,
            Err(_) => {
                return Envelope::refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the definitions log is unreachable",
                );
            }
        },
    };
    let (gk, stat) = decided;
    // Unlock calls count against the player's ingest rate, as any stat event.
    if throttle(&state.app, &player, 1).is_err() {
        return Envelope::refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "this player sends more events per minute than allowed",
        );
    }
    let received_at = now_ms();
    let event = StatEvent {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        player_id,
        stat,
        value: Value::Int(increment),
        ts: received_at,
        received_at,
        source: Source::Player,
        occurred_at: None,
    };
    let event_id = event.event_id;
    let token = match append(&state.app, vec![(event, false)]).await {
        Ok((token, _, _)) => token,
        Err(e) => {
            tracing::warn!(error = %e, "a GameKit unlock was not stored");
            return Envelope::refuse(StatusCode::SERVICE_UNAVAILABLE, "the log is unreachable");
        }
    };
    let deadline = tokio::time::Instant::now() + state.app.limits.max_wait;
    for (&partition, &seq) in &token.0 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        state.app.views.wait_for(partition, seq, left).await;
    }
    let view = match player_view(&state, &player).await {
        Ok(view) => view,
        Err(refusal) => return refusal,
    };
    let mut item = player_item(&gk, &view);
    // As UpdateAchievements: the key is there on the one call that earned it, else absent.
    let newly = view
        .earned
        .get(&gk.achievement_id)
        .is_some_and(|e| e.caused_by == Some(event_id));
    if newly {
        item["newly_earned"] = json!(true);
    }
    Envelope::ok(item)
}
