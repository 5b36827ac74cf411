//! Community goals: the totals of `global` stats, as the views sum the partitions' shares,
//! and telling every partition's engine once a goal is reached.
//!
//! Whether a goal is reached is decided here, on the views' totals, and written to the log:
//! a `community_reached` message on every STATS partition whose views do not show it
//! known, under the id `community:<goal>:<partition>` (so gateways that both see it append
//! one). The engines then unlock from the log alone, so a replay or a failover sees the
//! same; a message appended again after the log forgot the id changes nothing (a partition
//! knows a goal once).

use std::time::Duration;

use laurel_log::{Entry, Target};
use laurel_runtime::Shutdown;
use laurel_schemas::{CommunityReached, SchemaVersion, StatsMessage, Value, encode};
use serde::Serialize;
use uuid::Uuid;

use crate::ingest::append_stats;
use crate::{App, AppError, now_ms, players};

/// One community goal on a stat, as anyone reads it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GoalOut {
    /// The goal (an achievement).
    id: String,
    /// Its title.
    title: String,
    /// The total it needs.
    #[schema(value_type = f64)]
    required: Value,
    /// Whether the total reached it.
    reached: bool,
    /// The least a player's own contribution must be to earn it.
    #[schema(value_type = f64)]
    min_contribution: Value,
    /// For a player's token: whether the player earned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    earned: Option<bool>,
}

/// A community total and its goals.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommunityOut {
    /// The `global` stat.
    stat: String,
    /// Every player's contributions summed (as of each partition's last batch).
    #[schema(value_type = f64)]
    total: Value,
    /// For a player's token: the player's own contribution.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    contribution: Option<Value>,
    /// The live goals on it, by threshold.
    goals: Vec<GoalOut>,
}

/// The total of `global` stat `stat` with its goals (404 for a stat that is not one); with
/// `player`, that player's contribution and earns.
pub async fn view(app: &App, stat: &str, player: Option<&str>) -> Result<CommunityOut, AppError> {
    if !app.defs.read(|d| d.is_global(stat)) {
        return Err(AppError::NotFound(format!(
            "no community stat `{stat}` (a stat with \"scope\": \"global\")"
        )));
    }
    let total = total(app, stat).await?;
    let view = match player {
        Some(p) => Some(players::view(app, p).await?),
        None => None,
    };
    let mut goals: Vec<GoalOut> = app.defs.read(|d| {
        d.goals_on(stat)
            .into_iter()
            .map(|(_, def, required)| GoalOut {
                id: def.id.to_string(),
                title: def.title.clone(),
                required,
                reached: total.compare(required).is_ge(),
                min_contribution: def.min_contribution.unwrap_or(Value::Int(1)),
                earned: view
                    .as_ref()
                    .map(|v| v.earned.contains_key(def.id.as_str())),
            })
            .collect()
    });
    goals.sort_by(|a, b| a.required.compare(b.required).then(a.id.cmp(&b.id)));
    Ok(CommunityOut {
        stat: stat.to_string(),
        total,
        contribution: view.map(|v| v.stats.get(stat).copied().unwrap_or(Value::Int(0))),
        goals,
    })
}

/// A community total, read off the async threads (0 before any contribution).
async fn total(app: &App, stat: &str) -> Result<Value, AppError> {
    let (views, stat) = (app.views.clone(), stat.to_string());
    let total = laurel_runtime::blocking(move || views.community_total(&stat)).await?;
    Ok(total.unwrap_or(Value::Int(0)))
}

/// Tells every partition that has not learnt it that each goal whose total is reached is
/// reached; returns how many messages it appended.
pub async fn announce(app: &App) -> Result<usize, AppError> {
    let stats: Vec<String> = app.defs.read(|d| {
        d.stats()
            .filter(|s| d.is_global(s.name.as_str()))
            .map(|s| s.name.to_string())
            .collect()
    });
    let mut appended = 0;
    for stat in stats {
        let total = total(app, &stat).await?;
        let reached: Vec<laurel_schemas::AchievementId> = app.defs.read(|d| {
            d.goals_on(&stat)
                .into_iter()
                .filter(|(_, _, required)| total.compare(*required).is_ge())
                .map(|(_, def, _)| def.id.clone())
                .collect()
        });
        for goal in reached {
            let (views, id) = (app.views.clone(), goal.to_string());
            let untold = laurel_runtime::blocking(move || views.not_told(&id)).await?;
            let entries: Vec<Entry> = untold
                .into_iter()
                .map(|p| {
                    let message = StatsMessage::CommunityReached(CommunityReached {
                        v: SchemaVersion::CURRENT,
                        event_id: Uuid::new_v4(),
                        achievement_id: goal.clone(),
                        total,
                        received_at: now_ms(),
                    });
                    Entry {
                        target: Target::Partition(p),
                        id: format!("community:{goal}:{p}"),
                        payload: encode(&message),
                    }
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            let acks = append_stats(app, entries).await?;
            appended += acks.iter().filter(|a| !a.duplicate).count();
        }
    }
    Ok(appended)
}

/// Announces reached goals every `every` until `shutdown` (each role that serves the views
/// runs it; a failed round is logged and tried again).
pub async fn watch(app: App, every: Duration, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            _ = tick.tick() => match announce(&app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(partitions = n, "community goals reached: the engines are told"),
                Err(e) => tracing::warn!(error = %e, "announcing community goals"),
            },
        }
    }
}
