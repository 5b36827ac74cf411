//! Projections over a real log: the engine's outputs become the views the read API serves.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use laurel_log::{Entry, Handed, Handoff, Log, Record, StreamKind, Target, partition_of};
use laurel_projections::{ProjectorConfig, ProjectorError, Views};
use laurel_runtime::Stopper;
use laurel_schemas::{DefinitionEvent, Output, SchemaVersion, Value, encode};
use serde_json::json;
use uuid::Uuid;

use crate::engine::{
    achievement_defined, define, partition_mates, start_engine, stat_defined, stat_entry, unlocked,
    unlocks, wait_for_outputs,
};
use crate::support::{Backend, Fixture};

/// How long the projector's reader stays open once handed batches follow again.
const READER_LINGER: Duration = Duration::from_millis(100);

struct RunningProjector {
    stop: Stopper,
    task: tokio::task::JoinHandle<Result<(), ProjectorError>>,
    views: Views,
}

fn start_projector(log: &Log, dir: &Path) -> RunningProjector {
    start_projector_with(log, dir, None)
}

fn start_projector_with(log: &Log, dir: &Path, handoff: Option<Arc<Handoff>>) -> RunningProjector {
    let db = crate::support::open_store(dir);
    let views = Views::open(&db, log).unwrap();
    let mut config = ProjectorConfig::all(log.config().partitions);
    config.poll = Duration::from_millis(50);
    config.handoff = handoff;
    config.reader_linger = READER_LINGER;
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
    let unlocked = unlocked("ann", "K3", 10, Uuid::new_v4());
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

/// Appends to OUTPUT partition `p` an unlock of K3 (10 points) for each of `players`.
async fn append_unlocks(log: &Log, p: u32, players: &[&str]) -> Vec<laurel_log::Appended> {
    let entries = players
        .iter()
        .map(|player| Entry {
            target: Target::Partition(p),
            id: format!("unlock of {player}"),
            payload: encode(&unlocked(player, "K3", 10, Uuid::new_v4())),
        })
        .collect();
    log.append(StreamKind::Output, entries).await.unwrap()
}

/// A batch the engine hands over is applied only when it follows exactly what the partition
/// applied; one that comes ahead of its predecessor (the predecessor's batch was dropped) is
/// left to the log, which delivers both in order. Once a handed batch follows, the projector
/// stops reading the log (the broker delivers nothing more to it) until news that the
/// partition holds entries it was not handed sends it back to the log. A batch that follows
/// is applied without the log (here one the log does not even hold, so only the handoff can
/// show it).
async fn a_handed_batch_is_applied_only_right_after_what_was_applied(backend: Backend) {
    let f = Fixture::new(backend, |_| {}).await;
    define(&f.log, &game()).await;
    let partitions = f.log.config().partitions;
    let p = partition_of("ann", partitions);
    let mates = partition_mates("ann", partitions, 4);
    let (bob, cid, dan, eve) = (&mates[0], &mates[1], &mates[2], &mates[3]);
    let log = &f.log;
    let record = |seq: u64, held: &[Record]| held.iter().find(|r| r.seq == seq).unwrap().clone();
    let acks = append_unlocks(log, p, &["ann", bob]).await;
    let (ann_seq, bob_seq) = (acks[0].seq, acks[1].seq);
    let held =
        crate::support::read_to_end(log, StreamKind::Output, p, laurel_log::Start::After(0)).await;
    let handoff = Arc::new(Handoff::new(partitions));
    // Bob's unlock handed ahead of ann's: it must wait for hers, which only the log has.
    handoff.hand(
        p,
        Handed {
            after: ann_seq,
            records: vec![record(bob_seq, &held)],
        },
    );
    let projector = start_projector_with(log, &f.dir.path().join("views"), Some(handoff.clone()));
    let earned = |player: &str| projector.views.player(player).unwrap().points_total == 10;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let wait = |what: &'static str, done: &dyn Fn() -> bool| {
        let done = done();
        assert!(done || tokio::time::Instant::now() < deadline, "{what}");
        done
    };
    while !wait("the log's entries were not applied", &|| {
        earned("ann") && earned(bob)
    }) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(projector.views.rarity().unwrap().earned["K3"], 2);
    // Cid's unlock, appended and handed right after bob's: applied, and the log let go.
    let cid_seq = append_unlocks(log, p, &[cid]).await[0].seq;
    let held =
        crate::support::read_to_end(log, StreamKind::Output, p, laurel_log::Start::After(0)).await;
    handoff.hand(
        p,
        Handed {
            after: bob_seq,
            records: vec![record(cid_seq, &held)],
        },
    );
    while !wait("the handed batch was not applied", &|| earned(cid)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Dan's unlock, appended and not handed once the reader is closed: not read from the
    // log...
    tokio::time::sleep(READER_LINGER * 3).await;
    let dan_seq = append_unlocks(log, p, &[dan]).await[0].seq;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !earned(dan),
        "the projector kept reading the log while following the handoff"
    );
    // ...until news that the partition ends past what was applied.
    handoff.hand(
        p,
        Handed {
            after: dan_seq,
            records: Vec::new(),
        },
    );
    while !wait("the log was not read after the news", &|| earned(dan)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Eve's unlock, handed right after dan's at a position past the log's end.
    let beyond = Record {
        seq: dan_seq + 1_000,
        payload: encode(&unlocked(eve, "K3", 10, Uuid::new_v4())).into(),
    };
    let after_dan = Handed {
        after: dan_seq,
        records: vec![beyond],
    };
    handoff.hand(p, after_dan.clone());
    while !wait("the handed batch past the log was not applied", &|| {
        earned(eve)
    }) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Handed again, nothing follows what was applied any more: nothing changes.
    handoff.hand(p, after_dan);
    handoff.hand(
        p,
        Handed {
            after: 0,
            records: held,
        },
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(projector.views.rarity().unwrap().earned["K3"], 5);
    for player in ["ann", bob, cid, dan, eve] {
        assert!(earned(player), "{player}");
    }
    projector.stop().await;
}

crate::both_backends!(
    a_handed_batch_is_applied_only_right_after_what_was_applied,
    views_show_stats_unlocks_points_and_rarity,
    a_re_emitted_unlock_counts_once,
    views_rebuilt_from_the_logs_equal_the_live_ones,
    views_of_an_earlier_layout_are_rebuilt_from_the_log,
);
