//! Fault tests: `kill -9` of Laurel at random moments (and, on NATS, of the broker) while a
//! client streams 100k events, retrying unacknowledged batches with the same event ids. The
//! views must end exactly as an uninterrupted run would leave them, and OUTPUT must hold each
//! unlock once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use laurel_log::{EmbeddedLog, Log, LogConfig, NatsLog, Start, StreamKind};
use laurel_schemas::Output;
use serde_json::json;
use uuid::Uuid;

use crate::http::launch;
use crate::support::{Backend, read_to_end};

const PLAYERS: usize = 500;
const PER_PLAYER: usize = 200;
const BATCH: usize = 500;
const KILLS: usize = 6;

fn kill_9_loses_no_event_and_duplicates_no_unlock(backend: Backend) {
    let mut l = launch(backend);
    let admin = l.admin.clone();
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/kills",
        Some(&admin),
        Some(json!({"aggregation": "sum", "kind": "int"})),
    );
    assert_eq!(r.status, 201);
    for (id, at_least) in [("K10", 10), ("K200", PER_PLAYER)] {
        let spec = json!({"title": id, "points": 1, "conditions": [{"stat": "kills", "at_least": at_least}]});
        assert_eq!(
            l.laurel
                .call(
                    "PUT",
                    &format!("/v1/admin/achievements/{id}"),
                    Some(&admin),
                    Some(spec)
                )
                .status,
            201
        );
    }

    let total = PLAYERS * PER_PLAYER;
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let retries = Arc::new(AtomicUsize::new(0));
    let sender = {
        let client = l.laurel.client();
        let token = l.server.clone();
        let (sent, done, retries) = (sent.clone(), done.clone(), retries.clone());
        std::thread::spawn(move || {
            for start in (0..total).step_by(BATCH) {
                let events: Vec<_> = (start..start + BATCH)
                    .map(|i| json!({"event_id": Uuid::from_u128(i as u128 + 1), "player_id": format!("p{}", i % PLAYERS), "stat": "kills", "value": 1}))
                    .collect();
                let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
                loop {
                    match client.try_request(
                        "POST",
                        "/v1/events",
                        Some(&token),
                        Some(("application/json", body.clone())),
                    ) {
                        Ok(r) if r.status == 202 => break,
                        Ok(r) if r.status >= 500 => {}
                        Ok(r) => panic!("batch at {start} refused: {r:?}"),
                        Err(_) => {}
                    }
                    retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
                sent.fetch_add(BATCH, Ordering::Relaxed);
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // Kill at pseudo-random moments spread over the run (seeded: reproducible).
    let mut seed: u64 = 0x5eed;
    let mut kills = 0;
    let mut mid_stream = 0;
    while kills < KILLS && !done.load(Ordering::SeqCst) {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(200 + (seed >> 33) % 900));
        if kills == KILLS / 2 {
            if let Some(nats) = l.nats.as_mut() {
                nats.restart();
            }
        }
        if sent.load(Ordering::Relaxed) < total {
            mid_stream += 1;
        }
        l.laurel.kill9();
        l.laurel.restart();
        kills += 1;
    }
    sender.join().unwrap();
    assert!(
        mid_stream >= 5,
        "only {mid_stream} kills landed while events were streaming"
    );
    assert_eq!(sent.load(Ordering::Relaxed), total);

    // Every player ends with exactly PER_PLAYER kills and both achievements.
    let deadline = Instant::now() + Duration::from_secs(180);
    for p in 0..PLAYERS {
        loop {
            let r = l.laurel.call(
                "GET",
                &format!("/v1/players/p{p}/achievements"),
                Some(&l.server),
                None,
            );
            let achievements = r.json["achievements"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let kills_seen = achievements
                .iter()
                .find_map(|a| a["progress"][0]["current"].as_u64());
            let earned = achievements.iter().filter(|a| a["earned"] == true).count();
            if kills_seen == Some(PER_PLAYER as u64) && earned == 2 {
                assert_eq!(r.json["points_total"], 2);
                break;
            }
            assert!(
                kills_seen.unwrap_or(0) <= PER_PLAYER as u64,
                "p{p} double counted: {kills_seen:?}"
            );
            assert!(
                Instant::now() < deadline,
                "p{p} stuck at {kills_seen:?} kills, {earned} earned"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let published = l
        .laurel
        .call("GET", "/v1/achievements", Some(&l.server), None);
    assert_eq!(published.json["players"], PLAYERS);
    assert!(l.laurel.terminate());

    // OUTPUT holds each unlock exactly once.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let counts = rt.block_on(async {
        let config = LogConfig {
            partitions: 4,
            ..LogConfig::default()
        };
        let log = match &l.nats {
            Some(n) => Log::Nats(NatsLog::connect(&n.url(), config).await.unwrap()),
            None => {
                Log::Embedded(EmbeddedLog::open(&l.dir.path().join("data/log"), config).unwrap())
            }
        };
        let mut counts: HashMap<Uuid, usize> = HashMap::new();
        for p in 0..4 {
            for record in read_to_end(&log, StreamKind::Output, p, Start::After(0)).await {
                if let Output::Unlocked(u) = laurel_schemas::decode(&record.payload).unwrap() {
                    *counts.entry(u.unlock_id).or_default() += 1;
                }
            }
        }
        counts
    });
    assert_eq!(counts.len(), PLAYERS * 2);
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "duplicated unlocks on OUTPUT: {duplicated:?}"
    );
    eprintln!(
        "{kills} kills, {} client retries",
        retries.load(Ordering::Relaxed)
    );
}

mod embedded {
    #[test]
    fn kill_9_loses_no_event_and_duplicates_no_unlock() {
        super::kill_9_loses_no_event_and_duplicates_no_unlock(crate::support::Backend::Embedded)
    }
}

mod jetstream {
    #[test]
    fn kill_9_and_broker_restarts_lose_no_event_and_duplicate_no_unlock() {
        super::kill_9_loses_no_event_and_duplicates_no_unlock(crate::support::Backend::Nats)
    }
}
