//! What the integration tests share: a log on either backend, and a test per backend.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use laurel_log::{EmbeddedLog, Log, LogConfig, LogError, NatsLog};
use laurel_tests::NatsServer;
use tempfile::TempDir;

/// Declares each listed `async fn case(Backend)` as a test on each backend.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case($crate::support::Backend::Embedded).await })*
        }
        mod jetstream {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case($crate::support::Backend::Nats).await })*
        }
    };
}

/// Declares each listed `fn case(Backend)` as a test on each backend.
#[macro_export]
macro_rules! both_backends_sync {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[test] fn $case() { super::$case($crate::support::Backend::Embedded) })*
        }
        mod jetstream {
            $(#[test] fn $case() { super::$case($crate::support::Backend::Nats) })*
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Embedded,
    Nats,
}

/// A log on one backend, with what keeps it alive.
pub(crate) struct Fixture {
    pub(crate) backend: Backend,
    pub(crate) config: LogConfig,
    pub(crate) dir: TempDir,
    pub(crate) server: Option<NatsServer>,
    pub(crate) log: Log,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    pub(crate) async fn new(backend: Backend, tweak: impl FnOnce(&mut LogConfig)) -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let mut config = LogConfig {
            partitions: 4,
            stream_prefix: format!("T{}_{n}", std::process::id()),
            ..LogConfig::default()
        };
        tweak(&mut config);
        let dir = tempfile::tempdir().unwrap();
        let server = matches!(backend, Backend::Nats).then(NatsServer::start);
        let log = open(backend, &config, &dir, server.as_ref()).await.unwrap();
        Fixture {
            backend,
            config,
            dir,
            server,
            log,
        }
    }

    /// Drops this handle on the log (the embedded one releases its files once every clone
    /// is gone).
    pub(crate) fn close(&mut self) {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let scratch = self.dir.path().join(format!("scratch{n}"));
        let placeholder = Log::Embedded(EmbeddedLog::open(&scratch, LogConfig::default()).unwrap());
        drop(std::mem::replace(&mut self.log, placeholder));
    }

    /// Closes the log and opens it again over the same storage.
    pub(crate) async fn reopen(&mut self) {
        self.close();
        self.log = open(self.backend, &self.config, &self.dir, self.server.as_ref())
            .await
            .unwrap();
    }
}

pub(crate) async fn open(
    backend: Backend,
    config: &LogConfig,
    dir: &TempDir,
    server: Option<&NatsServer>,
) -> Result<Log, LogError> {
    match backend {
        Backend::Embedded => {
            // The log holds a lock on its directory until every handle is gone.
            let path = dir.path().join("log");
            let mut tries = 0;
            loop {
                match EmbeddedLog::open(&path, config.clone()) {
                    Ok(log) => return Ok(Log::Embedded(log)),
                    Err(LogError::Locked(_)) if tries < 100 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Backend::Nats => Ok(Log::Nats(
            NatsLog::connect(&server.unwrap().url(), config.clone()).await?,
        )),
    }
}

/// Every entry of a partition after `start`, up to the log's last position now. Reads until
/// that position rather than until a read comes back empty, which a loaded machine can make
/// happen early.
pub(crate) async fn read_to_end(
    log: &Log,
    stream: laurel_log::StreamKind,
    partition: u32,
    start: laurel_log::Start,
) -> Vec<laurel_log::Record> {
    let target = log.last_seq(stream, partition).await.unwrap();
    let after = match start {
        laurel_log::Start::After(seq) => seq,
        laurel_log::Start::Resume => 0,
    };
    let mut out: Vec<laurel_log::Record> = Vec::new();
    if after >= target {
        return out;
    }
    let consumer = format!("read-to-end-{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let mut reader = log
        .reader(stream, partition, &consumer, start)
        .await
        .unwrap();
    while out.last().map_or(after, |r| r.seq) < target {
        let batch = reader
            .next_batch(5_000, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            !batch.is_empty(),
            "the reader stalled before position {target}"
        );
        out.extend(batch);
    }
    out
}

/// Deletes a durable consumer of `stream` and creates it again delivering from the start, as
/// a broker restart that lost the consumer's state would: everything comes again.
pub(crate) async fn reset_consumer_behind(f: &Fixture, stream: &str, consumer: &str) {
    let server = f.server.as_ref().expect("a NATS fixture");
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(format!("{}_{stream}", f.config.stream_prefix))
        .await
        .unwrap();
    let info = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(consumer)
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    stream.delete_consumer(consumer).await.unwrap();
    let config = async_nats::jetstream::consumer::pull::Config {
        durable_name: Some(consumer.to_string()),
        filter_subject: info.filter_subject,
        ack_policy: async_nats::jetstream::consumer::AckPolicy::All,
        deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
        max_ack_pending: info.max_ack_pending,
        ..Default::default()
    };
    stream.create_consumer(config).await.unwrap();
}

/// The derived-state store in `dir`, in clear, waiting (bounded) while a process that was
/// just stopped still holds it.
pub(crate) fn open_store(dir: &std::path::Path) -> laurel_derived::Store {
    use laurel_derived::{Store, StoreError, StoreMemory};
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(dir, StoreMemory::with_cache(4 << 20), None) {
            Ok(store) => return store,
            Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("opening {}: {e}", dir.display()),
        }
    }
}

/// Calls `attempt` until it succeeds, for at most a minute; a lasting (not transient) error
/// fails the test at once.
pub(crate) async fn retry_transient<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LogError>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) if e.is_transient() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}
