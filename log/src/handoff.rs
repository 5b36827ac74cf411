//! Entries a writer just appended, handed to a reader in the same process ahead of the log's
//! own delivery.
//!
//! On JetStream a reader learns of an entry only when the broker delivers it: one more trip
//! through a broker that, under load, is where the tail of the latency is. A writer that is
//! the only one of a partition and appends fenced (so it knows the entry each append follows,
//! [`crate::Log::append_fenced`]) can hand what the log acknowledged straight to a reader in
//! its process. The reader applies a handed batch only when it follows exactly what the
//! reader has applied (`after` is the reader's position); anything else (a writer that
//! recovered after a gap, a batch the writer could not hand) tells the reader the log holds
//! entries it has not applied, and it reads them from the log. A batch the reader had no
//! room for is dropped and marked ([`Handing::dropped`]), with the same effect. The log
//! stays the truth: only entries the log acknowledged are handed, in the log's order, under
//! the log's positions, and a reader that is handed nothing reads everything from the log.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::{Appended, Entry, Record};

/// Bytes held for a partition's reader that has not taken them yet; past it, batches are
/// dropped and the reader reads them from the log. Under a flood a batch can be large (a
/// thousand STATS entries folded at once) and the reader behind: a bound in batches held
/// hundreds of MiB.
const HELD_BYTES: usize = 1 << 20;

/// What a batch counts against [`HELD_BYTES`], besides its payloads.
const BATCH_OVERHEAD: usize = 64;

/// Entries appended to one partition, one after another, following the entry at `after`.
#[derive(Debug, Clone)]
pub struct Handed {
    /// The position of the partition's entry just before the first one (0: none).
    pub after: u64,
    /// The entries, in order, with the positions the log gave them. None: only news that
    /// the partition now ends at `after` (entries the writer could not hand).
    pub records: Vec<Record>,
}

impl Handed {
    /// `entries`, appended one after another after the entry at `after`, at the positions
    /// the log acknowledged them at (`acks`, in the same order).
    pub fn appended(after: u64, acks: &[Appended], entries: Vec<Entry>) -> Self {
        let records = acks
            .iter()
            .zip(entries)
            .map(|(a, e)| Record {
                seq: a.seq,
                payload: e.payload.into(),
            })
            .collect();
        Self { after, records }
    }

    fn weight(&self) -> usize {
        BATCH_OVERHEAD
            + self
                .records
                .iter()
                .map(|r| r.payload.len() + 16)
                .sum::<usize>()
    }
}

#[derive(Default)]
struct Held {
    bytes: AtomicUsize,
    dropped: AtomicBool,
}

/// Per partition, a queue bounded in bytes from the writer to one reader.
pub struct Handoff {
    senders: Vec<(mpsc::UnboundedSender<Handed>, Arc<Held>)>,
    receivers: Vec<Mutex<Option<Handing>>>,
}

/// The reader's end of one partition's queue.
pub struct Handing {
    rx: mpsc::UnboundedReceiver<Handed>,
    held: Arc<Held>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("partitions", &self.senders.len())
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// A handoff for each of `partitions` partitions.
    pub fn new(partitions: u32) -> Self {
        let (senders, receivers) = (0..partitions)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                let held = Arc::new(Held::default());
                let handing = Handing {
                    rx,
                    held: held.clone(),
                };
                ((tx, held), Mutex::new(Some(handing)))
            })
            .unzip();
        Self { senders, receivers }
    }

    /// Hands `handed` to the partition's reader, unless what it holds already is at the
    /// bound (the batch is dropped and marked: the reader then reads the log) or the reader
    /// is gone. Never waits. A batch larger than the bound goes when nothing else is held.
    pub fn hand(&self, partition: u32, handed: Handed) {
        let Some((sender, held)) = self.senders.get(partition as usize) else {
            return;
        };
        let weight = handed.weight();
        let before = held.bytes.fetch_add(weight, Ordering::AcqRel);
        if before > 0 && before + weight > HELD_BYTES {
            held.bytes.fetch_sub(weight, Ordering::AcqRel);
            held.dropped.store(true, Ordering::Release);
            return;
        }
        if sender.send(handed).is_err() {
            held.bytes.fetch_sub(weight, Ordering::AcqRel);
        }
    }

    /// The partition's receiving end: given out once (one reader per partition).
    pub fn take(&self, partition: u32) -> Option<Handing> {
        self.receivers
            .get(partition as usize)?
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl Handing {
    /// The next batch handed, in the order handed.
    pub async fn recv(&mut self) -> Option<Handed> {
        let handed = self.rx.recv().await?;
        self.held.bytes.fetch_sub(handed.weight(), Ordering::AcqRel);
        Some(handed)
    }

    /// The next batch handed if one is there already; never waits.
    pub fn try_recv(&mut self) -> Option<Handed> {
        let handed = self.rx.try_recv().ok()?;
        self.held.bytes.fetch_sub(handed.weight(), Ordering::AcqRel);
        Some(handed)
    }

    /// Whether a batch was dropped since the last call. If so, what is still queued was
    /// handed before the dropped batch and is discarded (that one of those follows would say
    /// nothing of the dropped one): whatever comes next was handed after it, and the reader
    /// reads the log up to the next batch it can apply.
    pub fn dropped(&mut self) -> bool {
        if !self.held.dropped.swap(false, Ordering::AcqRel) {
            return false;
        }
        while let Ok(handed) = self.rx.try_recv() {
            self.held.bytes.fetch_sub(handed.weight(), Ordering::AcqRel);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handed(after: u64, seq: u64, bytes: usize) -> Handed {
        Handed {
            after,
            records: vec![Record {
                seq,
                payload: bytes::Bytes::from(vec![0; bytes]),
            }],
        }
    }

    async fn queued(rx: &mut Handing) -> Vec<u64> {
        let mut got = Vec::new();
        while let Ok(Some(h)) =
            tokio::time::timeout(std::time::Duration::from_millis(10), rx.recv()).await
        {
            got.push(h.records[0].seq);
        }
        got
    }

    #[test]
    fn a_receiver_is_given_out_once_per_partition() {
        let handoff = Handoff::new(2);
        assert!(handoff.take(0).is_some());
        assert!(handoff.take(0).is_none());
        assert!(handoff.take(1).is_some());
        assert!(handoff.take(2).is_none());
    }

    #[tokio::test]
    async fn past_the_bound_batches_are_dropped_and_marked_not_waited_for() {
        let handoff = Handoff::new(1);
        let mut rx = handoff.take(0).unwrap();
        let size = HELD_BYTES / 4;
        for seq in 1..=10 {
            handoff.hand(0, handed(seq - 1, seq, size));
        }
        // Three fit under the bound with their overheads; a fourth would pass it.
        assert!(rx.dropped(), "the dropped batches are marked");
        assert_eq!(
            queued(&mut rx).await,
            Vec::<u64>::new(),
            "what came before is discarded"
        );
        assert!(!rx.dropped(), "and the mark is taken once");
        handoff.hand(0, handed(10, 11, size));
        handoff.hand(0, handed(11, 12, size));
        assert!(!rx.dropped(), "batches with room are not marked");
        assert_eq!(queued(&mut rx).await, vec![11, 12]);
        // Taken, they no longer count: as many fit again.
        for seq in 13..=15 {
            handoff.hand(0, handed(seq - 1, seq, size));
        }
        assert!(!rx.dropped());
        assert_eq!(queued(&mut rx).await, vec![13, 14, 15]);
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_bound_goes_when_nothing_is_held() {
        let handoff = Handoff::new(1);
        let mut rx = handoff.take(0).unwrap();
        handoff.hand(0, handed(0, 1, 2 * HELD_BYTES));
        handoff.hand(0, handed(1, 2, 10));
        assert!(rx.dropped());
        handoff.hand(0, handed(1, 2, 2 * HELD_BYTES));
        assert!(!rx.dropped());
        assert_eq!(queued(&mut rx).await, vec![2]);
    }

    #[test]
    fn a_reader_gone_or_a_partition_out_of_range_is_no_error_to_the_writer() {
        let handoff = Handoff::new(1);
        handoff.hand(5, handed(0, 1, 1));
        let rx = handoff.take(0).unwrap();
        drop(rx);
        for seq in 1..=100 {
            handoff.hand(0, handed(seq - 1, seq, HELD_BYTES / 2));
        }
    }
}
