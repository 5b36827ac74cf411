//! Deployments on NATS (SPEC 5, issue 10): what several Laurels sharing a NATS need.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use laurel_tests::{Laurel, NatsCluster, NatsServer};
use serde_json::json;

/// Two deployments on one NATS with different `--stream-prefix`es: their streams and
/// subjects are apart, so each sees only its own players' stats.
#[test]
fn deployments_with_different_stream_prefixes_share_a_nats_apart() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let start = |prefix: &str| {
        let extra = [
            "--nats",
            &nats.url(),
            "--stream-prefix",
            prefix,
            "--partitions",
            "4",
        ]
        .map(String::from);
        Laurel::start(&dir.path().join(prefix), &extra)
    };
    let (mut a, b) = (start("GAME_A"), start("GAME_B"));
    for (laurel, wins) in [(&a, 3), (&b, 5)] {
        laurel.define_sum_stat(&laurel.token(&["--admin"]), "wins");
        let server = laurel.token(&["--server"]);
        let r = laurel.call(
            "POST",
            "/v1/events",
            Some(&server),
            Some(json!({"events": [{"player_id": "ann", "stat": "wins", "value": wins}]})),
        );
        assert_eq!(r.status, 202, "{:?}", r.json);
        let token = r.json["token"].as_str().unwrap();
        let ann = laurel.token(&["--player", "ann"]);
        let r = laurel.call(
            "GET",
            &format!("/v1/players/me/stats?wait_for={token}"),
            Some(&ann),
            None,
        );
        assert_eq!(r.json["stats"]["wins"], wins, "{:?}", r.json);
    }
    // Each deployment's streams carry its own subjects.
    let subjects = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let mut out = Vec::new();
        for name in ["GAME_A_STATS", "GAME_B_STATS"] {
            let mut stream = js.get_stream(name).await.unwrap();
            out.push(stream.info().await.unwrap().config.subjects.clone());
        }
        out
    });
    assert_eq!(
        subjects,
        vec![
            vec!["game_a.stats.*".to_string()],
            vec!["game_b.stats.*".to_string()]
        ]
    );
    // A restart finds its own stats again, the other deployment's untouched.
    assert!(a.terminate());
    a.restart();
    let ann = a.token(&["--player", "ann"]);
    let r = a.call("GET", "/v1/players/me/stats", Some(&ann), None);
    assert_eq!(r.json["stats"]["wins"], 3, "{:?}", r.json);
}

/// A stream prefix that cannot be a stream name and a subject token is refused at start.
#[test]
fn a_stream_prefix_that_is_no_subject_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for prefix in ["GAME.A", "GAME A", "GAME*", ""] {
        let out = std::process::Command::new(laurel_tests::laurel_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--stream-prefix",
                prefix,
                "--data-dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{prefix:?} was taken");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--stream-prefix"), "{stderr}");
    }
}

/// Two gateways on one NATS take admin writes to one achievement at the same moment: a
/// version is never handed out twice (DEFS is appended only where the writer's definitions
/// end), and of writes that name the same version in `If-Match` exactly one wins, the other
/// gets 412.
/// Behind a load balancer: a stat defined through one gateway is used at once through the
/// other, by an achievement, an event and a grant, 100 times in alternation, never refused.
/// Each gateway's definitions lag 150 ms behind DEFS (`--defs-lag-ms`), so every request
/// on the other gateway arrives before its definitions have the change: without catching
/// up first, each would be refused.
#[test]
fn what_one_gateway_defines_the_other_takes_at_once() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "--nats",
        &nats.url(),
        "--partitions",
        "2",
        "--defs-lag-ms",
        "150",
    ]
    .map(String::from);
    let gateways = [
        Laurel::start_gateway(&dir.path().join("one"), &extra),
        Laurel::start_gateway(&dir.path().join("two"), &extra),
    ];
    let admins = [
        gateways[0].token(&["--admin"]),
        gateways[1].token(&["--admin"]),
    ];
    let servers = [
        gateways[0].token(&["--server"]),
        gateways[1].token(&["--server"]),
    ];
    for i in 0..100 {
        let (a, b) = (i % 2, 1 - i % 2);
        let stat = format!("s{i}");
        gateways[a].define_sum_stat(&admins[a], &stat);
        let r = gateways[b].call(
            "PUT",
            &format!("/v1/admin/achievements/A{i}"),
            Some(&admins[b]),
            Some(json!({"title": format!("A{i}"), "conditions": [{"stat": stat, "at_least": 1}]})),
        );
        assert_eq!(
            r.status, 201,
            "round {i}: an achievement on the stat just defined: {r:?}"
        );
        let r = gateways[b].call(
            "POST",
            "/v1/events",
            Some(&servers[b]),
            Some(json!({"events": [{"player_id": "ann", "stat": stat, "value": 1}]})),
        );
        assert_eq!(r.status, 202, "round {i}: an event for it: {r:?}");
        let r = gateways[a].call(
            "POST",
            "/v1/admin/players/ann/grants",
            Some(&admins[a]),
            Some(json!({"achievement_id": format!("A{i}")})),
        );
        assert_eq!(r.status, 202, "round {i}: a grant of it: {r:?}");
    }
}

#[test]
fn definition_writes_through_two_gateways_never_share_a_version() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let extra = ["--nats", &nats.url(), "--partitions", "2"].map(String::from);
        Laurel::start(&dir.path().join(name), &extra)
    };
    let gateways = [start("one"), start("two")];
    let admin = gateways[0].token(&["--admin"]);
    let admin_two = gateways[1].token(&["--admin"]);
    let admins = [admin.as_str(), admin_two.as_str()];
    gateways[0].define_sum_stat(&admin, "wins");
    let spec =
        |title: String| json!({"title": title, "conditions": [{"stat": "wins", "at_least": 1}]});
    let put = |g: usize, title: String, if_match: Option<u64>| {
        let body = serde_json::to_vec(&spec(title)).unwrap();
        let tag = if_match.map(|v| format!("\"{v}\""));
        let headers: Vec<(&str, &str)> = tag.iter().map(|t| ("if-match", t.as_str())).collect();
        gateways[g]
            .try_request_with(
                "PUT",
                "/v1/admin/achievements/FIRST_WIN",
                Some(admins[g]),
                Some(("application/json", body)),
                &headers,
            )
            .unwrap()
    };
    let version_on = |g: usize| -> u64 {
        let r = gateways[g].call(
            "GET",
            "/v1/admin/achievements/FIRST_WIN",
            Some(admins[g]),
            None,
        );
        r.json["version"].as_u64().unwrap_or(0)
    };
    let both_at = |version: u64| {
        laurel_tests::wait_until(
            "both gateways to hold the version",
            std::time::Duration::from_secs(30),
            || (version_on(0) == version && version_on(1) == version).then_some(()),
        )
    };
    assert_eq!(put(0, "v1".into(), None).status, 201);
    both_at(1);
    let mut versions = vec![1];
    // Rounds of two writes naming the same version, one through each gateway.
    for round in 0..10u64 {
        let current = 1 + round;
        let statuses: Vec<(u16, Option<u64>)> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..2)
                .map(|g| s.spawn(move || put(g, format!("round {round} via {g}"), Some(current))))
                .collect();
            racers
                .into_iter()
                .map(|r| {
                    let r = r.join().unwrap();
                    (r.status, r.json["version"].as_u64())
                })
                .collect()
        });
        let mut codes: Vec<u16> = statuses.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        assert_eq!(codes, vec![200, 412], "round {round}: {statuses:?}");
        versions.extend(
            statuses
                .iter()
                .filter_map(|(c, v)| if *c == 200 { *v } else { None }),
        );
        both_at(current + 1);
    }
    // Writes without If-Match through both at once: each gets a version of its own.
    let taken: Vec<u64> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..8)
            .map(|i| s.spawn(move || put(i % 2, format!("burst {i}"), None)))
            .collect();
        writers
            .into_iter()
            .map(|w| {
                let r = w.join().unwrap();
                assert_eq!(r.status, 200, "{:?}", r.json);
                r.json["version"].as_u64().unwrap()
            })
            .collect()
    });
    versions.extend(taken);
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted,
        (1..=versions.len() as u64).collect::<Vec<_>>(),
        "versions handed out: {versions:?}"
    );
    both_at(versions.len() as u64);
    // DEFS holds the stat and one entry per version given out, no more.
    let entries = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        js.get_stream("LAUREL_DEFS")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages
    });
    assert_eq!(entries, 1 + versions.len() as u64);
}

/// A `laurel engine` process (no HTTP: watched through the leases and its log file).
struct Engine {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Engine {
    fn start(urls: &str, replicas: usize, dir: &std::path::Path, name: &str) -> Self {
        Self::start_with(urls, replicas, dir, name, &[])
    }

    fn start_with(
        urls: &str,
        replicas: usize,
        dir: &std::path::Path,
        name: &str,
        extra: &[&str],
    ) -> Self {
        let log_path = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = std::process::Command::new(laurel_tests::laurel_bin())
            .args(["engine", "--nats", urls, "--partitions", "4"])
            .args(["--replicas", &replicas.to_string()])
            .args(["--lease-ttl-secs", "3", "--checkpoint-interval-ms", "500"])
            .args(["--snapshot-interval-secs", "1"])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.join(name))
            .env(
                "LAUREL_LOG",
                std::env::var("LAUREL_TEST_LOG")
                    .unwrap_or_else(|_| "warn,laurel_engine::role=info".into()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            child,
            log: log_path,
        }
    }

    /// What the engine logged so far.
    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the engine as an operator would (SIGTERM) and waits until it has exited.
    fn terminate(&mut self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success(), "{}", self.logged());
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A client of every server in a comma-separated URL list.
async fn connect(urls: &str) -> Option<async_nats::Client> {
    let servers: Vec<async_nats::ServerAddr> =
        urls.split(',').map(|u| u.parse().unwrap()).collect();
    async_nats::connect(servers).await.ok()
}

/// Who holds which of the 4 partitions: partition → the holding engine's pid.
fn lease_holders(urls: &str) -> BTreeMap<u32, u32> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let held = async {
            let js = async_nats::jetstream::new(connect(urls).await?);
            let leases = js.get_key_value("LAUREL_LEASES").await.ok()?;
            let mut held = BTreeMap::new();
            for p in 0..4 {
                let Some(holder) = leases.get(format!("partition.{p}")).await.ok()? else {
                    continue;
                };
                let holder = String::from_utf8_lossy(&holder).to_string();
                let pid = holder
                    .split("(pid ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()?;
                held.insert(p, pid);
            }
            Some(held)
        };
        held.await.unwrap_or_default()
    })
}

/// How many partitions each engine holds, by pid.
fn shares(holders: &BTreeMap<u32, u32>) -> BTreeMap<u32, usize> {
    let mut shares = BTreeMap::new();
    for pid in holders.values() {
        *shares.entry(*pid).or_default() += 1;
    }
    shares
}

/// Waits until JetStream in `urls` can place a stream of `replicas` replicas (a cluster
/// elects its leaders after its nodes accept connections).
fn wait_for_jetstream(urls: &str, replicas: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    laurel_tests::wait_until(
        "JetStream to place streams",
        Duration::from_secs(60),
        || {
            rt.block_on(async {
                let js = async_nats::jetstream::new(connect(urls).await?);
                let config = async_nats::jetstream::stream::Config {
                    name: "READY".into(),
                    subjects: vec!["ready".into()],
                    num_replicas: replicas,
                    ..Default::default()
                };
                js.get_or_create_stream(config).await.ok()?;
                js.delete_stream("READY").await.ok()
            })
        },
    );
}

/// Posts a batch of events through `gateway` until it is accepted (a NATS node being
/// killed may refuse it for a moment); the events' ids make a repeat count once.
fn post_until_accepted(gateway: &Laurel, token: &str, events: &serde_json::Value) {
    let body = ("application/json", serde_json::to_vec(events).unwrap());
    laurel_tests::wait_until("the events accepted", Duration::from_secs(60), || {
        let r = gateway
            .try_request("POST", "/v1/events", Some(token), Some(body.clone()))
            .ok()?;
        match r.status {
            202 => Some(()),
            503 | 504 => {
                std::thread::sleep(Duration::from_millis(200));
                None
            }
            other => panic!("events refused with {other}: {:?}", r.json),
        }
    });
}

/// Gateways and two engines as separate processes on NATS. The first engine takes every
/// partition and folds a while; the second joins, the partitions are shared two and two,
/// and the second restores the ones it takes from the snapshots the first shared.
/// Mid-stream the engine holding the player `late`'s partition is killed (SIGKILL), and
/// `also_kill` runs (a NATS node is killed). The survivor takes the dead engine's
/// partitions over, from the snapshots the dead engine shared every second, and folds on
/// from the log: every player's stats are exact through every gateway, and each unlock is
/// on OUTPUT exactly once. Prints the rebalance and takeover times.
fn engines_share_partitions_and_take_over(
    urls: &str,
    replicas: usize,
    gateways: usize,
    also_kill: Option<Box<dyn FnOnce() + '_>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let log_args = [
        "--nats",
        urls,
        "--partitions",
        "4",
        "--replicas",
        &replicas.to_string(),
    ]
    .map(String::from);
    let gateways: Vec<Laurel> = (0..gateways)
        .map(|i| Laurel::start_gateway(&dir.path().join(format!("gateway-{i}")), &log_args))
        .collect();
    let gateway = &gateways[0];
    let admin = gateway.token(&["--admin"]);
    gateway.define_sum_stat(&admin, "wins");
    for (id, at_least) in [("FIRST_WIN", 1), ("TEN_WINS", 10)] {
        let r = gateway.call(
            "PUT",
            &format!("/v1/admin/achievements/{id}"),
            Some(&admin),
            Some(json!({"title": id, "conditions": [{"stat": "wins", "at_least": at_least}]})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    let mut engines = vec![Engine::start(urls, replicas, dir.path(), "engine-a")];
    let first = engines[0].pid();
    laurel_tests::wait_until(
        "the first engine to take every partition",
        Duration::from_secs(30),
        || (shares(&lease_holders(urls)) == BTreeMap::from([(first, 4)])).then_some(()),
    );
    // Each gateway signs its own development tokens.
    let servers: Vec<String> = gateways.iter().map(|g| g.token(&["--server"])).collect();
    let server = &servers[0];
    let players: Vec<String> = (0..20).map(|i| format!("player-{i}")).collect();
    let wins_of = |gateway: &Laurel, player: &str| {
        let token = gateway.token(&["--player", player]);
        gateway
            .call("GET", "/v1/players/me/stats", Some(&token), None)
            .json["stats"]["wins"]
            .as_u64()
            .unwrap_or(0)
    };
    let round = |round: u64| {
        let events: Vec<_> = players
            .iter()
            .map(|p| json!({"player_id": p, "stat": "wins", "value": 1, "event_id": uuid::Uuid::new_v4()}))
            .collect();
        let through = round as usize % gateways.len();
        post_until_accepted(
            &gateways[through],
            &servers[through],
            &json!({"events": events}),
        );
    };
    for r in 1..=5 {
        round(r);
    }
    // Every partition folded, so that each snapshot handed over on the join is ahead of the
    // joining engine's empty state.
    for player in &players {
        laurel_tests::wait_until("the first engine to fold", Duration::from_secs(60), || {
            (wins_of(gateway, player) == 5).then_some(())
        });
    }
    engines.push(Engine::start(urls, replicas, dir.path(), "engine-b"));
    let joined = Instant::now();
    let second = engines[1].pid();
    laurel_tests::wait_until(
        "the partitions shared two and two",
        Duration::from_secs(30),
        || {
            (shares(&lease_holders(urls)) == BTreeMap::from([(first, 2), (second, 2)]))
                .then_some(())
        },
    );
    let rebalance = joined.elapsed();
    laurel_tests::wait_until(
        "the second engine to restore its partitions from shared snapshots",
        Duration::from_secs(30),
        || {
            (engines[1]
                .logged()
                .matches("restored the partition from its shared snapshot")
                .count()
                == 2)
                .then_some(())
        },
    );
    // Past the snapshot interval (1 s) since the first engine took its partitions: its next
    // batch of each shares the partition's state.
    std::thread::sleep(Duration::from_millis(1_100));
    let mut takeover = None;
    let mut also_kill = Some(also_kill);
    let mut late = None;
    for r in 6..=20u64 {
        round(r);
        if r == 10 {
            // A player of a partition the first engine holds: folded again only once the
            // survivor has taken the partition over.
            laurel_tests::wait_until(
                "the first engine to share the partitions it kept",
                Duration::from_secs(30),
                || {
                    (engines[0]
                        .logged()
                        .matches("shared the partition's snapshot")
                        .count()
                        >= 4)
                        .then_some(())
                },
            );
            let holders = lease_holders(urls);
            let player = (0..)
                .map(|i| format!("late-{i}"))
                .find(|id| holders.get(&laurel_log::partition_of(id, 4)) == Some(&first))
                .unwrap();
            engines[0].kill9();
            let killed = Instant::now();
            let nats_node_killed = also_kill.take().flatten().map(|kill| kill()).is_some();
            post_until_accepted(
                gateway,
                server,
                &json!({"events": [{"player_id": player, "stat": "wins", "value": 1, "event_id": uuid::Uuid::new_v4()}]}),
            );
            laurel_tests::wait_until("the survivor to fold on", Duration::from_secs(120), || {
                (wins_of(gateway, &player) == 1).then_some(())
            });
            takeover = Some(killed.elapsed());
            late = Some(player);
            // The dead engine shared its partitions' state as it folded: the survivor starts
            // from those snapshots, not from the start of the log. (With a NATS node killed
            // at the same moment, a snapshot may be out of reach for a while: the survivor
            // then re-folds from the log, which the exact stats below check.)
            laurel_tests::wait_until(
                "the survivor to restore the dead engine's partitions from snapshots",
                Duration::from_secs(30),
                || {
                    let restored = engines[1]
                        .logged()
                        .matches("restored the partition from its shared snapshot")
                        .count();
                    (restored == 4 || nats_node_killed).then_some(())
                },
            );
        }
    }
    for gateway in &gateways {
        for player in &players {
            laurel_tests::wait_until("every win folded", Duration::from_secs(60), || {
                (wins_of(gateway, player) == 20).then_some(())
            });
        }
    }
    assert_eq!(
        shares(&lease_holders(urls)),
        BTreeMap::from([(second, 4)]),
        "the survivor holds every partition"
    );
    // Each unlock on OUTPUT exactly once.
    let unlocks = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let config = laurel_log::LogConfig {
            partitions: 4,
            ..Default::default()
        };
        let log = laurel_log::Log::Nats(laurel_log::NatsLog::connect(urls, config).await.unwrap());
        let mut all = Vec::new();
        for p in 0..4 {
            for record in crate::support::read_to_end(
                &log,
                laurel_log::StreamKind::Output,
                p,
                laurel_log::Start::After(0),
            )
            .await
            {
                if let Ok(laurel_schemas::Output::Unlocked(u)) =
                    laurel_schemas::decode(&record.payload)
                {
                    all.push((u.player_id.to_string(), u.achievement_id.to_string()));
                }
            }
        }
        all.sort();
        all
    });
    let mut expected: Vec<(String, String)> = players
        .iter()
        .flat_map(|p| {
            [
                (p.clone(), "FIRST_WIN".to_string()),
                (p.clone(), "TEN_WINS".to_string()),
            ]
        })
        .chain([(late.unwrap(), "FIRST_WIN".to_string())])
        .collect();
    expected.sort();
    assert_eq!(unlocks, expected);
    let restored = engines[1]
        .logged()
        .matches("restored the partition from its shared snapshot")
        .count();
    eprintln!(
        "engines on {urls}: partitions shared {rebalance:?} after the second engine started; \
         the dead engine's partitions folded on {:?} after its SIGKILL (lease TTL 3 s), \
         {} of 2 from its shared snapshots",
        takeover.unwrap(),
        restored - 2
    );
}

/// An engine stopped with SIGTERM hands its partitions over before it exits: when it has
/// exited, none of its leases is left to expire, and the other engine takes them at once,
/// from the snapshots it shared.
#[test]
fn a_stopped_engine_hands_its_partitions_over_before_it_exits() {
    let nats = NatsServer::start();
    let urls = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let gateway = Laurel::start_gateway(
        &dir.path().join("gateway"),
        &["--nats", &urls, "--partitions", "4"].map(String::from),
    );
    let admin = gateway.token(&["--admin"]);
    gateway.define_sum_stat(&admin, "wins");
    let mut a = Engine::start(&urls, 1, dir.path(), "engine-a");
    let b = Engine::start(&urls, 1, dir.path(), "engine-b");
    laurel_tests::wait_until(
        "the partitions shared two and two",
        Duration::from_secs(30),
        || {
            (shares(&lease_holders(&urls)) == BTreeMap::from([(a.pid(), 2), (b.pid(), 2)]))
                .then_some(())
        },
    );
    let server = gateway.token(&["--server"]);
    let events: Vec<_> = (0..20)
        .map(|i| json!({"player_id": format!("player-{i}"), "stat": "wins", "value": 1}))
        .collect();
    post_until_accepted(&gateway, &server, &json!({"events": events}));
    // Every partition folded before the stop: a partition whose events are still unfolded
    // would share a snapshot at position 0, which the taking engine has no reason to restore.
    for i in 0..20 {
        let token = gateway.token(&["--player", &format!("player-{i}")]);
        laurel_tests::wait_until("the wins folded", Duration::from_secs(30), || {
            let r = gateway.call("GET", "/v1/players/me/stats", Some(&token), None);
            (r.json["stats"]["wins"] == 1).then_some(())
        });
    }
    let shared = |e: &Engine| {
        e.logged()
            .matches("shared the partition's snapshot")
            .count()
    };
    let restored = |e: &Engine| {
        e.logged()
            .matches("restored the partition from its shared snapshot")
            .count()
    };
    let (shared_before, restored_before) = (shared(&a), restored(&b));
    let gone = a.pid();
    a.terminate();
    let held: Vec<u32> = lease_holders(&urls).into_values().collect();
    assert!(!held.contains(&gone), "no lease left behind: {held:?}");
    assert_eq!(
        shared(&a) - shared_before,
        2,
        "a snapshot of each partition it held"
    );
    laurel_tests::wait_until(
        "the other engine to take every partition",
        Duration::from_secs(30),
        || (shares(&lease_holders(&urls)) == BTreeMap::from([(b.pid(), 4)])).then_some(()),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while restored(&b) - restored_before != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the snapshots restored; the taking engine logged:\n{}",
            b.logged()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One NATS server, one gateway, two engines: sharing, rebalancing on join, and takeover
/// after a SIGKILL.
#[test]
fn engines_share_the_partitions_and_take_over_a_killed_one() {
    let nats = NatsServer::start();
    engines_share_partitions_and_take_over(&nats.url(), 1, 1, None);
}

/// The production shape: a 3-node JetStream cluster (streams and leases with 3 replicas),
/// two gateways and two engines; mid-run one engine and one NATS node are killed.
#[test]
fn a_three_node_cluster_survives_losing_an_engine_and_a_nats_node() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.url();
    wait_for_jetstream(&urls, 3);
    let kill_a_node = Box::new(|| cluster.nodes[1].kill());
    engines_share_partitions_and_take_over(&urls, 3, 2, Some(kill_a_node));
}

/// `laurel engine --metrics-listen` serves the engine's own metrics: per partition it holds,
/// the position folded and the entries behind it, and the fold, persist and snapshot
/// timings and cache counts an operator reads a tail's cause from.
#[test]
fn an_engine_serves_its_lag_per_partition_and_its_timings() {
    let nats = NatsServer::start();
    let urls = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let log_args = ["--nats", &urls, "--partitions", "4"].map(String::from);
    let gateway = Laurel::start_gateway(&dir.path().join("gateway"), &log_args);
    let admin = gateway.token(&["--admin"]);
    gateway.define_sum_stat(&admin, "wins");
    // Stored before the engine starts: it finds a backlog of one entry per event.
    let server = gateway.token(&["--server"]);
    let events: Vec<_> = (0..400)
        .map(|i| json!({"player_id": format!("p{}", i % 40), "stat": "wins", "value": 1, "event_id": uuid::Uuid::new_v4()}))
        .collect();
    post_until_accepted(&gateway, &server, &json!({"events": events}));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let engine = Engine::start_with(&urls, 1, dir.path(), "engine", &["--metrics-listen", &addr]);
    let agent = ureq::Agent::new_with_defaults();
    let scrape = || -> Option<BTreeMap<String, f64>> {
        let mut reply = agent.get(format!("http://{addr}/metrics")).call().ok()?;
        let text = reply.body_mut().read_to_string().ok()?;
        Some(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    };
    let folded =
        |m: &BTreeMap<String, f64>| m.get("laurel_engine_events_total").copied().unwrap_or(0.0);
    laurel_tests::wait_until("the backlog folded", Duration::from_secs(60), || {
        (folded(&scrape()?) == 400.0).then_some(())
    });
    // State is written, and shared, after a batch once the interval has passed.
    std::thread::sleep(Duration::from_millis(1_200));
    let events: Vec<_> = (0..40)
        .map(|i| json!({"player_id": format!("p{i}"), "stat": "wins", "value": 1, "event_id": uuid::Uuid::new_v4()}))
        .collect();
    post_until_accepted(&gateway, &server, &json!({"events": events}));
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let m = scrape().unwrap_or_default();
        let count = |name: &str| m.get(name).copied().unwrap_or(0.0);
        if folded(&m) == 440.0
            && count("laurel_engine_persist_seconds_count") > 0.0
            && count("laurel_engine_snapshot_seconds_count") > 0.0
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the engine did not fold the backlog and write its state: {m:?}\n{}",
            engine.logged()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for p in 0..4 {
        assert_eq!(
            metrics.get(&format!("laurel_engine_partition_lag{{partition=\"{p}\"}}")),
            Some(&0.0),
            "partition {p} folded to its end: {metrics:?}"
        );
        assert!(
            metrics[&format!("laurel_engine_partition_position{{partition=\"{p}\"}}")] > 0.0,
            "partition {p} has a position"
        );
    }
    assert!(metrics["laurel_engine_batch_seconds_count"] > 0.0);
    // Forty players, each read from disk (or started) once and found in memory after.
    assert_eq!(metrics["laurel_engine_cache_misses_total"], 40.0);
    assert_eq!(metrics["laurel_engine_cache_hits_total"], 400.0);
    let health = agent.get(format!("http://{addr}/healthz")).call().unwrap();
    assert_eq!(health.status(), 200);
    drop(engine);
}
