//! `laurel replay` and `laurel rebuild` against a running `laurel serve`, on both backends:
//! the exact diff of a changed threshold and new achievements, a dry run that changes
//! nothing, an apply, an apply interrupted by `kill -9` and run again, and a rebuild of
//! damaged derived stores.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use laurel_log::{EmbeddedLog, Log, LogConfig, NatsLog, Start, StreamKind};
use laurel_schemas::{CauseKind, Output, StatsEntry, StatsMessage, Unlocked};
use laurel_tests::{laurel_bin, wait_until};
use serde_json::{Value, json};

use crate::http::{Launched, launch, launch_with, token_of};
use crate::support::{Backend, Fixture, read_to_end};

/// Runs `laurel ARGS --url .. --data-dir ..`; returns (success, stdout, stderr).
fn cli(l: &Launched, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(laurel_bin())
        .args(args)
        .arg("--url")
        .arg(l.laurel.url())
        .arg("--data-dir")
        .arg(l.dir.path().join("data"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn write_file(l: &Launched, name: &str, defs: &Value) -> String {
    let path = l.dir.path().join(name);
    std::fs::write(&path, defs.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn define(l: &Launched, kind: &str, id: &str, spec: Value) {
    let r = l.laurel.call(
        "PUT",
        &format!("/v1/admin/{kind}/{id}"),
        Some(&l.admin),
        Some(spec),
    );
    assert!(r.status == 201 || r.status == 200, "{:?}", r.json);
}

/// A player's view through the admin route, once it reflects `token`.
fn view(l: &Launched, player: &str, token: &str) -> Value {
    let r = l.laurel.call(
        "GET",
        &format!("/v1/players/{player}/achievements?wait_for={token}"),
        Some(&l.admin),
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json
}

fn earned(view: &Value) -> Vec<String> {
    let mut ids: Vec<String> = view["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["earned"] == true)
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn open_log(l: &Launched) -> Log {
    let config = LogConfig {
        partitions: 4,
        ..LogConfig::default()
    };
    match &l.nats {
        Some(n) => Log::Nats(NatsLog::connect(&n.url(), config).await.unwrap()),
        None => Log::Embedded(EmbeddedLog::open(&l.dir.path().join("data/log"), config).unwrap()),
    }
}

/// Every unlock on OUTPUT and every replay grant on STATS (Laurel stopped: the embedded log
/// opens in one process at a time).
fn logged(l: &Launched) -> (Vec<Unlocked>, usize) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let log = open_log(l).await;
        let (mut unlocks, mut grants) = (Vec::new(), 0);
        for p in 0..4 {
            for record in read_to_end(&log, StreamKind::Output, p, Start::After(0)).await {
                let output: Output = laurel_schemas::decode(&record.payload).unwrap();
                unlocks.extend(output.into_outputs().into_iter().filter_map(|o| match o {
                    Output::Unlocked(u) => Some(u),
                    _ => None,
                }));
            }
            for record in read_to_end(&log, StreamKind::Stats, p, Start::After(0)).await {
                let entry: StatsEntry = laurel_schemas::decode(&record.payload).unwrap();
                grants += entry
                    .into_messages()
                    .iter()
                    .filter(|m| matches!(m, StatsMessage::Grant(g) if g.replay.is_some()))
                    .count();
            }
        }
        (unlocks, grants)
    })
}

/// Each unlock id at most once on OUTPUT.
fn assert_unlocked_once(unlocks: &[Unlocked]) {
    let mut counts: HashMap<_, usize> = HashMap::new();
    for u in unlocks {
        *counts.entry(u.unlock_id).or_default() += 1;
    }
    let twice: Vec<_> = unlocks
        .iter()
        .filter(|u| counts[&u.unlock_id] > 1)
        .map(|u| (u.player_id.to_string(), u.achievement_id.to_string()))
        .collect();
    assert!(twice.is_empty(), "unlocked more than once: {twice:?}");
}

fn player(i: usize) -> String {
    format!("p{i:02}")
}

/// 40 players: player i reports `kills` i three times (3i in all), then `best` 50, then i.
fn play_history(l: &Launched) -> String {
    define(
        l,
        "stats",
        "kills",
        json!({"aggregation": "sum", "kind": "int"}),
    );
    define(
        l,
        "stats",
        "best",
        json!({"aggregation": "latest", "kind": "int"}),
    );
    define(
        l,
        "achievements",
        "K10",
        json!({"title": "Ten kills", "points": 10, "conditions": [{"stat": "kills", "at_least": 10}]}),
    );
    define(
        l,
        "achievements",
        "K100",
        json!({"title": "A hundred kills", "points": 50, "conditions": [{"stat": "kills", "at_least": 100}]}),
    );
    let events: Vec<Value> = (0..40)
        .flat_map(|i| {
            let p = player(i);
            [
                json!({"player_id": p, "stat": "kills", "value": i}),
                json!({"player_id": p, "stat": "kills", "value": i}),
                json!({"player_id": p, "stat": "kills", "value": i}),
                json!({"player_id": p, "stat": "best", "value": 50}),
                json!({"player_id": p, "stat": "best", "value": i}),
            ]
        })
        .collect();
    let token = token_of(&l.events(&l.server, json!(events)));
    for i in 0..40 {
        view(l, &player(i), &token);
    }
    token
}

/// The rebalance: K10 needs 30 kills now; ONCE_40 (best ever at least 40, which the current
/// `latest` values no longer show) and K5 are new.
fn rebalanced() -> Value {
    json!({"achievements": {
        "K10": {"title": "Thirty kills", "points": 10, "conditions": [{"stat": "kills", "at_least": 30}]},
        "ONCE_40": {"title": "Once forty", "points": 5, "conditions": [{"stat": "best", "at_least": 40}]},
        "K5": {"title": "Five kills", "points": 1, "conditions": [{"stat": "kills", "at_least": 5}]}
    }})
}

fn replay_diff_dry_run_apply_and_rebuild(backend: Backend) {
    let mut l = launch(backend);
    let token = play_history(&l);
    let file = write_file(&l, "rebalanced.json", &rebalanced());

    // The diff, exactly.
    let (ok, out, err) = cli(&l, &["replay", "--defs", &file, "--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&report["events"], &report["players"], &report["applied"]),
        (&json!(200), &json!(40), &json!(false))
    );
    assert_eq!(
        report["definitions_changed"],
        json!([
            "achievement K10 (version 2)",
            "achievement K5 (version 1)",
            "achievement ONCE_40 (version 1)"
        ])
    );
    let names = |range: std::ops::Range<usize>| range.map(player).collect::<Vec<_>>();
    assert_eq!(
        report["achievements"],
        json!([
            {"id": "K10", "title": "Thirty kills", "gain": 0, "lose": 6, "gain_sample": [],
             "lose_sample": names(4..9), "points_gained": 0, "points_at_stake": 60, "earns": 0},
            {"id": "K5", "title": "Five kills", "gain": 38, "lose": 0, "gain_sample": names(2..7),
             "lose_sample": [], "points_gained": 38, "points_at_stake": 0, "earns": 38},
            {"id": "ONCE_40", "title": "Once forty", "gain": 40, "lose": 0, "gain_sample": names(0..5),
             "lose_sample": [], "points_gained": 200, "points_at_stake": 0, "earns": 40}
        ])
    );
    assert_eq!(
        (&report["gained"], &report["lost"], &report["points_gained"]),
        (&json!(78), &json!(6), &json!(238))
    );
    // The readable form says the same, and that nothing changed.
    let (ok, text, err) = cli(&l, &["replay", "--defs", &file]);
    assert!(ok, "{err}");
    assert!(
        text.contains("ONCE_40 \"Once forty\"\n    + 40 would earn it (+200 points): p00, p01, p02, p03, p04, ... (35 more)"),
        "{text}"
    );
    assert!(
        text.contains("    - 6 hold it but would not earn it now (60 points, kept: nothing is revoked): p04, p05, p06, p07, p08, ... (1 more)"),
        "{text}"
    );
    assert!(text.contains("dry run: nothing changed"), "{text}");

    // A dry run changed nothing.
    let achievements = l
        .laurel
        .call("GET", "/v1/admin/achievements", Some(&l.admin), None)
        .json;
    let ids: Vec<(&str, u64)> = achievements["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(ids, [("K10", 1), ("K100", 1)]);
    assert_eq!(earned(&view(&l, "p05", &token)), ["K10"]);

    // Apply: the definitions, then the gains, each once.
    let (ok, out, err) = cli(&l, &["replay", "--defs", &file, "--apply", "--json"]);
    assert!(ok, "{err}");
    let applied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&applied["applied"], &applied["granted"], &applied["gained"]),
        (&json!(true), &json!(78), &json!(78))
    );
    let replay_id = applied["replay_id"].as_str().unwrap().to_string();
    let expected = |i: usize| {
        let mut ids = vec!["ONCE_40"];
        if 3 * i >= 5 {
            ids.push("K5");
        }
        if 3 * i >= 10 {
            ids.push("K10"); // held before, never revoked
        }
        if 3 * i >= 100 {
            ids.push("K100");
        }
        ids.sort();
        ids
    };
    let mut before_rebuild = Vec::new();
    for i in 0..40 {
        let v = wait_until(
            "the gains in the player's view",
            Duration::from_secs(30),
            || {
                let v = view(&l, &player(i), &token);
                (earned(&v) == expected(i)).then_some(v)
            },
        );
        before_rebuild.push(v);
    }
    // Replayed again: nothing left to gain; the would-be losses stay would-be.
    let (ok, out, err) = cli(&l, &["replay", "--defs", &file, "--json"]);
    assert!(ok, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&again["gained"], &again["lost"]), (&json!(0), &json!(6)));
    assert_eq!(
        again["replay_id"],
        replay_id.as_str(),
        "same file, same replay"
    );

    assert!(l.laurel.terminate());
    let (unlocks, grants) = logged(&l);
    assert_unlocked_once(&unlocks);
    assert_eq!(grants, 78, "one grant per gain");
    let once_40: Vec<&Unlocked> = unlocks
        .iter()
        .filter(|u| u.achievement_id.as_str() == "ONCE_40")
        .collect();
    assert_eq!(once_40.len(), 40);
    // The whole history came in one request: one time for every event of it.
    let history_at = unlocks
        .iter()
        .find(|u| u.cause == CauseKind::Stat)
        .expect("K10 unlocked in the history")
        .unlocked_at;
    for u in &once_40 {
        // No player's current `best` shows it: only the replay can have granted it, at
        // the time the history earned it.
        assert_eq!(
            (u.replay, u.cause, u.caused_by.to_string()),
            (true, CauseKind::Replay, replay_id.clone())
        );
        assert_eq!(u.unlocked_at, history_at, "earned in the history");
    }
    assert_eq!(
        unlocks
            .iter()
            .filter(|u| u.achievement_id.as_str() == "K5")
            .count(),
        38
    );

    // Rebuild from damaged derived stores: the same views, nothing emitted again.
    let data = l.dir.path().join("data");
    for store in ["views", "engine"] {
        let dir = data.join(store);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("conf"), b"\x00garbage").unwrap();
        std::fs::write(dir.join("db"), b"not a sled file").unwrap();
    }
    let out = Command::new(laurel_bin())
        .arg("rebuild")
        .arg("--data-dir")
        .arg(&data)
        .args(
            l.nats
                .as_ref()
                .map_or(vec![], |n| vec!["--nats".to_string(), n.url()]),
        )
        .args(["--partitions", "4"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("40 players"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    l.laurel.restart();
    for (i, before) in before_rebuild.iter().enumerate() {
        assert_eq!(&view(&l, &player(i), &token), before, "{}", player(i));
    }
    assert!(l.laurel.terminate());
    let (after, _) = logged(&l);
    assert_eq!(after.len(), unlocks.len(), "a rebuild emits nothing again");
}

/// An apply killed (`kill -9` of Laurel) after it appended some of its grants, then run
/// again: every gain is granted, each exactly once. The apply is paced (100 grants a
/// second) and the kill comes on its first progress line, so it lands mid-apply; the test
/// checks that it did.
fn an_interrupted_apply_run_again_grants_each_gain_once(backend: Backend) {
    const PLAYERS: usize = 400;
    let mut l = launch_with(backend, &["--replay-grants-per-second", "100"]);
    define(
        &l,
        "stats",
        "best",
        json!({"aggregation": "latest", "kind": "int"}),
    );
    let events: Vec<Value> = (0..PLAYERS)
        .flat_map(|i| {
            let p = format!("q{i:03}");
            [
                json!({"player_id": p, "stat": "best", "value": 50}),
                json!({"player_id": p, "stat": "best", "value": 1}),
            ]
        })
        .collect();
    let token = token_of(&l.events(&l.server, json!(events)));
    for p in [
        "q000", "q001", "q002", "q003", "q004", "q005", "q006", "q007",
    ] {
        view(&l, p, &token);
    }
    let file = write_file(
        &l,
        "once45.json",
        &json!({"achievements": {"ONCE_45": {"title": "Once 45", "points": 3,
            "conditions": [{"stat": "best", "at_least": 45}]}}}),
    );

    let mut apply = Command::new(laurel_bin())
        .args(["replay", "--defs", &file, "--apply", "--url"])
        .arg(l.laurel.url())
        .arg("--data-dir")
        .arg(l.dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let progress = BufReader::new(apply.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in progress.lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("replay: apply") {
            // One replay at a time: a second one while this applies is refused.
            let second = l
                .laurel
                .call("POST", "/v1/admin/replay", Some(&l.admin), Some(json!({})));
            l.laurel.kill9();
            assert_eq!(second.status, 409, "{:?}", second.json);
            break;
        }
    }
    assert!(
        !apply.wait().unwrap().success(),
        "the apply cannot finish without its server: {seen:?}"
    );
    let (_, granted_before) = logged(&l);
    assert!(
        granted_before > 0 && granted_before < PLAYERS,
        "the kill landed mid-apply: {granted_before} of {PLAYERS} grants were appended"
    );

    l.laurel.restart();
    let (ok, out, err) = cli(&l, &["replay", "--defs", &file, "--apply", "--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["applied"], true);
    assert!(
        report["definitions_changed"].as_array().unwrap().is_empty(),
        "the definitions went in before the kill: {report}"
    );
    let replay_id = report["replay_id"].as_str().unwrap().to_string();
    // Bounded, and generous for a loaded machine; a player still without the grant then is
    // explained: who, what the engine refused of theirs, and the server's log.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let missing: Vec<String> = (0..PLAYERS)
            .map(|i| format!("q{i:03}"))
            .filter(|p| earned(&view(&l, p, &token)) != ["ONCE_45"])
            .collect();
        if missing.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let first = &missing[0];
            let refusals = l.laurel.call(
                "GET",
                &format!("/v1/players/{first}/refusals"),
                Some(&l.admin),
                None,
            );
            let ready = l.laurel.call("GET", "/readyz", None, None);
            let metrics = l.laurel.call("GET", "/metrics", None, None);
            let metrics = String::from_utf8_lossy(&metrics.body);
            let positions: Vec<&str> = metrics
                .lines()
                .filter(|line| {
                    line.starts_with("laurel_engine") || line.starts_with("laurel_projections")
                })
                .collect();
            let kept =
                std::env::temp_dir().join(format!("laurel-replay-{}.log", std::process::id()));
            let _ = std::fs::copy(l.dir.path().join("data.log"), &kept);
            panic!(
                "{} players never got their grant, first {:?} (partition {}); {first}'s refusals: {}; the re-run's report: {report}; /readyz: {}; {positions:#?}; server log kept at {}",
                missing.len(),
                &missing[..missing.len().min(5)],
                laurel_log::partition_of(first, 4),
                refusals.json,
                ready.json,
                kept.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(l.laurel.terminate());
    let (unlocks, _) = logged(&l);
    assert_unlocked_once(&unlocks);
    let once: Vec<&Unlocked> = unlocks
        .iter()
        .filter(|u| u.achievement_id.as_str() == "ONCE_45")
        .collect();
    assert_eq!(once.len(), PLAYERS);
    assert!(
        once.iter()
            .all(|u| u.replay && u.caused_by.to_string() == replay_id),
        "the same replay granted them all"
    );
}

/// A definitions file the server refuses changes nothing, and says which fields.
fn an_invalid_file_is_refused_whole(backend: Backend) {
    let l = launch(backend);
    play_history(&l);
    let bad = json!({"stats": {"kills": {"aggregation": "max", "kind": "int"}},
        "achievements": {"NEW": {"title": "t", "conditions": [{"stat": "deaths", "at_least": 1}]}}});
    let r = l.laurel.call(
        "POST",
        "/v1/admin/replay",
        Some(&l.admin),
        Some(json!({"definitions": bad, "apply": true})),
    );
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let fields: Vec<&str> = r.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "stats.kills.aggregation",
            "achievements.NEW.conditions[0].stat"
        ]
    );
    let r = l.laurel.call(
        "POST",
        "/v1/admin/replay",
        Some(&l.admin),
        Some(json!({"definitions": {}, "oops": true})),
    );
    assert_eq!(r.status, 400, "unknown fields are refused: {:?}", r.json);
    // Past the limit: the rule's 422; past any integer: a 400 naming the field.
    for (samples, status) in [(json!(1001), 422), (json!(1e22), 400)] {
        let r = l.laurel.call(
            "POST",
            "/v1/admin/replay",
            Some(&l.admin),
            Some(json!({"samples": samples})),
        );
        assert_eq!(r.status, status, "samples {samples}: {:?}", r.json);
        assert!(r.json.to_string().contains("samples"), "{:?}", r.json);
    }
    let player = l.laurel.token(&["--player", "p01"]);
    let r = l
        .laurel
        .call("POST", "/v1/admin/replay", Some(&player), Some(json!({})));
    assert_eq!(r.status, 403);
    let ids: Vec<String> = l
        .laurel
        .call("GET", "/v1/admin/achievements", Some(&l.admin), None)
        .json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["K10", "K100"], "nothing was applied");
}

/// JetStream delivers at most `max_ack_pending` (100,000) unacknowledged entries to a
/// consumer: a replay (or a recovery) of a longer partition must acknowledge as it reads,
/// or it stalls there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reads_past_what_the_broker_holds_unacknowledged() {
    const ENTRIES: usize = 100_200;
    let f = Fixture::new(Backend::Nats, |_| {}).await;
    let file: laurel_schemas::DefinitionsFile = serde_json::from_value(json!({
        "stats": {"kills": {"aggregation": "sum", "kind": "int"}},
        "achievements": {"ALL": {"title": "t", "conditions": [{"stat": "kills", "at_least": ENTRIES}]}}
    }))
    .unwrap();
    let defs = laurel_engine::Definitions::new()
        .overlay(&file, 0)
        .unwrap()
        .defs;
    let partition = laurel_log::partition_of("ann", f.config.partitions);
    let stat = |i: usize| {
        let event = laurel_schemas::StatEvent {
            v: laurel_schemas::SchemaVersion::CURRENT,
            event_id: uuid::Uuid::from_u128(i as u128 + 1),
            player_id: laurel_schemas::PlayerId::new("ann").unwrap(),
            stat: laurel_schemas::StatName::new("kills").unwrap(),
            value: laurel_schemas::Value::Int(1),
            ts: 0,
            received_at: i as i64,
            source: laurel_schemas::Source::Server,
            occurred_at: None,
        };
        laurel_log::Entry {
            target: laurel_log::Target::Partition(partition),
            id: event.event_id.to_string(),
            payload: laurel_schemas::encode(&StatsMessage::Stat(event)),
        }
    };
    for chunk in (0..ENTRIES).collect::<Vec<_>>().chunks(10_000) {
        let entries = chunk.iter().map(|i| stat(*i)).collect();
        f.log.append(StreamKind::Stats, entries).await.unwrap();
    }
    let upto = f.log.last_seq(StreamKind::Stats, partition).await.unwrap();
    let read = std::sync::atomic::AtomicU64::new(0);
    let mut replay = laurel_engine::shell::Replay::new(&defs, 5, "replay");
    tokio::time::timeout(
        Duration::from_secs(120),
        replay.partition(&f.log, partition, upto, Default::default(), &read),
    )
    .await
    .expect("the replay does not stall")
    .unwrap();
    let (report, gains) = replay.finish();
    assert_eq!(report.events, ENTRIES as u64);
    assert_eq!(
        gains
            .iter()
            .map(|g| (g.player.as_str(), g.achievement.as_str(), g.earned_at))
            .collect::<Vec<_>>(),
        [("ann", "ALL", ENTRIES as i64 - 1)]
    );
}

/// A definitions file that makes an achievement repeatable and adds rewards: the replay
/// shows who gains how many earns and what each pays; the apply grants each further earn
/// once (its reward with it), and applied again grants nothing.
fn a_replay_that_makes_an_achievement_repeatable_grants_each_earn_once(backend: Backend) {
    let l = launch(backend);
    define(
        &l,
        "stats",
        "kills",
        json!({"aggregation": "sum", "kind": "int"}),
    );
    define(
        &l,
        "achievements",
        "K10",
        json!({"title": "Ten kills", "points": 2, "conditions": [{"stat": "kills", "at_least": 10}]}),
    );
    let mut token = String::new();
    for (p, kills) in [
        ("ana", 10),
        ("ana", 10),
        ("ana", 10),
        ("ben", 10),
        ("cat", 5),
    ] {
        token = token_of(&l.events(
            &l.server,
            json!([{"player_id": p, "stat": "kills", "value": kills}]),
        ));
    }
    for p in ["ana", "ben", "cat"] {
        view(&l, p, &token);
    }
    let file = write_file(
        &l,
        "repeatable.json",
        &json!({"achievements": {"K10": {"title": "Ten kills", "points": 2, "repeat": {},
            "rewards": [{"currency": "gold", "amount": 5}],
            "conditions": [{"stat": "kills", "at_least": 10}]}}}),
    );
    let (ok, out, err) = cli(&l, &["replay", "--defs", &file, "--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["achievements"],
        json!([{"id": "K10", "title": "Ten kills", "gain": 1, "lose": 0, "gain_sample": ["ana"],
                "lose_sample": [], "points_gained": 4, "points_at_stake": 0, "earns": 2,
                "rewards": [{"currency": "gold", "amount": 5}]}]),
        "ana's second and third tens: {report}"
    );
    let (ok, text, err) = cli(&l, &["replay", "--defs", &file]);
    assert!(ok, "{err}");
    assert!(
        text.contains("+ 1 would earn it (2 earns, +4 points): ana"),
        "{text}"
    );
    assert!(
        text.contains(r#"each earn pays [{"amount":5,"currency":"gold"}]"#),
        "{text}"
    );
    let (ok, out, err) = cli(&l, &["replay", "--defs", &file, "--apply", "--json"]);
    assert!(ok, "{err}");
    let applied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(applied["granted"], 2, "{applied}");
    let ana = l.laurel.token(&["--player", "ana"]);
    let read = |token: &str| {
        wait_until("the grants folded", Duration::from_secs(30), || {
            let a = l
                .laurel
                .call("GET", "/v1/players/me/achievements/K10", Some(token), None)
                .json;
            (a["times_earned"] == 3).then_some(a)
        })
    };
    read(&ana);
    let rewards = l
        .laurel
        .call("GET", "/v1/players/me/rewards", Some(&ana), None)
        .json;
    let occurrences: Vec<u64> = rewards["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["occurrence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        occurrences,
        vec![2, 3],
        "a reward per granted earn: {rewards}"
    );
    // Applied again: nothing more to gain, nothing granted.
    let (ok, out, err) = cli(&l, &["replay", "--defs", &file, "--apply", "--json"]);
    assert!(ok, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&again["gained"], &again["granted"]),
        (&json!(0), &json!(0)),
        "{again}"
    );
    assert_eq!(read(&ana)["times_earned"], 3);
}

crate::both_backends_sync!(
    a_replay_that_makes_an_achievement_repeatable_grants_each_earn_once,
    replay_diff_dry_run_apply_and_rebuild,
    an_interrupted_apply_run_again_grants_each_gain_once,
    an_invalid_file_is_refused_whole,
);

/// A definitions file laid over the definitions in force (`Definitions::overlay`): what
/// `laurel defs apply`, `PUT /v1/admin/definitions` and `laurel replay --defs` build on.
mod definitions_file {
    use laurel_engine::Definitions;
    use laurel_schemas::{DefinitionEvent, DefinitionsFile, Reason, ValidationError};
    use serde_json::json;

    fn file(value: serde_json::Value) -> DefinitionsFile {
        serde_json::from_value(value).unwrap()
    }

    fn base() -> Definitions {
        let overlaid = Definitions::new()
            .overlay(
                &file(json!({
                    "stats": {"kills": {"aggregation": "sum", "kind": "int"}},
                    "achievements": {"K10": {"title": "t", "conditions": [{"stat": "kills", "at_least": 10}]}}
                })),
                1,
            )
            .unwrap();
        let mut defs = Definitions::new();
        for change in &overlaid.changes {
            defs.apply(change);
        }
        defs
    }

    #[test]
    fn only_what_differs_is_changed_with_the_next_version_and_requirements_first() {
        let overlaid = base()
            .overlay(
                &file(json!({
                    "stats": {"kills": {"aggregation": "sum", "kind": "int"}},
                    "achievements": {
                        "A_LATER": {"title": "t", "requires": ["Z_FIRST"], "conditions": [{"stat": "kills", "at_least": 1}]},
                        "K10": {"title": "t", "conditions": [{"stat": "kills", "at_least": 5}]},
                        "Z_FIRST": {"title": "t", "conditions": [{"stat": "kills", "at_least": 1}]}
                    }
                })),
                2,
            )
            .unwrap();
        let changed: Vec<(String, u64)> = overlaid
            .changes
            .iter()
            .map(|c| match c {
                DefinitionEvent::AchievementDefined { definition, .. } => {
                    (definition.id.to_string(), definition.version)
                }
                other => panic!("unexpected change {other:?}"),
            })
            .collect();
        assert_eq!(
            changed,
            [
                ("K10".into(), 2),
                ("Z_FIRST".into(), 1),
                ("A_LATER".into(), 1)
            ]
        );
        assert_eq!(
            overlaid.defs.achievement("K10").unwrap().conditions[0]
                .threshold
                .value(),
            laurel_schemas::Value::Int(5)
        );
        let again = base()
            .overlay(&file(json!({"achievements": {}})), 3)
            .unwrap();
        assert!(again.changes.is_empty());
    }

    #[test]
    fn a_file_is_refused_whole_naming_each_field() {
        let errors = base()
            .overlay(
                &file(json!({
                    "stats": {"kills": {"aggregation": "max", "kind": "int"}, "new": {"aggregation": "sum", "kind": "int"}},
                    "achievements": {
                        "B": {"title": "t", "requires": ["NOPE"], "conditions": [{"stat": "deaths", "at_least": 1}]}
                    }
                })),
                2,
            )
            .unwrap_err();
        assert_eq!(
            errors,
            [
                ValidationError::new("stats.kills.aggregation", Reason::Fixed),
                ValidationError::new(
                    "achievements.B.conditions[0].stat",
                    Reason::UnknownStat {
                        stat: "deaths".into()
                    }
                ),
                ValidationError::new(
                    "achievements.B.requires[0]",
                    Reason::UnknownAchievement { id: "NOPE".into() }
                ),
            ]
        );
    }
}
