//! Bringing a partition's engine state up to what OUTPUT already says, without emitting
//! anything.
//!
//! STATS is the truth for values, OUTPUT for what was emitted. A checkpoint on OUTPUT (a
//! complete `changes` entry) means every output of the STATS events up to its `stats_seq`
//! is stored. So recovery:
//! 1. reads OUTPUT after the stored state's own checkpoint, for the highest checkpoint and
//!    every `unlocked` output (an unlock happened once it is on OUTPUT: consumers may have
//!    seen it, even one of a batch that a crash interrupted before its checkpoint);
//! 2. folds the STATS events between the stored position and that checkpoint into the state,
//!    for their values only: nothing is emitted (it was), and nothing is evaluated, since
//!    the definitions may have changed since the events were first folded;
//! 3. marks those unlocks earned, so none is emitted again (a repeatable's earn with its
//!    number, time and the values its next earn counts from), keeps the rewards found
//!    waiting for a claim and drops those found claimed, and nothing else.
//!
//! Values never come from OUTPUT's `stat` outputs: where such an output sits on OUTPUT says
//! nothing certain (the log's deduplication keeps the first copy of a re-emitted output,
//! which may come from an earlier, interrupted attempt), while the STATS positions do.
//!
//! This is how the engine resumes after a crash, rebuilds a partition whose stored state is
//! unreadable, and starts with no state against a log that already has history: in every
//! case nothing already on OUTPUT is emitted a second time.

use std::time::Duration;

use laurel_log::{Log, Reader, Record, Start, StreamKind};
use laurel_schemas::{Output, StatsEntry, decode};

use super::error::ShellError;
use super::store::PartitionStore;
use crate::defs::Definitions;
use crate::fold::Fold;

/// What recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Recovered {
    /// OUTPUT entries read.
    pub(super) outputs: u64,
    /// STATS events folded again, silently.
    pub(super) events: u64,
    /// Unlocks found on OUTPUT and marked earned.
    pub(super) unlocks: u64,
    /// The position of the partition's last OUTPUT entry when recovery read it.
    pub(super) tail: u64,
}

/// The partition and STATS position an OUTPUT entry checkpoints: a complete `changes`
/// entry, or a `checkpoint` of the earlier format.
fn checkpoint_of(output: &Output) -> Option<(u32, u64)> {
    match output {
        Output::Changes(c) if c.complete => Some((c.partition, c.stats_seq)),
        Output::Checkpoint(c) => Some((c.partition, c.stats_seq)),
        _ => None,
    }
}

/// Reads a partition from just after `after` up to `upto` (inclusive), handing each entry
/// to `each`.
async fn read_range(
    log: &Log,
    stream: StreamKind,
    partition: u32,
    consumer: &str,
    after: u64,
    upto: u64,
    mut each: impl FnMut(&Record) -> Result<(), ShellError>,
) -> Result<(), ShellError> {
    read_batches(log, stream, partition, consumer, after, upto, |records| {
        records.iter().try_for_each(&mut each)
    })
    .await
}

/// Reads a partition from just after `after` up to `upto` (inclusive), handing the entries
/// to `each` a batch at a time.
pub(super) async fn read_batches(
    log: &Log,
    stream: StreamKind,
    partition: u32,
    consumer: &str,
    after: u64,
    upto: u64,
    mut each: impl FnMut(&[Record]) -> Result<(), ShellError>,
) -> Result<(), ShellError> {
    if after >= upto {
        return Ok(());
    }
    let mut reader: Reader = log
        .reader(stream, partition, consumer, Start::After(after))
        .await?;
    let mut position = after;
    while position < upto {
        let records = reader.next_batch(2_000, Duration::from_secs(5)).await?;
        if records.is_empty() {
            return Err(ShellError::Recovery(format!(
                "{} partition {partition} ended at {position} before {upto}",
                stream.name()
            )));
        }
        let within = records.partition_point(|r| r.seq <= upto);
        each(&records[..within])?;
        // JetStream stops delivering past `max_ack_pending` unacknowledged entries: a long
        // range (a fresh engine on a long history, a replay) must acknowledge as it goes.
        if let Some(last) = records[..within].last() {
            reader.ack(last.seq).await?;
        }
        position = position.max(records.last().map_or(position, |r| r.seq));
    }
    Ok(())
}

/// Brings `store` up to the highest checkpoint on OUTPUT. When the stored positions do not
/// match OUTPUT (state from another log, or a log that lost entries), the partition is reset
/// and rebuilt from the start of both logs.
pub(super) async fn recover(
    log: &Log,
    partition: u32,
    consumer: &str,
    store: &mut PartitionStore,
    defs: &Definitions,
) -> Result<Recovered, ShellError> {
    let tail = log.last_seq(StreamKind::Output, partition).await?;
    if store.output_pos > tail || (store.output_pos == 0 && store.stats_pos > 0) {
        tracing::warn!(
            partition,
            stored = store.output_pos,
            tail,
            "engine state does not match OUTPUT; rebuilding the partition from the log"
        );
        store.reset()?;
    }
    // 1. OUTPUT after the stored checkpoint: how far emission went, and what unlocked.
    let mut found = Recovered {
        tail,
        ..Recovered::default()
    };
    // Unlocks, rewards and claimed rewards, in OUTPUT order.
    let mut earns: Vec<Output> = Vec::new();
    let mut reached = (store.stats_pos, store.output_pos);
    let mut verified = store.output_pos == 0;
    let mut mismatch = false;
    let start = store.output_pos.saturating_sub(1);
    let expected = (store.output_pos, store.stats_pos);
    let read = read_range(
        log,
        StreamKind::Output,
        partition,
        consumer,
        start,
        tail,
        |record| {
            found.outputs += 1;
            let output = decode::<Output>(&record.payload).map_err(|e| {
                ShellError::undecodable(StreamKind::Output, partition, record.seq, e)
            })?;
            if !verified {
                // The first entry must be the checkpoint the stored state recorded.
                let matches = record.seq == expected.0
                    && checkpoint_of(&output)
                        .is_some_and(|(p, seq)| p == partition && seq == expected.1);
                if !matches {
                    mismatch = true;
                    return Err(ShellError::Recovery("mismatch".into()));
                }
                verified = true;
                return Ok(());
            }
            match checkpoint_of(&output) {
                Some((_, seq)) if seq > reached.0 => reached = (seq, record.seq),
                _ => {}
            }
            if matches!(
                output,
                Output::Unlocked(_)
                    | Output::Reward(_)
                    | Output::RewardClaimed(_)
                    | Output::PlayerReset(_)
            ) {
                earns.push(output);
            }
            Ok(())
        },
    )
    .await;
    if mismatch || (read.is_ok() && !verified) {
        tracing::warn!(
            partition,
            stored = store.output_pos,
            "engine state does not match OUTPUT; rebuilding the partition from the log"
        );
        store.reset()?;
        return Box::pin(recover(log, partition, consumer, store, defs)).await;
    }
    read?;
    // 2. The STATS events those checkpoints cover, folded again for their values only: what
    //    they unlocked is on OUTPUT (step 3). Evaluated again, under definitions that may
    //    have changed since, they would mark earned what was never emitted (an achievement
    //    defined after the event, which then never reaches the player).
    let fold = Fold::values_only(defs);
    let mut scratch = Vec::new();
    read_range(
        log,
        StreamKind::Stats,
        partition,
        consumer,
        store.stats_pos,
        reached.0,
        |record| {
            let entry = decode::<StatsEntry>(&record.payload).map_err(|e| {
                ShellError::undecodable(StreamKind::Stats, partition, record.seq, e)
            })?;
            for msg in entry.into_messages() {
                match msg.player_id() {
                    Some(id) => {
                        let player = store.player_mut(id, defs)?;
                        fold.apply(player, &msg, &mut scratch);
                        // Contributions to community totals move the partition's shares.
                        store.community.add(defs, &scratch);
                        scratch.clear();
                    }
                    // A goal reached: known from now on (its unlocks are on OUTPUT).
                    None => {
                        if let laurel_schemas::StatsMessage::CommunityReached(c) = &msg {
                            store.community.reach(&c.achievement_id);
                        }
                    }
                }
                found.events += 1;
            }
            Ok(())
        },
    )
    .await?;
    // 3. Whatever OUTPUT says was unlocked is earned; rewards wait for a claim until one
    //    is on OUTPUT; a reset forgets the earns before it (its values were folded again
    //    in step 2, with the count of resets the ids of later earns come from).
    for output in &earns {
        if let Output::PlayerReset(r) = output {
            store
                .player_mut(&r.player_id, defs)?
                .restore_earn(defs, output);
            continue;
        }
        let (player, achievement) = match output {
            Output::Unlocked(u) => (&u.player_id, &u.achievement_id),
            Output::Reward(r) => (&r.player_id, &r.achievement_id),
            Output::RewardClaimed(c) => (&c.player_id, &c.achievement_id),
            _ => continue,
        };
        if defs.achievement_idx(achievement.as_str()).is_none() {
            tracing::error!(%achievement, "OUTPUT names an achievement no definition defines");
            continue;
        }
        let state = store.player_mut(player, defs)?;
        if state.restore_earn(defs, output) {
            found.unlocks += 1;
        }
    }
    (store.stats_pos, store.output_pos) = reached;
    store.persist(defs)?;
    Ok(found)
}
