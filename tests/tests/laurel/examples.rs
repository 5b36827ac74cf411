//! The files of `examples/` work as the README says: the sample definitions apply, and the
//! minimal game-client loop earns achievements through a real `laurel serve`.

use std::path::PathBuf;
use std::process::Command;

use laurel_tests::{Laurel, laurel_bin};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[test]
fn the_sample_game_applies_and_the_client_loop_earns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let laurel = Laurel::start(&data, &[]);
    let out = Command::new(laurel_bin())
        .args(["defs", "apply"])
        .arg(example("achievements.json"))
        .arg("--url")
        .arg(laurel.url())
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("applied 19 changes"), "{stdout}");

    let token = laurel.token(&["--player", "ann"]);
    let out = Command::new("sh")
        .arg(example("game-client.sh"))
        .arg("3")
        .env("LAUREL_URL", laurel.url())
        .env("PLAYER_TOKEN", token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("round 3: {\"accepted\":3"), "{stdout}");
    let last_round = stdout.split("round 3:").nth(1).unwrap();
    for title in ["Prospector", "Strip miner", "Demolition expert"] {
        assert!(
            last_round.contains(&format!("earned: {title}")),
            "{title} after three rounds:\n{stdout}"
        );
    }
    assert!(!stdout.contains("earned: Survivor"), "{stdout}");
}

/// The Python interpreter with nats-py and msgpack (`LAUREL_PYTHON`, which .ci/run sets to
/// a venv of its own; else `python3`).
fn python() -> String {
    std::env::var("LAUREL_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// examples/economy_consumer.py grants each earn's rewards once: a reward paid on earn
/// when it arrives, a reward to claim once claimed; run again it grants nothing more, and
/// neither does a new consumer that reads OUTPUT again from the start (every entry
/// delivered twice), since the grants are recorded by unlock id.
#[test]
fn the_economy_consumer_grants_each_reward_once() {
    use serde_json::json;
    let nats = laurel_tests::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let laurel = Laurel::start(&data, &["--nats".to_string(), nats.url()]);
    let admin = laurel.token(&["--admin"]);
    let server = laurel.token(&["--server"]);
    let put = |path: &str, body: serde_json::Value| {
        let r = laurel.call("PUT", path, Some(&admin), Some(body));
        assert!(r.status == 200 || r.status == 201, "{path}: {:?}", r.json);
    };
    put(
        "/v1/admin/stats/ore",
        json!({"aggregation": "sum", "kind": "int"}),
    );
    put(
        "/v1/admin/achievements/HAULER",
        json!({"title": "Hauler", "repeat": {}, "rewards": [{"currency": "credits", "amount": 10}],
               "conditions": [{"stat": "ore", "at_least": 100}]}),
    );
    put(
        "/v1/admin/achievements/CHEST",
        json!({"title": "Chest", "rewards": [{"item": "skin_frost"}], "claim": true,
               "conditions": [{"stat": "ore", "at_least": 150}]}),
    );
    let mut token = String::new();
    for _ in 0..3 {
        let r = laurel.call(
            "POST",
            "/v1/events",
            Some(&server),
            Some(json!({"events": [{"player_id": "ann", "stat": "ore", "value": 100}]})),
        );
        assert_eq!(r.status, 202, "{:?}", r.json);
        token = r.json["token"].as_str().unwrap().to_string();
    }
    let ann = laurel.token(&["--player", "ann"]);
    laurel.call(
        "GET",
        &format!("/v1/players/me/achievements?wait_for={token}"),
        Some(&ann),
        None,
    );
    let rewards = laurel.call("GET", "/v1/players/me/rewards", Some(&ann), None);
    let chest = rewards.json["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["achievement_id"] == "CHEST")
        .unwrap()["unlock_id"]
        .as_str()
        .unwrap()
        .to_string();
    let db = dir.path().join("economy.sqlite");
    let consume = |durable: &str| -> Vec<serde_json::Value> {
        let out = Command::new(python())
            .arg(example("economy_consumer.py"))
            .args([
                "--nats",
                &nats.url(),
                "--durable",
                durable,
                "--idle-exit",
                "2",
            ])
            .arg("--db")
            .arg(&db)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "the consumer failed (nats-py and msgpack installed? .ci/run sets LAUREL_PYTHON):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let first = consume("economy");
    assert_eq!(
        first.len(),
        3,
        "three earns of HAULER, CHEST not claimed: {first:?}"
    );
    assert!(
        first
            .iter()
            .all(|g| g["rewards"][0]["currency"] == "credits")
    );
    let r = laurel.call(
        "POST",
        &format!("/v1/players/me/rewards/{chest}/claim"),
        Some(&ann),
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let second = consume("economy");
    assert_eq!(second.len(), 1, "the claim: {second:?}");
    assert_eq!(second[0]["granted"], chest.as_str());
    assert!(consume("economy").is_empty(), "nothing new");
    assert!(
        consume("economy-replayed").is_empty(),
        "every entry delivered again, none granted twice"
    );
}

/// examples/laurel.toml runs beside the Quick start's server: its own port and data dir
/// (it once listened on 8080 too, so trying it next to the running server failed).
#[test]
fn the_example_settings_run_beside_the_quick_start_server() {
    let text = std::fs::read_to_string(example("laurel.toml")).unwrap();
    let setting = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{key} in examples/laurel.toml"))
    };
    // The defaults, as `laurel serve --help` states them.
    let help = Command::new(laurel_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for (key, default) in [("listen", "127.0.0.1:8080"), ("data-dir", "./laurel-data")] {
        assert!(
            help.contains(&format!("[default: {default}]")),
            "{key} defaults to {default}"
        );
        assert_ne!(setting(key), default, "examples/laurel.toml's {key}");
    }
    // And the file is one `laurel` takes.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(laurel_bin())
        .args(["token", "--admin", "--config"])
        .arg(example("laurel.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("laurel-example-data"),
        "token read the file's data dir: {err}"
    );
}
