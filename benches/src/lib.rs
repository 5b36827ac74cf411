//! Workloads shared by Laurel's benchmarks: a game's definitions and a stream of stat events.

use laurel_schemas::{
    AchievementDefinition, AchievementId, AchievementSpec, Aggregation, Condition, DefinitionEvent,
    PlayerId, SchemaVersion, Source, StatDefinition, StatEvent, StatKind, StatName, StatSpec,
    StatsMessage, Threshold, Value,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// The shape of a generated game.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Number of stats.
    pub stats: usize,
    /// Number of achievements.
    pub achievements: usize,
    /// Number of distinct players.
    pub players: usize,
    /// Whether live-ops definitions are in play: every fifth achievement repeatable with a
    /// reward (every tenth to claim), every eighth stat weekly.
    pub live_ops: bool,
}

impl Shape {
    /// The engine bench's shape: 20 stats, 100 achievements, 10,000 players.
    pub const ENGINE_FOLD: Shape = Shape {
        stats: 20,
        achievements: 100,
        players: 10_000,
        live_ops: true,
    };

    /// [`Shape::ENGINE_FOLD`] without live-ops definitions: the baseline they are measured
    /// against.
    pub const ENGINE_FOLD_PLAIN: Shape = Shape {
        live_ops: false,
        ..Shape::ENGINE_FOLD
    };
}

fn stat_name(i: usize) -> StatName {
    StatName::new(format!("stats.s{i}")).expect("valid name")
}

/// The definitions of a game of `shape`: stats of every aggregation, achievements of one
/// to three conditions, a tenth of them requiring another.
pub fn definitions(shape: Shape, seed: u64) -> Vec<DefinitionEvent> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut events = Vec::new();
    for i in 0..shape.stats {
        let aggregation = [
            Aggregation::Sum,
            Aggregation::Sum,
            Aggregation::Max,
            Aggregation::Latest,
        ][i % 4];
        let spec = StatSpec {
            aggregation,
            kind: StatKind::Int,
            min_value: Some(Value::Int(0)),
            max_value: None,
            max_delta: Some(Value::Int(1_000)),
            client_writable: i % 2 == 0,
            client_time: false,
            // Live-ops in play: every eighth stat is weekly.
            period: (shape.live_ops && i % 8 == 7).then_some(laurel_schemas::Period::Weekly),
            scope: Default::default(),
        };
        events.push(DefinitionEvent::StatDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::from_u128(rng.random()),
            definition: StatDefinition::from_spec(stat_name(i), spec, 1),
            by: None,
            at: 0,
        });
    }
    for i in 0..shape.achievements {
        let conditions = (0..rng.random_range(1..=3))
            .map(|_| Condition {
                stat: stat_name(rng.random_range(0..shape.stats)),
                threshold: Threshold::AtLeast(Value::Int(rng.random_range(5..200))),
            })
            .collect();
        let requires = if i > 0 && rng.random_ratio(1, 10) {
            vec![AchievementId::new(format!("ACH_{}", rng.random_range(0..i))).expect("valid id")]
        } else {
            Vec::new()
        };
        let spec = AchievementSpec {
            title: format!("Achievement {i}"),
            locked_description: String::new(),
            unlocked_description: String::new(),
            locked_icon: None,
            unlocked_icon: None,
            points: rng.random_range(5..50),
            order: i as i32,
            visibility: Default::default(),
            conditions,
            requires,
            available_from: None,
            available_until: None,
            localizations: Default::default(),
            metadata: Default::default(),
            tags: vec![format!("tier-{}", i % 3)],
            // Live-ops in play: every fifth achievement is repeatable and pays a reward,
            // every tenth one to claim.
            repeat: (shape.live_ops && i % 5 == 0).then_some(laurel_schemas::Repeat {
                max: None,
                cooldown_secs: 0,
            }),
            rewards: if shape.live_ops && i % 5 == 0 {
                vec![
                    serde_json::json!({"currency": "gold", "amount": 10})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ]
                .into()
            } else {
                Default::default()
            },
            claim: shape.live_ops && i % 10 == 0,
            min_contribution: None,
        };
        let id = AchievementId::new(format!("ACH_{i}")).expect("valid id");
        events.push(DefinitionEvent::AchievementDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::from_u128(rng.random()),
            definition: AchievementDefinition::from_spec(id, spec, 1),
            by: None,
            at: 0,
        });
    }
    events
}

/// `count` random stat events for a game of `shape`, players chosen uniformly.
pub fn stat_events(shape: Shape, count: usize, seed: u64) -> Vec<StatsMessage> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let players: Vec<PlayerId> = (0..shape.players)
        .map(|i| PlayerId::new(format!("player-{i:07}")).expect("valid id"))
        .collect();
    let stats: Vec<StatName> = (0..shape.stats).map(stat_name).collect();
    (0..count)
        .map(|i| {
            StatsMessage::Stat(StatEvent {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::from_u128(rng.random()),
                player_id: players[rng.random_range(0..players.len())].clone(),
                stat: stats[rng.random_range(0..stats.len())].clone(),
                value: Value::Int(rng.random_range(1..20)),
                ts: 1_800_000_000_000 + i as i64,
                received_at: 1_800_000_000_000 + i as i64,
                source: Source::Server,
                occurred_at: None,
            })
        })
        .collect()
}

/// Bytes of the files under `path`, recursively (0 for what cannot be read).
pub fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The same-run baseline of the JetStream benchmarks: `n` messages of 100 bytes published
/// to a stream of its own (`BENCH_RAW`, 16 subjects), 4,096 acks in flight, each with a
/// `Nats-Msg-Id` as Laurel's appends have; returns messages per second.
pub async fn raw_jetstream(url: &str, n: usize) -> f64 {
    use async_nats::jetstream::{self, message::PublishMessage, stream};
    let js = jetstream::new(async_nats::connect(url).await.expect("NATS reachable"));
    js.create_stream(stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.*".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("stream created");
    let payload = bytes::Bytes::from(vec![7u8; 100]);
    let start = std::time::Instant::now();
    let mut inflight = std::collections::VecDeque::new();
    for i in 0..n {
        let msg = PublishMessage::build()
            .payload(payload.clone())
            .message_id(format!("raw-{i}"));
        inflight.push_back(
            js.send_publish(format!("bench.raw.{}", i % 16), msg)
                .await
                .expect("published"),
        );
        if inflight.len() >= 4096 {
            inflight
                .pop_front()
                .expect("in flight")
                .await
                .expect("acked");
        }
    }
    for ack in inflight {
        ack.await.expect("acked");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A derived-state store at `path` as `laurel serve` opens it (its default cache).
pub fn open_store(
    path: &std::path::Path,
    seal: Option<std::sync::Arc<laurel_log::seal::Sealer>>,
) -> laurel_derived::Store {
    let memory = laurel_derived::StoreMemory::with_cache(laurel_log::open::STORE_CACHE_BYTES);
    laurel_derived::Store::open(path, memory, seal).expect("opening a derived-state store")
}
