//! Bringing a partition's engine state up to what OUTPUT already says, without emitting
//! anything.
//!
//! OUTPUT is the engine's own log: every `stat` output carries a player's new value, every
//! `unlocked` output an achievement earned, and a `checkpoint` follows once all outputs of
//! the STATS events up to its `stats_seq` are stored. So the state after a checkpoint is the
//! stored state folded with the `stat` and `unlocked` outputs up to it. Recovery reads
//! OUTPUT from the stored state's own checkpoint to the tail:
//! - up to the last checkpoint, `stat` outputs set values and `unlocked` outputs mark
//!   achievements earned, and the positions move to that checkpoint;
//! - after it come the outputs of a batch that a crash interrupted. Its unlocks happened
//!   (consumers may have seen them), so they are marked earned and will not be emitted
//!   again; its other outputs are not applied, since the engine folds those STATS events
//!   again from the checkpoint.
//!
//! This is how the engine resumes after a crash, rebuilds a partition whose stored state is
//! unreadable, and starts with no state against a log that already has history: in every
//! case nothing already on OUTPUT is emitted a second time.

use std::time::Duration;

use laurel_log::{Log, Start, StreamKind};
use laurel_schemas::{Output, decode};

use super::ShellError;
use super::store::PartitionStore;
use crate::defs::Definitions;

/// What recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Recovered {
    /// OUTPUT entries read.
    pub(super) entries: u64,
    /// Unlocks found after the last checkpoint, now marked earned.
    pub(super) interrupted_unlocks: u64,
}

/// Brings `store` up to the last checkpoint on OUTPUT. When the stored positions do not
/// match OUTPUT (state from another log, or a log that lost entries), the partition is
/// reset and rebuilt from the start of OUTPUT.
pub(super) async fn recover(
    log: &Log,
    partition: u32,
    consumer: &str,
    store: &mut PartitionStore,
    defs: &Definitions,
) -> Result<Recovered, ShellError> {
    let tail = log.last_seq(StreamKind::Output, partition).await?;
    if store.output_pos > tail {
        tracing::warn!(
            partition,
            stored = store.output_pos,
            tail,
            "engine state is ahead of OUTPUT; rebuilding the partition from the log"
        );
        store.reset()?;
    }
    if store.output_pos == 0 && store.stats_pos > 0 {
        // State written before positions on OUTPUT were recorded: rebuild to be exact.
        store.reset()?;
    }
    let start = store.output_pos.saturating_sub(1);
    let mut reader = log
        .reader(StreamKind::Output, partition, consumer, Start::After(start))
        .await?;
    let mut found = Recovered::default();
    let mut pending: Vec<Output> = Vec::new();
    let mut position = start;
    let mut verified = store.output_pos == 0;
    while position < tail {
        let records = reader.next_batch(2_000, Duration::from_secs(5)).await?;
        if records.is_empty() {
            return Err(ShellError::Recovery(format!(
                "OUTPUT partition {partition} ended at {position} before its tail {tail}"
            )));
        }
        for record in records {
            position = record.seq;
            found.entries += 1;
            let output = match decode::<Output>(&record.payload) {
                Ok(output) => output,
                Err(e) => {
                    tracing::error!(partition, seq = record.seq, error = %e, "skipping an undecodable output");
                    continue;
                }
            };
            if !verified {
                // The first entry must be the checkpoint the stored state recorded.
                let matches = record.seq == store.output_pos
                    && matches!(&output, Output::Checkpoint(c) if c.partition == partition && c.stats_seq == store.stats_pos);
                if !matches {
                    tracing::warn!(
                        partition,
                        stored = store.output_pos,
                        "engine state does not match OUTPUT; rebuilding the partition from the log"
                    );
                    store.reset()?;
                    return Box::pin(recover(log, partition, consumer, store, defs)).await;
                }
                verified = true;
                continue;
            }
            match output {
                Output::Checkpoint(c) => {
                    for done in pending.drain(..) {
                        apply(store, &done, defs)?;
                    }
                    store.stats_pos = store.stats_pos.max(c.stats_seq);
                    store.output_pos = record.seq;
                    if store.over_capacity() {
                        // A consistent point: write it down, which also trims the cache.
                        store.persist(defs)?;
                    }
                }
                other => pending.push(other),
            }
        }
    }
    for interrupted in &pending {
        if let Output::Unlocked(_) = interrupted {
            apply(store, interrupted, defs)?;
            found.interrupted_unlocks += 1;
        }
    }
    store.persist(defs)?;
    Ok(found)
}

/// Applies what one output says about a player's state.
fn apply(
    store: &mut PartitionStore,
    output: &Output,
    defs: &Definitions,
) -> Result<(), ShellError> {
    match output {
        Output::Stat(s) => {
            let Some(idx) = defs.stat_idx(s.stat.as_str()) else {
                tracing::error!(stat = %s.stat, "OUTPUT names a stat no definition defines");
                return Ok(());
            };
            store.player_mut(&s.player_id, defs)?.set_stat(idx, s.value);
        }
        Output::Unlocked(u) => {
            let Some(idx) = defs.achievement_idx(u.achievement_id.as_str()) else {
                tracing::error!(achievement = %u.achievement_id, "OUTPUT names an achievement no definition defines");
                return Ok(());
            };
            store.player_mut(&u.player_id, defs)?.mark_earned(idx);
        }
        Output::Progress(_) | Output::Rejected(_) | Output::Checkpoint(_) => {}
    }
    Ok(())
}
