//! `kill -9` of Laurel (and, on NATS, of the broker) while players earn a repeatable
//! achievement with rewards and contribute to a community goal: no earn, reward or
//! community unlock is lost or doubled.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use laurel_log::{Start, StreamKind};
use laurel_schemas::Output;
use serde_json::json;
use uuid::Uuid;

use super::{open_log, post_until_accepted};
use crate::http::launch;
use crate::support::{Backend, read_to_end};

const PLAYERS: usize = 200;
/// Events per player: half `kills`, half `donations`, one each.
const PER_PLAYER: usize = 200;
const BATCH: usize = 500;
const KILLS: usize = 6;
/// The community goal: half of all donations.
const GOAL: usize = PLAYERS * PER_PLAYER / 4;

/// What OUTPUT holds: each unlock id and each reward's unlock id with how often, and the
/// unlocks' causes per achievement.
struct OnOutput {
    unlocks: HashMap<Uuid, usize>,
    rewards: HashMap<Uuid, usize>,
    unlocked: HashMap<String, usize>,
}

fn on_output(l: &crate::http::Launched) -> OnOutput {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let log = open_log(l, 4).await;
        let mut seen = OnOutput {
            unlocks: HashMap::new(),
            rewards: HashMap::new(),
            unlocked: HashMap::new(),
        };
        for p in 0..4 {
            for record in read_to_end(&log, StreamKind::Output, p, Start::After(0)).await {
                match laurel_schemas::decode(&record.payload).unwrap() {
                    Output::Unlocked(u) => {
                        *seen.unlocks.entry(u.unlock_id).or_default() += 1;
                        *seen
                            .unlocked
                            .entry(u.achievement_id.to_string())
                            .or_default() += 1;
                    }
                    Output::Reward(r) => *seen.rewards.entry(r.unlock_id).or_default() += 1,
                    _ => {}
                }
            }
        }
        seen
    })
}

fn kill_9_keeps_repeats_rewards_and_community_goals_exact(backend: Backend) {
    let mut l = launch(backend);
    let put = |path: &str, body: serde_json::Value| {
        let r = l.laurel.call("PUT", path, Some(&l.admin), Some(body));
        assert!(r.status == 200 || r.status == 201, "{path}: {:?}", r.json);
    };
    put(
        "/v1/admin/stats/kills",
        json!({"aggregation": "sum", "kind": "int"}),
    );
    put(
        "/v1/admin/stats/donations",
        json!({"aggregation": "sum", "kind": "int", "scope": "global"}),
    );
    put(
        "/v1/admin/achievements/EVERY_5",
        json!({"title": "Every five", "points": 1, "repeat": {},
               "rewards": [{"currency": "gold", "amount": 1}],
               "conditions": [{"stat": "kills", "at_least": 5}]}),
    );
    put(
        "/v1/admin/achievements/GOAL",
        json!({"title": "Goal", "min_contribution": 10, "rewards": [{"item": "badge"}],
               "conditions": [{"stat": "donations", "at_least": GOAL}]}),
    );

    let total = PLAYERS * PER_PLAYER;
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let client = l.laurel.client();
        let token = l.server.clone();
        let (sent, done) = (sent.clone(), done.clone());
        std::thread::spawn(move || {
            for start in (0..total).step_by(BATCH) {
                let events: Vec<_> = (start..start + BATCH)
                    .map(|i| {
                        let stat = if (i / PLAYERS).is_multiple_of(2) { "kills" } else { "donations" };
                        json!({"event_id": Uuid::from_u128(i as u128 + 1), "player_id": format!("p{}", i % PLAYERS), "stat": stat, "value": 1})
                    })
                    .collect();
                let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
                post_until_accepted(&client, &token, &body, &format!("batch at {start}"));
                sent.fetch_add(BATCH, Ordering::Relaxed);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // Kills at seeded moments spread over the stream.
    let mut seed: u64 = 0x11fe;
    let (mut kills, mut mid_stream) = (0, 0);
    while kills < KILLS && !done.load(Ordering::SeqCst) {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 400));
        if kills == KILLS / 2
            && let Some(nats) = l.nats.as_mut()
        {
            nats.restart();
        }
        if sent.load(Ordering::Relaxed) < total {
            mid_stream += 1;
        }
        l.laurel.kill9();
        l.laurel.restart();
        kills += 1;
    }
    sender.join().unwrap();
    assert_eq!(sent.load(Ordering::Relaxed), total);
    assert!(
        mid_stream >= 4,
        "only {mid_stream} kills landed while events were streaming"
    );

    // Every player: half their events kills (an earn of EVERY_5 every five), half
    // donations (over the goal's minimum, and the total past the goal).
    let earns = (PER_PLAYER / 2 / 5) as u64;
    let deadline = Instant::now() + Duration::from_secs(90);
    for p in 0..PLAYERS {
        loop {
            let r = l.laurel.call(
                "GET",
                &format!("/v1/players/p{p}/achievements"),
                Some(&l.server),
                None,
            );
            let find = |id: &str| {
                r.json["achievements"]
                    .as_array()
                    .and_then(|a| a.iter().find(|a| a["id"] == id).cloned())
                    .unwrap_or_default()
            };
            let (every, goal) = (find("EVERY_5"), find("GOAL"));
            if every["times_earned"] == earns && goal["earned"] == true {
                // A point an earn of EVERY_5; the goal awards none.
                assert_eq!(r.json["points_total"], earns, "p{p}");
                break;
            }
            assert!(
                every["times_earned"].as_u64().unwrap_or(0) <= earns,
                "p{p} earned too often: {every}"
            );
            assert!(
                Instant::now() < deadline,
                "p{p} stuck: {every} {goal} (community {:?})",
                l.laurel
                    .call("GET", "/v1/community/donations", Some(&l.server), None)
                    .json
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let community = l
        .laurel
        .call("GET", "/v1/community/donations", Some(&l.server), None);
    assert_eq!(community.json["total"], total / 2, "{:?}", community.json);
    assert!(l.laurel.terminate());
    assert_stats_hold_each_event_once_or_community(&l, total);

    let seen = on_output(&l);
    let twice: Vec<_> = seen.unlocks.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "unlocks on OUTPUT twice: {twice:?}");
    assert_eq!(
        seen.unlocked,
        HashMap::from([
            ("EVERY_5".to_string(), PLAYERS * earns as usize),
            ("GOAL".to_string(), PLAYERS)
        ])
    );
    let unlock_ids: HashSet<&Uuid> = seen.unlocks.keys().collect();
    let reward_ids: HashSet<&Uuid> = seen.rewards.keys().collect();
    assert_eq!(reward_ids, unlock_ids, "one reward per earn, no other");
    let twice: Vec<_> = seen.rewards.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "rewards on OUTPUT twice: {twice:?}");
    eprintln!("{kills} kills, {mid_stream} while streaming");
}

/// STATS holds every accepted event once; besides them, only `community_reached` messages.
fn assert_stats_hold_each_event_once_or_community(l: &crate::http::Launched, accepted: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (events, reached) = rt.block_on(async {
        let log = open_log(l, 4).await;
        let mut events: HashMap<Uuid, usize> = HashMap::new();
        let mut reached = 0;
        for p in 0..4 {
            for record in read_to_end(&log, StreamKind::Stats, p, Start::After(0)).await {
                let entry: laurel_schemas::StatsEntry =
                    laurel_schemas::decode(&record.payload).unwrap();
                for message in entry.into_messages() {
                    match message {
                        laurel_schemas::StatsMessage::CommunityReached(_) => reached += 1,
                        other => *events.entry(other.event_id()).or_default() += 1,
                    }
                }
            }
        }
        (events, reached)
    });
    let twice: Vec<_> = events.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "events on STATS more than once: {twice:?}"
    );
    assert_eq!(events.len(), accepted, "every accepted event is on STATS");
    assert!(
        reached >= 4,
        "the goal was told to every partition ({reached})"
    );
}

crate::both_backends_sync!(kill_9_keeps_repeats_rewards_and_community_goals_exact);
