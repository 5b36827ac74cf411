//! Reading a partition of a JetStream stream: a durable pull consumer behind the reader's own
//! position.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::{FutureExt, StreamExt};

use super::error::unavailable;
use crate::{LogError, Record};

/// How long a consumer no reader pulls from lives on the server.
const CONSUMER_INACTIVE: Duration = Duration::from_secs(3600);

/// How often [`NatsReader::ack_behind`] acknowledges, at most: far inside the consumer's ack
/// wait (30 s), so nothing is delivered again while the reader lives.
const ACK_EVERY: Duration = Duration::from_millis(100);

/// A durable pull consumer of one partition.
///
/// The reader's own position (`after`, the last entry it handed out) is the authority, never
/// the consumer's state on the server: after an error, a reconnect, or a delivery that
/// skips one (the consumer sequence jumped), the reader deletes its durable consumer and
/// creates it again starting right after its position. So a broker restart can neither
/// hand an entry out twice nor make the reader pass over one.
pub struct NatsReader {
    client: async_nats::Client,
    stream: jetstream::stream::Stream,
    name: String,
    filter: String,
    consumer: Option<PullConsumer>,
    messages: Option<pull::Stream>,
    delivered: Vec<(u64, jetstream::Message)>,
    after: u64,
    /// The consumer sequence of the last delivery taken (0 for a new consumer).
    consumer_seq: u64,
    /// The client's connection count when the consumer was made.
    connects: u64,
    /// Entries of the partition after the last one delivered, as the server said then.
    pending: Option<u64>,
    /// What [`NatsReader::ack_behind`] holds back, and when the reader last acknowledged.
    unacked: Option<u64>,
    acked_at: std::time::Instant,
}

impl std::fmt::Debug for NatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsReader")
            .field("consumer", &self.name)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// What to do with a delivered message.
enum Delivery {
    /// A new entry.
    Fresh(Record),
    /// At or below the reader's position: already handed out.
    Stale,
    /// A delivery before it never arrived.
    Gap,
}

impl NatsReader {
    /// A reader of `filter` on `stream` that hands out what follows `after`, under the
    /// durable consumer `name`.
    pub(super) async fn open(
        client: async_nats::Client,
        stream: jetstream::stream::Stream,
        name: String,
        filter: String,
        after: u64,
    ) -> Result<Self, LogError> {
        let mut reader = Self {
            client,
            stream,
            name,
            filter,
            consumer: None,
            messages: None,
            delivered: Vec::new(),
            after,
            consumer_seq: 0,
            connects: 0,
            pending: None,
            unacked: None,
            acked_at: std::time::Instant::now(),
        };
        reader.reposition().await?;
        Ok(reader)
    }

    /// Creates the durable consumer afresh, delivering what comes after the position.
    async fn reposition(&mut self) -> Result<(), LogError> {
        self.messages = None;
        self.delivered.clear();
        self.unacked = None;
        self.consumer = None;
        self.consumer_seq = 0;
        self.connects = self.client.statistics().connects.load(Ordering::Relaxed);
        let deliver_policy = match self.after {
            0 => DeliverPolicy::All,
            seq => DeliverPolicy::ByStartSequence {
                start_sequence: seq + 1,
            },
        };
        // A missing consumer is fine. One that could not be deleted (a broker restarting)
        // must not be taken over: a create with the same config would hand back the old
        // consumer, which delivers after what it delivered before, not after the position.
        match self.stream.delete_consumer(&self.name).await {
            Ok(_) => {}
            Err(e)
                if matches!(e.kind(), async_nats::jetstream::stream::ConsumerErrorKind::JetStream(ref js)
                    if js.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND) => {
            }
            Err(e) => return Err(unavailable(e)),
        }
        let config = pull::Config {
            durable_name: Some(self.name.clone()),
            filter_subject: self.filter.clone(),
            deliver_policy,
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 100_000,
            // A reader's own position decides where it reads, never the consumer: one a
            // reader left behind (a process gone, a per-process name) goes away by itself,
            // and a live reader whose consumer went makes it again.
            inactive_threshold: CONSUMER_INACTIVE,
            ..Default::default()
        };
        let consumer: PullConsumer = self
            .stream
            .create_consumer(config)
            .await
            .map_err(unavailable)?;
        self.consumer = Some(consumer);
        Ok(())
    }

    /// Classifies a delivered message; a stale one is acknowledged and dropped.
    fn take(&mut self, message: jetstream::Message) -> Result<Delivery, LogError> {
        let info = message.info().map_err(unavailable)?;
        let (seq, consumer_seq) = (info.stream_sequence, info.consumer_sequence);
        self.pending = Some(info.pending);
        // A fresh consumer's first delivery is its first (consumer sequence 1): a later one
        // means an older consumer was handed back, which would skip what it delivered.
        let expected = self.consumer_seq + 1;
        if consumer_seq != expected {
            return Ok(Delivery::Gap);
        }
        self.consumer_seq = consumer_seq;
        if seq <= self.after {
            // Not awaited here: `next_batch` stays cancel-safe (nothing it took is dropped
            // with it), and a lost ack only means the entry comes again, stale again.
            tokio::spawn(async move {
                if let Err(e) = message.ack().await {
                    tracing::debug!(seq, error = %e, "ack of a redelivered entry failed");
                }
            });
            return Ok(Delivery::Stale);
        }
        self.after = seq;
        let record = Record {
            seq,
            payload: message.payload.clone(),
        };
        self.delivered.push((seq, message));
        Ok(Delivery::Fresh(record))
    }

    /// See [`crate::Reader::pending`].
    pub fn pending(&self) -> Option<u64> {
        self.pending
    }

    /// See [`crate::Reader::next_batch`].
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, LogError> {
        let reconnected =
            self.client.statistics().connects.load(Ordering::Relaxed) != self.connects;
        if self.consumer.is_none() || reconnected {
            // The server may have lost the consumer's state or its pull requests.
            self.reposition().await?;
        }
        if self.messages.is_none() {
            let consumer = self.consumer.as_ref().expect("positioned above");
            let stream = consumer
                .stream()
                .max_messages_per_batch(max.max(1))
                .heartbeat(Duration::from_secs(5))
                .messages()
                .await
                .map_err(unavailable)?;
            self.messages = Some(stream);
        }
        let messages = self.messages.as_mut().expect("set above");
        let mut out = Vec::new();
        let first = match tokio::time::timeout(wait, messages.next()).await {
            Err(_) => {
                // Quiet: what was held back goes now.
                if let Some(seq) = self.unacked {
                    self.ack(seq).await?;
                }
                return Ok(out);
            }
            Ok(first) => first,
        };
        let mut next = first;
        loop {
            match next {
                Some(Ok(message)) => match self.take(message)? {
                    Delivery::Fresh(record) => out.push(record),
                    Delivery::Stale => {}
                    Delivery::Gap => {
                        tracing::warn!(consumer = %self.name, after = self.after, "a delivery went missing; repositioning");
                        self.consumer = None;
                        return Ok(out);
                    }
                },
                Some(Err(e)) => {
                    // Start afresh from the position on the next call.
                    self.consumer = None;
                    if out.is_empty() {
                        return Err(unavailable(e));
                    }
                    return Ok(out);
                }
                None => {
                    self.consumer = None;
                    return Ok(out);
                }
            }
            if out.len() >= max {
                return Ok(out);
            }
            let messages = self.messages.as_mut().expect("still set");
            match messages.next().now_or_never() {
                Some(item) => next = item,
                None => return Ok(out),
            }
        }
    }

    /// See [`crate::Reader::ack`]: with `AckPolicy::All`, acknowledging the message at `seq`
    /// acknowledges everything before it.
    pub async fn ack(&mut self, seq: u64) -> Result<(), LogError> {
        let Some(index) = self.delivered.iter().rposition(|(s, _)| *s <= seq) else {
            return Ok(());
        };
        let (_, message) = &self.delivered[index];
        message.ack().await.map_err(unavailable)?;
        self.delivered.drain(..=index);
        self.unacked = None;
        self.acked_at = std::time::Instant::now();
        Ok(())
    }

    /// See [`crate::Reader::ack_behind`]: acknowledges at most every [`ACK_EVERY`], and when
    /// the partition goes quiet (a [`NatsReader::next_batch`] that waited for nothing).
    pub async fn ack_behind(&mut self, seq: u64) -> Result<(), LogError> {
        if self.acked_at.elapsed() >= ACK_EVERY {
            return self.ack(seq).await;
        }
        self.unacked = Some(seq);
        Ok(())
    }
}
