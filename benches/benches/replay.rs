//! Replay: the stored STATS history folded again against the definitions, as `laurel
//! replay` does it (`laurel_engine::shell::Replay`, partition after partition), beside a raw
//! read of the same stream in the same run.
//!
//! `cargo bench --bench replay` (events: `LAUREL_BENCH_EVENTS`, default 10,000,000; on the
//! embedded log, as the gateway stores them: requests of 100 events for 100,000 players,
//! one entry per request and partition). Prints the time and rate of each, and the ratio.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use laurel_benches::{Shape, definitions, dir_size, stat_events};
use laurel_engine::Definitions;
use laurel_engine::shell::Replay;
use laurel_log::{EmbeddedLog, Entry, Log, LogConfig, Start, StreamKind, Target, partition_of};
use laurel_schemas::{SchemaVersion, StatEvents, StatsEntry, StatsMessage, encode};

const PARTITIONS: u32 = 16;
const REQUEST: usize = 100;
const SHAPE: Shape = Shape {
    stats: 20,
    achievements: 100,
    players: 100_000,
    live_ops: true,
};

fn main() {
    let events: usize = std::env::var("LAUREL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::Embedded(
        EmbeddedLog::open(
            &dir.path().join("log"),
            LogConfig {
                partitions: PARTITIONS,
                ..LogConfig::default()
            },
        )
        .unwrap(),
    );
    let mut defs = Definitions::new();
    for change in definitions(SHAPE, 7) {
        defs.apply(&change);
    }

    let started = Instant::now();
    rt.block_on(fill(&log, events));
    println!(
        "stored {events} events in {:.1} s ({:.1} MiB on disk)",
        started.elapsed().as_secs_f64(),
        dir_size(dir.path()) as f64 / (1 << 20) as f64
    );

    let started = Instant::now();
    let entries = rt.block_on(raw_read(&log));
    let raw = started.elapsed().as_secs_f64();
    println!(
        "raw read of STATS:  {entries} entries in {raw:.2} s ({:.0} events/s)",
        events as f64 / raw
    );

    let started = Instant::now();
    let report = rt.block_on(async {
        let read = AtomicU64::new(0);
        let mut replay = Replay::new(&defs, 5, "bench-replay");
        for p in 0..PARTITIONS {
            let upto = log.last_seq(StreamKind::Stats, p).await.unwrap();
            replay
                .partition(&log, p, upto, Default::default(), &read)
                .await
                .unwrap();
        }
        replay.finish().0
    });
    let replayed = started.elapsed().as_secs_f64();
    assert_eq!(report.events, events as u64, "every event folded");
    println!(
        "replay:             {} events in {replayed:.2} s ({:.0} events/s), {} players, {} gains | {:.2}x the raw read's time",
        report.events,
        events as f64 / replayed,
        report.players,
        report.gained,
        replayed / raw
    );
}

/// Appends `events` as the gateway would: requests of `REQUEST` events, each stored as one
/// `stats` entry per partition it touches.
async fn fill(log: &Log, events: usize) {
    const CHUNK: usize = 100_000;
    for (n, start) in (0..events).step_by(CHUNK).enumerate() {
        let count = CHUNK.min(events - start);
        let generated = stat_events(SHAPE, count, 11 + n as u64);
        let mut entries = Vec::new();
        for request in generated.chunks(REQUEST) {
            let mut by_partition: Vec<Vec<_>> = vec![Vec::new(); PARTITIONS as usize];
            for message in request {
                let StatsMessage::Stat(event) = message else {
                    continue;
                };
                let p = partition_of(event.player_id.as_str(), PARTITIONS);
                by_partition[p as usize].push(event.clone());
            }
            for (p, events) in by_partition.into_iter().enumerate() {
                if events.is_empty() {
                    continue;
                }
                let id = events[0].event_id.to_string();
                let entry = StatsEntry::Stats(StatEvents {
                    v: SchemaVersion::CURRENT,
                    events,
                });
                entries.push(Entry {
                    target: Target::Partition(p as u32),
                    id,
                    payload: encode(&entry),
                });
            }
        }
        log.append(StreamKind::Stats, entries).await.unwrap();
    }
}

/// Reads every STATS entry of every partition, decoding nothing; returns how many.
async fn raw_read(log: &Log) -> u64 {
    let mut entries = 0;
    for p in 0..PARTITIONS {
        let upto = log.last_seq(StreamKind::Stats, p).await.unwrap();
        let mut reader = log
            .reader(StreamKind::Stats, p, "bench-raw", Start::After(0))
            .await
            .unwrap();
        let mut position = 0;
        while position < upto {
            let records = reader
                .next_batch(2_000, std::time::Duration::from_secs(5))
                .await
                .unwrap();
            assert!(!records.is_empty(), "partition {p} ended early");
            position = records.last().unwrap().seq;
            entries += records.len() as u64;
        }
    }
    entries
}
