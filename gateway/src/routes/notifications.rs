//! `GET /v1/players/me/notifications`: the player's unlocks and progress as Server-Sent
//! Events, live (a client that reconnects reads the achievements again to catch up);
//! `GET /v1/admin/notifications`: every player's unlocks, for admins (the console's live
//! screen).

use std::convert::Infallible;

use crate::auth::Admin;
use crate::auth::Principal;
use crate::error::{AdminProblems, ApiError, Problem, TokenProblems};
use crate::headers::languages;
use crate::notify::{Notice, Subscription};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use laurel_app::players::achievement_out;
use laurel_projections::Applied;
use laurel_schemas::{Output, Visibility};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The SSE event for `notice`, or `None` when the player may not see it.
fn render(state: &AppState, player: &str, langs: &[String], notice: &Notice) -> Option<Event> {
    let applied = match notice {
        Notice::Lagged => {
            return Some(Event::default().event("lagged").data(
                r#"{"detail":"some notifications were dropped; read the achievements again"}"#,
            ));
        }
        Notice::Output(applied) => applied,
        Notice::Community(stat) => {
            let total = state.app.views.community_total(stat.as_str()).ok()??;
            let data = json!({"stat": stat, "total": total});
            return Some(Event::default().event("community").data(data.to_string()));
        }
    };
    match &applied.output {
        Output::Unlocked(unlocked) => {
            let def = state.app.achievement(unlocked.achievement_id.as_str())?;
            let view = state.app.views.player(player).ok()?;
            let achievement =
                achievement_out(&state.app, &def, &view, langs, laurel_app::now_ms())?;
            let data = json!({"unlock_id": unlocked.unlock_id, "replay": unlocked.replay, "achievement": achievement});
            Some(
                Event::default()
                    .event("unlocked")
                    .id(event_id(applied))
                    .data(data.to_string()),
            )
        }
        Output::Progress(progress) => {
            let def = state.app.achievement(progress.achievement_id.as_str())?;
            // Progress tells how to earn it: not for hidden or secret ones.
            if def.archived || def.visibility != Visibility::Visible {
                return None;
            }
            let data = json!({"achievement_id": progress.achievement_id, "condition": progress.condition,
                "stat": progress.stat, "current": progress.current, "required": progress.required});
            Some(Event::default().event("progress").data(data.to_string()))
        }
        Output::Reward(reward) => {
            let data = json!({"unlock_id": reward.unlock_id, "achievement_id": reward.achievement_id,
                "occurrence": reward.occurrence, "rewards": reward.rewards, "claim": reward.claim});
            Some(Event::default().event("reward").data(data.to_string()))
        }
        Output::RewardClaimed(claimed) => {
            let data = json!({"unlock_id": claimed.unlock_id, "achievement_id": claimed.achievement_id,
                "rewards": claimed.rewards});
            Some(
                Event::default()
                    .event("reward_claimed")
                    .data(data.to_string()),
            )
        }
        _ => None,
    }
}

/// An unlock's event id: where it is on OUTPUT (`o<partition>:<position>`), which a client
/// gives back as `Last-Event-ID` to resume after it.
fn event_id(applied: &Applied) -> String {
    format!("o{}:{}", applied.partition, applied.position)
}

/// The OUTPUT partition and position an event id names.
fn parse_event_id(id: &str) -> Option<(u32, u64)> {
    let (partition, position) = id.strip_prefix('o')?.split_once(':')?;
    Some((partition.parse().ok()?, position.parse().ok()?))
}

/// What a resuming stream sends before the live notices, and the OUTPUT position through
/// which those are already covered.
struct Resumed {
    events: Vec<Event>,
    through: Option<(u32, u64)>,
}

/// The player's notices between `last_event_id` and what the views hold now. An id that
/// is not one of this player's partition, or too far back, gets `lagged`: read the
/// achievements again.
async fn resume(
    state: &AppState,
    player: &str,
    langs: &[String],
    last_event_id: Option<&str>,
) -> Result<Resumed, ApiError> {
    let Some(id) = last_event_id else {
        return Ok(Resumed {
            events: Vec::new(),
            through: None,
        });
    };
    let partition = laurel_log::partition_of(player, state.app.log.config().partitions);
    let lagged = || Resumed {
        events: vec![Event::default().event("lagged").data(
            r#"{"detail":"cannot resume after that event id; read the achievements again"}"#,
        )],
        through: None,
    };
    let Some((p, after)) = parse_event_id(id).filter(|(p, _)| *p == partition) else {
        return Ok(lagged());
    };
    let Some(missed) = laurel_app::timeline::outputs_after(&state.app, player, p, after).await?
    else {
        return Ok(lagged());
    };
    let events = missed
        .outputs
        .into_iter()
        .filter_map(|(position, output)| {
            let notice = Notice::Output(std::sync::Arc::new(Applied {
                partition,
                position,
                output,
            }));
            render(state, player, langs, &notice)
        })
        .collect();
    Ok(Resumed {
        events,
        through: Some((partition, missed.through)),
    })
}

/// What a live stream does next.
enum Next {
    /// Shutdown: the stream ends.
    Stop,
    /// The token expired: one last event, then the end.
    Expired,
    /// A notice for the player (`None`: the hub is gone).
    Notice(Option<Notice>),
}

/// One Server-Sent Event of a live stream, as its fields arrive.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the wire; the stream writes events with axum's `Event`
pub(crate) struct StreamEvent {
    /// `ready`, `progress`, `unlocked`, `reward`, `reward_claimed`, `community`, `lagged` or
    /// `expired`.
    #[schema(
        pattern = "^(ready|progress|unlocked|reward|reward_claimed|community|lagged|expired)$"
    )]
    event: String,
    /// The event's JSON object (`{}` for `ready`).
    data: String,
    /// An unlock's position on OUTPUT (`unlocked` only: `o<partition>:<position>`): sent
    /// back as `Last-Event-ID` on reconnecting, the stream first sends what was missed.
    id: Option<String>,
}

/// The caller's unlocks and progress, live, as Server-Sent Events (`ready`, `progress`,
/// `unlocked`, `lagged`).
#[utoipa::path(get, path = "/v1/players/me/notifications", tag = "players", security(("bearer" = [])),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = StreamEvent),
        TokenProblems,
        (status = 429, description = "The player has as many live streams open as allowed; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn my_notifications(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let max = state.app.limits.max_streams_per_player;
    let subscription = state
        .hub
        .subscribe(&principal.subject, max)
        .map_err(|full| {
            ApiError::TooManyRequests(
                format!(
                    "this player has {} live notification streams open already",
                    full.max
                ),
                5,
            )
        })?;
    let langs = languages(&headers);
    let player = principal.subject;
    // Subscribed first, then the missed ones read: nothing falls in between, and a live
    // notice the catch-up covered already is not sent twice.
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let resumed = resume(&state, &player, &langs, last_event_id).await?;
    let through = resumed.through;
    Ok(live(
        state,
        subscription,
        principal.expires_at,
        resumed.events,
        move |state, notice| {
            if let (Notice::Output(applied), Some((partition, position))) = (notice, through)
                && applied.partition == partition
                && applied.position <= position
            {
                return None;
            }
            render(state, &player, &langs, notice)
        },
    ))
}

/// The events `render` makes of `subscription`'s notices, after a `ready`; the stream ends
/// at shutdown, and with an `expired` event when the token that opened it expires.
fn live(
    state: AppState,
    subscription: Subscription,
    expires_at: Option<u64>,
    missed: Vec<Event>,
    render: impl Fn(&AppState, &Notice) -> Option<Event> + Clone + Send + Sync + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // The stream ends when its token does: the client reconnects with a fresh one.
    let expires = expires_at.map(|exp| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        tokio::time::Instant::now() + Duration::from_secs(exp).saturating_sub(now)
    });
    let hello = Event::default().event("ready").data("{}");
    let live = futures::stream::unfold(
        (Some(subscription), state.shutdown.clone()),
        move |(subscription, shutdown)| {
            let (state, render) = (state.clone(), render.clone());
            async move {
                let mut subscription = subscription?;
                let expired = async {
                    match expires {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::pin!(expired);
                loop {
                    let next = tokio::select! {
                        // Open streams would hold a graceful shutdown forever.
                        () = shutdown.wait() => Next::Stop,
                        () = &mut expired => Next::Expired,
                        next = subscription.recv() => Next::Notice(next),
                    };
                    let notice = match next {
                        Next::Stop | Next::Notice(None) => return None,
                        Next::Expired => {
                            let event = Event::default().event("expired").data(
                                r#"{"detail":"the token expired; reconnect with a fresh one"}"#,
                            );
                            // Sent, then the stream ends (and the subscription goes).
                            return Some((Ok(event), (None, shutdown)));
                        }
                        Next::Notice(Some(notice)) => notice,
                    };
                    if let Some(event) = render(&state, &notice) {
                        return Some((Ok(event), (Some(subscription), shutdown)));
                    }
                }
            }
        },
    );
    let first = std::iter::once(hello).chain(missed).map(Ok);
    let stream = futures::StreamExt::chain(futures::stream::iter(first), live);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// An admin's event for `notice`: every player's unlocks (with the achievement's title in
/// the default language), and `lagged`.
fn render_all(state: &AppState, notice: &Notice) -> Option<Event> {
    match notice {
        Notice::Lagged => Some(
            Event::default()
                .event("lagged")
                .data(r#"{"detail":"some unlocks were dropped; the server fell behind"}"#),
        ),
        Notice::Community(_) => None,
        Notice::Output(applied) => match &applied.output {
            Output::Unlocked(u) => {
                let title = state
                    .app
                    .achievement(u.achievement_id.as_str())
                    .map(|def| def.title.clone())
                    .unwrap_or_default();
                let data = json!({"unlock_id": u.unlock_id, "player_id": u.player_id,
                    "achievement_id": u.achievement_id, "title": title, "occurrence": u.occurrence,
                    "points": u.points, "unlocked_at": laurel_app::rfc3339(u.unlocked_at), "replay": u.replay});
                Some(
                    Event::default()
                        .event("unlocked")
                        .id(event_id(applied))
                        .data(data.to_string()),
                )
            }
            _ => None,
        },
    }
}

/// Every player's unlocks, live, as Server-Sent Events (`ready`, `unlocked`, `lagged`,
/// `expired`): the console's live screen. Each `unlocked` carries `unlock_id`, `player_id`,
/// `achievement_id`, `title`, `occurrence`, `points`, `unlocked_at` and `replay`.
#[utoipa::path(get, path = "/v1/admin/notifications", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = StreamEvent),
        AdminProblems,
    ))]
pub(crate) async fn all_notifications(
    State(state): State<AppState>,
    Admin(principal): Admin,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let subscription = state.hub.subscribe_all();
    live(
        state,
        subscription,
        principal.expires_at,
        Vec::new(),
        render_all,
    )
}
