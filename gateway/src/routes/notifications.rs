//! `GET /v1/players/me/notifications`: the player's unlocks and progress as Server-Sent
//! Events, live (a client that reconnects reads the achievements again to catch up).

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use laurel_schemas::{Output, Visibility};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Principal;
use crate::error::TokenProblems;
use crate::notify::Notice;
use crate::routes::players::{achievement_out, languages};
use crate::state::AppState;

/// The SSE event for `notice`, or `None` when the player may not see it.
fn render(state: &AppState, player: &str, langs: &[String], notice: &Notice) -> Option<Event> {
    let output = match notice {
        Notice::Lagged => {
            return Some(Event::default().event("lagged").data(
                r#"{"detail":"some notifications were dropped; read the achievements again"}"#,
            ));
        }
        Notice::Output(output) => output,
    };
    match output.as_ref() {
        Output::Unlocked(unlocked) => {
            let def = state
                .views
                .achievement(unlocked.achievement_id.as_str())
                .ok()??;
            let view = state.views.player(player).ok()?;
            let achievement = achievement_out(&def, &view, langs)?;
            let data = json!({"unlock_id": unlocked.unlock_id, "replay": unlocked.replay, "achievement": achievement});
            Some(
                Event::default()
                    .event("unlocked")
                    .id(unlocked.unlock_id.to_string())
                    .data(data.to_string()),
            )
        }
        Output::Progress(progress) => {
            let def = state
                .views
                .achievement(progress.achievement_id.as_str())
                .ok()??;
            // Progress tells how to earn it: not for hidden or secret ones.
            if def.archived || def.visibility != Visibility::Visible {
                return None;
            }
            let data = json!({"achievement_id": progress.achievement_id, "condition": progress.condition,
                "stat": progress.stat, "current": progress.current, "required": progress.required});
            Some(Event::default().event("progress").data(data.to_string()))
        }
        _ => None,
    }
}

/// The caller's unlocks and progress, live, as Server-Sent Events (`ready`, `progress`,
/// `unlocked`, `lagged`).
#[utoipa::path(get, path = "/v1/players/me/notifications", tag = "players", security(("bearer" = [])),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        TokenProblems,
    ))]
pub(crate) async fn my_notifications(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.hub.subscribe(&principal.subject);
    let shutdown = state.shutdown.clone();
    let langs = languages(&headers);
    let player = principal.subject;
    let hello = Event::default().event("ready").data("{}");
    let live =
        futures::stream::unfold((receiver, shutdown), move |(mut receiver, mut shutdown)| {
            let (state, player, langs) = (state.clone(), player.clone(), langs.clone());
            async move {
                loop {
                    let notice = tokio::select! {
                        // Open streams would hold a graceful shutdown forever.
                        _ = shutdown.wait_for(|s| *s) => return None,
                        next = receiver.recv() => match next {
                            Ok(notice) => notice,
                            Err(RecvError::Lagged(_)) => Notice::Lagged,
                            Err(RecvError::Closed) => return None,
                        },
                    };
                    if let Some(event) = render(&state, &player, &langs, &notice) {
                        return Some((Ok(event), (receiver, shutdown)));
                    }
                }
            }
        });
    let stream = futures::StreamExt::chain(futures::stream::once(async { Ok(hello) }), live);
    Sse::new(stream).keep_alive(KeepAlive::default())
}
