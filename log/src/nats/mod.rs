//! The NATS JetStream log: the production backend, which scales out.
//!
//! Streams `<PREFIX>_STATS` (`laurel.stats.<partition>`), `<PREFIX>_DEFS`
//! (`laurel.defs.<kind>.<id>`) and `<PREFIX>_OUTPUT` (`laurel.output.<partition>`), file
//! storage, created or checked at start-up. Appends carry `Nats-Msg-Id` for deduplication and
//! are pipelined: every message of a batch is published before any ack is awaited. Streams
//! discard nothing: `DiscardNew` with the configured limit, so a full stream refuses appends
//! instead of dropping unconsumed events. Readers are durable pull consumers with
//! `AckPolicy::All`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{
    self, ErrorCode,
    consumer::pull,
    context::PublishErrorKind,
    message::PublishMessage,
    stream::{
        Config as StreamConfig, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy,
        StorageType,
    },
};
use futures::StreamExt;

use crate::{AppendError, Appended, Entry, LogConfig, LogError, Start, StreamKind, Target};

mod connect;
mod error;
mod reader;

pub use connect::{NatsTls, redacted};
pub use reader::NatsReader;

use connect::connect_options;
use error::unavailable;

/// Publishes awaiting their ack, over all appends of one connection.
const MAX_ACKS_IN_FLIGHT: usize = 8_192;

/// How long a process waits for its first connection to NATS before it gives up.
const FIRST_CONNECT: Duration = Duration::from_secs(10);

/// How often an append waiting for acks checks that the connection is still up.
const DISCONNECT_CHECK: Duration = Duration::from_millis(100);

/// The JetStream log. Cheap to clone.
#[derive(Clone)]
pub struct NatsLog {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    config: LogConfig,
    /// The three streams' names and creation times: see [`crate::Log::identity`].
    identity: String,
}

impl std::fmt::Debug for NatsLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLog")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl NatsLog {
    /// Connects to `urls` (one or more server URLs, comma-separated; credentials as
    /// `nats://user:password@host` or `nats://token@host`) and creates or checks the three
    /// streams.
    pub async fn connect(urls: &str, config: LogConfig) -> Result<Self, LogError> {
        Self::connect_with(urls, config, &NatsTls::default()).await
    }

    /// [`NatsLog::connect`] over TLS as `tls` says (and as `tls://` URLs ask).
    pub async fn connect_with(
        urls: &str,
        config: LogConfig,
        tls: &NatsTls,
    ) -> Result<Self, LogError> {
        let (servers, options) = connect_options(urls, tls)?;
        let first = servers[0].clone();
        let client = options
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(|event| async move { connect::log_event(event) })
            .connect(servers)
            .await
            .map_err(unavailable)?;
        // The client goes on trying in the background; a process starts only once it is
        // connected, and says why it is not after a while.
        let connected = tokio::time::timeout(FIRST_CONNECT, async {
            while client.connection_state() != async_nats::connection::State::Connected {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if connected.is_err() {
            return Err(LogError::Unavailable(format!(
                "no NATS server answered within {} s ({}: {})",
                FIRST_CONNECT.as_secs(),
                connect::redacted(first.as_url_str()),
                connect::why_unreachable(&first).await
            )));
        }
        // Without backpressure a publish past the in-flight limit fails at once
        // (`MaxAckPending`) instead of waiting for a permit that only our own unawaited acks
        // could free; `append` then awaits its oldest ack and tries again.
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .max_ack_inflight(MAX_ACKS_IN_FLIGHT)
            .backpressure_on_inflight(false)
            .build(client.clone());
        let mut log = Self {
            inner: Arc::new(Inner {
                client,
                js,
                config,
                identity: String::new(),
            }),
        };
        let mut identity = Vec::new();
        for kind in StreamKind::ALL {
            identity.push(log.ensure_stream(kind).await?);
        }
        Arc::get_mut(&mut log.inner)
            .expect("not shared yet")
            .identity = format!("nats:{}", identity.join(","));
        Ok(log)
    }

    /// See [`crate::Log::identity`].
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// Whether the client is connected to a server now.
    fn connected(&self) -> bool {
        self.inner.client.connection_state() == async_nats::connection::State::Connected
    }

    /// How many times the client has connected so far.
    fn connects(&self) -> u64 {
        self.inner
            .client
            .statistics()
            .connects
            .load(Ordering::Relaxed)
    }

    /// Awaits a publish ack, giving up as soon as the connection is lost or was lost since
    /// the publish (`connects` then): a restarted server never answers. The outcome is then
    /// unknown, and the caller retries with the same ids.
    async fn settle(
        &self,
        stream: StreamKind,
        ack: jetstream::context::PublishAckFuture,
        connects: u64,
    ) -> Result<Appended, AppendError> {
        let ack = ack.into_future();
        tokio::pin!(ack);
        loop {
            tokio::select! {
                result = &mut ack => return settle(stream, result),
                () = tokio::time::sleep(DISCONNECT_CHECK) => {
                    if !self.connected() || self.connects() != connects {
                        return Err(AppendError::Unavailable("the connection to NATS was lost".into()));
                    }
                }
            }
        }
    }

    /// The JetStream context the log uses (for the deployment's other JetStream state: the
    /// icons' object store).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// The layout the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    fn stream_name(&self, kind: StreamKind) -> String {
        format!(
            "{}_{}",
            self.inner.config.stream_prefix,
            kind.name().to_uppercase()
        )
    }

    fn description(&self, kind: StreamKind) -> String {
        let partitions = if kind.is_partitioned() {
            self.inner.config.partitions
        } else {
            1
        };
        format!("laurel {} partitions={partitions}", kind.name())
    }

    fn subject(&self, kind: StreamKind, target: &Target) -> Result<String, AppendError> {
        let prefix = &self.inner.config.subject_prefix;
        match (kind.is_partitioned(), target) {
            (true, Target::Partition(p)) if *p < self.inner.config.partitions => {
                Ok(format!("{prefix}.{}.{p}", kind.name()))
            }
            (false, Target::Definition { kind: what, id }) => {
                Ok(format!("{prefix}.defs.{what}.{id}"))
            }
            _ => Err(AppendError::Invalid(format!(
                "{target:?} is not a target of {}",
                kind.name()
            ))),
        }
    }

    fn filter(&self, kind: StreamKind, partition: u32) -> String {
        let prefix = &self.inner.config.subject_prefix;
        if kind.is_partitioned() {
            format!("{prefix}.{}.{partition}", kind.name())
        } else {
            format!("{prefix}.{}.>", kind.name())
        }
    }

    /// Creates or checks one stream; returns its name and creation time.
    async fn ensure_stream(&self, kind: StreamKind) -> Result<String, LogError> {
        let config = &self.inner.config;
        let prefix = &config.subject_prefix;
        let subjects = if kind.is_partitioned() {
            vec![format!("{prefix}.{}.*", kind.name())]
        } else {
            vec![format!("{prefix}.{}.>", kind.name())]
        };
        let wanted = StreamConfig {
            name: self.stream_name(kind),
            description: Some(self.description(kind)),
            subjects: subjects.clone(),
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
            max_messages: config.max_entries.map_or(-1, |m| m as i64),
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        };
        let mut stream = self
            .inner
            .js
            .get_or_create_stream(wanted)
            .await
            .map_err(unavailable)?;
        let info = stream.info().await.map_err(unavailable)?;
        if info.config.description.as_deref() != Some(self.description(kind).as_str())
            || info.config.subjects != subjects
        {
            return Err(LogError::Misconfigured(format!(
                "stream {} exists with {:?} on {:?}; expected {:?} on {:?}",
                info.config.name,
                info.config.description,
                info.config.subjects,
                self.description(kind),
                subjects
            )));
        }
        Ok(format!(
            "{}@{}",
            info.config.name,
            info.created.unix_timestamp_nanos()
        ))
    }

    /// See [`crate::Log::append`].
    pub async fn append(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
    ) -> Result<Vec<Appended>, AppendError> {
        self.publish_all(stream, entries, true).await
    }

    /// See [`crate::Log::append_unique`]: the ids go without `Nats-Msg-Id`, so the broker
    /// keeps no deduplication record of them.
    pub async fn append_unique(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
    ) -> Result<Vec<Appended>, AppendError> {
        self.publish_all(stream, entries, false).await
    }

    /// Publishes `entries` pipelined, deduplicated by their ids when `dedup`, and waits for
    /// every acknowledgement.
    async fn publish_all(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
        dedup: bool,
    ) -> Result<Vec<Appended>, AppendError> {
        let subjects = entries
            .iter()
            .map(|e| self.subject(stream, &e.target))
            .collect::<Result<Vec<_>, _>>()?;
        let connects = self.connects();
        if !self.connected() {
            // Publishing now would only fill the client's buffer until the ack timeout.
            return Err(AppendError::Unavailable("not connected to NATS".into()));
        }
        let mut pending = std::collections::VecDeque::new();
        let mut results = Vec::with_capacity(entries.len());
        for (entry, subject) in entries.into_iter().zip(subjects) {
            let payload = bytes::Bytes::from(entry.payload);
            loop {
                let mut publish = PublishMessage::build().payload(payload.clone());
                if dedup {
                    publish = publish.message_id(&entry.id);
                }
                match self.inner.js.send_publish(subject.clone(), publish).await {
                    Ok(ack) => {
                        pending.push_back(ack);
                        break;
                    }
                    Err(e) if e.kind() == PublishErrorKind::MaxAckPending => {
                        // Free a permit by awaiting our oldest ack (in order), or let other
                        // appenders' acks come in.
                        match pending.pop_front() {
                            Some(ack) => results.push(self.settle(stream, ack, connects).await?),
                            None => tokio::time::sleep(Duration::from_millis(1)).await,
                        }
                    }
                    Err(e) => return Err(publish_error(stream, &e)),
                }
            }
        }
        for ack in pending {
            results.push(self.settle(stream, ack, connects).await?);
        }
        Ok(results)
    }

    /// See [`crate::Log::append_after`].
    pub async fn append_after(
        &self,
        stream: StreamKind,
        entry: Entry,
        expected_last: u64,
    ) -> Result<Appended, AppendError> {
        self.publish_one(stream, entry, true, |m| {
            m.expected_last_sequence(expected_last)
        })
        .await
    }

    /// See [`crate::Log::append_fenced`]: one entry at a time, each expecting the one
    /// before it as the last of its subject (JetStream checks the last sequence per
    /// subject, and a pipelined entry cannot know the sequence of the one before it).
    pub async fn append_fenced(
        &self,
        stream: StreamKind,
        entries: Vec<Entry>,
        mut fence: u64,
    ) -> Result<Vec<Appended>, AppendError> {
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            let appended = self
                .publish_one(stream, entry, true, |m| {
                    m.expected_last_subject_sequence(fence)
                })
                .await?;
            if !appended.duplicate {
                fence = appended.seq;
            }
            results.push(appended);
        }
        Ok(results)
    }

    /// See [`crate::Log::append_fenced_unique`]: without `Nats-Msg-Id`, as
    /// [`NatsLog::append_unique`].
    pub async fn append_fenced_unique(
        &self,
        stream: StreamKind,
        entry: Entry,
        fence: u64,
    ) -> Result<Appended, AppendError> {
        self.publish_one(stream, entry, false, |m| {
            m.expected_last_subject_sequence(fence)
        })
        .await
    }

    /// Publishes one entry with the expectation `expect` adds, deduplicated by its id when
    /// `dedup`, and waits for its ack.
    async fn publish_one(
        &self,
        stream: StreamKind,
        entry: Entry,
        dedup: bool,
        expect: impl FnOnce(PublishMessage) -> PublishMessage,
    ) -> Result<Appended, AppendError> {
        let subject = self.subject(stream, &entry.target)?;
        let connects = self.connects();
        if !self.connected() {
            return Err(AppendError::Unavailable("not connected to NATS".into()));
        }
        let mut publish = PublishMessage::build().payload(bytes::Bytes::from(entry.payload));
        if dedup {
            publish = publish.message_id(&entry.id);
        }
        let ack = self
            .inner
            .js
            .send_publish(subject, expect(publish))
            .await
            .map_err(|e| publish_error(stream, &e))?;
        self.settle(stream, ack, connects).await
    }

    /// See [`crate::Log::reader`].
    pub async fn reader(
        &self,
        kind: StreamKind,
        partition: u32,
        consumer: &str,
        start: Start,
    ) -> Result<NatsReader, LogError> {
        let name: String = format!("{consumer}_{}_{partition}", kind.name())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stream = self
            .inner
            .js
            .get_stream(self.stream_name(kind))
            .await
            .map_err(unavailable)?;
        // Resuming starts at the consumer's ack floor: entries a crashed reader had fetched
        // but not acknowledged come again now, not after the ack wait.
        let after = match start {
            Start::After(seq) => seq,
            Start::Resume => match stream.get_consumer::<pull::Config>(&name).await {
                Ok(existing) => existing.cached_info().ack_floor.stream_sequence,
                Err(_) => 0,
            },
        };
        let filter = self.filter(kind, partition);
        NatsReader::open(self.inner.client.clone(), stream, name, filter, after).await
    }

    /// See [`crate::Log::entries`].
    pub async fn entries(&self, kind: StreamKind, partition: u32) -> Result<u64, LogError> {
        let stream = self
            .inner
            .js
            .get_stream(self.stream_name(kind))
            .await
            .map_err(unavailable)?;
        let mut subjects = stream
            .info_with_subjects(self.filter(kind, partition))
            .await
            .map_err(unavailable)?;
        let mut total = 0;
        while let Some(subject) = subjects.next().await {
            total += subject.map_err(unavailable)?.1 as u64;
        }
        Ok(total)
    }

    /// See [`crate::Log::last_seq`].
    pub async fn last_seq(&self, kind: StreamKind, partition: u32) -> Result<u64, LogError> {
        if !kind.is_partitioned() {
            let mut stream = self
                .inner
                .js
                .get_stream(self.stream_name(kind))
                .await
                .map_err(unavailable)?;
            let info = stream.info().await.map_err(unavailable)?;
            return Ok(info.state.last_sequence);
        }
        // One request, not two: the stream's info (which the broker computes under the
        // stream's lock) is not needed to ask for a subject's last message, and followers
        // ask every second (`crate::follow`).
        let stream = self
            .inner
            .js
            .get_stream_no_info(self.stream_name(kind))
            .await
            .map_err(unavailable)?;
        match stream
            .get_last_raw_message_by_subject(&self.filter(kind, partition))
            .await
        {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn settle(
    stream: StreamKind,
    ack: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
) -> Result<Appended, AppendError> {
    let ack = ack.map_err(|e| publish_error(stream, &e))?;
    Ok(Appended {
        seq: ack.sequence,
        duplicate: ack.duplicate,
    })
}

fn publish_error(stream: StreamKind, e: &jetstream::context::PublishError) -> AppendError {
    // JetStream's own refusal, when it is one: the API error code says why, not the text.
    let code = std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .map(jetstream::Error::error_code);
    let full = matches!(
        code,
        Some(
            ErrorCode::STREAM_STORE_FAILED
                | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED
                | ErrorCode::STREAM_LIMITS
        )
    );
    match e.kind() {
        PublishErrorKind::Other if full => AppendError::Full(stream.name()),
        PublishErrorKind::WrongLastSequence => AppendError::Conflict(stream.name()),
        _ => AppendError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_urls() {
        let (servers, _) = connect_options(
            "nats://ann:p%40ss@127.0.0.1:4222, nats://ann:p%40ss@127.0.0.1:4223",
            &NatsTls::default(),
        )
        .unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].port(), 4223);
        let mismatched = connect_options("nats://ann:x@a:1,nats://bob:y@b:2", &NatsTls::default());
        assert!(matches!(mismatched, Err(LogError::Misconfigured(_))));
        assert!(matches!(
            connect_options(" , ", &NatsTls::default()),
            Err(LogError::Misconfigured(_))
        ));
        assert!(matches!(
            connect_options("http://a:1", &NatsTls::default()),
            Err(LogError::Misconfigured(_))
        ));
    }

    #[test]
    fn tls_settings_must_be_whole_and_readable() {
        let half = NatsTls {
            cert: Some("client.pem".into()),
            ..NatsTls::default()
        };
        assert!(matches!(
            connect_options("tls://a:1", &half),
            Err(LogError::Misconfigured(_))
        ));
        let missing = NatsTls {
            ca: Some("/no/such/ca.pem".into()),
            ..NatsTls::default()
        };
        let refused = connect_options("nats://a:1", &missing);
        assert!(
            matches!(&refused, Err(LogError::Misconfigured(m)) if m.contains("/no/such/ca.pem")),
            "{:?}",
            refused.map(|_| ())
        );
    }
}
