//! Projections over a real log: the engine's outputs become the views the read API serves.

use std::path::Path;
use std::time::Duration;

use laurel_log::{Entry, Log, StreamKind, Target, partition_of};
use laurel_projections::{ProjectorConfig, ProjectorError, Views};
use laurel_runtime::Stopper;
use laurel_schemas::outputs::unlock_id;
use laurel_schemas::{
    AchievementId, CauseKind, DefinitionEvent, Output, PlayerId, SchemaVersion, Unlocked, Value,
    encode,
};
use serde_json::json;
use uuid::Uuid;

use crate::engine::{
    achievement_defined, define, start_engine, stat_defined, stat_entry, unlocks, wait_for_outputs,
};
use crate::support::{Backend, Fixture};

struct RunningProjector {
    stop: Stopper,
    task: tokio::task::JoinHandle<Result<(), ProjectorError>>,
    views: Views,
}

fn start_projector(log: &Log, dir: &Path) -> RunningProjector {
    let db = crate::support::open_store(dir);
    let views = Views::open(&db, log).unwrap();
    let mut config = ProjectorConfig::all(log.config().partitions);
    config.poll = Duration::from_millis(50);
    let (stop, shutdown) = Stopper::new();
    let task = tokio::spawn(laurel_projections::run(
        log.clone(),
        views.clone(),
        config,
        shutdown,
    ));
    RunningProjector { stop, task, views }
}

impl RunningProjector {
    async fn stop(self) {
        self.stop.stop();
        self.task.await.unwrap().unwrap();
    }
}

fn game() -> Vec<DefinitionEvent> {
    vec![
        stat_defined("kills", json!({"aggregation": "sum", "kind": "int"})),
        achievement_defined(
            "K3",
            json!({"title": "Three", "points": 10, "conditions": [{"stat": "kills", "at_least": 3}]}),
            1,
        ),
    ]
}

async fn kills(log: &Log, players: &[&str]) -> Vec<laurel_log::Appended> {
    let entries = players
        .iter()
        .map(|p| stat_entry(log, p, "kills", 1, Uuid::new_v4()))
        .collect();
    log.append(StreamKind::Stats, entries).await.unwrap()
}

async fn views_show_stats_unlocks_points_and_rarity(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |_| {});
    let projector = start_projector(&f.log, &f.dir.path().join("views"));
    let acks = kills(&f.log, &["ann", "bob", "ann", "ann", "cid"]).await;
    // Read-your-writes: once the checkpoint passes ann's last event, her view has it.
    let ann = partition_of("ann", f.log.config().partitions);
    assert!(
        projector
            .views
            .wait_for(ann, acks[3].seq, Duration::from_secs(30))
            .await
    );
    let view = projector.views.player("ann").unwrap();
    assert_eq!(view.stats["kills"], Value::Int(3));
    assert_eq!(view.earned["K3"].points, 10);
    assert_eq!(view.points_total, 10);
    for p in ["bob", "cid"] {
        let part = partition_of(p, f.log.config().partitions);
        let seq = f.log.last_seq(StreamKind::Stats, part).await.unwrap();
        assert!(
            projector
                .views
                .wait_for(part, seq, Duration::from_secs(30))
                .await
        );
    }
    let rarity = projector.views.rarity().unwrap();
    assert_eq!((rarity.players, rarity.earned["K3"]), (3, 1));
    assert!((rarity.percent("K3") - 100.0 / 3.0).abs() < 1e-9);
    projector.stop().await;
    engine.stop().await;
}

async fn a_re_emitted_unlock_counts_once(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let projector = start_projector(&f.log, &f.dir.path().join("views"));
    let player = PlayerId::new("ann").unwrap();
    let achievement = AchievementId::new("K3").unwrap();
    let unlocked = Output::Unlocked(Unlocked {
        v: SchemaVersion::CURRENT,
        unlock_id: unlock_id(&player, &achievement),
        player_id: player.clone(),
        achievement_id: achievement,
        definition_version: 1,
        points: 10,
        unlocked_at: 5,
        caused_by: Uuid::new_v4(),
        cause: CauseKind::Stat,
        replay: false,
        occurrence: 1,
        baseline: Vec::new(),
        period: None,
    });
    let p = partition_of("ann", f.log.config().partitions);
    // Two copies under different message ids: as after the dedup window has passed.
    let entries = (0..2)
        .map(|i| Entry {
            target: Target::Partition(p),
            id: format!("copy{i}"),
            payload: encode(&unlocked),
        })
        .collect();
    let acks = f.log.append(StreamKind::Output, entries).await.unwrap();
    let checkpoint = Output::Checkpoint(laurel_schemas::Checkpoint {
        v: SchemaVersion::CURRENT,
        partition: p,
        stats_seq: 1,
    });
    f.log
        .append(
            StreamKind::Output,
            vec![Entry {
                target: Target::Partition(p),
                id: "cp".into(),
                payload: encode(&checkpoint),
            }],
        )
        .await
        .unwrap();
    assert!(
        projector
            .views
            .wait_for(p, 1, Duration::from_secs(30))
            .await,
        "checkpoint after {acks:?}"
    );
    let view = projector.views.player("ann").unwrap();
    assert_eq!(view.points_total, 10);
    assert_eq!(projector.views.rarity().unwrap().earned["K3"], 1);
    projector.stop().await;
}

async fn views_rebuilt_from_the_logs_equal_the_live_ones(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |_| {});
    let live = start_projector(&f.log, &f.dir.path().join("views"));
    let players: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    for round in 0..4 {
        let names: Vec<&str> = players
            .iter()
            .take(10 * (round + 1))
            .map(String::as_str)
            .collect();
        kills(&f.log, &names).await;
    }
    wait_for_outputs(&f.log, "unlocks", |o| unlocks(o).len() == 20).await;
    for p in 0..f.log.config().partitions {
        let seq = f.log.last_seq(StreamKind::Stats, p).await.unwrap();
        assert!(live.views.wait_for(p, seq, Duration::from_secs(30)).await);
    }
    engine.stop().await;
    let rebuilt = start_projector(&f.log, &f.dir.path().join("views-rebuilt"));
    for p in 0..f.log.config().partitions {
        let seq = f.log.last_seq(StreamKind::Stats, p).await.unwrap();
        assert!(
            rebuilt
                .views
                .wait_for(p, seq, Duration::from_secs(30))
                .await
        );
    }
    for p in &players {
        assert_eq!(
            rebuilt.views.player(p).unwrap(),
            live.views.player(p).unwrap(),
            "{p}"
        );
    }
    assert_eq!(
        rebuilt.views.rarity().unwrap(),
        live.views.rarity().unwrap()
    );
    assert_eq!(live.views.rarity().unwrap().earned["K3"], 20);
    live.stop().await;
    rebuilt.stop().await;
}

async fn views_of_an_earlier_layout_are_rebuilt_from_the_log(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let engine = start_engine(&f.log, &f.dir.path().join("engine"), |_| {});
    kills(&f.log, &["ann", "ann", "ann"]).await;
    wait_for_outputs(&f.log, "ann's unlock", |o| unlocks(o).len() == 1).await;
    engine.stop().await;
    // Views of the layout before player records: one key per stat, bound to this log, with a
    // position past everything on OUTPUT. Kept, they would hide ann's progress for good.
    let dir = f.dir.path().join("views");
    let ann = partition_of("ann", f.log.config().partitions);
    {
        let store = crate::support::open_store(&dir);
        store.bind("views/", f.log.identity()).unwrap();
        let tree = store.tree(&format!("views/{ann}")).unwrap();
        let end = f.log.last_seq(StreamKind::Output, ann).await.unwrap();
        tree.write([
            (&b"Sann\0kills"[..], &encode(&Value::Int(1))[..]),
            (b"M:pos", &end.to_be_bytes()),
        ])
        .unwrap();
        tree.flush().unwrap();
    }
    let projector = start_projector(&f.log, &dir);
    let seq = f.log.last_seq(StreamKind::Stats, ann).await.unwrap();
    assert!(
        projector
            .views
            .wait_for(ann, seq, Duration::from_secs(30))
            .await
    );
    let view = projector.views.player("ann").unwrap();
    assert_eq!(view.stats.get("kills"), Some(&Value::Int(3)));
    assert!(view.earned.contains_key("K3"));
    assert_eq!(view.points_total, 10);
    projector.stop().await;
}

crate::both_backends!(
    views_show_stats_unlocks_points_and_rarity,
    a_re_emitted_unlock_counts_once,
    views_rebuilt_from_the_logs_equal_the_live_ones,
    views_of_an_earlier_layout_are_rebuilt_from_the_log,
);
