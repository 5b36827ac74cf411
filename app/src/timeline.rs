//! A player's recent history, for support ("why did this not unlock?"): what each folded
//! batch changed for the player (each stat from what to what), the milestones reached, the
//! unlocks and rewards, and the events the engine refused with the reason. Read from the
//! OUTPUT log of the player's partition when asked (nothing is kept for it on the hot path),
//! over the partition's last [`WINDOW`] positions.

use laurel_log::{Start, StreamKind};
use laurel_schemas::{Output, Reason, Value, decode};
use serde::Serialize;

use crate::{App, AppError, rfc3339};

/// How many OUTPUT positions back a timeline reads.
pub const WINDOW: u64 = 20_000;

/// The most entries a timeline answers.
pub const MAX_ENTRIES: usize = 500;

/// What happened to one player, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    /// The player.
    pub player_id: String,
    /// The entries, newest first.
    pub entries: Vec<TimelineEntry>,
    /// Whether the partition's whole history was read (else only its last positions:
    /// older play is not shown).
    pub complete: bool,
}

/// One thing that happened to the player.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEntry {
    /// A stat changed: its value before and after the batch of events that moved it.
    Stat {
        /// When (the latest event of the batch that changed it).
        at: Option<String>,
        /// The stat.
        stat: String,
        /// Its value before (absent: the first report).
        #[schema(value_type = Option<f64>)]
        previous: Option<Value>,
        /// Its value after.
        #[schema(value_type = f64)]
        value: Value,
        /// For a periodic stat, the period.
        #[serde(skip_serializing_if = "Option::is_none")]
        period: Option<String>,
    },
    /// A condition reached a milestone (a quarter, half, three quarters, or held).
    Progress {
        /// When.
        at: Option<String>,
        /// The achievement.
        achievement_id: String,
        /// The stat of the condition.
        stat: String,
        /// Its value.
        #[schema(value_type = f64)]
        current: Value,
        /// What the condition needs.
        #[schema(value_type = f64)]
        required: Value,
    },
    /// The player earned an achievement.
    Unlocked {
        /// When.
        at: Option<String>,
        /// The achievement.
        achievement_id: String,
        /// Which earn.
        occurrence: u32,
        /// What caused it: `stat`, `grant`, `definition`, `requirement`, `replay`, `community`.
        #[schema(value_type = String)]
        cause: laurel_schemas::CauseKind,
        /// The unlock's id.
        #[schema(value_type = String)]
        unlock_id: uuid::Uuid,
    },
    /// The engine refused an event (or a grant).
    Refused {
        /// When the gateway received it.
        at: Option<String>,
        /// The event's id.
        #[schema(value_type = String)]
        event_id: uuid::Uuid,
        /// The stat it reported.
        #[serde(skip_serializing_if = "Option::is_none")]
        stat: Option<String>,
        /// The value it reported.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<f64>)]
        value: Option<Value>,
        /// Why, in words.
        reason: String,
        /// Why, as a code and its data.
        code: Reason,
    },
    /// An earn paid its rewards, or put them up for a claim.
    Reward {
        /// The earn.
        #[schema(value_type = String)]
        unlock_id: uuid::Uuid,
        /// Its achievement.
        achievement_id: String,
        /// Whether the player claims them.
        claim: bool,
    },
    /// An admin reset the (test) player: everything before is gone.
    Reset {
        /// When.
        at: Option<String>,
    },
    /// The player claimed an earn's rewards.
    RewardClaimed {
        /// The earn.
        #[schema(value_type = String)]
        unlock_id: uuid::Uuid,
        /// Its achievement.
        achievement_id: String,
    },
}

/// What `output` did to `player`, if anything.
fn entry_of(output: Output, player: &str) -> Option<TimelineEntry> {
    Some(match output {
        Output::Stat(s) if s.player_id.as_str() == player => TimelineEntry::Stat {
            at: rfc3339(s.at),
            stat: s.stat.to_string(),
            previous: s.previous,
            value: s.value,
            period: s.period,
        },
        Output::Progress(p) if p.player_id.as_str() == player => TimelineEntry::Progress {
            at: rfc3339(p.at),
            achievement_id: p.achievement_id.to_string(),
            stat: p.stat.to_string(),
            current: p.current,
            required: p.required,
        },
        Output::Unlocked(u) if u.player_id.as_str() == player => TimelineEntry::Unlocked {
            at: rfc3339(u.unlocked_at),
            achievement_id: u.achievement_id.to_string(),
            occurrence: u.occurrence,
            cause: u.cause,
            unlock_id: u.unlock_id,
        },
        Output::Rejected(r) if r.player_id.as_str() == player => TimelineEntry::Refused {
            at: rfc3339(r.at),
            event_id: r.event_id,
            stat: r.stat.map(|s| s.to_string()),
            value: r.value,
            reason: r.reason.to_string(),
            code: r.reason,
        },
        Output::Reward(r) if r.player_id.as_str() == player => TimelineEntry::Reward {
            unlock_id: r.unlock_id,
            achievement_id: r.achievement_id.to_string(),
            claim: r.claim,
        },
        Output::RewardClaimed(c) if c.player_id.as_str() == player => {
            TimelineEntry::RewardClaimed {
                unlock_id: c.unlock_id,
                achievement_id: c.achievement_id.to_string(),
            }
        }
        Output::PlayerReset(r) if r.player_id.as_str() == player => {
            TimelineEntry::Reset { at: rfc3339(r.at) }
        }
        Output::Stat(_)
        | Output::PlayerReset(_)
        | Output::Progress(_)
        | Output::Unlocked(_)
        | Output::Rejected(_)
        | Output::Reward(_)
        | Output::RewardClaimed(_)
        | Output::Checkpoint(_)
        | Output::Changes(_) => return None,
    })
}

/// A player's outputs a live stream missed, and the OUTPUT position they reach.
#[derive(Debug)]
pub struct Missed {
    /// The player's unlocks and rewards, with their OUTPUT positions, oldest first.
    pub outputs: Vec<(u64, Output)>,
    /// The OUTPUT position the views held when read: later ones come live.
    pub through: u64,
}

/// `player`'s unlocks and rewards on OUTPUT partition `partition` after position `after`,
/// up to what the views hold (a live notification stream resuming after its
/// `Last-Event-ID`). `None` when `after` lies more than [`WINDOW`] positions back (or ahead
/// of the views): the stream says `lagged` and the client reads the achievements again.
pub async fn outputs_after(
    app: &App,
    player: &str,
    partition: u32,
    after: u64,
) -> Result<Option<Missed>, AppError> {
    let through = app
        .views
        .output_position(partition)
        .map_err(|e| AppError::Internal(format!("reading the views: {e}")))?;
    if after > through || through - after > WINDOW {
        return Ok(None);
    }
    let mut outputs = Vec::new();
    read_partition(app, partition, after, through, |position, output| {
        let mine = match &output {
            Output::Unlocked(u) => u.player_id.as_str() == player,
            Output::Reward(r) => r.player_id.as_str() == player,
            Output::RewardClaimed(c) => c.player_id.as_str() == player,
            _ => false,
        };
        if mine {
            outputs.push((position, output));
        }
    })
    .await?;
    Ok(Some(Missed { outputs, through }))
}

/// Calls `each` with every output of OUTPUT partition `partition` after position `after`
/// through `through`, in order. An entry that does not decode fails the read, naming it:
/// nothing is skipped.
async fn read_partition(
    app: &App,
    partition: u32,
    after: u64,
    through: u64,
    mut each: impl FnMut(u64, Output),
) -> Result<(), AppError> {
    if through <= after {
        return Ok(());
    }
    // One reader per process at a time: its consumer (on JetStream, dropped by the server
    // once idle) is this process's.
    let _one = app.timeline.lock().await;
    let consumer = format!("laurel-timeline-{}", app.instance);
    let mut reader = app
        .log
        .reader(
            StreamKind::Output,
            partition,
            &consumer,
            Start::After(after),
        )
        .await?;
    let mut at = after;
    while at < through {
        let batch = reader.next_batch(1024, app.limits.max_wait).await?;
        if batch.is_empty() {
            return Err(AppError::Unavailable(format!(
                "OUTPUT partition {partition} did not answer past position {at}"
            )));
        }
        for record in batch {
            if record.seq > through {
                return Ok(());
            }
            at = record.seq;
            let output = decode::<Output>(&record.payload).map_err(|e| {
                AppError::Internal(format!(
                    "OUTPUT partition {partition} position {}: an entry that does not decode: {e}",
                    record.seq
                ))
            })?;
            for one in output.into_outputs() {
                each(record.seq, one);
            }
        }
    }
    Ok(())
}

/// `player`'s last `limit` entries (at most [`MAX_ENTRIES`]), newest first, from the last
/// [`WINDOW`] positions of the player's OUTPUT partition. An entry that does not decode
/// fails the read, naming it: nothing is skipped.
pub async fn timeline(app: &App, player: &str, limit: usize) -> Result<Timeline, AppError> {
    let limit = limit.clamp(1, MAX_ENTRIES);
    let partition = laurel_log::partition_of(player, app.log.config().partitions);
    let last = app.log.last_seq(StreamKind::Output, partition).await?;
    let start = last.saturating_sub(WINDOW);
    let mut entries = std::collections::VecDeque::with_capacity(limit);
    read_partition(app, partition, start, last, |_, output| {
        if let Some(entry) = entry_of(output, player) {
            if entries.len() == limit {
                entries.pop_front();
            }
            entries.push_back(entry);
        }
    })
    .await?;
    Ok(Timeline {
        player_id: player.to_string(),
        entries: entries.into_iter().rev().collect(),
        complete: start == 0,
    })
}
