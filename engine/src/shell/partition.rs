//! One partition's worker: consume STATS, fold, append OUTPUT, store state, acknowledge.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use laurel_log::{AppendError, Appended, Entry, Follower, Log, Record, StreamKind, Target};
use laurel_runtime::Shutdown;
use laurel_schemas::{
    Changes, DefinitionEvent, Output, SchemaVersion, StatsEntry, StatsMessage, decode, encode,
};

use super::config::{Share, ShellConfig};
use super::defs::SharedDefs;
use super::error::ShellError;
use super::lease::Lease;
use super::metrics::EngineMetrics;
use super::recover::recover;
use super::store::{PartitionStore, StoreError};
use crate::coalesce::coalesce;
use crate::defs::Definitions;
use crate::fold::Fold;

/// Most outputs in one `changes` entry: keeps an entry well under JetStream's 1 MiB message
/// limit whatever the names' lengths.
const PART_OUTPUTS: usize = 1_000;

/// Most entries of an append handed to the projector (appended fenced, one after another).
const HANDED_ENTRIES: usize = 4;

/// Most players re-evaluated at once after a definition change.
const REEVALUATE_PLAYERS: usize = 1_000;

pub(super) struct Worker {
    partition: u32,
    log: Log,
    store: PartitionStore,
    defs: Arc<SharedDefs>,
    /// Whether the state must first be brought up to OUTPUT (at start, after a rebuild, or
    /// when recovery was cut short).
    needs_recovery: bool,
    /// STATS: what the gateway of this process hands, or the log (see `laurel_log::follow`).
    stats: Follower,
    recovery_consumer: String,
    batch_max: usize,
    poll: Duration,
    metrics: Arc<EngineMetrics>,
    cached: u64,
    persist_interval: Duration,
    last_persist: tokio::time::Instant,
    /// Under a lease (the engine role on NATS): the lease, and where this partition of
    /// OUTPUT ends as far as this worker knows (every append expects it).
    lease: Option<(Arc<Lease>, u64)>,
    /// Unleased, with a projector in the process: where appends are handed, and where this
    /// partition of OUTPUT ends as far as this worker knows (every append expects it).
    handoff: Option<(Arc<laurel_log::Handoff>, u64)>,
    /// Where the state is shared, and when it last was.
    share: Option<(Share, tokio::time::Instant)>,
    /// What the batch being folded changed of the community state: the `global` stats whose
    /// share moved, and the goals learnt reached (for its `changes` entry).
    community_moved: (
        Vec<laurel_schemas::StatName>,
        Vec<laurel_schemas::AchievementId>,
    ),
}

impl Worker {
    /// Opens the partition's stored state; the worker recovers and reads when it runs.
    pub(super) fn open(
        partition: u32,
        log: &Log,
        db: &laurel_derived::Store,
        defs: Arc<SharedDefs>,
        config: &ShellConfig,
        metrics: Arc<EngineMetrics>,
    ) -> Result<Self, ShellError> {
        Ok(Self {
            partition,
            log: log.clone(),
            store: PartitionStore::open(db, partition, config.cache_players)?,
            defs,
            needs_recovery: true,
            stats: Follower::new(
                log.clone(),
                StreamKind::Stats,
                partition,
                format!("{}-stats", config.consumer),
                config
                    .stats_handoff
                    .as_ref()
                    .and_then(|h| h.take(partition)),
                config.reader_linger,
            ),
            recovery_consumer: format!("{}-recovery", config.consumer),
            batch_max: config.batch_max,
            poll: config.poll,
            metrics,
            cached: 0,
            persist_interval: config.persist_interval,
            last_persist: staggered(config.persist_interval, partition, &config.partitions),
            lease: None,
            handoff: config.output_handoff.clone().map(|h| (h, 0)),
            share: None,
            community_moved: (Vec::new(), Vec::new()),
        })
    }

    /// Folds under `lease`: every append to OUTPUT fenced; shares the state through
    /// `share`, if given.
    pub(super) fn leased(mut self, lease: Arc<Lease>, share: Option<Share>) -> Self {
        self.lease = Some((lease, 0));
        // Another process may hold the partition next: nothing to hand to this one's reader,
        // and no gateway of this process hands it anything.
        self.handoff = None;
        self.stats = Follower::new(
            self.log.clone(),
            StreamKind::Stats,
            self.partition,
            self.stats.consumer().to_owned(),
            None,
            Duration::ZERO,
        );
        self.share = share.map(|s| (s, tokio::time::Instant::now()));
        self
    }

    /// Folds until shutdown. A log that cannot be reached is waited out: the in-memory
    /// state is dropped, and the worker goes on from what is stored. An unreadable player
    /// state rebuilds the partition from OUTPUT.
    pub(super) async fn run(self, shutdown: Shutdown) -> Result<(), ShellError> {
        let (metrics, p) = (self.metrics.clone(), self.partition);
        let result = self.fold_until(shutdown).await;
        metrics.released(p);
        result
    }

    async fn fold_until(mut self, shutdown: Shutdown) -> Result<(), ShellError> {
        while !shutdown.is_stopping() {
            match self.step(&shutdown).await {
                Ok(()) => {}
                // Perhaps mid-batch: what is in memory may hold a batch not published whole,
                // so nothing is written; the next start recovers from OUTPUT.
                Err(ShellError::Interrupted) => return Ok(()),
                Err(ShellError::Store(StoreError::Corrupt { player, reason })) => {
                    tracing::error!(
                        partition = self.partition,
                        player,
                        reason,
                        "unreadable engine state; rebuilding the partition from the log"
                    );
                    self.metrics.rebuilds.fetch_add(1, Ordering::Relaxed);
                    self.store.reset()?;
                    self.needs_recovery = true;
                    self.stats.reset();
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(partition = self.partition, error = %e, "log unavailable; retrying");
                    // Go on from what is stored, brought up to what OUTPUT holds.
                    self.store.forget_unpersisted();
                    self.needs_recovery = true;
                    self.stats.reset();
                    tokio::select! {
                        () = shutdown.wait() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // Between batches: what is in memory is exactly what OUTPUT holds.
        self.store.persist(&self.defs.snapshot())?;
        Ok(())
    }

    /// One turn: recover or reopen what is missing, apply definition changes, fold a batch.
    async fn step(&mut self, shutdown: &Shutdown) -> Result<(), ShellError> {
        let p = self.partition;
        if self.needs_recovery {
            let snapshot = Definitions::clone(&self.defs.snapshot());
            let found = recover(
                &self.log,
                p,
                &self.recovery_consumer,
                &mut self.store,
                &snapshot,
            )
            .await?;
            self.needs_recovery = false;
            self.stats.reset();
            // Anything appended after what recovery read breaks the fence.
            if let Some((_, fence)) = &mut self.lease {
                *fence = found.tail;
            }
            if let Some((handoff, fence)) = &mut self.handoff {
                *fence = found.tail;
                // Whatever the partition holds up to there, the projector reads from the log.
                let news = laurel_log::Handed {
                    after: found.tail,
                    records: Vec::new(),
                };
                handoff.hand(p, news);
            }
            tracing::debug!(
                partition = p,
                position = self.store.stats_pos,
                outputs_read = found.outputs,
                events_refolded = found.events,
                unlocks_marked = found.unlocks,
                "engine partition recovered"
            );
        }
        self.apply_definition_changes(shutdown).await?;
        let records = tokio::select! {
            // Between batches: the loop ends and writes what is in memory.
            () = shutdown.wait() => return Ok(()),
            // Cancel-safe: nothing taken is lost when shutdown comes first.
            read = self.stats.next(self.store.stats_pos, self.batch_max, self.poll) => read?,
        };
        if records.is_empty() {
            return Ok(());
        }
        self.process(records, shutdown).await
    }

    /// Folds one batch of STATS entries and publishes what it produced. Entries at or below
    /// the stored position were applied already (a broker may hand them out again): they are
    /// skipped, and the position never moves back.
    async fn process(
        &mut self,
        records: Vec<Record>,
        shutdown: &Shutdown,
    ) -> Result<(), ShellError> {
        let fresh = laurel_log::unapplied(records, self.store.stats_pos);
        let (Some(first), Some(last)) = (fresh.first().map(|r| r.seq), fresh.last().map(|r| r.seq))
        else {
            return Ok(());
        };
        let mut messages: Vec<(u64, StatsMessage)> = Vec::with_capacity(fresh.len());
        for r in &fresh {
            let entry = decode::<StatsEntry>(&r.payload).map_err(|e| {
                tracing::error!(partition = self.partition, seq = r.seq, error = %e, "an undecodable stat event stops the partition");
                ShellError::undecodable(StreamKind::Stats, self.partition, r.seq, e)
            })?;
            messages.extend(entry.into_messages().into_iter().map(|m| (r.seq, m)));
        }
        // A definition the gateway saw may not have reached this engine yet.
        if self
            .defs
            .read(|d| messages.iter().any(|(_, m)| !knows(d, m)))
        {
            tokio::select! {
                () = shutdown.wait() => return Err(ShellError::Interrupted),
                caught_up = self.defs.catch_up(&self.log) => caught_up?,
            }
        }
        // A snapshot, not the lock: the fold reads player states from disk and the writes
        // below go to disk, which must not hold up the definitions' follower.
        let defs = self.defs.snapshot();
        let started = std::time::Instant::now();
        let outputs = self.fold(&defs, &messages)?;
        let checkpoint = self.publish(outputs, first, last, shutdown).await?;
        let folded = started.elapsed();
        self.store.stats_pos = last;
        self.store.output_pos = checkpoint;
        // Written behind the fold: the next batch is folded while the store writes this state.
        // Only a cache at twice its bound waits for the write before.
        let due = self.last_persist.elapsed() >= self.persist_interval;
        let full = self.store.over_capacity();
        if (due || full) && (!self.store.writing() || self.store.far_over_capacity()) {
            let metrics = self.metrics.clone();
            let store = &mut self.store;
            laurel_runtime::block_here(|| {
                store.persist_behind(&defs, move |took| metrics.persisted(took))
            })?;
            self.last_persist = tokio::time::Instant::now();
        }
        if let Some((share, shared)) = &mut self.share
            && shared.elapsed() >= share.every
        {
            let started = std::time::Instant::now();
            let (store, p) = (&mut self.store, self.partition);
            let identity = self.log.identity();
            let blob = laurel_runtime::block_here(|| store.persist_and_export(&defs, identity, p))?;
            self.metrics.shared(started.elapsed());
            (share.sink)(p, blob);
            *shared = tokio::time::Instant::now();
            self.last_persist = *shared;
        }
        self.stats.ack_behind(last).await?;
        let lag = self.stats.pending();
        let m = &self.metrics;
        m.events.fetch_add(messages.len() as u64, Ordering::Relaxed);
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.cache_hits
            .fetch_add(std::mem::take(&mut self.store.hits), Ordering::Relaxed);
        m.cache_misses
            .fetch_add(std::mem::take(&mut self.store.misses), Ordering::Relaxed);
        m.folded(self.partition, last, lag, folded);
        self.record_cache_size();
        Ok(())
    }

    /// Folds a batch: its outputs, coalesced, each `stat` change followed by the progress
    /// milestones it reached.
    fn fold(
        &mut self,
        defs: &Definitions,
        messages: &[(u64, StatsMessage)],
    ) -> Result<Vec<Output>, ShellError> {
        let mut reached = self.store.community.reached_in(defs);
        let mut outputs = Vec::new();
        self.community_moved = (Vec::new(), Vec::new());
        for (_, msg) in messages {
            let fold = Fold::live(defs).with_reached(&reached);
            let Some(id) = msg.player_id() else {
                if let StatsMessage::CommunityReached(c) = msg
                    && let Some(goal) = defs.achievement_idx(c.achievement_id.as_str())
                    && self.store.community.reach(&c.achievement_id)
                {
                    // Every player of the partition whose contribution is enough earns it
                    // now; the others when theirs is.
                    reached.push(goal);
                    self.community_moved.1.push(c.achievement_id.clone());
                    let fold = Fold::live(defs).with_reached(&reached);
                    for id in self.store.player_ids()? {
                        let player = self.store.player_mut(&id, defs)?;
                        fold.community_reached(
                            player,
                            &id,
                            goal,
                            c.event_id,
                            c.received_at,
                            &mut outputs,
                        );
                    }
                }
                continue;
            };
            let start = outputs.len();
            let player = self.store.player_mut(id, defs)?;
            fold.apply(player, msg, &mut outputs);
            for stat in self.store.community.add(defs, &outputs[start..]) {
                if !self.community_moved.0.contains(&stat) {
                    self.community_moved.0.push(stat);
                }
            }
        }
        coalesce(&mut outputs);
        let fold = Fold::live(defs).with_reached(&reached);
        let mut expanded = Vec::with_capacity(outputs.len() * 2);
        let mut progress = Vec::new();
        for output in outputs {
            if let Output::Stat(change) = &output
                && let Some(player) = self.store.cached(change.player_id.as_str())
            {
                fold.progress(player, change, &mut progress);
            }
            expanded.push(output);
            expanded.append(&mut progress);
        }
        Ok(expanded)
    }

    /// Re-evaluates the partition's players against definitions that changed since the
    /// partition last looked.
    async fn apply_definition_changes(&mut self, shutdown: &Shutdown) -> Result<(), ShellError> {
        if self.defs.seq() <= self.store.defs_pos {
            return Ok(());
        }
        let changes = self.defs.changes_after(self.store.defs_pos);
        let Some(&(last, _)) = changes.last() else {
            return Ok(());
        };
        let players = self.store.player_ids()?;
        // A chunk of players at a time: their unlocks appended, then their states written
        // (and the cache trimmed), so a partition is never loaded whole. Cut short, the
        // re-evaluation runs again from the start; what it emitted is marked earned by then
        // (written, or found on OUTPUT by recovery) and is not emitted twice.
        let chunk = (self.store.capacity() / 2).clamp(1, REEVALUATE_PLAYERS);
        let snapshot = self.defs.snapshot();
        let defs: &Definitions = &snapshot;
        let reached = self.store.community.reached_in(defs);
        for ids in players.chunks(chunk) {
            let outputs = (|| -> Result<Vec<Output>, ShellError> {
                let fold = Fold::live(defs).with_reached(&reached);
                let mut outputs = Vec::new();
                for (_, change) in &changes {
                    let DefinitionEvent::AchievementDefined { definition, .. } = change else {
                        continue;
                    };
                    let Some(ach) = defs.achievement_idx(definition.id.as_str()) else {
                        continue;
                    };
                    for id in ids {
                        let player = self.store.player_mut(id, defs)?;
                        fold.reevaluate(
                            player,
                            id,
                            ach,
                            change.event_id(),
                            change.at(),
                            &mut outputs,
                        );
                    }
                }
                Ok(outputs)
            })()?;
            // Only unlocks (and their rewards) come out of a re-evaluation.
            let entries: Vec<Entry> = outputs
                .into_iter()
                .filter_map(|output| self.entry_of(output))
                .collect();
            self.append(entries, shutdown).await?;
            self.record_cache_size();
            let store = &mut self.store;
            laurel_runtime::block_here(|| store.persist(defs))?;
        }
        self.store.defs_pos = last;
        self.store.persist(defs)?;
        self.record_cache_size();
        tracing::debug!(
            partition = self.partition,
            players = players.len(),
            "re-evaluated after a definition change"
        );
        Ok(())
    }

    /// Appends a batch's unlocks and then its `changes` entry (the checkpoint); returns the
    /// checkpoint's OUTPUT position. On JetStream the checkpoint goes only once every other
    /// output is stored, so a complete `changes` entry on OUTPUT always means its batch is
    /// there whole (recovery relies on it); on the embedded log one append is all or
    /// nothing, so they go together.
    async fn publish(
        &mut self,
        outputs: Vec<Output>,
        first: u64,
        last: u64,
        shutdown: &Shutdown,
    ) -> Result<u64, ShellError> {
        let (mut entries, mut parts) = (Vec::new(), vec![self.changes(first, last)]);
        for output in outputs {
            let part = parts.last_mut().expect("one part at least");
            if part.stats.len() + part.progress.len() + part.rejected.len() >= PART_OUTPUTS {
                parts.push(self.changes(first, last));
            }
            let part = parts.last_mut().expect("one part at least");
            match output {
                output @ (Output::Unlocked(_)
                | Output::Reward(_)
                | Output::RewardClaimed(_)
                | Output::PlayerReset(_)) => entries.extend(self.entry_of(output)),
                Output::Stat(s) => part.stats.push(s),
                Output::Progress(p) => part.progress.push(p),
                Output::Rejected(r) => part.rejected.push(r),
                Output::Checkpoint(_) | Output::Changes(_) => {}
            }
        }
        // The batch's community changes go on its checkpoint: the shares as they are after
        // the batch, and the goals it learnt reached.
        let (moved, reached) = std::mem::take(&mut self.community_moved);
        if let Some(complete) = parts.last_mut() {
            complete.community = self.store.community.shares_of(&moved);
            complete.reached = reached;
        }
        // Ids from what caused them: the batch's STATS span, the part and the number of
        // parts (so a complete entry never shares the id of a part of another split).
        let count = parts.len();
        let mut parts: Vec<Entry> = parts
            .into_iter()
            .enumerate()
            .map(|(i, mut part)| {
                part.complete = i + 1 == count;
                Entry {
                    target: Target::Partition(self.partition),
                    id: format!("{}:b:{first}-{last}:{i}/{count}", self.partition),
                    payload: encode(&Output::Changes(part)),
                }
            })
            .collect();
        let checkpoint = parts.pop().expect("one part at least");
        entries.extend(parts);
        if self.log.appends_atomically() {
            entries.push(checkpoint);
            let acks = self.append(entries, shutdown).await?;
            return Ok(acks.last().map_or(0, |a| a.seq));
        }
        self.append(entries, shutdown).await?;
        let acks = self.append(vec![checkpoint], shutdown).await?;
        Ok(acks.last().map_or(0, |a| a.seq))
    }

    /// The OUTPUT entry of an output that is an entry of its own (an unlock, a reward, a
    /// claimed reward), under an id from what caused it: the earn's `unlock_id` (with
    /// `:reward` or `:claimed` for the rewards), so a re-emission is deduplicated.
    fn entry_of(&self, output: Output) -> Option<Entry> {
        let id = match &output {
            Output::Unlocked(u) => u.unlock_id.to_string(),
            Output::Reward(r) => format!("{}:reward", r.unlock_id),
            Output::RewardClaimed(c) => format!("{}:claimed", c.unlock_id),
            Output::PlayerReset(r) => format!("{}:reset", r.caused_by),
            _ => return None,
        };
        Some(Entry {
            target: Target::Partition(self.partition),
            id,
            payload: encode(&output),
        })
    }

    /// An empty `changes` entry of the batch `first..=last`.
    fn changes(&self, first: u64, last: u64) -> Changes {
        Changes {
            v: SchemaVersion::CURRENT,
            partition: self.partition,
            first_seq: first,
            stats_seq: last,
            complete: false,
            stats: Vec::new(),
            progress: Vec::new(),
            rejected: Vec::new(),
            community: Vec::new(),
            reached: Vec::new(),
        }
    }

    /// Appends to this partition of OUTPUT, retrying while the log is unreachable. Under a
    /// lease, the append is fenced and not retried here: an unreachable log sends the worker
    /// back through recovery, which finds where the partition ends.
    async fn append(
        &mut self,
        entries: Vec<Entry>,
        shutdown: &Shutdown,
    ) -> Result<Vec<Appended>, ShellError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let p = self.partition;
        if let Some((lease, fence)) = &mut self.lease {
            if !lease.held() {
                return Err(ShellError::Fenced(p));
            }
            let attempt = tokio::select! {
                () = shutdown.wait() => return Err(ShellError::Interrupted),
                attempt = self.log.append_fenced(StreamKind::Output, entries, *fence) => attempt,
            };
            return match attempt {
                Ok(acks) => {
                    *fence = Log::fence_after(*fence, &acks);
                    self.metrics
                        .outputs
                        .fetch_add(acks.len() as u64, Ordering::Relaxed);
                    Ok(acks)
                }
                Err(AppendError::Conflict(_)) => Err(ShellError::Fenced(p)),
                Err(e) => Err(e.into()),
            };
        }
        let log = &self.log;
        // Handed, an append must be fenced, and a fenced append waits for each entry's ack
        // before it sends the next: past a few entries (a flood's batches) the entries go
        // pipelined, unfenced, and the projector reads them from the log.
        let fenced = self
            .handoff
            .as_ref()
            .map(|(_, fence)| *fence)
            .filter(|_| entries.len() <= HANDED_ENTRIES);
        let appended = laurel_runtime::retrying(
            shutdown,
            "appending to OUTPUT",
            |e| matches!(e, AppendError::Unavailable(_)),
            || {
                let entries = entries.clone();
                async move {
                    match fenced {
                        Some(fence) => log.append_fenced(StreamKind::Output, entries, fence).await,
                        None => log.append(StreamKind::Output, entries).await,
                    }
                }
            },
        )
        .await;
        match appended {
            None => Err(ShellError::Interrupted),
            Some(Ok(acks)) => {
                self.metrics
                    .outputs
                    .fetch_add(acks.len() as u64, Ordering::Relaxed);
                if let Some((handoff, fence)) = &mut self.handoff {
                    let after = *fence;
                    *fence = Log::fence_after(after, &acks);
                    // A duplicate is an entry stored before, elsewhere in the partition:
                    // the batch does not follow `after`. Unfenced, nothing says another
                    // entry came between. Then only where the partition now ends is
                    // handed, and the projector reads the rest from the log.
                    let handed = if fenced.is_some() && acks.iter().all(|a| !a.duplicate) {
                        laurel_log::Handed::appended(after, &acks, entries)
                    } else {
                        laurel_log::Handed {
                            after: *fence,
                            records: Vec::new(),
                        }
                    };
                    handoff.hand(p, handed);
                }
                Ok(acks)
            }
            // Something else appended to the partition (or an earlier try of this append
            // was stored): recovery finds where the partition ends and what it holds.
            Some(Err(AppendError::Conflict(_))) => Err(ShellError::Interleaved(p)),
            Some(Err(e)) => Err(e.into()),
        }
    }

    fn record_cache_size(&mut self) {
        let now = self.store.cached_players() as u64;
        let m = &self.metrics;
        m.cached_players.fetch_add(now, Ordering::Relaxed);
        m.cached_players.fetch_sub(self.cached, Ordering::Relaxed);
        m.max_cached_players.fetch_max(now, Ordering::Relaxed);
        self.cached = now;
    }
}

/// When a partition last wrote its state, as if it had: the partitions' writes spread over
/// the interval instead of all falling due at once (a burst that held up every partition).
fn staggered(interval: Duration, partition: u32, partitions: &[u32]) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let rank = partitions.iter().filter(|&&p| p < partition).count() as u32;
    let offset = interval * rank / partitions.len().max(1) as u32;
    now.checked_sub(offset).unwrap_or(now)
}

/// Whether the definitions know what the message names.
fn knows(defs: &Definitions, msg: &StatsMessage) -> bool {
    match msg {
        StatsMessage::Stat(e) => defs.stat(e.stat.as_str()).is_some(),
        StatsMessage::Grant(g) => defs.achievement(g.achievement_id.as_str()).is_some(),
        // A claim names an earn the player's state holds, not a definition.
        StatsMessage::Claim(_) => true,
        StatsMessage::CommunityReached(c) => defs.achievement(c.achievement_id.as_str()).is_some(),
        StatsMessage::Reset(_) => true,
    }
}
