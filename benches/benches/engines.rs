//! Scale-out: how fast one `laurel engine` and two drain the same backlog on JetStream,
//! against a same-run baseline of raw JetStream publishing (4,096 acks in flight, with
//! `Nats-Msg-Id`).
//!
//! For each engine count, a deployment of its own (stream prefix) gets the definitions and
//! `LAUREL_BENCH_EVENTS` stat events (default 300,000) on STATS, then that many engine roles
//! start together in this process (each with its own NATS connection, data dir and leases,
//! as separate processes would; they share this machine's cores). The figure is the time
//! until every partition's last checkpoint on OUTPUT covers its last STATS event, which
//! includes the engines sharing the partitions out (a few hundred milliseconds).
//!
//! Also timed: the engine shell as `laurel serve` runs it (every partition, no lease, its
//! appends pipelined instead of fenced one by one), for what fencing costs.
//!
//! `cargo bench --bench engines`.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use laurel_benches::{Shape, definitions, raw_jetstream, stat_events};
use laurel_engine::role::{self, RoleConfig};
use laurel_log::{Entry, Log, LogConfig, NatsLog, StreamKind, Target, partition_of};
use laurel_runtime::Stopper;
use laurel_schemas::{Output, decode, encode};
use laurel_tests::NatsServer;

const PARTITIONS: u32 = 16;

fn main() {
    if let Ok(filter) = std::env::var("LAUREL_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let events: usize = std::env::var("LAUREL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let nats = NatsServer::start();
    let baseline = rt.block_on(raw_jetstream(&nats.url(), events));
    println!("raw JetStream publish (4096 in flight, Nats-Msg-Id): {baseline:>10.0} msgs/s");
    let dir = tempfile::tempdir().unwrap();
    let unfenced = rt.block_on(drain(&nats.url(), dir.path(), 0, events));
    println!(
        "the shell of `laurel serve` (all partitions, no lease, appends pipelined): {unfenced:>9.0} ev/s ({:.2}x raw JS)",
        unfenced / baseline
    );
    let mut one = None;
    for engines in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let rate = rt.block_on(drain(&nats.url(), dir.path(), engines, events));
        let vs_one = one.get_or_insert(rate);
        println!(
            "{engines} engine{}: {rate:>9.0} ev/s ({:.2}x raw JS, {:.2}x one engine)",
            if engines == 1 { " " } else { "s" },
            rate / baseline,
            rate / *vs_one,
        );
    }
}

/// Loads a backlog on a deployment of its own, then times `engines` engines draining it
/// (0: the engine shell as `laurel serve` runs it, every partition, no leases, no fence).
async fn drain(url: &str, dir: &std::path::Path, engines: usize, n: usize) -> f64 {
    let prefix = format!("BENCH_ENGINES_{engines}");
    let config = LogConfig {
        partitions: PARTITIONS,
        stream_prefix: prefix.clone(),
        subject_prefix: prefix.to_lowercase(),
        ..LogConfig::default()
    };
    let log = Log::Nats(NatsLog::connect(url, config.clone()).await.unwrap());
    let shape = Shape::ENGINE_FOLD;
    let defs: Vec<Entry> = definitions(shape, 7)
        .iter()
        .map(|d| {
            let (kind, id) = d.subject();
            Entry {
                target: Target::Definition {
                    kind,
                    id: id.to_string(),
                },
                id: d.event_id().to_string(),
                payload: encode(d),
            }
        })
        .collect();
    log.append(StreamKind::Defs, defs).await.unwrap();
    let entries: Vec<Entry> = stat_events(shape, n, 11)
        .iter()
        .map(|m| Entry {
            target: Target::Partition(partition_of(
                m.player_id().expect("stat events are players'").as_str(),
                PARTITIONS,
            )),
            id: m.event_id().to_string(),
            payload: encode(m),
        })
        .collect();
    for batch in entries.chunks(1_000) {
        log.append(StreamKind::Stats, batch.to_vec()).await.unwrap();
    }
    let mut last = Vec::new();
    for p in 0..PARTITIONS {
        last.push(log.last_seq(StreamKind::Stats, p).await.unwrap());
    }
    let (stop, shutdown) = Stopper::new();
    let start = Instant::now();
    let mut running = Vec::new();
    for i in 0..engines {
        let own = Log::Nats(NatsLog::connect(url, config.clone()).await.unwrap());
        let store = laurel_benches::open_store(&dir.join(format!("engine-{i}")), None);
        let config = RoleConfig {
            lease_ttl: Duration::from_secs(3),
            checkpoint_interval: Duration::from_secs(5),
            cached_players: 100_000,
            snapshot_interval: Duration::from_secs(60),
        };
        let metrics = std::sync::Arc::new(laurel_engine::shell::EngineMetrics::default());
        let engine = role::run(own, store, config, metrics, shutdown.clone());
        running.push(tokio::spawn(async move {
            engine.await.map_err(anyhow::Error::from)
        }));
    }
    if engines == 0 {
        let store = laurel_benches::open_store(&dir.join("engine"), None);
        let unfenced = laurel_engine::shell::run_standalone(
            log.clone(),
            store,
            laurel_engine::shell::ShellConfig::all(PARTITIONS),
            std::sync::Arc::new(laurel_engine::shell::EngineMetrics::default()),
            shutdown.clone(),
        );
        running.push(tokio::spawn(async move {
            unfenced.await.map_err(anyhow::Error::from)
        }));
    }
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let output = js.get_stream(format!("{prefix}_OUTPUT")).await.unwrap();
    let subject_prefix = prefix.to_lowercase();
    for (p, &last) in last.iter().enumerate() {
        loop {
            if let Some(failed) = running.iter().find(|e| e.is_finished()) {
                panic!("an engine stopped: {failed:?}");
            }
            let checkpoint = output
                .get_last_raw_message_by_subject(&format!("{subject_prefix}.output.{p}"))
                .await
                .ok()
                .and_then(|m| decode::<Output>(&m.payload).ok());
            if matches!(checkpoint, Some(Output::Changes(c)) if c.complete && c.stats_seq >= last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    stop.stop();
    for engine in running {
        engine.await.unwrap().unwrap();
    }
    rate
}
