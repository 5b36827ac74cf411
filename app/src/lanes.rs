//! One lane per STATS partition for the events whose ids the gateway makes: what concurrent
//! requests have for a partition while its lane is busy goes to the log together, as one
//! entry, when the lane frees.
//!
//! Without it, every request is one STATS entry per partition it touches: a request of 100
//! events for random players is 16 entries of about 6 events each, and each entry is a
//! message the broker stores and the engine reads, folds, checkpoints and acknowledges
//! apart. Lanes cost nothing when requests come one at a time (an idle lane appends at
//! once) and merge more the busier the log is, with no timer: what a request waits for is
//! at most the appends already in flight on its lanes.
//!
//! Only on JetStream: the embedded log's writer already stores appends that come at once
//! together (one write, one sync), and a lane there would only make a request wait for the
//! sync before its own.
//!
//! With a handoff (`laurel serve` on JetStream, by default, [`laurel_log::handoff`]) each lane is
//! the partition's writer the engine of the process follows: its appends are fenced (each
//! expects where the partition ends, as the lane knows it) and handed to the engine with the
//! position they follow, so the engine folds them without waiting for the broker to deliver
//! them. Another writer's entry (an event with a client id, a grant, another process) makes
//! the next fenced append fail: the lane asks where the partition ends and tries once more,
//! then appends unfenced and hands only where the partition now ends. Whatever this process
//! appends to STATS otherwise is told to the engine the same way ([`Lanes::appended`]), so
//! the engine reads it from the log at once.
//!
//! Order and identity are as before. A request's events for one partition stay together, in
//! the order sent, inside one entry. Requests in flight together have no order between them;
//! a request sent after another's answer finds that one stored. The merged entry's id is a
//! fresh UUID, as a single request's group had: these events carry no id a client could send
//! again, so nothing is deduplicated against them. Events with client-chosen ids never go
//! through lanes (each is its own entry, deduplicated by its id).

use std::sync::{Arc, Mutex, PoisonError};

use laurel_log::{AppendError, Appended, Entry, Handed, Handoff, Log, StreamKind, Target};
use laurel_schemas::{SchemaVersion, StatEvent, StatEvents, StatsEntry, StatsMessage, encode};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Appends in flight on one lane at once; more requests wait and merge.
const IN_FLIGHT: usize = 1;

/// An upper bound of the encoded size of one merged entry, past which requests waiting on
/// the lane go in the next append (a single request's group always goes whole). Well under
/// JetStream's 1 MiB message limit.
const MERGED_BYTES: usize = 256 * 1024;

/// Fenced tries of a handed append before it goes unfenced: one with where the lane knows
/// the partition ends, one with where the log says it ends.
const FENCED_TRIES: usize = 2;

/// The lanes of every STATS partition.
pub(crate) struct Lanes {
    lanes: Vec<Mutex<Lane>>,
    /// Where appends are handed to the engine of this process, if anywhere.
    handoff: Option<Arc<Handoff>>,
}

#[derive(Default)]
struct Lane {
    waiting: Vec<Waiting>,
    in_flight: usize,
    /// With a handoff: where the partition ends as far as the lane knows (its last append);
    /// `None`: ask the log.
    end: Option<u64>,
}

struct Waiting {
    events: Vec<StatEvent>,
    bytes: usize,
    reply: oneshot::Sender<Result<Appended, AppendError>>,
}

impl Lanes {
    /// The lanes of `partitions` partitions, handing what they append to `handoff`, if given.
    pub(crate) fn new(partitions: u32, handoff: Option<Arc<Handoff>>) -> Arc<Self> {
        Arc::new(Self {
            lanes: (0..partitions).map(|_| Mutex::default()).collect(),
            handoff,
        })
    }

    /// Tells the engine of this process, if anything is handed to it, that STATS holds
    /// `appended` (positions by partition), appended by this process without a lane: the
    /// engine reads them from the log rather than wait for a check of where the partition
    /// ends.
    pub(crate) fn appended(&self, appended: impl IntoIterator<Item = (u32, u64)>) {
        let Some(handoff) = &self.handoff else {
            return;
        };
        let mut ends = std::collections::BTreeMap::new();
        for (p, seq) in appended {
            let end = ends.entry(p).or_insert(seq);
            *end = (*end).max(seq);
        }
        for (p, after) in ends {
            handoff.hand(
                p,
                Handed {
                    after,
                    records: Vec::new(),
                },
            );
        }
    }

    /// Appends `events` (one request's, all of `partition`) to STATS, merged with whatever
    /// other requests have for the partition meanwhile; the entry's position.
    pub(crate) async fn append(
        self: &Arc<Self>,
        log: &Log,
        partition: u32,
        events: Vec<StatEvent>,
    ) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        let bytes = events.iter().map(encoded_bound).sum();
        let start = {
            let mut lane = self.lane(partition);
            lane.waiting.push(Waiting {
                events,
                bytes,
                reply,
            });
            let start = lane.in_flight < IN_FLIGHT;
            if start {
                lane.in_flight += 1;
            }
            start
        };
        if start {
            // A task of its own: a request given up half way (its client gone) must not
            // strand the others waiting on the lane.
            let (lanes, log) = (self.clone(), log.clone());
            tokio::spawn(async move { lanes.drain(&log, partition).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(AppendError::Unavailable(
                "the append was cut short (shutting down)".into(),
            ))
        })
    }

    fn lane(&self, partition: u32) -> std::sync::MutexGuard<'_, Lane> {
        self.lanes[partition as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends what waits on the lane, as one entry at a time, until nothing does.
    async fn drain(&self, log: &Log, partition: u32) {
        loop {
            let taken = {
                let mut lane = self.lane(partition);
                if lane.waiting.is_empty() {
                    lane.in_flight -= 1;
                    return;
                }
                let mut bytes = 0;
                let count = lane
                    .waiting
                    .iter()
                    .take_while(|w| {
                        bytes += w.bytes;
                        bytes <= MERGED_BYTES
                    })
                    .count()
                    .max(1);
                lane.waiting.drain(..count).collect::<Vec<_>>()
            };
            let mut replies = Vec::with_capacity(taken.len());
            let mut events = Vec::new();
            for w in taken {
                events.extend(w.events);
                replies.push(w.reply);
            }
            let entry = entry(partition, events);
            let appended = match &self.handoff {
                Some(handoff) => self.append_handed(log, handoff, partition, entry).await,
                None => append_one(log, entry).await,
            };
            for reply in replies {
                // A request that went away does not need its answer.
                let _ = reply.send(appended.clone());
            }
        }
    }
}

impl Lanes {
    /// Appends `entry` fenced after where the lane knows the partition ends and hands it
    /// with that position; see the module's doc for what another writer changes. Only the
    /// lane's one append in flight calls it, so the lane's `end` is its alone.
    async fn append_handed(
        &self,
        log: &Log,
        handoff: &Handoff,
        partition: u32,
        entry: Entry,
    ) -> Result<Appended, AppendError> {
        for _ in 0..FENCED_TRIES {
            let known = self.lane(partition).end;
            let fence = match known {
                Some(end) => end,
                None => log
                    .last_seq(StreamKind::Stats, partition)
                    .await
                    .map_err(|e| AppendError::Unavailable(e.to_string()))?,
            };
            let appended = log
                .append_fenced_unique(StreamKind::Stats, entry.clone(), fence)
                .await;
            // Known again only from an append that says where the partition ends.
            self.lane(partition).end = appended.as_ref().ok().map(|a| a.seq);
            match appended {
                Ok(appended) => {
                    let handed = Handed::appended(fence, &[appended], vec![entry]);
                    handoff.hand(partition, handed);
                    return Ok(appended);
                }
                Err(AppendError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let appended = append_one(log, entry).await?;
        self.appended([(partition, appended.seq)]);
        Ok(appended)
    }
}

/// Appends one entry of the gateway's own making to STATS: its outcome.
async fn append_one(log: &Log, entry: Entry) -> Result<Appended, AppendError> {
    append_unique_stats(log, vec![entry])
        .await?
        .pop()
        .ok_or_else(|| AppendError::Unavailable("the log acknowledged nothing".into()))
}

/// Appends to STATS entries whose ids the gateway made for this one append and nobody sends
/// again (the events without client ids, see [`Log::append_unique`]): the gateway's other
/// way to write there beside `ingest::append_stats`, used directly on the embedded log and
/// through the lanes on NATS.
pub(crate) async fn append_unique_stats(
    log: &Log,
    entries: Vec<Entry>,
) -> Result<Vec<Appended>, AppendError> {
    log.append_unique(StreamKind::Stats, entries).await
}

/// The STATS entry of a group of events of one partition, under a fresh id of its own: a
/// single event as it is, more as one `stats` entry.
pub(crate) fn entry(partition: u32, mut events: Vec<StatEvent>) -> Entry {
    let payload = if events.len() == 1 {
        encode(&StatsMessage::Stat(events.pop().expect("one event")))
    } else {
        encode(&StatsEntry::Stats(StatEvents {
            v: SchemaVersion::CURRENT,
            events,
        }))
    };
    Entry {
        target: Target::Partition(partition),
        id: Uuid::new_v4().to_string(),
        payload,
    }
}

/// More than the bytes `event` takes encoded: its names, and a generous bound of the rest
/// (ids, numbers, field names).
fn encoded_bound(event: &StatEvent) -> usize {
    event.player_id.as_str().len() + event.stat.as_str().len() + 128
}

#[cfg(test)]
mod tests {
    use super::*;
    use laurel_log::{EmbeddedLog, LogConfig, Start, StreamKind};
    use laurel_schemas::{PlayerId, Source, StatName, StatsEntry, decode};

    fn event(player: &str, value: i64) -> StatEvent {
        StatEvent {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::new_v4(),
            player_id: PlayerId::new(player).unwrap(),
            stat: StatName::new("kills").unwrap(),
            value: value.into(),
            ts: 0,
            received_at: 0,
            source: Source::Server,
            occurred_at: None,
        }
    }

    async fn entries(log: &Log, partition: u32) -> Vec<(u64, Vec<(String, i64)>)> {
        let mut reader = log
            .reader(StreamKind::Stats, partition, "t", Start::After(0))
            .await
            .unwrap();
        let records = reader
            .next_batch(1_000, std::time::Duration::from_millis(100))
            .await
            .unwrap();
        records
            .into_iter()
            .map(|r| {
                let events = decode::<StatsEntry>(&r.payload)
                    .unwrap()
                    .into_messages()
                    .into_iter()
                    .map(|m| match m {
                        StatsMessage::Stat(e) => (e.player_id.to_string(), e.value.as_f64() as i64),
                        other => panic!("not a stat event: {other:?}"),
                    })
                    .collect();
                (r.seq, events)
            })
            .collect()
    }

    /// Requests that come while a lane is busy go to the log as one entry, each request's
    /// events whole and in order, every request answered with that entry's position.
    #[tokio::test(flavor = "current_thread")]
    async fn requests_waiting_on_a_busy_lane_go_as_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::Embedded(EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap());
        let lanes = Lanes::new(log.config().partitions, None);
        // Polled together on one thread: the first request starts the lane's append, which
        // cannot run before the other nineteen wait on the lane.
        let requests = (0..20).map(|r| {
            let events = vec![
                event(&format!("r{r}"), 2 * r),
                event(&format!("r{r}"), 2 * r + 1),
            ];
            lanes.append(&log, 3, events)
        });
        let answers = futures::future::join_all(requests).await;
        let stored = entries(&log, 3).await;
        assert_eq!(stored.len(), 1, "one entry for the twenty requests");
        let (seq, events) = &stored[0];
        let expected: Vec<(String, i64)> = (0..20)
            .flat_map(|r| [(format!("r{r}"), 2 * r), (format!("r{r}"), 2 * r + 1)])
            .collect();
        assert_eq!(events, &expected);
        for answer in answers {
            let answer = answer.unwrap();
            assert_eq!((answer.seq, answer.duplicate), (*seq, false));
        }
        // An idle lane appends at once: a request alone is an entry alone.
        let alone = lanes
            .append(&log, 3, vec![event("later", 7)])
            .await
            .unwrap();
        let stored = entries(&log, 3).await;
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[1], (alone.seq, vec![("later".to_string(), 7)]));
    }

    /// With a handoff, each lane append is handed with the entry STATS holds just before it,
    /// also after another writer appended to the partition behind the lane's back (the
    /// fenced append is refused, the lane asks where the partition ends and goes on); what
    /// this process appends without a lane is told as news of where the partition ends.
    #[tokio::test(flavor = "current_thread")]
    async fn handed_appends_follow_what_stats_holds_even_after_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::Embedded(EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap());
        let handoff = Arc::new(Handoff::new(log.config().partitions));
        let mut handed = handoff.take(3).unwrap();
        let lanes = Lanes::new(log.config().partitions, Some(handoff.clone()));
        let first = lanes.append(&log, 3, vec![event("ann", 1)]).await.unwrap();
        let foreign = log
            .append(StreamKind::Stats, vec![entry(3, vec![event("bob", 2)])])
            .await
            .unwrap()[0]
            .seq;
        let second = lanes.append(&log, 3, vec![event("cid", 3)]).await.unwrap();
        lanes.appended([(3, foreign), (3, second.seq), (5, 1)]);
        let held = log
            .reader(StreamKind::Stats, 3, "t", Start::After(0))
            .await
            .unwrap()
            .next_batch(100, std::time::Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(
            held.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [first.seq, foreign, second.seq]
        );
        let mut batches = Vec::new();
        while let Ok(Some(batch)) =
            tokio::time::timeout(std::time::Duration::from_millis(10), handed.recv()).await
        {
            batches.push(batch);
        }
        assert_eq!(batches.len(), 3, "{batches:?}");
        assert_eq!((batches[0].after, &batches[0].records[..]), (0, &held[..1]));
        assert_eq!(
            (batches[1].after, &batches[1].records[..]),
            (foreign, &held[2..])
        );
        assert_eq!(
            (batches[2].after, batches[2].records.len()),
            (second.seq, 0)
        );
    }

    /// A merged entry stays under its bound: requests past it wait for the next append, and a
    /// request is never split.
    #[tokio::test(flavor = "current_thread")]
    async fn a_merged_entry_keeps_under_its_bound_and_requests_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::Embedded(EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap());
        let lanes = Lanes::new(log.config().partitions, None);
        // Each request's bound is about 0.4 of MERGED_BYTES: two fit an entry, three do not.
        let per_request = MERGED_BYTES * 2 / 5 / encoded_bound(&event("p0000", 0));
        let requests = (0..5).map(|r| {
            let events = (0..per_request)
                .map(|i| event(&format!("p{r:04}"), i as i64))
                .collect();
            lanes.append(&log, 1, events)
        });
        for answer in futures::future::join_all(requests).await {
            answer.unwrap();
        }
        let stored = entries(&log, 1).await;
        // All five waited on the lane when its append began: two, two, and the last.
        let sizes: Vec<usize> = stored.iter().map(|(_, e)| e.len()).collect();
        assert_eq!(sizes, [2 * per_request, 2 * per_request, per_request]);
        let players: Vec<String> = stored
            .iter()
            .flat_map(|(_, e)| e.iter().map(|(p, _)| p.clone()))
            .collect();
        let mut runs = players.clone();
        runs.dedup();
        assert_eq!(runs, ["p0000", "p0001", "p0002", "p0003", "p0004"]);
    }
}
