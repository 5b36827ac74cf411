//! A replay: the STATS history folded again against a definitions file (or the definitions
//! in force), the diff, and on request the apply.
//!
//! The re-fold runs in the server: it owns the log (the embedded one opens in one process
//! only) and the views that say what players hold. Progress lines flow while the work goes
//! on, then the report. An apply appends the file's definition changes to DEFS, waits until
//! this process's definitions hold them, then appends one grant per gain to STATS (through
//! the one STATS append path); the engine, which owns each player's earned set, unlocks each
//! at most once, so an interrupted apply run again grants only what is missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use laurel_engine::shell::{Gain, Holding, Replay};
use laurel_engine::{Definitions, Overlaid};
use laurel_log::{Entry, StreamKind, Target, partition_of};
use laurel_schemas::replay::SAMPLES_MAX;
use laurel_schemas::{
    DefinitionsFile, Grant, PlayerId, ReplayLine, ReplayProgress, ReplayReport, ReplayRequest,
    SchemaVersion, Source, StatsMessage, encode,
};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::ingest::append_stats;
use crate::{App, AppError, ItemError, now_ms};

/// Namespace of replay ids (from the definitions folded against) and of a replay's grant ids.
const REPLAY_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_7572_656c_2d72_6570_6c61_792d_6e73);

/// The consumer name replays read STATS with.
const CONSUMER: &str = "laurel-replay";

/// Player ids named per achievement when the request does not say.
const DEFAULT_SAMPLES: usize = 5;

/// Grants appended per log call.
const GRANT_CHUNK: usize = 500;

/// How long a replay waits for the views to reach the log before it folds a partition.
const VIEWS_CATCH_UP: Duration = Duration::from_secs(60);

/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Starts a replay: checks the request and the file whole (a refused one changes nothing),
/// and returns the lines it answers with, `progress` lines, then one `report` (or `error`).
/// 409 while another replay runs.
pub async fn start(
    app: App,
    by: String,
    request: ReplayRequest,
) -> Result<mpsc::Receiver<ReplayLine>, AppError> {
    if let Some(samples) = request.samples.filter(|&n| n > SAMPLES_MAX) {
        let reason = laurel_schemas::Reason::TooLong {
            max: SAMPLES_MAX,
            unit: "samples".into(),
        };
        return Err(AppError::Invalid(
            format!("`samples` is {samples}"),
            vec![ItemError::from(laurel_schemas::ValidationError::new(
                "samples", reason,
            ))],
        ));
    }
    let running = app
        .replay
        .clone()
        .try_lock_owned()
        .map_err(|_| AppError::Conflict("another replay is running".into()))?;
    let file = match &request.definitions {
        Some(file) => file.clone(),
        None => app.defs.read(in_force),
    };
    // Checked whole before anything runs: a refused file changes nothing.
    let overlaid = app
        .defs
        .read(|d| d.overlay(&file, now_ms()))
        .map_err(|errors| {
            AppError::Invalid(
                "invalid definitions".into(),
                errors.into_iter().map(ItemError::from).collect(),
            )
        })?;
    let missing = app.icons.missing_in_file(&file).await?;
    if !missing.is_empty() {
        return Err(AppError::Invalid(
            "invalid definitions".into(),
            missing.into_iter().map(ItemError::from).collect(),
        ));
    }
    let replay_id = Uuid::new_v5(
        &REPLAY_NAMESPACE,
        &serde_json::to_vec(&file).expect("a definitions file serializes"),
    );
    let (lines, receiver) = mpsc::channel::<ReplayLine>(16);
    let job = Job {
        app,
        by,
        lines: lines.clone(),
        request,
        replay_id,
    };
    tokio::spawn(async move {
        let last = match job.run(&file, overlaid).await {
            Ok(report) => ReplayLine::Report(report),
            Err(e) => {
                tracing::error!(replay = %replay_id, error = %e, "replay failed");
                ReplayLine::Error {
                    detail: e.to_string(),
                }
            }
        };
        let _ = lines.send(last).await;
        drop(running);
    });
    Ok(receiver)
}

/// The definitions in force as a file (archived achievements left out): what a replay
/// without a file folds against.
fn in_force(defs: &Definitions) -> DefinitionsFile {
    DefinitionsFile {
        stats: defs
            .stats()
            .map(|d| (d.name.to_string(), d.to_spec()))
            .collect(),
        achievements: defs
            .achievements()
            .filter(|d| !d.archived)
            .map(|d| (d.id.to_string(), d.to_spec()))
            .collect(),
        seasons: defs
            .seasons()
            .map(|d| (d.id.to_string(), d.to_spec()))
            .collect(),
    }
}

/// A replay being run for one request.
struct Job {
    app: App,
    /// The admin who runs it (the audit log names them).
    by: String,
    lines: mpsc::Sender<ReplayLine>,
    request: ReplayRequest,
    replay_id: Uuid,
}

impl Job {
    /// Sends a progress line (dropped when the client is slow or gone: the work goes on).
    fn progress(&self, phase: &str, done: u64, total: u64) {
        let _ = self.lines.try_send(ReplayLine::Progress(ReplayProgress {
            phase: phase.into(),
            done,
            total,
        }));
    }

    async fn run(
        &self,
        file: &DefinitionsFile,
        overlaid: Overlaid,
    ) -> anyhow::Result<ReplayReport> {
        let started = Instant::now();
        let Overlaid { defs, changes } = overlaid;
        let log = &self.app.log;
        let partitions = log.config().partitions;
        let mut total = 0;
        // The history the replay must cover: every partition's STATS as it is now.
        let mut targets = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            total += log.entries(StreamKind::Stats, p).await?;
            targets.push(log.last_seq(StreamKind::Stats, p).await?);
        }
        let samples = self.request.samples.unwrap_or(DEFAULT_SAMPLES);
        let mut replay = Replay::new(&defs, samples, CONSUMER);
        let read = Arc::new(AtomicU64::new(0));
        let ticker = {
            let (read, lines) = (read.clone(), self.lines.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PROGRESS_EVERY);
                loop {
                    tick.tick().await;
                    let done = read.load(Ordering::Relaxed);
                    let line = ReplayLine::Progress(ReplayProgress {
                        phase: "fold".into(),
                        done,
                        total,
                    });
                    if lines.try_send(line).is_err() && lines.is_closed() {
                        return;
                    }
                }
            })
        };
        let folded = async {
            for p in 0..partitions {
                if !self.request.apply && self.lines.is_closed() {
                    anyhow::bail!("the client went away");
                }
                // What players hold is read from the views, and the history is folded up to
                // the position they reflect: views that lag (Laurel just restarted, the
                // projector catching up) would hide history, so wait until they reach it.
                let views = self.app.views.clone();
                let target = targets[p as usize];
                if !views.wait_for(p, target, VIEWS_CATCH_UP).await {
                    anyhow::bail!(
                        "the views of partition {p} are at STATS position {} of {target}: Laurel is still catching up (see /readyz); run the replay again shortly",
                        views.checkpoint(p)
                    );
                }
                let earned = laurel_runtime::block_here(|| views.earned_in_partition(p))?;
                let holdings = holdings(earned.players);
                replay
                    .partition(log, p, earned.checkpoint, holdings, &read)
                    .await?;
            }
            Ok(())
        }
        .await;
        ticker.abort();
        folded?;
        self.progress("fold", read.load(Ordering::Relaxed), total);
        let (mut report, gains) = replay.finish();
        report.replay_id = self.replay_id;
        report.definitions_changed = changes.iter().map(crate::audit::describe).collect();
        if self.request.apply {
            self.apply_definitions(file).await?;
            // On the audit log before its grants go (the replay's id: once per replay).
            let action = laurel_schemas::AdminAction::Replay {
                replay_id: self.replay_id,
                gained: gains.len() as u64,
            };
            crate::audit::record(&self.app, &self.by, self.replay_id, action).await?;
            report.granted = self.grant(&gains).await?;
            report.applied = true;
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(replay = %self.replay_id, events = report.events, gained = report.gained, lost = report.lost, applied = report.applied, granted = report.granted, "replay done");
        Ok(report)
    }

    /// Appends the file's changes (against the definitions in force now, under the admin
    /// lock, checked whole again) and waits until this process's definitions hold them.
    async fn apply_definitions(&self, file: &DefinitionsFile) -> anyhow::Result<()> {
        // All or nothing, on the definitions in force now (a change since the dry run is
        // laid over too, or refuses the file).
        crate::definitions::apply_file(&self.app, &self.by, file, false, false)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the definitions changed during the replay and no longer apply: {e}"
                )
            })?;
        Ok(())
    }

    /// Appends one grant per gain, at most `replay_grants_per_second`; returns how many were
    /// new on the log.
    async fn grant(&self, gains: &[Gain]) -> anyhow::Result<u64> {
        let log = &self.app.log;
        let partitions = log.config().partitions;
        let received_at = now_ms();
        let rate = self.app.limits.replay_grants_per_second.max(1);
        // A few chunks a second, so the pace is even and progress flows.
        let chunk_size = GRANT_CHUNK.min((rate as usize / 4).max(1));
        let started = tokio::time::Instant::now();
        let mut granted = 0;
        let mut sent = 0usize;
        for chunk in gains.chunks(chunk_size) {
            let entries = chunk
                .iter()
                .map(|gain| {
                    let grant = Grant {
                        v: SchemaVersion::CURRENT,
                        event_id: grant_id(self.replay_id, gain),
                        player_id: gain.player.clone(),
                        achievement_id: gain.achievement.clone(),
                        received_at,
                        source: Source::Admin,
                        replay: Some(self.replay_id),
                        earned_at: Some(gain.earned_at),
                        occurrence: (gain.occurrence > 1).then_some(gain.occurrence),
                    };
                    Entry {
                        target: Target::Partition(partition_of(gain.player.as_str(), partitions)),
                        id: grant.event_id.to_string(),
                        payload: encode(&StatsMessage::Grant(grant)),
                    }
                })
                .collect();
            let acks = append_stats(&self.app, entries).await?;
            granted += acks.iter().filter(|a| !a.duplicate).count() as u64;
            sent += chunk.len();
            self.progress("apply", sent as u64, gains.len() as u64);
            let due = started + Duration::from_secs_f64(sent as f64 / f64::from(rate));
            tokio::time::sleep_until(due).await;
        }
        Ok(granted)
    }
}

/// A replay's grant of a gain: the same replay grants the same gain under the same id.
fn grant_id(replay: Uuid, gain: &Gain) -> Uuid {
    let mut name = replay.as_bytes().to_vec();
    name.extend_from_slice(gain.player.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(gain.achievement.as_str().as_bytes());
    // Each earn of a repeatable or periodic achievement is its own grant.
    if gain.occurrence > 1 {
        name.extend_from_slice(format!("\0#{}", gain.occurrence).as_bytes());
    }
    if let Some(period) = &gain.period {
        name.extend_from_slice(format!("\0@{period}").as_bytes());
    }
    Uuid::new_v5(&REPLAY_NAMESPACE, &name)
}

/// The views' earned records as the replay compares them.
fn holdings(
    players: Vec<(
        String,
        std::collections::BTreeMap<String, laurel_projections::Earned>,
    )>,
) -> FxHashMap<PlayerId, Vec<Holding>> {
    players
        .into_iter()
        .filter_map(|(player, earned)| {
            let player = PlayerId::stored(player).ok()?;
            let held = earned
                .into_iter()
                .map(|(achievement, e)| Holding {
                    achievement,
                    points: e.points,
                    times: e.times,
                    periods: e.periods.into_keys().collect(),
                })
                .collect();
            Some((player, held))
        })
        .collect()
}
