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
//! room for is dropped and marked ([`Handoff::dropped`]), with the same effect. The log
//! stays the truth: only entries the log acknowledged are handed, in the log's order, under
//! the log's positions, and a reader that is handed nothing reads everything from the log.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use crate::Record;

/// Batches held for a reader that has not taken them yet; past it, batches are dropped and
/// the reader reads them from the log.
const HELD: usize = 64;

/// Entries appended to one partition, one after another, following the entry at `after`.
#[derive(Debug, Clone)]
pub struct Handed {
    /// The position of the partition's entry just before the first one (0: none).
    pub after: u64,
    /// The entries, in order, with the positions the log gave them. None: only news that
    /// the partition now ends at `after` (entries the writer could not hand).
    pub records: Vec<Record>,
}

/// Per partition, a bounded queue from the writer to one reader.
pub struct Handoff {
    senders: Vec<mpsc::Sender<Handed>>,
    receivers: Vec<Mutex<Option<mpsc::Receiver<Handed>>>>,
    dropped: Vec<AtomicBool>,
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
                let (tx, rx) = mpsc::channel(HELD);
                (tx, Mutex::new(Some(rx)))
            })
            .unzip();
        let dropped = (0..partitions).map(|_| AtomicBool::new(false)).collect();
        Self {
            senders,
            receivers,
            dropped,
        }
    }

    /// Hands `handed` to the partition's reader, unless it holds too many already (the
    /// batch is dropped and marked: the reader then reads the log) or is gone: never waits.
    pub fn hand(&self, partition: u32, handed: Handed) {
        let p = partition as usize;
        if let Some(sender) = self.senders.get(p)
            && let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(handed)
        {
            self.dropped[p].store(true, Ordering::Release);
        }
    }

    /// Whether a batch for the partition was dropped since the last call: the reader must
    /// read the log up to the next batch it can apply.
    pub fn dropped(&self, partition: u32) -> bool {
        self.dropped
            .get(partition as usize)
            .is_some_and(|d| d.swap(false, Ordering::AcqRel))
    }

    /// The partition's receiving end: given out once (one reader per partition).
    pub fn take(&self, partition: u32) -> Option<mpsc::Receiver<Handed>> {
        self.receivers
            .get(partition as usize)?
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handed(after: u64, seq: u64) -> Handed {
        Handed {
            after,
            records: vec![Record {
                seq,
                payload: bytes::Bytes::from_static(b"x"),
            }],
        }
    }

    #[test]
    fn a_receiver_is_given_out_once_per_partition() {
        let handoff = Handoff::new(2);
        assert!(handoff.take(0).is_some());
        assert!(handoff.take(0).is_none());
        assert!(handoff.take(1).is_some());
        assert!(handoff.take(2).is_none());
    }

    #[test]
    fn a_full_queue_drops_rather_than_waits() {
        let handoff = Handoff::new(1);
        let mut rx = handoff.take(0).unwrap();
        for seq in 1..=HELD as u64 + 10 {
            handoff.hand(0, handed(seq - 1, seq));
        }
        let mut got = Vec::new();
        while let Ok(h) = rx.try_recv() {
            got.push(h.records[0].seq);
        }
        assert_eq!(got, (1..=HELD as u64).collect::<Vec<_>>());
        assert!(handoff.dropped(0), "the dropped batches are marked");
        assert!(!handoff.dropped(0), "and the mark is taken once");
        handoff.hand(0, handed(HELD as u64, HELD as u64 + 1));
        assert!(!handoff.dropped(0), "a batch with room is not marked");
        // A partition out of range and a reader gone are no error to the writer.
        handoff.hand(5, handed(0, 1));
        assert!(!handoff.dropped(5));
        drop(rx);
        handoff.hand(0, handed(0, 1));
        assert!(!handoff.dropped(0), "no reader to read the log");
    }
}
