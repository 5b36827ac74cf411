//! Laurel's application layer: one service per operation, which the HTTP routes, the
//! GameKit routes and the console all call; no surface calls another's handlers. A service
//! takes the [`App`] and plain values, and answers with plain values or an [`AppError`]
//! kind; it knows nothing of requests and responses.
//!
//! - [`definitions`]: every change to stats and achievements (one DEFS append path).
//! - [`ingest`]: stat events and grants (one STATS append path), their checks and quotas.
//! - [`players`]: a player's view of the achievements.
//! - [`icons`]: achievement icons, where they are kept and how they are linked.

pub mod audit;
mod caller;
pub mod community;
pub mod definitions;
mod error;
pub mod icons;
pub mod ingest;
pub mod insights;
mod lanes;
pub mod players;
mod position;
pub mod replay;
pub mod rewards;
pub mod timeline;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use laurel_engine::shell::SharedDefs;
use laurel_log::Log;
use laurel_projections::Views;
use laurel_schemas::{AchievementDefinition, StatDefinition};

pub use caller::Caller;
pub use error::{AppError, ItemError};
pub use position::ReadToken;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (413 past it).
    pub max_body: usize,
    /// Most events in one ingest batch (413 past it).
    pub max_batch: usize,
    /// Longest `?wait_for=` wait before answering with what is there.
    pub max_wait: Duration,
    /// Longest time a request body may take to arrive (408 past it).
    pub body_timeout: Duration,
    /// Live notification streams one player may have open at once (429 past it).
    pub max_streams_per_player: usize,
    /// Grants a replay's apply appends per second, at most.
    pub replay_grants_per_second: u32,
    /// Events one player token may send per minute, sustained (`None`: unlimited).
    pub player_events_per_minute: Option<NonZeroU32>,
    /// Events one player token may send at once before the rate applies.
    pub player_events_burst: NonZeroU32,
    /// How far in the past an event's trusted `ts` may lie (422 past it).
    pub max_event_age: Duration,
    /// Patterns of the player ids an admin may reset (`*`: any characters, `?`: one).
    pub test_players: Vec<String>,
}

/// How far in the future an event's trusted `ts` may lie (clocks drift; 422 past it).
pub const MAX_EVENT_AHEAD: Duration = Duration::from_secs(300);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_batch: 1000,
            max_wait: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            max_streams_per_player: 8,
            replay_grants_per_second: 20_000,
            player_events_per_minute: NonZeroU32::new(6000),
            player_events_burst: NonZeroU32::new(2000).expect("non-zero"),
            max_event_age: Duration::from_secs(7 * 24 * 3600),
            test_players: Vec::new(),
        }
    }
}

/// What every service shares: the log, the read models, the definitions in force, the
/// icons, and the limits. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The logs.
    pub log: Log,
    /// The read models.
    pub views: Views,
    /// The compiled definitions, following DEFS (one copy per process).
    pub defs: Arc<SharedDefs>,
    /// Request limits.
    pub limits: Limits,
    /// Serializes definition writes of this process, so versions go up by exactly one.
    pub admin: Arc<tokio::sync::Mutex<()>>,
    /// Held by the replay running (one at a time).
    pub replay: Arc<tokio::sync::Mutex<()>>,
    /// Per-player ingest rate limit, when on.
    pub player_quota: Option<Arc<PlayerQuota>>,
    /// Achievement icons: where they are kept and how they are linked.
    pub icons: icons::Icons,
    /// Held by the timeline being read (one at a time per process).
    pub timeline: Arc<tokio::sync::Mutex<()>>,
    /// This process's services, told apart from other processes' (names its log readers).
    pub instance: uuid::Uuid,
    /// The STATS lanes that merge concurrent requests' events (see [`lanes`]).
    lanes: Arc<lanes::Lanes>,
}

impl App {
    /// The services over `log`, `views` and `defs`, with `limits` and `icons`.
    pub fn new(
        log: Log,
        views: Views,
        defs: Arc<SharedDefs>,
        limits: Limits,
        icons: icons::Icons,
    ) -> Self {
        let player_quota = limits.player_quota();
        let lanes = lanes::Lanes::new(log.config().partitions, None);
        Self {
            log,
            views,
            defs,
            limits,
            admin: Arc::new(tokio::sync::Mutex::new(())),
            replay: Arc::new(tokio::sync::Mutex::new(())),
            player_quota,
            icons,
            timeline: Arc::new(tokio::sync::Mutex::new(())),
            instance: uuid::Uuid::new_v4(),
            lanes,
        }
    }
}

/// Events per player token over time.
pub type PlayerQuota = governor::DefaultKeyedRateLimiter<String>;

impl App {
    /// The same services, handing what the gateway appends to STATS to the engine of this
    /// process (`laurel serve` on JetStream, by default; see [`laurel_log::handoff`]).
    pub fn handing_stats(mut self, handoff: Arc<laurel_log::Handoff>) -> Self {
        self.lanes = lanes::Lanes::new(self.log.config().partitions, Some(handoff));
        self
    }
}

impl Limits {
    /// Whether `player` is a test player an admin may reset.
    pub fn is_test_player(&self, player: &str) -> bool {
        self.test_players
            .iter()
            .any(|pattern| wildmatch::WildMatch::new(pattern).matches(player))
    }

    /// The per-player ingest rate limiter these limits call for.
    pub fn player_quota(&self) -> Option<Arc<PlayerQuota>> {
        let per_minute = self.player_events_per_minute?;
        let period = Duration::from_secs(60) / per_minute.get();
        let quota = governor::Quota::with_period(period)?.allow_burst(self.player_events_burst);
        Some(Arc::new(governor::RateLimiter::keyed(quota)))
    }
}

impl App {
    /// Brings this process's definitions up to the last entry on DEFS now (waiting at most
    /// `--max-wait`), so that what another gateway defined a moment ago counts: whether they
    /// moved. A decision that depends on definitions is taken again after this before it
    /// refuses anything. 503 when the log cannot say where DEFS ends, or the definitions do
    /// not get there in time.
    pub async fn catch_up_defs(&self) -> Result<bool, AppError> {
        let before = self.defs.seq();
        match self
            .defs
            .catch_up_within(&self.log, self.limits.max_wait)
            .await
        {
            Ok(true) => Ok(self.defs.seq() != before),
            Ok(false) => Err(AppError::Unavailable(
                "this gateway's definitions are catching up with the log: try again".into(),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "the definitions log is unreachable");
                Err(AppError::Unavailable(
                    "the definitions log is unreachable: try again".into(),
                ))
            }
        }
    }

    /// Runs `decide` against the definitions in force; when it refuses, catches up with DEFS
    /// and, if the definitions moved, decides again: a refusal is never made on definitions
    /// older than the log's when the request arrived.
    pub async fn decide_on_latest<T>(
        &self,
        mut decide: impl FnMut() -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        match decide() {
            Ok(done) => Ok(done),
            Err(refusal) => {
                if self.catch_up_defs().await? {
                    decide()
                } else {
                    Err(refusal)
                }
            }
        }
    }

    /// A stat's definition.
    pub fn stat_definition(&self, name: &str) -> Option<StatDefinition> {
        self.defs.read(|d| d.stat(name).cloned())
    }

    /// Every stat definition, by name.
    pub fn stat_definitions(&self) -> Vec<StatDefinition> {
        let mut stats: Vec<StatDefinition> = self.defs.read(|d| d.stats().cloned().collect());
        stats.sort_by(|a, b| a.name.cmp(&b.name));
        stats
    }

    /// An achievement's definition (archived ones included).
    pub fn achievement(&self, id: &str) -> Option<AchievementDefinition> {
        self.defs.read(|d| d.achievement(id).cloned())
    }

    /// Every achievement definition (archived ones included), by id.
    pub fn achievements(&self) -> Vec<AchievementDefinition> {
        let mut all: Vec<AchievementDefinition> =
            self.defs.read(|d| d.achievements().cloned().collect());
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Every achievement definition carrying `tag` (every one without a tag asked for), by
    /// id: what every list's `?tag=` filter reads. A tag no achievement can carry is a
    /// malformed request, not an empty list.
    pub fn achievements_tagged(
        &self,
        tag: Option<&str>,
    ) -> Result<Vec<AchievementDefinition>, AppError> {
        let Some(tag) = tag else {
            return Ok(self.achievements());
        };
        if !laurel_schemas::is_tag(tag) {
            return Err(AppError::Malformed(format!(
                "tag: {tag:?} is not a tag: tags are 1 to 64 ASCII letters, digits and _.:-"
            )));
        }
        let mut all = self.achievements();
        all.retain(|d| d.has_tag(tag));
        Ok(all)
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A time in milliseconds since the epoch as RFC 3339.
pub fn rfc3339(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}
