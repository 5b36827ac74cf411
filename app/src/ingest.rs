//! Ingest: stat events checked whole against the definitions in force, throttled per
//! player, and appended to STATS. Every STATS append of the gateway (events, grants, a
//! replay's grants) goes through [`append_stats`].

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use laurel_engine::Definitions;
use laurel_log::{Appended, Entry, StreamKind, Target, partition_of};
use laurel_schemas::{
    AchievementId, Grant, PlayerId, Reason, SchemaVersion, Source, StatEvent, StatName,
    StatsMessage, ValidationError, Value, encode,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::Caller;
use crate::ReadToken;
use crate::definitions::invalid;
use crate::lanes;
use crate::now_ms;
use crate::{App, MAX_EVENT_AHEAD};
use crate::{AppError, ItemError};

/// The ingest body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    #[schema(min_items = 1)]
    events: Vec<IngestEvent>,
}

impl IngestBody {
    /// How many events the batch holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch holds no event (refused).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// One event as a client sends it; checked field by field so each refusal names its event.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct IngestEvent {
    /// A UUID the client chose, so a retry is counted once.
    #[serde(default)]
    #[schema(
        format = "uuid",
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    event_id: Option<String>,
    /// The player (server and admin tokens; a player token reports as itself).
    #[serde(default)]
    #[schema(value_type = Option<laurel_schemas::PlayerId>)]
    player_id: Option<String>,
    #[schema(value_type = laurel_schemas::StatName)]
    stat: String,
    #[schema(value_type = f64)]
    value: serde_json::Value,
    #[serde(default, deserialize_with = "laurel_schemas::integral::optional")]
    ts: Option<i64>,
}

enum Refusal {
    Invalid(ItemError),
    Forbidden(ItemError),
}

/// Appends checked events to STATS: the read-your-writes position they reach, and how many
/// were accepted and how many were duplicates.
pub async fn append(
    app: &App,
    events: Vec<(StatEvent, bool)>,
) -> Result<(ReadToken, usize, usize), AppError> {
    let partitions = app.log.config().partitions;
    let (entries, groups) = entries_of(events, partitions);
    let mut token = ReadToken::default();
    let (mut accepted, mut duplicates) = (0, 0);
    // The gateway's own groups carry ids nobody will send again. They go after the
    // client's: if they fail, a retry of the request finds the client's stored and
    // deduplicates them, and nothing of the groups was stored.
    if !entries.is_empty() {
        let targets: Vec<u32> = entries
            .iter()
            .map(|e| partition_target(&e.target))
            .collect();
        for (ack, p) in append_stats(app, entries).await?.iter().zip(targets) {
            token.reach(p, ack.seq);
            if ack.duplicate {
                duplicates += 1;
            } else {
                accepted += 1;
            }
        }
    }
    let sizes: Vec<(u32, usize)> = groups.iter().map(|(p, g)| (*p, g.len())).collect();
    let acks = if app.log.groups_appends() {
        // The log stores what comes at once together already: one append, no lanes.
        let entries = groups
            .into_iter()
            .map(|(p, events)| lanes::entry(p, events))
            .collect();
        lanes::append_unique_stats(&app.log, entries)
            .await?
            .into_iter()
            .map(Ok)
            .collect()
    } else {
        futures::future::join_all(
            groups
                .into_iter()
                .map(|(p, events)| app.lanes.append(&app.log, p, events)),
        )
        .await
    };
    for (ack, (p, size)) in acks.into_iter().zip(sizes) {
        token.reach(p, ack?.seq);
        accepted += size;
    }
    Ok((token, accepted, duplicates))
}

fn partition_target(target: &Target) -> u32 {
    match target {
        Target::Partition(p) => *p,
        Target::Definition { .. } => 0,
    }
}

/// Appends entries to STATS: the one way the gateway writes there besides its lanes, which
/// are told what it appended (they tell the engine of the process, if they hand it theirs).
pub async fn append_stats(
    app: &App,
    entries: Vec<Entry>,
) -> Result<Vec<Appended>, laurel_log::AppendError> {
    let targets: Vec<u32> = entries
        .iter()
        .map(|e| partition_target(&e.target))
        .collect();
    let acks = app.log.append(StreamKind::Stats, entries).await?;
    app.lanes
        .appended(targets.into_iter().zip(acks.iter().map(|a| a.seq)));
    Ok(acks)
}

/// Grants an achievement to a player through the log (an admin's grant, ordered with the
/// player's stats, recorded on the audit log as `by`'s): the read-your-writes position it
/// reaches. 422 for an id no player can
/// have, or an achievement that is unknown or archived (on definitions caught up with DEFS).
pub async fn grant(
    app: &App,
    by: &str,
    player: String,
    achievement_id: String,
) -> Result<ReadToken, AppError> {
    let player_id = PlayerId::new(player).map_err(|r| {
        invalid(
            "invalid player id",
            vec![ValidationError::new("player_id", r)],
        )
    })?;
    let achievement_id = AchievementId::new(achievement_id).map_err(|r| {
        invalid(
            "invalid achievement id",
            vec![ValidationError::new("achievement_id", r)],
        )
    })?;
    app.decide_on_latest(|| match app.achievement(achievement_id.as_str()) {
        None => {
            let reason = Reason::UnknownAchievement {
                id: achievement_id.to_string(),
            };
            Err(invalid(
                "cannot grant",
                vec![ValidationError::new("achievement_id", reason)],
            ))
        }
        Some(d) if d.archived => {
            let reason = Reason::Archived {
                id: achievement_id.to_string(),
            };
            Err(invalid(
                "cannot grant",
                vec![ValidationError::new("achievement_id", reason)],
            ))
        }
        Some(_) => Ok(()),
    })
    .await?;
    let grant = Grant {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        player_id: player_id.clone(),
        achievement_id,
        received_at: now_ms(),
        source: Source::Admin,
        replay: None,
        earned_at: None,
        occurrence: None,
    };
    // On the audit log first: a grant on STATS always has its record.
    let action = laurel_schemas::AdminAction::Grant {
        player_id: player_id.clone(),
        achievement_id: grant.achievement_id.clone(),
    };
    crate::audit::record(app, by, grant.event_id, action).await?;
    let partition = partition_of(player_id.as_str(), app.log.config().partitions);
    let entry = Entry {
        target: Target::Partition(partition),
        id: grant.event_id.to_string(),
        payload: encode(&StatsMessage::Grant(grant)),
    };
    let acks = append_stats(app, vec![entry]).await?;
    let mut token = ReadToken::default();
    for ack in &acks {
        token.reach(partition, ack.seq);
    }
    Ok(token)
}

/// Resets a test player through the log: their stats, earns and rewards are gone (a
/// `reset` on STATS, ordered with their events; recorded on the audit log as `by`'s first).
/// 403 unless the id matches a `--test-players` pattern. The read-your-writes position it
/// reaches.
pub async fn reset(app: &App, by: &str, player: String) -> Result<ReadToken, AppError> {
    let player_id = PlayerId::new(player).map_err(|r| {
        invalid(
            "invalid player id",
            vec![ValidationError::new("player_id", r)],
        )
    })?;
    if !app.limits.is_test_player(player_id.as_str()) {
        return Err(AppError::Forbidden(
            format!(
                "{player_id} is not a test player: only ids matching --test-players can be reset"
            ),
            vec![ItemError::from(ValidationError::new(
                "player_id",
                Reason::NotATestPlayer,
            ))],
        ));
    }
    let reset = laurel_schemas::Reset {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        player_id: player_id.clone(),
        received_at: now_ms(),
    };
    let action = laurel_schemas::AdminAction::Reset {
        player_id: player_id.clone(),
    };
    crate::audit::record(app, by, reset.event_id, action).await?;
    let partition = partition_of(player_id.as_str(), app.log.config().partitions);
    let entry = Entry {
        target: Target::Partition(partition),
        id: reset.event_id.to_string(),
        payload: encode(&StatsMessage::Reset(reset)),
    };
    let acks = append_stats(app, vec![entry]).await?;
    let mut token = ReadToken::default();
    for ack in &acks {
        token.reach(partition, ack.seq);
    }
    Ok(token)
}

/// [`check_batch`] on the definitions in force, and again on definitions caught up with DEFS
/// before refusing: a stat defined a moment ago through another gateway counts.
pub async fn check_on_latest(
    app: &App,
    body: &IngestBody,
    caller: &Caller,
    received_at: i64,
) -> Result<Vec<(StatEvent, bool)>, AppError> {
    let max_age = app.limits.max_event_age;
    app.decide_on_latest(|| {
        app.defs
            .read(|defs| check_batch(body, caller, defs, received_at, max_age))
    })
    .await
}

/// Checks a batch whole, event by event, against the definitions in force: the events
/// ready for the log (with whether the client chose each id), or every refusal (403 when
/// any event is not the caller's to report, else 422).
pub fn check_batch(
    body: &IngestBody,
    caller: &Caller,
    defs: &Definitions,
    received_at: i64,
    max_age: Duration,
) -> Result<Vec<(StatEvent, bool)>, AppError> {
    if body.events.is_empty() {
        return Err(AppError::Invalid(
            "the batch has no events".into(),
            Vec::new(),
        ));
    }
    let mut events = Vec::with_capacity(body.events.len());
    let (mut invalid, mut forbidden) = (Vec::new(), Vec::new());
    for (i, e) in body.events.iter().enumerate() {
        let client_id = e.event_id.is_some();
        match check(i, e, caller, defs, (received_at, max_age)) {
            Ok(event) => events.push((event, client_id)),
            Err(Refusal::Invalid(e)) => invalid.push(e),
            Err(Refusal::Forbidden(e)) => forbidden.push(e),
        }
    }
    if !forbidden.is_empty() {
        forbidden.extend(invalid);
        return Err(AppError::Forbidden(
            "the token may not report some of these events; nothing was accepted".into(),
            forbidden,
        ));
    }
    if !invalid.is_empty() {
        return Err(AppError::Invalid(
            "some events are invalid; nothing was accepted".into(),
            invalid,
        ));
    }
    Ok(events)
}

/// The STATS entries of a batch's events whose ids the client chose, and its other events
/// by partition. An event whose id the client chose is an entry of its own under that id,
/// so the log deduplicates it alone (a retry may regroup events) and says exactly which
/// events were duplicates. Events whose ids the gateway made cannot come again, so those of
/// one partition go together (on JetStream through the partition's lane, see
/// [`crate::lanes`]): one log message instead of one per event.
fn entries_of(
    events: Vec<(StatEvent, bool)>,
    partitions: u32,
) -> (Vec<Entry>, BTreeMap<u32, Vec<StatEvent>>) {
    let mut entries = Vec::new();
    let mut grouped: BTreeMap<u32, Vec<StatEvent>> = BTreeMap::new();
    for (event, client_id) in events {
        let p = partition_of(event.player_id.as_str(), partitions);
        if client_id {
            entries.push(Entry {
                target: Target::Partition(p),
                id: dedup_id(&event.player_id, event.event_id),
                payload: encode(&StatsMessage::Stat(event)),
            });
        } else {
            grouped.entry(p).or_default().push(event);
        }
    }
    (entries, grouped)
}

/// Names the player's event `event_id` under UUIDv5 within this namespace for the log's
/// deduplication.
const DEDUP_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_7572_656c_0001_8000_0064_6564_7570);

/// The log's idempotency key of a client-chosen `event_id`: scoped to the player, so the
/// same player resending an id is a duplicate, and one player's ids (learnt or guessed)
/// never make another's events vanish.
pub fn dedup_id(player: &PlayerId, event_id: Uuid) -> String {
    let mut name = Vec::with_capacity(player.as_str().len() + 17);
    name.extend_from_slice(event_id.as_bytes());
    name.push(0);
    name.extend_from_slice(player.as_str().as_bytes());
    Uuid::new_v5(&DEDUP_NAMESPACE, &name).to_string()
}

/// Takes `events` from the player's ingest quota, or says when to retry (429).
pub fn throttle(app: &App, player: &str, events: usize) -> Result<(), AppError> {
    let Some(quota) = &app.player_quota else {
        return Ok(());
    };
    let n = u32::try_from(events)
        .ok()
        .and_then(NonZeroU32::new)
        .unwrap_or(NonZeroU32::MIN);
    match quota.check_key_n(&player.to_string(), n) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(quota.clock()));
            let per_minute = app
                .limits
                .player_events_per_minute
                .map_or(0, NonZeroU32::get);
            Err(AppError::Throttled(
                format!("this player sends more than {per_minute} events per minute"),
                wait.as_secs_f64().ceil().max(1.0) as u64,
            ))
        }
        Err(_) => Err(AppError::Throttled(
            format!(
                "a player may send at most {} events at once",
                app.limits.player_events_burst
            ),
            60,
        )),
    }
}

/// The time the play happened, when `ts` counts for the event: a game server's (or an
/// admin's), or a player's own for a `client_time` stat, within `max_age` in the past and
/// [`MAX_EVENT_AHEAD`] in the future of `received_at`. Otherwise `ts` is informational.
fn occurred_at(
    ts: Option<i64>,
    source: Source,
    client_time: bool,
    received_at: i64,
    max_age: Duration,
) -> Result<Option<i64>, Reason> {
    let Some(ts) = ts else { return Ok(None) };
    if source == Source::Player && !client_time {
        return Ok(None);
    }
    let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    if ts < received_at.saturating_sub(max_age_ms) {
        return Err(Reason::TooOld {
            max_age_secs: max_age.as_secs(),
        });
    }
    if ts > received_at + MAX_EVENT_AHEAD.as_millis() as i64 {
        return Err(Reason::InTheFuture {
            max_ahead_secs: MAX_EVENT_AHEAD.as_secs(),
        });
    }
    Ok(Some(ts))
}

/// What to say after "stat X is not defined": the defined stat nearest to `name` when one
/// is near (`; did you mean `kills`?`), else the stats that are defined (the first ten), or
/// that none is.
fn unknown_stat_hint(defs: &Definitions, name: &str) -> String {
    let mut names: Vec<&str> = defs.stats().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    let nearest = names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(name, n), *n))
        .min();
    match nearest {
        None => "; no stat is defined yet (PUT /v1/admin/stats/{name})".to_string(),
        Some((distance, near)) if distance <= (name.chars().count() / 3).max(2) => {
            format!("; did you mean `{near}`?")
        }
        Some(_) => {
            let shown = names
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            let more = names.len().saturating_sub(10);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("; the defined stats are {shown}{more}")
        }
    }
}

fn check(
    index: usize,
    e: &IngestEvent,
    caller: &Caller,
    defs: &Definitions,
    (received_at, max_age): (i64, Duration),
) -> Result<StatEvent, Refusal> {
    let source = caller.source;
    let invalid = |field: &str, reason: Reason| {
        Refusal::Invalid(ItemError::event(index, Some(field), reason))
    };
    let player = match (&e.player_id, caller.is_server()) {
        (Some(p), true) => p.as_str(),
        (None, true) => {
            return Err(invalid("player_id", Reason::Required));
        }
        (Some(p), false) if *p != caller.subject => {
            let reason = Reason::Pattern {
                pattern: "the token's own player id".into(),
            };
            return Err(Refusal::Forbidden(ItemError::event(
                index,
                Some("player_id"),
                reason,
            )));
        }
        (_, false) => caller.subject.as_str(),
    };
    let player_id = PlayerId::new(player).map_err(|r| invalid("player_id", r))?;
    let stat = StatName::new(e.stat.as_str()).map_err(|r| invalid("stat", r))?;
    let found = match &e.value {
        serde_json::Value::Number(_) => None,
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::Object(_) => Some("an object"),
    };
    if let Some(found) = found {
        let reason = Reason::NotANumber {
            found: found.into(),
        };
        return Err(invalid("value", reason));
    }
    let value: Value = serde::Deserialize::deserialize(&e.value)
        .map_err(|_| invalid("value", Reason::NotFinite))?;
    let event_id = match &e.event_id {
        Some(id) => Uuid::parse_str(id).map_err(|_| {
            invalid(
                "event_id",
                Reason::Pattern {
                    pattern: "a UUID".into(),
                },
            )
        })?,
        None => Uuid::new_v4(),
    };
    let value = match defs.check_report(stat.as_str(), value, source) {
        Ok(v) => v,
        Err(reason @ Reason::NotWritable { .. }) => {
            return Err(Refusal::Forbidden(ItemError::event(
                index,
                Some("stat"),
                reason,
            )));
        }
        Err(reason @ Reason::UnknownStat { .. }) => {
            // A typo is the usual cause: the words say what was probably meant.
            let mut error = ItemError::event(index, Some("stat"), reason);
            error
                .reason
                .push_str(&unknown_stat_hint(defs, stat.as_str()));
            return Err(Refusal::Invalid(error));
        }
        Err(reason) => return Err(invalid("value", reason)),
    };
    let client_time = defs.stat(stat.as_str()).is_some_and(|d| d.client_time);
    let occurred_at = occurred_at(e.ts, source, client_time, received_at, max_age)
        .map_err(|reason| invalid("ts", reason))?;
    Ok(StatEvent {
        v: SchemaVersion::CURRENT,
        event_id,
        player_id,
        stat,
        value,
        ts: e.ts.unwrap_or(received_at),
        received_at,
        source,
        occurred_at,
    })
}
