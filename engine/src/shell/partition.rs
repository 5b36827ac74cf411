//! One partition's worker: consume STATS, fold, append OUTPUT, store state, acknowledge.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use laurel_log::{AppendError, Entry, Log, Reader, Record, Start, StreamKind, Target};
use laurel_schemas::{
    Checkpoint, DefinitionEvent, Output, SchemaVersion, StatsMessage, decode, encode,
};
use tokio::sync::watch;

use super::store::PartitionStore;
use super::{EngineMetrics, SharedDefs, ShellConfig, ShellError};
use crate::coalesce::coalesce;
use crate::defs::Definitions;
use crate::fold::Fold;

pub(super) struct Worker {
    partition: u32,
    log: Log,
    store: PartitionStore,
    defs: Arc<SharedDefs>,
    reader: Reader,
    batch_max: usize,
    poll: Duration,
    metrics: Arc<EngineMetrics>,
    cached: u64,
}

impl Worker {
    pub(super) async fn open(
        partition: u32,
        log: &Log,
        db: &sled::Db,
        defs: Arc<SharedDefs>,
        config: &ShellConfig,
        metrics: Arc<EngineMetrics>,
    ) -> Result<Self, ShellError> {
        let store = PartitionStore::open(db, partition, config.cache_players)?;
        let consumer = format!("{}-stats", config.consumer);
        let reader = log
            .reader(
                StreamKind::Stats,
                partition,
                &consumer,
                Start::After(store.stats_pos),
            )
            .await?;
        tracing::info!(
            partition,
            position = store.stats_pos,
            "engine partition resuming"
        );
        Ok(Self {
            partition,
            log: log.clone(),
            store,
            defs,
            reader,
            batch_max: config.batch_max,
            poll: config.poll,
            metrics,
            cached: 0,
        })
    }

    pub(super) async fn run(mut self, shutdown: watch::Receiver<bool>) -> Result<(), ShellError> {
        while !*shutdown.borrow() {
            self.apply_definition_changes(&shutdown).await?;
            let records = match self.reader.next_batch(self.batch_max, self.poll).await {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(partition = self.partition, error = %e, "stats log unavailable; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if !records.is_empty() {
                self.process(records, &shutdown).await?;
            }
        }
        Ok(())
    }

    /// Folds one batch of STATS entries and publishes what it produced.
    async fn process(
        &mut self,
        records: Vec<Record>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ShellError> {
        let last = records.last().map_or(self.store.stats_pos, |r| r.seq);
        let messages: Vec<StatsMessage> = records
            .iter()
            .filter(|r| r.seq > self.store.stats_pos)
            .filter_map(|r| match decode(&r.payload) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(partition = self.partition, seq = r.seq, error = %e, "skipping undecodable stat event");
                    None
                }
            })
            .collect();
        // A definition the gateway saw may not have reached this engine yet.
        if self.defs.read(|d| messages.iter().any(|m| !knows(d, m))) {
            self.defs.catch_up(&self.log).await?;
        }
        let defs = self.defs.clone();
        let mut outputs = defs.read(|defs| self.fold(defs, &messages))?;
        outputs.push(Output::Checkpoint(Checkpoint {
            v: SchemaVersion::CURRENT,
            partition: self.partition,
            stats_seq: last,
        }));
        self.publish(outputs, last, shutdown).await?;
        self.store.stats_pos = last;
        self.defs.read(|defs| self.store.persist(defs))?;
        self.reader.ack(last).await?;
        self.metrics
            .events
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        self.metrics.batches.fetch_add(1, Ordering::Relaxed);
        self.record_cache_size();
        Ok(())
    }

    fn fold(
        &mut self,
        defs: &Definitions,
        messages: &[StatsMessage],
    ) -> Result<Vec<Output>, ShellError> {
        let fold = Fold::live(defs);
        let mut outputs = Vec::new();
        for msg in messages {
            let player = self.store.player_mut(msg.player_id(), defs)?;
            fold.apply(player, msg, &mut outputs);
        }
        coalesce(&mut outputs);
        let mut expanded = Vec::with_capacity(outputs.len() * 2);
        for output in outputs {
            let change = match &output {
                Output::Stat(change) => Some(change.clone()),
                _ => None,
            };
            expanded.push(output);
            if let Some(change) = change {
                if let Some(player) = self.store.cached(change.player_id.as_str()) {
                    fold.progress(player, &change, &mut expanded);
                }
            }
        }
        Ok(expanded)
    }

    /// Re-evaluates the partition's players against definitions that changed since the
    /// partition last looked.
    async fn apply_definition_changes(
        &mut self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ShellError> {
        if self.defs.seq() <= self.store.defs_pos {
            return Ok(());
        }
        let changes = self.defs.changes_after(self.store.defs_pos);
        let Some(&(last, _)) = changes.last() else {
            return Ok(());
        };
        let players = self.store.player_ids()?;
        let outputs = self.defs.read(|defs| -> Result<Vec<Output>, ShellError> {
            let fold = Fold::live(defs);
            let mut outputs = Vec::new();
            for (_, change) in &changes {
                let DefinitionEvent::AchievementDefined { definition, .. } = change else {
                    continue;
                };
                let Some(ach) = defs.achievement_idx(definition.id.as_str()) else {
                    continue;
                };
                for id in &players {
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
        })?;
        let tag = format!("defs{last}");
        self.publish_tagged(outputs, &tag, shutdown).await?;
        self.store.defs_pos = last;
        self.defs.read(|defs| self.store.persist(defs))?;
        self.record_cache_size();
        tracing::info!(
            partition = self.partition,
            players = players.len(),
            "re-evaluated after a definition change"
        );
        Ok(())
    }

    async fn publish(
        &self,
        outputs: Vec<Output>,
        last: u64,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ShellError> {
        self.publish_tagged(outputs, &format!("s{last}"), shutdown)
            .await
    }

    /// Appends outputs to this partition of OUTPUT, retrying while the log is unreachable.
    async fn publish_tagged(
        &self,
        outputs: Vec<Output>,
        tag: &str,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ShellError> {
        if outputs.is_empty() {
            return Ok(());
        }
        let p = self.partition;
        let entries: Vec<Entry> = outputs
            .iter()
            .enumerate()
            .map(|(i, output)| Entry {
                target: Target::Partition(p),
                id: output_id(p, tag, i, output),
                payload: encode(output),
            })
            .collect();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.log.append(StreamKind::Output, entries.clone()).await {
                Ok(acks) => {
                    self.metrics
                        .outputs
                        .fetch_add(acks.len() as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(AppendError::Unavailable(e)) if !*shutdown.borrow() => {
                    tracing::warn!(partition = p, error = %e, "output log unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
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

/// Whether the definitions know what the message names.
fn knows(defs: &Definitions, msg: &StatsMessage) -> bool {
    match msg {
        StatsMessage::Stat(e) => defs.stat(e.stat.as_str()).is_some(),
        StatsMessage::Grant(g) => defs.achievement(g.achievement_id.as_str()).is_some(),
    }
}

/// The message id of an output: deterministic, so a replayed batch is deduplicated.
fn output_id(partition: u32, tag: &str, index: usize, output: &Output) -> String {
    match output {
        Output::Unlocked(u) => u.unlock_id.to_string(),
        Output::Rejected(r) => format!("rejected:{}", r.event_id),
        Output::Checkpoint(c) => format!("checkpoint:{}:{}", c.partition, c.stats_seq),
        Output::Stat(_) | Output::Progress(_) => format!("{partition}:{tag}:{index}"),
    }
}
