//! Following one partition as its single reader in the process: what a writer of the same
//! process hands ([`crate::handoff`]) when it follows what was applied, the log's reader
//! otherwise.
//!
//! The engine follows STATS (handed by the gateway's lanes) and the projector follows OUTPUT
//! (handed by the engine) this one way. Without a handoff the reader is always open and this
//! is the log's reader. With one, the reader is open only while the partition may hold
//! entries not applied: at start, after a handed batch that does not follow what was applied
//! (a [`Follows::Gap`], or news of where the partition ends), and after a batch dropped for
//! want of room. Once handed batches have followed for the linger without a gap or a drop,
//! the reader is closed: the broker then delivers nothing to this process, and each entry
//! makes one trip through it instead of two.
//!
//! A writer of another process hands nothing. While the reader is closed the follower asks
//! the log every [`CHECK_EVERY`] where the partition ends; an end beyond everything applied
//! and handed that is still unhanded at the next check opens the reader. Such entries are
//! folded a second or two late, never lost: the log stays the truth.

use std::time::Duration;

use tokio::time::Instant;

use crate::{Handed, Handing, Log, LogError, Reader, Record, Start, StreamKind};

/// While the reader is closed, how often the follower asks where the partition ends.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How a handed batch stands to what a partition applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follows {
    /// It ends before the position: nothing new.
    Before,
    /// It ends at the position: everything handed so far is applied.
    Reached,
    /// It starts right after the position (or the position is one of its entries): what
    /// comes after the position is the partition's next entries.
    Next,
    /// Entries between the position and the batch were not handed: the log has them.
    Gap,
}

impl Follows {
    /// How `batch` stands to `position`, the last entry applied.
    pub fn of(batch: &Handed, position: u64) -> Self {
        let end = batch_end(batch);
        if end < position {
            Follows::Before
        } else if end == position {
            Follows::Reached
        } else if batch.after == position || batch.records.iter().any(|r| r.seq == position) {
            Follows::Next
        } else {
            Follows::Gap
        }
    }
}

/// The single reader of one partition in this process.
pub struct Follower {
    log: Log,
    stream: StreamKind,
    partition: u32,
    consumer: String,
    handed: Option<Handing>,
    reader: Option<Reader>,
    /// Whether the partition may hold entries not applied (the reader must be open).
    reading: bool,
    /// Since when every handed batch has followed (none dropped, none ahead).
    following_since: Option<Instant>,
    linger: Duration,
    /// The end of the last batch handed.
    handed_end: u64,
    /// While the reader is closed: when the partition's end is asked next, and an end seen
    /// beyond everything applied and handed at the last ask.
    check: (Instant, Option<u64>),
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("stream", &self.stream)
            .field("partition", &self.partition)
            .field("handed", &self.handed.is_some())
            .field("reading", &self.reading)
            .field("open", &self.reader.is_some())
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Follows `partition` of `stream` for the durable consumer `consumer`, taking what
    /// `handed` brings when given; the reader closes after handed batches followed for
    /// `linger`.
    pub fn new(
        log: Log,
        stream: StreamKind,
        partition: u32,
        consumer: String,
        handed: Option<Handing>,
        linger: Duration,
    ) -> Self {
        Self {
            log,
            stream,
            partition,
            consumer,
            handed,
            reader: None,
            reading: true,
            following_since: None,
            linger,
            handed_end: 0,
            check: (Instant::now(), None),
        }
    }

    /// Forgets the reader: the next call reads the log from the position it is given (after
    /// a recovery moved it, or an error left the reader in doubt).
    pub fn reset(&mut self) {
        self.reader = None;
        self.reading = true;
    }

    /// The durable consumer it reads the log as.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Whether the log's reader is open (for tests and metrics).
    pub fn is_reading(&self) -> bool {
        self.reader.is_some()
    }

    /// Entries after `position` (the last applied), up to `max` from the log, or handed
    /// batches (each whole, with those already handed after it that follow, while fewer than
    /// `max`): returns as soon as some are there, or empty after about `wait` with none.
    /// Entries at or before `position` may come too: the caller applies only
    /// [`crate::unapplied`] ones. Cancel-safe: dropped before it returns, it has taken
    /// nothing the next call will not bring again.
    pub async fn next(
        &mut self,
        position: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, LogError> {
        let deadline = Instant::now() + wait;
        loop {
            if self.handed.as_mut().is_some_and(Handing::dropped) {
                self.behind("a handed batch was dropped (the handoff was full)");
            }
            self.watch(position).await?;
            if self.reading {
                self.following_since = None;
            } else if self.following_since.is_none() {
                self.following_since = Some(Instant::now());
            }
            if self
                .following_since
                .is_some_and(|since| since.elapsed() >= self.linger)
                && self.reader.take().is_some()
            {
                tracing::debug!(
                    stream = self.stream.name(),
                    partition = self.partition,
                    position,
                    "handed batches follow: reader closed"
                );
            }
            if (self.reading || self.handed.is_none()) && self.reader.is_none() {
                let started = Instant::now();
                let opened = self
                    .log
                    .reader(
                        self.stream,
                        self.partition,
                        &self.consumer,
                        Start::After(position),
                    )
                    .await?;
                self.reader = Some(opened);
                if self.handed.is_some() {
                    tracing::debug!(
                        stream = self.stream.name(),
                        partition = self.partition,
                        position,
                        took_ms = started.elapsed().as_secs_f64() * 1e3,
                        "reader opened"
                    );
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let (handed, reader) = (&mut self.handed, &mut self.reader);
            let batch = tokio::select! {
                // What is handed first: it is the newest, and reading the log waits for nothing.
                biased;
                Some(batch) = next_handed(handed) => batch,
                // Cancel-safe: a handed batch arriving first loses nothing of the read.
                read = next_read(reader, max, left) => return read,
            };
            if let Some(mut records) = self.take(batch, position) {
                self.take_more(&mut records, max);
                return Ok(records);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// Looks at a handed batch against `position`: its entries when it follows (they are the
    /// next ones); otherwise nothing, noting whether the log must now be read.
    fn take(&mut self, batch: Handed, position: u64) -> Option<Vec<Record>> {
        self.handed_end = self.handed_end.max(batch_end(&batch));
        match Follows::of(&batch, position) {
            Follows::Before => None,
            Follows::Reached => {
                self.reading = false;
                None
            }
            Follows::Next => {
                self.reading = false;
                Some(batch.records)
            }
            Follows::Gap => {
                self.behind("a handed batch does not follow what was applied");
                None
            }
        }
    }

    /// Adds to `records` (a handed batch that follows) the batches handed since that follow
    /// them too, while they number fewer than `max`: a reader that fell behind catches up
    /// in batches as large as the log's reader would give, not one handed batch at a time
    /// (each of which costs a writer like the engine a round trip to the log). Stops at a
    /// batch that does not follow, which sends the next call to the log.
    fn take_more(&mut self, records: &mut Vec<Record>, max: usize) {
        while records.len() < max && !self.reading {
            let Some(batch) = self.handed.as_mut().and_then(Handing::try_recv) else {
                return;
            };
            let last = records.last().map_or(0, |r| r.seq);
            if let Some(more) = self.take(batch, last) {
                records.extend(more.into_iter().filter(|r| r.seq > last));
            }
        }
    }

    /// While the reader is closed, every [`CHECK_EVERY`]: asks where the partition ends, and
    /// reads the log when an end seen beyond everything applied and handed at the last ask
    /// is still not handed (a writer that hands nothing appended).
    async fn watch(&mut self, position: u64) -> Result<(), LogError> {
        if self.reader.is_some() || self.handed.is_none() {
            self.check = (Instant::now() + CHECK_EVERY, None);
            return Ok(());
        }
        if Instant::now() < self.check.0 {
            return Ok(());
        }
        let known = position.max(self.handed_end);
        if self.check.1.is_some_and(|seen| seen > known) {
            self.behind("the partition ends past everything applied and handed");
            self.check = (Instant::now() + CHECK_EVERY, None);
            return Ok(());
        }
        let end = self.log.last_seq(self.stream, self.partition).await?;
        self.check = (Instant::now() + CHECK_EVERY, (end > known).then_some(end));
        Ok(())
    }

    /// The partition may hold entries not applied, for `why`: the log's reader is needed.
    fn behind(&mut self, why: &'static str) {
        if !self.reading {
            tracing::debug!(
                stream = self.stream.name(),
                partition = self.partition,
                why,
                "reading the log"
            );
        }
        self.reading = true;
    }

    /// Acknowledges up to `seq` on the log's reader, perhaps a little later
    /// ([`Reader::ack_behind`]); nothing while it is closed (the position is the reader's
    /// own, and it reopens after it).
    pub async fn ack_behind(&mut self, seq: u64) -> Result<(), LogError> {
        match &mut self.reader {
            Some(reader) => reader.ack_behind(seq).await,
            None => Ok(()),
        }
    }

    /// Entries of the partition after the last one read from the log, when known; 0 while
    /// the reader is closed (every handed batch followed; what the handoff holds is not
    /// counted).
    pub fn pending(&self) -> Option<u64> {
        match &self.reader {
            Some(reader) => reader.pending(),
            None => Some(0),
        }
    }
}

/// The position of a batch's last entry (its `after` for news).
fn batch_end(batch: &Handed) -> u64 {
    batch.records.last().map_or(batch.after, |r| r.seq)
}

/// The next batch handed, if anything hands them; never, otherwise.
async fn next_handed(handed: &mut Option<Handing>) -> Option<Handed> {
    match handed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next entries from the log's reader; with none open, nothing after `wait`.
async fn next_read(
    reader: &mut Option<Reader>,
    max: usize,
    wait: Duration,
) -> Result<Vec<Record>, LogError> {
    match reader {
        Some(reader) => reader.next_batch(max, wait).await,
        None => {
            tokio::time::sleep(wait).await;
            Ok(Vec::new())
        }
    }
}
