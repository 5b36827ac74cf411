//! End to end through the logs: stat events appended to STATS -> engine -> OUTPUT ->
//! projections -> views, on the embedded log and on JetStream, against a same-run baseline
//! of raw JetStream publishing (4,096 acks in flight, with `Nats-Msg-Id`).
//!
//! `cargo bench --bench pipeline` (events: `LAUREL_BENCH_EVENTS`, default 200,000; backends:
//! `LAUREL_BENCH_BACKENDS`, default `embedded,embedded-sealed,jetstream`, the second with a
//! data key).
//! Prints events/s, the ratios to the baseline, disk used and the process's peak memory.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use laurel_benches::{Shape, definitions, dir_size, raw_jetstream, stat_events};
use laurel_engine::shell::{self, EngineMetrics, ShellConfig};
use laurel_log::{EmbeddedLog, Entry, Log, LogConfig, NatsLog, StreamKind, Target, partition_of};
use laurel_projections::{ProjectorConfig, Views};
use laurel_runtime::Stopper;
use laurel_schemas::encode;
use laurel_tests::NatsServer;

const PARTITIONS: u32 = 16;
const APPEND_BATCH: usize = 1_000;
const APPENDERS: usize = 4;

fn main() {
    if let Ok(filter) = std::env::var("LAUREL_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let events: usize = std::env::var("LAUREL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let nats = NatsServer::start();
    let baseline = rt.block_on(raw_jetstream(&nats.url(), events));
    println!("raw JetStream publish (4096 in flight, Nats-Msg-Id): {baseline:>10.0} msgs/s");
    let backends = std::env::var("LAUREL_BENCH_BACKENDS")
        .unwrap_or_else(|_| "embedded,embedded-sealed,jetstream".into());
    for backend in backends.split(',') {
        let dir = tempfile::tempdir().unwrap();
        let r = rt.block_on(pipeline(backend, &nats.url(), dir.path(), events));
        println!(
            "{backend:>9}: append {:>9.0} ev/s ({:.2}x raw JS) | end to end {:>9.0} ev/s ({:.2}x raw JS) | outputs {} | disk {:.1} MiB",
            r.append_rate,
            r.append_rate / baseline,
            r.e2e_rate,
            r.e2e_rate / baseline,
            r.outputs,
            r.disk as f64 / (1 << 20) as f64,
        );
    }
    println!("peak memory of this process (VmHWM): {}", peak_memory());
}

struct Figures {
    append_rate: f64,
    e2e_rate: f64,
    outputs: u64,
    disk: u64,
}

async fn pipeline(backend: &str, url: &str, dir: &Path, n: usize) -> Figures {
    let config = LogConfig {
        partitions: PARTITIONS,
        stream_prefix: format!("BENCH_{}", backend.to_uppercase()),
        ..LogConfig::default()
    };
    // `embedded-sealed`: the embedded log with a data key (log, engine state and views sealed).
    let seal = (backend == "embedded-sealed").then(|| {
        let key = laurel_log::seal::DataKey::from_bytes([7; laurel_log::seal::KEY_LEN]);
        Arc::new(
            laurel_log::seal::unlock(dir, Some(&key), &[])
                .unwrap()
                .unwrap(),
        )
    });
    let log = match backend {
        "embedded" | "embedded-sealed" => {
            Log::Embedded(EmbeddedLog::open_sealed(&dir.join("log"), config, seal.clone()).unwrap())
        }
        _ => Log::Nats(NatsLog::connect(url, config).await.unwrap()),
    };
    let shape = Shape::ENGINE_FOLD;
    let defs: Vec<Entry> = definitions(shape, 7)
        .iter()
        .map(|d| {
            let (kind, id) = d.subject();
            let id = id.to_string();
            Entry {
                target: Target::Definition { kind, id },
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

    let (stop, shutdown) = Stopper::new();
    let metrics = Arc::new(EngineMetrics::default());
    let engine = tokio::spawn(shell::run_standalone(
        log.clone(),
        laurel_benches::open_store(&dir.join("engine"), seal.clone()),
        ShellConfig::all(PARTITIONS),
        metrics.clone(),
        shutdown.clone(),
    ));
    let views_db = laurel_benches::open_store(&dir.join("views"), seal);
    let views = Views::open(&views_db, &log).unwrap();
    let projector = tokio::spawn(laurel_projections::run(
        log.clone(),
        views.clone(),
        ProjectorConfig::all(PARTITIONS),
        shutdown,
    ));

    let start = Instant::now();
    let chunks: Vec<Vec<Entry>> = entries
        .chunks(APPEND_BATCH)
        .map(<[Entry]>::to_vec)
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let mut appenders = Vec::new();
    for _ in 0..APPENDERS {
        let (log, queue) = (log.clone(), queue.clone());
        appenders.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap().next();
                let Some(batch) = next else { break };
                log.append(StreamKind::Stats, batch).await.unwrap();
            }
        }));
    }
    for a in appenders {
        a.await.unwrap();
    }
    let append_rate = n as f64 / start.elapsed().as_secs_f64();
    for p in 0..PARTITIONS {
        let last = log.last_seq(StreamKind::Stats, p).await.unwrap();
        while !views.wait_for(p, last, Duration::from_secs(600)).await {}
    }
    let e2e_rate = n as f64 / start.elapsed().as_secs_f64();
    stop.stop();
    engine.await.unwrap().unwrap();
    projector.await.unwrap().unwrap();
    views_db.flush_async().await.unwrap();
    Figures {
        append_rate,
        e2e_rate,
        outputs: metrics.outputs.load(std::sync::atomic::Ordering::Relaxed),
        disk: dir_size(dir),
    }
}

fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}
