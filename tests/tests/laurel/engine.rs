//! The engine shell over a real log: STATS in, OUTPUT out, state that survives restarts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use laurel_engine::shell::{self, EngineMetrics, Lease, ShellConfig, ShellError};
use laurel_log::{Entry, Log, Start, StreamKind, Target, partition_of};
use laurel_runtime::Stopper;
use laurel_schemas::{
    AchievementDefinition, AchievementId, DefinitionEvent, Output, PlayerId, SchemaVersion, Source,
    StatDefinition, StatEvent, StatName, StatsMessage, Value, encode,
};
use serde_json::json;
use uuid::Uuid;

use crate::support::{Backend, Fixture, read_to_end, reset_consumer_behind};

pub(crate) fn stat_defined(name: &str, spec: serde_json::Value) -> DefinitionEvent {
    DefinitionEvent::StatDefined {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        definition: StatDefinition::from_spec(
            StatName::new(name).unwrap(),
            serde_json::from_value(spec).unwrap(),
            1,
        ),
        by: None,
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
        by: None,
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
        occurred_at: None,
    });
    Entry {
        target: Target::Partition(partition_of(player, log.config().partitions)),
        id: event_id.to_string(),
        payload: encode(&msg),
    }
}

pub(crate) struct RunningEngine {
    stop: Stopper,
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
    let db = crate::support::open_store(dir);
    let (stop, shutdown) = Stopper::new();
    let metrics = Arc::new(EngineMetrics::default());
    let task = tokio::spawn(shell::run_standalone(
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
        self.stop.stop();
        self.task.await.unwrap().unwrap();
    }
}

/// Everything on OUTPUT right now, over all partitions.
pub(crate) async fn outputs(log: &Log) -> Vec<Output> {
    let mut all = Vec::new();
    for p in 0..log.config().partitions {
        for record in read_to_end(log, StreamKind::Output, p, Start::After(0)).await {
            all.extend(
                laurel_schemas::decode::<Output>(&record.payload)
                    .unwrap()
                    .into_outputs(),
            );
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

/// An `unlocked` output of `achievement` for `player`, caused by `caused_by`, as the engine
/// would emit it.
pub(crate) fn unlocked(player: &str, achievement: &str, points: u32, caused_by: Uuid) -> Output {
    let (player, achievement) = (
        PlayerId::new(player).unwrap(),
        AchievementId::new(achievement).unwrap(),
    );
    Output::Unlocked(laurel_schemas::Unlocked {
        v: SchemaVersion::CURRENT,
        unlock_id: laurel_schemas::outputs::unlock_id(&player, &achievement),
        player_id: player,
        achievement_id: achievement,
        definition_version: 1,
        points,
        unlocked_at: 1_800_000_000_000,
        caused_by,
        cause: laurel_schemas::CauseKind::Stat,
        replay: false,
        occurrence: 1,
        baseline: Vec::new(),
        period: None,
    })
}

/// Players other than `of` on `of`'s partition.
pub(crate) fn partition_mates(of: &str, partitions: u32, count: usize) -> Vec<String> {
    let p = partition_of(of, partitions);
    (0..)
        .map(|i| format!("mate{i}"))
        .filter(|m| partition_of(m, partitions) == p)
        .take(count)
        .collect()
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
    let mut kills = 0;
    // A new engine each round (its state from disk), and twice more events while it runs:
    // players leave the cache while their states are written behind, and come back.
    for _ in 0..3 {
        let engine = start_engine(&f.log, &f.dir.path().join("engine"), |c| {
            c.cache_players = 10;
            c.batch_max = 50;
            c.persist_interval = Duration::from_millis(1);
        });
        for _ in 0..2 {
            let entries = players
                .iter()
                .map(|p| stat_entry(&f.log, p, "kills", 1, Uuid::new_v4()))
                .collect();
            f.log.append(StreamKind::Stats, entries).await.unwrap();
            kills += 1;
            let want = Value::Int(kills);
            wait_for_outputs(&f.log, "every player's kills", |o| {
                let stats = last_stats(o);
                stats.len() == players.len() && stats.values().all(|v| *v == want)
            })
            .await;
        }
        // The cache waits for the write behind it at twice its bound, past which one batch
        // may bring new players.
        let held = engine.metrics.max_cached_players.load(Ordering::Relaxed);
        assert!(
            held <= 2 * 10 + 50,
            "a partition held {held} players in memory"
        );
        engine.stop().await;
    }
    let all = outputs(&f.log).await;
    assert_eq!(
        unlocks(&all).len(),
        players.len(),
        "everyone reached 3 kills once"
    );
    assert_eq!(kills, 6);
}

/// An achievement defined after the players' kills: five of them.
fn five_kills() -> DefinitionEvent {
    achievement_defined(
        "K5",
        json!({"title": "Five", "conditions": [{"stat": "kills", "at_least": 5}]}),
        1,
    )
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
    define(&f.log, &[five_kills()]).await;
    let all = wait_for_outputs(&f.log, "the veteran's unlock", |o| !unlocks(o).is_empty()).await;
    assert_eq!(unlocks(&all), vec![("vet".into(), "K5".into())]);
    engine.stop().await;
}

/// Re-evaluating after a definition change goes through a partition's players a chunk at a
/// time: never all of them in memory at once, and every qualifying player unlocked once.
async fn a_reevaluation_never_holds_a_whole_partition(backend: Backend) {
    let f = Fixture::new(backend, |c| c.partitions = 1).await;
    define(&f.log, &game()[..1]).await;
    let players: Vec<String> = (0..200).map(|i| format!("player-{i}")).collect();
    let entries = players
        .iter()
        .map(|p| stat_entry(&f.log, p, "kills", 7, Uuid::new_v4()))
        .collect();
    f.log.append(StreamKind::Stats, entries).await.unwrap();
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |c| {
        c.cache_players = 10;
        c.batch_max = 10;
    });
    wait_for_outputs(&f.log, "every player's kills", |o| {
        last_stats(o).len() == players.len()
    })
    .await;
    define(&f.log, &[five_kills()]).await;
    let all = wait_for_outputs(&f.log, "every player's unlock", |o| {
        unlocks(o).len() >= players.len()
    })
    .await;
    assert_eq!(unlocks(&all).len(), players.len(), "each unlocked once");
    // Folding waits for the write behind it at twice the bound, plus one batch's players.
    let held = engine.metrics.max_cached_players.load(Ordering::Relaxed);
    assert!(
        held <= 2 * 10 + 10,
        "the partition held {held} players in memory"
    );
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

/// Total `kills` and K3 unlocks for `player` on OUTPUT, and whether any `stat` output of
/// theirs went past `limit` (a double count shows as a value over the true total).
fn ann_on_output(all: &[Output], player: &str) -> (Option<Value>, usize) {
    let value = last_stats(all)
        .get(&(player.to_string(), "kills".to_string()))
        .copied();
    let unlocked = unlocks(all)
        .iter()
        .filter(|(p, a)| p == player && a == "K3")
        .count();
    (value, unlocked)
}

fn kills(log: &Log, player: &str, n: usize) -> Vec<Entry> {
    (0..n)
        .map(|_| stat_entry(log, player, "kills", 1, Uuid::new_v4()))
        .collect()
}

/// One STATS entry holding several events (as the gateway stores events whose ids it made).
fn grouped(log: &Log, player: &str, values: &[i64]) -> Entry {
    let events = values
        .iter()
        .map(|&v| StatEvent {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::new_v4(),
            player_id: PlayerId::new(player).unwrap(),
            stat: StatName::new("kills").unwrap(),
            value: Value::Int(v),
            ts: 1_800_000_000_000,
            received_at: 1_800_000_000_000,
            source: Source::Server,
            occurred_at: None,
        })
        .collect();
    Entry {
        target: Target::Partition(partition_of(player, log.config().partitions)),
        id: Uuid::new_v4().to_string(),
        payload: encode(&laurel_schemas::StatsEntry::Stats(
            laurel_schemas::StatEvents {
                v: SchemaVersion::CURRENT,
                events,
            },
        )),
    }
}

/// Grouped STATS entries are folded whole, live and by recovery: an engine that lost its
/// state rebuilds from the logs with every event of every group counted once, and an unlock
/// reached inside a group is on OUTPUT once.
async fn grouped_entries_count_every_event_once_across_a_rebuild(backend: Backend) {
    let f = Fixture::new(backend, |c| c.partitions = 1).await;
    define(&f.log, &game()).await;
    let dir = f.dir.path().join("engine");
    f.log
        .append(StreamKind::Stats, vec![grouped(&f.log, "ann", &[1, 1, 5])])
        .await
        .unwrap();
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "ann's group", |o| {
        ann_on_output(o, "ann") == (Some(Value::Int(7)), 1)
    })
    .await;
    engine.stop().await;
    // The state is gone: the next engine rebuilds it from the logs, emitting nothing.
    std::fs::remove_dir_all(&dir).unwrap();
    let engine = start_engine(&f.log, &dir, |_| {});
    f.log
        .append(
            StreamKind::Stats,
            vec![
                grouped(&f.log, "ann", &[10, 100]),
                grouped(&f.log, "bob", &[2, 2]),
            ],
        )
        .await
        .unwrap();
    let all = wait_for_outputs(&f.log, "the next groups", |o| {
        last_stats(o).get(&("bob".to_string(), "kills".to_string())) == Some(&Value::Int(4))
            && ann_on_output(o, "ann").0 == Some(Value::Int(117))
    })
    .await;
    assert_eq!(
        ann_on_output(&all, "ann"),
        (Some(Value::Int(117)), 1),
        "{all:?}"
    );
    assert_eq!(ann_on_output(&all, "bob").1, 1, "{all:?}");
    assert_eq!(
        engine
            .metrics
            .events
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    engine.stop().await;
}

/// A test player's reset, folded again by an engine that rebuilds its state from the logs:
/// the earn before the reset (on OUTPUT) is forgotten at the reset, so the player earns
/// the achievement again, as a new unlock (an id of its own), exactly once.
async fn a_reset_is_honoured_by_an_engine_rebuilt_from_the_logs(backend: Backend) {
    let f = Fixture::new(backend, |c| c.partitions = 1).await;
    define(&f.log, &game()).await;
    let dir = f.dir.path().join("engine");
    let reset = StatsMessage::Reset(laurel_schemas::Reset {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        player_id: PlayerId::new("ann").unwrap(),
        received_at: 1_800_000_000_000,
    });
    let reset = Entry {
        target: Target::Partition(0),
        id: reset.event_id().to_string(),
        payload: encode(&reset),
    };
    f.log
        .append(
            StreamKind::Stats,
            vec![stat_entry(&f.log, "ann", "kills", 3, Uuid::new_v4()), reset],
        )
        .await
        .unwrap();
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "ann's unlock and reset", |o| {
        o.iter().any(|o| matches!(o, Output::PlayerReset(_)))
    })
    .await;
    engine.stop().await;
    // The state is gone: the next engine rebuilds it from the logs.
    std::fs::remove_dir_all(&dir).unwrap();
    let engine = start_engine(&f.log, &dir, |_| {});
    f.log
        .append(
            StreamKind::Stats,
            vec![stat_entry(&f.log, "ann", "kills", 3, Uuid::new_v4())],
        )
        .await
        .unwrap();
    let all = wait_for_outputs(&f.log, "ann's unlock after the reset", |o| {
        unlocks(o).len() == 2
    })
    .await;
    let ids: Vec<Uuid> = all
        .iter()
        .filter_map(|o| match o {
            Output::Unlocked(u) => Some(u.unlock_id),
            _ => None,
        })
        .collect();
    let first = laurel_schemas::outputs::unlock_id(
        &PlayerId::new("ann").unwrap(),
        &laurel_schemas::AchievementId::new("K3").unwrap(),
    );
    assert_eq!(ids, [first, laurel_schemas::after_resets(first, 1)]);
    assert_eq!(
        last_stats(&all).get(&("ann".to_string(), "kills".to_string())),
        Some(&Value::Int(3)),
        "the values before the reset stay gone"
    );
    engine.stop().await;
}

async fn engine_state_from_another_log_is_rebuilt_not_trusted(backend: Backend) {
    // The engine's state dir first follows one log far ahead...
    let first = Fixture::new(backend, |_| {}).await;
    define(&first.log, &game()).await;
    first
        .log
        .append(StreamKind::Stats, kills(&first.log, "ann", 40))
        .await
        .unwrap();
    let dir = first.dir.path().join("engine");
    let engine = start_engine(&first.log, &dir, |_| {});
    wait_for_outputs(&first.log, "40 kills", |o| {
        ann_on_output(o, "ann").0 == Some(Value::Int(40))
    })
    .await;
    engine.stop().await;
    // ...then is pointed at another log whose positions are all below the stored ones.
    let second = Fixture::new(backend, |_| {}).await;
    define(&second.log, &game()).await;
    second
        .log
        .append(StreamKind::Stats, kills(&second.log, "ann", 2))
        .await
        .unwrap();
    let engine = start_engine(&second.log, &dir, |_| {});
    let all = wait_for_outputs(&second.log, "the new log's 2 kills", |o| {
        ann_on_output(o, "ann").0 == Some(Value::Int(2))
    })
    .await;
    assert_eq!(ann_on_output(&all, "ann").1, 0, "no state leaked over");
    engine.stop().await;
}

async fn an_unreadable_player_state_is_rebuilt_from_the_log(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    f.log
        .append(StreamKind::Stats, kills(&f.log, "ann", 5))
        .await
        .unwrap();
    f.log
        .append(StreamKind::Stats, kills(&f.log, "bob", 1))
        .await
        .unwrap();
    let dir = f.dir.path().join("engine");
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "ann's 5 kills", |o| {
        ann_on_output(o, "ann").0 == Some(Value::Int(5)) && ann_on_output(o, "bob").0.is_some()
    })
    .await;
    engine.stop().await;
    {
        // Damage ann's stored state (as a bad disk or an old bug would).
        let store = crate::support::open_store(&dir);
        let p = partition_of("ann", f.log.config().partitions);
        let tree = store.tree(&format!("engine/{p}")).unwrap();
        assert!(
            tree.get(b"Pann").unwrap().is_some(),
            "ann's state is stored"
        );
        tree.write([(&b"Pann"[..], &b"\xc1 not msgpack"[..])])
            .unwrap();
        tree.flush().unwrap();
    }
    let engine = start_engine(&f.log, &dir, |_| {});
    f.log
        .append(StreamKind::Stats, kills(&f.log, "ann", 1))
        .await
        .unwrap();
    let all = wait_for_outputs(&f.log, "ann's sixth kill", |o| {
        ann_on_output(o, "ann").0 == Some(Value::Int(6))
    })
    .await;
    assert_eq!(ann_on_output(&all, "ann").1, 1, "K3 unlocked once");
    assert!(
        last_stats(&all)
            .iter()
            .filter(|((p, _), _)| p == "ann")
            .all(|(_, v)| *v == Value::Int(6)),
        "ann's total was never started again from zero"
    );
    assert_eq!(engine.metrics.rebuilds.load(Ordering::Relaxed), 1);
    engine.stop().await;
}

async fn a_new_engine_on_a_log_with_history_emits_nothing_twice(backend: Backend) {
    let window = Duration::from_millis(300);
    let f = Fixture::new(backend, |c| c.duplicate_window = window).await;
    define(&f.log, &game()).await;
    f.log
        .append(StreamKind::Stats, kills(&f.log, "ann", 3))
        .await
        .unwrap();
    let engine = start_engine(&f.log, &f.dir.path().join("engine-a"), |_| {});
    wait_for_outputs(&f.log, "ann's unlock", |o| ann_on_output(o, "ann").1 == 1).await;
    engine.stop().await;
    // The log's deduplication cannot help past its window: the engine must know by itself.
    tokio::time::sleep(window * 3).await;
    let engine = start_engine(&f.log, &f.dir.path().join("engine-b"), |_| {});
    f.log
        .append(StreamKind::Stats, kills(&f.log, "ann", 1))
        .await
        .unwrap();
    let all = wait_for_outputs(&f.log, "ann's fourth kill", |o| {
        ann_on_output(o, "ann").0 == Some(Value::Int(4))
    })
    .await;
    assert_eq!(ann_on_output(&all, "ann").1, 1, "{all:?}");
    engine.stop().await;
}

async fn an_unlock_of_an_interrupted_batch_is_not_emitted_again(backend: Backend) {
    let window = Duration::from_millis(300);
    let f = Fixture::new(backend, |c| c.duplicate_window = window).await;
    define(&f.log, &game()).await;
    f.log
        .append(StreamKind::Stats, kills(&f.log, "ann", 2))
        .await
        .unwrap();
    let dir = f.dir.path().join("engine");
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "ann's 2 kills", |o| {
        ann_on_output(o, "ann").0 == Some(Value::Int(2))
    })
    .await;
    engine.stop().await;
    // A third kill arrives, and a crashed engine had published its unlock but neither its
    // checkpoint nor its state: exactly what the next engine will compute.
    let third = Uuid::new_v4();
    let acks = f
        .log
        .append(
            StreamKind::Stats,
            vec![stat_entry(&f.log, "ann", "kills", 1, third)],
        )
        .await
        .unwrap();
    let unlock = unlocked("ann", "K3", 0, third);
    let Output::Unlocked(u) = &unlock else {
        unreachable!()
    };
    let partition = partition_of("ann", f.log.config().partitions);
    f.log
        .append(
            StreamKind::Output,
            vec![Entry {
                target: Target::Partition(partition),
                id: u.unlock_id.to_string(),
                payload: encode(&unlock),
            }],
        )
        .await
        .unwrap();
    tokio::time::sleep(window * 3).await;
    let engine = start_engine(&f.log, &dir, |_| {});
    let all = wait_for_outputs(&f.log, "the third kill's checkpoint", |o| {
        o.iter().any(|o| matches!(o, Output::Checkpoint(c) if c.partition == partition && c.stats_seq == acks[0].seq))
    })
    .await;
    assert_eq!(
        ann_on_output(&all, "ann"),
        (Some(Value::Int(3)), 1),
        "{all:?}"
    );
    engine.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// An incomplete `changes` entry that an interrupted attempt left on OUTPUT (the first part
/// of a batch split in two, for the very event that comes later) sits before the checkpoint
/// a later recovery starts from: recovery must neither take values from it nor let it stand
/// for the batch. (The engine once rebuilt values from OUTPUT's `stat` outputs after its
/// checkpoint, and lost events whose outputs the log had deduplicated against such copies.)
async fn an_output_deduplicated_before_the_resume_point_is_not_lost(backend: Backend) {
    let f = Fixture::new(backend, |c| c.partitions = 1).await;
    define(&f.log, &game()).await;
    let dir = f.dir.path().join("engine");
    f.log
        .append(StreamKind::Stats, kills(&f.log, "ann", 2))
        .await
        .unwrap();
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "ann's 2 kills", |o| {
        ann_on_output(o, "ann").0 == Some(Value::Int(2))
    })
    .await;
    engine.stop().await;
    // Bob's kill comes; an interrupted attempt had already folded ann's next kill (the
    // entry after bob's) and appended the first part of its `changes`, then died.
    let bob = f
        .log
        .append(StreamKind::Stats, kills(&f.log, "bob", 1))
        .await
        .unwrap()[0]
        .seq;
    let ann_next = bob + 1;
    let early = Output::Changes(laurel_schemas::Changes {
        v: SchemaVersion::CURRENT,
        partition: 0,
        first_seq: ann_next,
        stats_seq: ann_next,
        complete: false,
        stats: vec![laurel_schemas::StatChanged {
            v: SchemaVersion::CURRENT,
            player_id: PlayerId::new("ann").unwrap(),
            stat: StatName::new("kills").unwrap(),
            value: Value::Int(3),
            previous: Some(Value::Int(2)),
            at: 1_800_000_000_000,
            period: None,
        }],
        progress: Vec::new(),
        rejected: Vec::new(),
        community: Vec::new(),
        reached: Vec::new(),
    });
    f.log
        .append(
            StreamKind::Output,
            vec![Entry {
                target: Target::Partition(0),
                id: format!("0:b:{ann_next}-{ann_next}:0/2"),
                payload: encode(&early),
            }],
        )
        .await
        .unwrap();
    // The next engine folds bob's kill and stops: its state resumes after that checkpoint.
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "bob's checkpoint", |o| {
        o.iter()
            .any(|o| matches!(o, Output::Checkpoint(c) if c.stats_seq == bob))
    })
    .await;
    engine.stop().await;
    let resume_point = f.dir.path().join("engine-at-bob");
    copy_dir(&dir, &resume_point);
    // Ann's kill arrives at the position the early output named; the engine folds it (its
    // output is deduplicated against the early copy) and crashes before storing its state.
    let acks = f
        .log
        .append(StreamKind::Stats, kills(&f.log, "ann", 1))
        .await
        .unwrap();
    assert_eq!(acks[0].seq, ann_next);
    let engine = start_engine(&f.log, &dir, |_| {});
    wait_for_outputs(&f.log, "ann's third kill's checkpoint", |o| {
        o.iter()
            .any(|o| matches!(o, Output::Checkpoint(c) if c.stats_seq == ann_next))
    })
    .await;
    engine.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(&resume_point, &dir);
    // The next engine resumes after bob's checkpoint; ann's fourth kill must make 4.
    let engine = start_engine(&f.log, &dir, |_| {});
    f.log
        .append(StreamKind::Stats, kills(&f.log, "ann", 1))
        .await
        .unwrap();
    let all = wait_for_outputs(&f.log, "ann's fourth kill", |o| {
        last_stats(o)
            .get(&("ann".to_string(), "kills".to_string()))
            .is_some_and(|v| *v != Value::Int(3))
    })
    .await;
    assert_eq!(
        ann_on_output(&all, "ann"),
        (Some(Value::Int(4)), 1),
        "{all:?}"
    );
    engine.stop().await;
}

mod redelivery {
    use super::*;

    /// A broker that hands a running engine its already-folded entries again (as after a
    /// restart that lost consumer state) changes nothing: positions only move forward.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_handed_out_again_are_not_folded_twice() {
        let f = Fixture::new(Backend::Nats, |c| c.partitions = 1).await;
        define(&f.log, &game()).await;
        f.log
            .append(StreamKind::Stats, kills(&f.log, "ann", 5))
            .await
            .unwrap();
        let engine = start_engine(&f.log, &f.dir.path().join("engine"), |_| {});
        wait_for_outputs(&f.log, "5 kills", |o| {
            ann_on_output(o, "ann").0 == Some(Value::Int(5))
        })
        .await;
        reset_consumer_behind(&f, "STATS", "engine-stats_stats_0").await;
        let sixth = f
            .log
            .append(StreamKind::Stats, kills(&f.log, "ann", 1))
            .await
            .unwrap()[0]
            .seq;
        // The first five come again before the sixth: once the sixth is checkpointed, any
        // second fold of them is on OUTPUT too.
        let all = wait_for_outputs(&f.log, "the sixth kill's checkpoint", |o| {
            o.iter()
                .any(|o| matches!(o, Output::Checkpoint(c) if c.stats_seq == sixth))
        })
        .await;
        assert_eq!(
            ann_on_output(&all, "ann"),
            (Some(Value::Int(6)), 1),
            "{all:?}"
        );
        engine.stop().await;
    }
}

/// A worker holding a partition's lease appends under two fences: its lease's deadline and
/// the partition's end on OUTPUT. Another writer appending to the partition stops it before
/// it appends anything more; a lapsed lease stops it before it appends at all; the next
/// holder recovers past the other writer's entry and folds every pending event once.
async fn a_fenced_worker_appends_nothing_and_the_next_holder_folds_each_event_once(
    backend: Backend,
) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let p = partition_of("ann", f.log.config().partitions);
    let kill = |log: &Log| stat_entry(log, "ann", "kills", 1, Uuid::new_v4());
    let db = crate::support::open_store(&f.dir.path().join("engine"));
    let mut config = ShellConfig::all(f.log.config().partitions);
    config.poll = Duration::from_millis(50);
    let metrics = Arc::new(EngineMetrics::default());
    let (defs, _) = shell::SharedDefs::load(&f.log, "fenced-defs")
        .await
        .unwrap();
    let run = |lease: Lease| {
        let (stop, shutdown) = Stopper::new();
        let workers = shell::Workers {
            log: f.log.clone(),
            db: db.clone(),
            defs: defs.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
            share: None,
        };
        let task = tokio::spawn(workers.run_partition(p, Arc::new(lease), shutdown));
        (stop, task)
    };
    let held = || Lease::new(Instant::now() + Duration::from_secs(60));
    f.log
        .append(StreamKind::Stats, vec![kill(&f.log)])
        .await
        .unwrap();
    let (_stop, worker) = run(held());
    wait_for_outputs(&f.log, "the first kill", |o| last_stats(o).len() == 1).await;
    // Another engine appends to the partition (here, an empty part of a batch).
    let intruder = Output::Changes(laurel_schemas::Changes {
        v: SchemaVersion::CURRENT,
        partition: p,
        first_seq: 0,
        stats_seq: 0,
        complete: false,
        stats: Vec::new(),
        progress: Vec::new(),
        rejected: Vec::new(),
        community: Vec::new(),
        reached: Vec::new(),
    });
    f.log
        .append(
            StreamKind::Output,
            vec![Entry {
                target: Target::Partition(p),
                id: "intruder".into(),
                payload: encode(&intruder),
            }],
        )
        .await
        .unwrap();
    let tail = f.log.last_seq(StreamKind::Output, p).await.unwrap();
    f.log
        .append(StreamKind::Stats, vec![kill(&f.log)])
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("the worker stops")
        .unwrap();
    assert!(
        matches!(outcome, Err(ShellError::Fenced(q)) if q == p),
        "{outcome:?}"
    );
    assert_eq!(f.log.last_seq(StreamKind::Output, p).await.unwrap(), tail);
    // A lapsed lease: the worker recovers, folds, and appends nothing.
    let (_stop, worker) = run(Lease::new(Instant::now()));
    let outcome = tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("the worker stops")
        .unwrap();
    assert!(matches!(outcome, Err(ShellError::Fenced(_))), "{outcome:?}");
    assert_eq!(f.log.last_seq(StreamKind::Output, p).await.unwrap(), tail);
    // The next holder folds the pending kill, and one more, each once.
    f.log
        .append(StreamKind::Stats, vec![kill(&f.log)])
        .await
        .unwrap();
    let (stop, worker) = run(held());
    let all = wait_for_outputs(&f.log, "three kills", |o| {
        last_stats(o).values().any(|v| *v == Value::Int(3))
    })
    .await;
    assert_eq!(unlocks(&all), vec![("ann".into(), "K3".into())]);
    stop.stop();
    worker.await.unwrap().unwrap();
}

/// A partition's state handed from one engine to another: taken when it is of the same log
/// and ahead of the taker's own, refused otherwise; folding on from it counts every event
/// once.
async fn a_partition_snapshot_is_taken_only_ahead_and_from_the_same_log(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let p = partition_of("ann", f.log.config().partitions);
    let (defs, _) = shell::SharedDefs::load(&f.log, "snapshot-defs")
        .await
        .unwrap();
    let mut config = ShellConfig::all(f.log.config().partitions);
    config.poll = Duration::from_millis(50);
    let workers = |name: &str, log: &Log| shell::Workers {
        log: log.clone(),
        db: crate::support::open_store(&f.dir.path().join(name)),
        defs: defs.clone(),
        config: config.clone(),
        metrics: Arc::new(EngineMetrics::default()),
        share: None,
    };
    let run = |workers: shell::Workers| {
        let (stop, shutdown) = Stopper::new();
        let lease = Arc::new(Lease::new(Instant::now() + Duration::from_secs(60)));
        (
            stop,
            tokio::spawn(workers.run_partition(p, lease, shutdown)),
        )
    };
    let kill = |log: &Log| stat_entry(log, "ann", "kills", 1, Uuid::new_v4());
    let (a, b) = (workers("a", &f.log), workers("b", &f.log));
    f.log
        .append(StreamKind::Stats, vec![kill(&f.log), kill(&f.log)])
        .await
        .unwrap();
    let (stop, worker) = run(a.clone());
    wait_for_outputs(&f.log, "two kills", |o| {
        last_stats(o).values().any(|v| *v == Value::Int(2))
    })
    .await;
    stop.stop();
    worker.await.unwrap().unwrap();
    let blob = a.export(p).unwrap();
    let position = f.log.last_seq(StreamKind::Stats, p).await.unwrap();
    assert_eq!(b.import(p, &blob).unwrap(), Some(position));
    assert_eq!(b.import(p, &blob).unwrap(), None, "not ahead: not taken");
    let other = Fixture::new(backend, |_| {}).await;
    assert_eq!(
        workers("c", &other.log).import(p, &blob).unwrap(),
        None,
        "another log's state is never taken"
    );
    // The taker folds on from the snapshot: the third kill unlocks, each kill counted once.
    f.log
        .append(StreamKind::Stats, vec![kill(&f.log)])
        .await
        .unwrap();
    let (stop, worker) = run(b);
    let all = wait_for_outputs(&f.log, "three kills", |o| {
        last_stats(o).values().any(|v| *v == Value::Int(3))
    })
    .await;
    assert_eq!(unlocks(&all), vec![("ann".into(), "K3".into())]);
    stop.stop();
    worker.await.unwrap().unwrap();
}

/// A worker with a projector beside it hands each append to it, saying which entry the
/// append follows: always the entry OUTPUT holds just before, also once another writer
/// appended to the partition behind the worker's back (its fenced append is refused, it
/// recovers from OUTPUT, says where the partition ends, and goes on, emitting each unlock
/// once).
async fn handed_batches_follow_what_output_holds_even_after_another_writer(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let partitions = f.log.config().partitions;
    let p = partition_of("ann", partitions);
    let bob = partition_mates("ann", partitions, 1).remove(0);
    let handoff = Arc::new(laurel_log::Handoff::new(partitions));
    let mut handed_rx = handoff.take(p).unwrap();
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |c| {
        c.output_handoff = Some(handoff.clone());
    });
    let kills = |player: &str| {
        (0..3)
            .map(|_| stat_entry(&f.log, player, "kills", 1, Uuid::new_v4()))
            .collect::<Vec<_>>()
    };
    f.log.append(StreamKind::Stats, kills("ann")).await.unwrap();
    wait_for_outputs(&f.log, "ann's unlock", |o| unlocks(o).len() == 1).await;
    let foreign = f
        .log
        .append(
            StreamKind::Output,
            vec![Entry {
                target: Target::Partition(p),
                id: "another writer".into(),
                payload: encode(&unlocked("zed", "K3", 0, Uuid::new_v4())),
            }],
        )
        .await
        .unwrap()[0]
        .seq;
    f.log.append(StreamKind::Stats, kills(&bob)).await.unwrap();
    let all = wait_for_outputs(&f.log, "bob's unlock", |o| {
        unlocks(o).iter().any(|(player, _)| *player == bob)
    })
    .await;
    engine.stop().await;
    let mut expected = vec![
        ("ann".to_string(), "K3".to_string()),
        (bob.clone(), "K3".to_string()),
        ("zed".to_string(), "K3".to_string()),
    ];
    expected.sort();
    assert_eq!(unlocks(&all), expected);
    let held = read_to_end(&f.log, StreamKind::Output, p, Start::After(0)).await;
    let mut handed = Vec::new();
    while let Ok(Some(batch)) =
        tokio::time::timeout(Duration::from_millis(10), handed_rx.recv()).await
    {
        handed.push(batch);
    }
    let (news, handed): (Vec<_>, Vec<_>) = handed.into_iter().partition(|b| b.records.is_empty());
    // News of where the partition ends (after recovery): a position OUTPUT holds.
    for batch in &news {
        assert!(
            batch.after == 0 || held.iter().any(|r| r.seq == batch.after),
            "{batch:?}"
        );
    }
    for batch in &handed {
        let first = batch.records[0].seq;
        let i = held
            .iter()
            .position(|r| r.seq == first)
            .unwrap_or_else(|| panic!("handed entry {first} is not on OUTPUT"));
        let before = if i == 0 { 0 } else { held[i - 1].seq };
        assert_eq!(batch.after, before, "the batch at {first} follows {before}");
        assert_eq!(held[i..i + batch.records.len()], batch.records[..]);
    }
    assert!(
        handed.iter().any(|b| b.records[0].seq < foreign)
            && handed.iter().any(|b| b.records[0].seq > foreign),
        "batches handed before and after the other writer's entry at {foreign}: {handed:?}"
    );
    assert!(
        news.iter().any(|b| b.after >= foreign),
        "the recovery after the other writer's entry says where the partition ends: {news:?}"
    );
}

/// A STATS entry the gateway hands over is folded only when it follows exactly what the
/// partition folded; one handed ahead of its predecessor (whose batch was dropped) is left to
/// the log, which delivers both in order. Once handed entries follow, the engine stops
/// reading the log (the broker delivers nothing more to it); an entry appended by a writer
/// that hands nothing (another process) is still folded, once a check of where the
/// partition ends finds it twice unhanded. An entry that follows is folded without the log
/// (here one the log does not even hold, so only the handoff can show it).
async fn a_handed_stats_entry_is_folded_only_right_after_what_was_folded(backend: Backend) {
    const LINGER: Duration = Duration::from_millis(100);
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let partitions = f.log.config().partitions;
    let p = partition_of("ann", partitions);
    let mates = partition_mates("ann", partitions, 4);
    let (bob, cid, dan, eve) = (&mates[0], &mates[1], &mates[2], &mates[3]);
    let three = |player: &str| stat_entry(&f.log, player, "kills", 3, Uuid::new_v4());
    let append =
        |entry: Entry| async { f.log.append(StreamKind::Stats, vec![entry]).await.unwrap()[0].seq };
    let handed = |after: u64, seq: u64, entry: Entry| laurel_log::Handed {
        after,
        records: vec![laurel_log::Record {
            seq,
            payload: entry.payload.into(),
        }],
    };
    let unlocked = |o: &[Output], player: &str| unlocks(o).iter().any(|(who, _)| who == player);
    let handoff = Arc::new(laurel_log::Handoff::new(partitions));
    // Bob's kills handed ahead of ann's: they wait for hers, which only the log has.
    let ann_seq = append(three("ann")).await;
    let bob_kills = three(bob);
    let bob_seq = append(bob_kills.clone()).await;
    handoff.hand(p, handed(ann_seq, bob_seq, bob_kills));
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |c| {
        c.stats_handoff = Some(handoff.clone());
        c.reader_linger = LINGER;
    });
    wait_for_outputs(&f.log, "ann's and bob's unlocks", |o| {
        unlocked(o, "ann") && unlocked(o, bob)
    })
    .await;
    // Cid's kills, appended and handed right after bob's: folded, and the log let go.
    let cid_kills = three(cid);
    let cid_seq = append(cid_kills.clone()).await;
    handoff.hand(p, handed(bob_seq, cid_seq, cid_kills));
    wait_for_outputs(&f.log, "cid's unlock", |o| unlocked(o, cid)).await;
    // Dan's kills, appended and not handed once the reader is closed: not read at once...
    tokio::time::sleep(LINGER * 3).await;
    let dan_seq = append(three(dan)).await;
    let appended = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !unlocked(&outputs(&f.log).await, dan),
        "the engine kept reading the log while following the handoff"
    );
    // ...but after two checks of where the partition ends.
    wait_for_outputs(&f.log, "dan's unlock", |o| unlocked(o, dan)).await;
    assert!(appended.elapsed() >= laurel_log::follow::CHECK_EVERY);
    // Eve's kills, handed right after dan's at a position past the log's end.
    handoff.hand(p, handed(dan_seq, dan_seq + 1_000, three(eve)));
    wait_for_outputs(&f.log, "eve's unlock", |o| unlocked(o, eve)).await;
    // Handed again, nothing follows what was folded any more: nothing changes.
    handoff.hand(p, handed(ann_seq, bob_seq, three(bob)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.stop().await;
    let mut expected: Vec<(String, String)> = ["ann", bob, cid, dan, eve]
        .iter()
        .map(|player| (player.to_string(), "K3".to_string()))
        .collect();
    expected.sort();
    assert_eq!(
        unlocks(&outputs(&f.log).await),
        expected,
        "each unlock once"
    );
}

crate::both_backends!(
    a_handed_stats_entry_is_folded_only_right_after_what_was_folded,
    handed_batches_follow_what_output_holds_even_after_another_writer,
    a_reset_is_honoured_by_an_engine_rebuilt_from_the_logs,
    a_partition_snapshot_is_taken_only_ahead_and_from_the_same_log,
    a_fenced_worker_appends_nothing_and_the_next_holder_folds_each_event_once,
    grouped_entries_count_every_event_once_across_a_rebuild,
    an_output_deduplicated_before_the_resume_point_is_not_lost,
    engine_state_from_another_log_is_rebuilt_not_trusted,
    an_unreadable_player_state_is_rebuilt_from_the_log,
    a_new_engine_on_a_log_with_history_emits_nothing_twice,
    an_unlock_of_an_interrupted_batch_is_not_emitted_again,
    stats_on_the_log_become_unlocks_on_output,
    a_restarted_engine_resumes_without_double_counting,
    player_state_beyond_the_cache_stays_on_disk,
    a_new_definition_unlocks_players_who_already_qualify,
    a_reevaluation_never_holds_a_whole_partition,
    an_event_for_a_stat_defined_just_before_it_is_not_rejected,
);
