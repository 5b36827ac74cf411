//! The engine shell over a real log: STATS in, OUTPUT out, state that survives restarts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use laurel_engine::shell::{self, EngineMetrics, ShellConfig, ShellError};
use laurel_log::{Entry, Log, Start, StreamKind, Target, partition_of};
use laurel_schemas::{
    AchievementDefinition, AchievementId, DefinitionEvent, Output, PlayerId, SchemaVersion, Source,
    StatDefinition, StatEvent, StatName, StatsMessage, Value, encode,
};
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::support::{Backend, Fixture, read_to_end};

pub(crate) fn stat_defined(name: &str, spec: serde_json::Value) -> DefinitionEvent {
    DefinitionEvent::StatDefined {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        definition: StatDefinition::from_spec(
            StatName::new(name).unwrap(),
            serde_json::from_value(spec).unwrap(),
            1,
        ),
        at: 1_800_000_000_000,
    }
}

pub(crate) fn achievement_defined(
    id: &str,
    spec: serde_json::Value,
    version: u64,
) -> DefinitionEvent {
    DefinitionEvent::AchievementDefined {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        definition: AchievementDefinition::from_spec(
            AchievementId::new(id).unwrap(),
            serde_json::from_value(spec).unwrap(),
            version,
        ),
        at: 1_800_000_000_000,
    }
}

pub(crate) async fn define(log: &Log, events: &[DefinitionEvent]) {
    let entries = events
        .iter()
        .map(|e| {
            let (kind, id) = e.subject();
            let id = id.to_string();
            Entry {
                target: Target::Definition { kind, id },
                id: e.event_id().to_string(),
                payload: encode(e),
            }
        })
        .collect();
    log.append(StreamKind::Defs, entries).await.unwrap();
}

pub(crate) fn stat_entry(log: &Log, player: &str, stat: &str, value: i64, event_id: Uuid) -> Entry {
    let msg = StatsMessage::Stat(StatEvent {
        v: SchemaVersion::CURRENT,
        event_id,
        player_id: PlayerId::new(player).unwrap(),
        stat: StatName::new(stat).unwrap(),
        value: Value::Int(value),
        ts: 1_800_000_000_000,
        received_at: 1_800_000_000_000,
        source: Source::Server,
    });
    Entry {
        target: Target::Partition(partition_of(player, log.config().partitions)),
        id: event_id.to_string(),
        payload: encode(&msg),
    }
}

pub(crate) struct RunningEngine {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ShellError>>,
    pub(crate) metrics: Arc<EngineMetrics>,
}

pub(crate) fn start_engine(
    log: &Log,
    dir: &Path,
    tweak: impl FnOnce(&mut ShellConfig),
) -> RunningEngine {
    let mut config = ShellConfig::all(log.config().partitions);
    config.poll = Duration::from_millis(50);
    tweak(&mut config);
    let db = sled::open(dir).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let metrics = Arc::new(EngineMetrics::default());
    let task = tokio::spawn(shell::run(
        log.clone(),
        db,
        config,
        metrics.clone(),
        shutdown,
    ));
    RunningEngine {
        stop,
        task,
        metrics,
    }
}

impl RunningEngine {
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.unwrap().unwrap();
    }
}

/// Everything on OUTPUT right now, over all partitions.
pub(crate) async fn outputs(log: &Log) -> Vec<Output> {
    let mut all = Vec::new();
    for p in 0..log.config().partitions {
        for record in read_to_end(log, StreamKind::Output, p, Start::After(0)).await {
            all.push(laurel_schemas::decode::<Output>(&record.payload).unwrap());
        }
    }
    all
}

/// Polls OUTPUT until `done` holds, or fails after 30 s.
pub(crate) async fn wait_for_outputs(
    log: &Log,
    what: &str,
    done: impl Fn(&[Output]) -> bool,
) -> Vec<Output> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = outputs(log).await;
        if done(&all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; OUTPUT has {} entries",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn unlocks(all: &[Output]) -> Vec<(String, String)> {
    let mut u: Vec<(String, String)> = all
        .iter()
        .filter_map(|o| match o {
            Output::Unlocked(u) => Some((u.player_id.to_string(), u.achievement_id.to_string())),
            _ => None,
        })
        .collect();
    u.sort();
    u
}

/// The last `stat` value per (player, stat).
pub(crate) fn last_stats(all: &[Output]) -> BTreeMap<(String, String), Value> {
    all.iter()
        .filter_map(|o| match o {
            Output::Stat(s) => Some(((s.player_id.to_string(), s.stat.to_string()), s.value)),
            _ => None,
        })
        .collect()
}

fn game() -> Vec<DefinitionEvent> {
    vec![
        stat_defined("kills", json!({"aggregation": "sum", "kind": "int"})),
        achievement_defined(
            "K3",
            json!({"title": "Three", "conditions": [{"stat": "kills", "at_least": 3}]}),
            1,
        ),
    ]
}

async fn stats_on_the_log_become_unlocks_on_output(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let entries = ["ann", "bob", "ann", "ann", "cid"]
        .iter()
        .map(|p| stat_entry(&f.log, p, "kills", 1, Uuid::new_v4()))
        .collect();
    f.log.append(StreamKind::Stats, entries).await.unwrap();
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |_| {});
    let all = wait_for_outputs(&f.log, "ann's unlock", |o| !unlocks(o).is_empty()).await;
    assert_eq!(unlocks(&all), vec![("ann".into(), "K3".into())]);
    let all = wait_for_outputs(&f.log, "every stat", |o| last_stats(o).len() == 3).await;
    assert_eq!(
        last_stats(&all)[&("ann".to_string(), "kills".to_string())],
        Value::Int(3)
    );
    let ann = partition_of("ann", f.log.config().partitions);
    let stats_seq = f.log.last_seq(StreamKind::Stats, ann).await.unwrap();
    assert!(all.iter().any(
        |o| matches!(o, Output::Checkpoint(c) if c.partition == ann && c.stats_seq == stats_seq)
    ));
    assert!(all.iter().any(|o| matches!(o, Output::Progress(p) if p.player_id.as_str() == "bob" && p.current == Value::Int(1))));
    engine.stop().await;
}

async fn a_restarted_engine_resumes_without_double_counting(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let batch = |n: usize| {
        (0..n)
            .map(|_| stat_entry(&f.log, "ann", "kills", 1, Uuid::new_v4()))
            .collect::<Vec<_>>()
    };
    f.log.append(StreamKind::Stats, batch(2)).await.unwrap();
    let dir = f.dir.path().join("engine");
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "the first two kills", |o| {
        last_stats(o).values().any(|v| *v == Value::Int(2))
    })
    .await;
    engine.stop().await;
    f.log.append(StreamKind::Stats, batch(3)).await.unwrap();
    let engine = start_engine(&f.log, &dir, |_| {});
    let all = wait_for_outputs(&f.log, "five kills", |o| {
        last_stats(o).values().any(|v| *v == Value::Int(5))
    })
    .await;
    engine.stop().await;
    assert_eq!(
        unlocks(&all),
        vec![("ann".into(), "K3".into())],
        "one unlock, however many restarts"
    );
}

async fn player_state_beyond_the_cache_stays_on_disk(backend: Backend) {
    let f = Fixture::new(backend, |c| c.partitions = 2).await;
    define(&f.log, &game()).await;
    let players: Vec<String> = (0..300).map(|i| format!("player-{i}")).collect();
    for round in 0..3 {
        let entries = players
            .iter()
            .map(|p| stat_entry(&f.log, p, "kills", 1, Uuid::new_v4()))
            .collect();
        f.log.append(StreamKind::Stats, entries).await.unwrap();
        let engine = start_engine(&f.log, &f.dir.path().join("engine"), |c| {
            c.cache_players = 10;
            c.batch_max = 50;
        });
        let want = Value::Int(round + 1);
        wait_for_outputs(&f.log, "every player's kills", |o| {
            let stats = last_stats(o);
            stats.len() == players.len() && stats.values().all(|v| *v == want)
        })
        .await;
        let held = engine.metrics.max_cached_players.load(Ordering::Relaxed);
        assert!(held <= 10 + 50, "a partition held {held} players in memory");
        engine.stop().await;
    }
    let all = outputs(&f.log).await;
    assert_eq!(
        unlocks(&all).len(),
        players.len(),
        "everyone reached 3 kills once"
    );
}

async fn a_new_definition_unlocks_players_who_already_qualify(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()[..1]).await;
    let entries = vec![
        stat_entry(&f.log, "vet", "kills", 7, Uuid::new_v4()),
        stat_entry(&f.log, "new", "kills", 1, Uuid::new_v4()),
    ];
    f.log.append(StreamKind::Stats, entries).await.unwrap();
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |_| {});
    wait_for_outputs(&f.log, "both players' kills", |o| last_stats(o).len() == 2).await;
    define(
        &f.log,
        &[achievement_defined(
            "K5",
            json!({"title": "Five", "conditions": [{"stat": "kills", "at_least": 5}]}),
            1,
        )],
    )
    .await;
    let all = wait_for_outputs(&f.log, "the veteran's unlock", |o| !unlocks(o).is_empty()).await;
    assert_eq!(unlocks(&all), vec![("vet".into(), "K5".into())]);
    engine.stop().await;
}

async fn an_event_for_a_stat_defined_just_before_it_is_not_rejected(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |_| {});
    // The engine is running with no definitions; the stat and its first event arrive together.
    define(&f.log, &game()).await;
    let entries = (0..3)
        .map(|_| stat_entry(&f.log, "ann", "kills", 1, Uuid::new_v4()))
        .collect();
    f.log.append(StreamKind::Stats, entries).await.unwrap();
    let all = wait_for_outputs(&f.log, "ann's unlock", |o| !unlocks(o).is_empty()).await;
    assert!(
        !all.iter().any(|o| matches!(o, Output::Rejected(_))),
        "{all:?}"
    );
    engine.stop().await;
}

crate::both_backends!(
    stats_on_the_log_become_unlocks_on_output,
    a_restarted_engine_resumes_without_double_counting,
    player_state_beyond_the_cache_stays_on_disk,
    a_new_definition_unlocks_players_who_already_qualify,
    an_event_for_a_stat_defined_just_before_it_is_not_rejected,
);
