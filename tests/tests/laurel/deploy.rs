//! Deployments on NATS (SPEC 5, issue 10): what several Laurels sharing a NATS need.

use laurel_tests::{Laurel, NatsServer};
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
        let admin = laurel.token(&["--admin"]);
        let r = laurel.call(
            "PUT",
            "/v1/admin/stats/wins",
            Some(&admin),
            Some(json!({"aggregation": "sum", "kind": "int"})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
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
