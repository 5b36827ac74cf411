//! Every answer is the truth: what is answered 2xx is exactly what every reader applies,
//! and what is refused changes nothing and says why. Through a real `laurel serve`.

use std::io::Write as _;
use std::time::Duration;

use laurel_tests::{Laurel, NatsServer, Reply};
use serde_json::{Value, json};

use crate::http::{Launched, launch};
use crate::support::Backend;

/// `{"a": {"a": ... {"a": 1}}}`: an object nested `depth` levels deep.
fn nested(depth: usize) -> Value {
    (1..depth).fold(json!({"a": 1}), |inner, _| json!({ "a": inner }))
}

fn put_achievement(l: &Launched, id: &str, body: &Value, msgpack: bool) -> Reply {
    let (content_type, bytes) = if msgpack {
        (
            "application/msgpack",
            rmp_serde::to_vec_named(body).unwrap(),
        )
    } else {
        ("application/json", serde_json::to_vec(body).unwrap())
    };
    l.laurel
        .try_request(
            "PUT",
            &format!("/v1/admin/achievements/{id}"),
            Some(&l.admin),
            Some((content_type, bytes)),
        )
        .unwrap()
}

fn get_achievement(l: &Launched, id: &str) -> Reply {
    l.laurel.call(
        "GET",
        &format!("/v1/admin/achievements/{id}"),
        Some(&l.admin),
        None,
    )
}

/// A definition answered 201 was dropped by every reader when its `metadata` nested deeper
/// than the log's decoder goes: now such metadata is a 422 naming `metadata`, nothing is
/// stored, and the next write gets version 1.
#[test]
fn metadata_too_deep_to_store_is_refused_and_changes_nothing() {
    let l = launch(Backend::Embedded);
    l.define_game();
    let spec = |metadata: Value| {
        json!({"title": "Deep", "conditions": [{"stat": "bananas", "at_least": 1}],
               "metadata": metadata})
    };
    for msgpack in [false, true] {
        for depth in [33, 126] {
            let r = put_achievement(&l, "DEEP", &spec(nested(depth)), msgpack);
            assert_eq!(r.status, 422, "depth {depth}, msgpack {msgpack}: {r:?}");
            assert_eq!(r.json["errors"][0]["field"], "metadata", "{r:?}");
            assert_eq!(r.json["errors"][0]["code"]["code"], "too_deep", "{r:?}");
            assert_eq!(r.json["errors"][0]["code"]["max"], 32, "{r:?}");
        }
    }
    // The same through a definitions file, dry run and real.
    for dry_run in [true, false] {
        let r = l.laurel.call(
            "PUT",
            "/v1/admin/definitions",
            Some(&l.admin),
            Some(
                json!({"definitions": {"achievements": {"DEEP": spec(nested(40))}},
                        "dry_run": dry_run}),
            ),
        );
        assert_eq!(r.status, 422, "dry run {dry_run}: {r:?}");
        assert_eq!(
            r.json["errors"][0]["field"], "achievements.DEEP.metadata",
            "{r:?}"
        );
    }
    assert_eq!(get_achievement(&l, "DEEP").status, 404);
    // The deepest metadata allowed is stored, read back whole, and survives a restart
    // (every reader decodes it).
    let r = put_achievement(&l, "DEEP", &spec(nested(32)), true);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        r.json["version"], 1,
        "no version was handed out before: {r:?}"
    );
    let mut laurel = l;
    laurel.laurel.restart();
    let r = get_achievement(&laurel, "DEEP");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["metadata"], nested(32));
    let r = laurel
        .laurel
        .call("GET", "/v1/achievements", Some(&laurel.server), None);
    let ids: Vec<&str> = r.json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert!(ids.contains(&"DEEP"), "the projections hold it too: {r:?}");
}

/// A DEFS entry no reader can decode stops them loudly (the process exits saying where)
/// instead of being skipped with the definitions moving on without it.
#[test]
fn an_undecodable_definition_on_the_log_stops_the_server_loudly() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut laurel = Laurel::start(&data, &["--nats".into(), nats.url()]);
    let admin = laurel.token(&["--admin"]);
    laurel.define_sum_stat(&admin, "wins");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.publish(
            "laurel.defs.stat.garbage",
            b"\xc1 not msgpack".as_ref().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    });
    let status = laurel
        .exited_within(Duration::from_secs(30))
        .expect("laurel stops at an entry it cannot decode");
    assert!(!status.success(), "it stops as a failure: {status}");
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(
        log.contains("undecodable") && log.contains("defs"),
        "it says which entry: {log}"
    );
}

/// Event ids deduplicate per player: the same player resending an id is a duplicate;
/// another player's event under the same id is counted.
#[test]
fn event_ids_deduplicate_per_player() {
    for backend in [Backend::Embedded, Backend::Nats] {
        let l = launch(backend);
        l.define_game();
        let ann = l.laurel.token(&["--player", "ann"]);
        let id = "0b1e7c52-62e4-4f5c-9a0e-8f1d2c3b4a59";
        let r = l.events(
            &ann,
            json!([{"event_id": id, "stat": "bananas", "value": 5}]),
        );
        assert_eq!(
            (r.json["accepted"].as_u64(), r.json["duplicates"].as_u64()),
            (Some(1), Some(0))
        );
        // Ann again: a retry.
        let r = l.events(
            &ann,
            json!([{"event_id": id, "stat": "bananas", "value": 5}]),
        );
        assert_eq!(
            (r.json["accepted"].as_u64(), r.json["duplicates"].as_u64()),
            (Some(0), Some(1)),
            "{backend:?}"
        );
        // A game server reporting Bob's event under Ann's id: Bob's own.
        let r = l.events(
            &l.server,
            json!([{"event_id": id, "player_id": "bob", "stat": "bananas", "value": 7}]),
        );
        assert_eq!(
            (r.json["accepted"].as_u64(), r.json["duplicates"].as_u64()),
            (Some(1), Some(0)),
            "{backend:?}: {r:?}"
        );
        let token = crate::http::token_of(&r);
        let r = l.laurel.call(
            "GET",
            &format!("/v1/players/bob/achievements?wait_for={token}"),
            Some(&l.server),
            None,
        );
        assert_eq!(r.status, 200, "{r:?}");
        let bob = l.laurel.token(&["--player", "bob"]);
        let stats = l.my(&bob, "stats", Some(&token));
        assert_eq!(stats["stats"]["bananas"], 7, "{backend:?}: {stats}");
        let stats = l.my(&ann, "stats", None);
        assert_eq!(stats["stats"]["bananas"], 5, "{backend:?}: {stats}");
    }
}

/// Bodies are JSON or msgpack, by `Content-Type`; anything else is a 415 problem and
/// nothing is appended.
#[test]
fn bodies_that_are_neither_json_nor_msgpack_are_415() {
    let l = launch(Backend::Embedded);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let events = serde_json::to_vec(&json!({"events": [{"stat": "bananas", "value": 1}]})).unwrap();
    let stat = serde_json::to_vec(&json!({"aggregation": "sum", "kind": "int"})).unwrap();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "",
    ] {
        for (path, method, token, body) in [
            ("/v1/events", "POST", &ann, &events),
            ("/v1/admin/stats/apples", "PUT", &l.admin, &stat),
        ] {
            let r = l
                .laurel
                .try_request(
                    method,
                    path,
                    Some(token),
                    Some((content_type, body.clone())),
                )
                .unwrap();
            assert_eq!(r.status, 415, "{path} as {content_type:?}: {r:?}");
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            assert_eq!(r.json["status"], 415, "{r:?}");
        }
    }
    // Nothing was taken: no bananas, no apples.
    assert_eq!(l.my(&ann, "stats", None)["stats"]["bananas"], Value::Null);
    let r = l
        .laurel
        .call("GET", "/v1/admin/stats", Some(&l.admin), None);
    assert!(!r.json["stats"].to_string().contains("apples"), "{r:?}");
    // JSON with a charset is JSON.
    let r = l
        .laurel
        .try_request(
            "POST",
            "/v1/events",
            Some(&ann),
            Some(("application/json; charset=utf-8", events)),
        )
        .unwrap();
    assert_eq!(r.status, 202, "{r:?}");
}

/// The documented text rules, each example the issue found accepted.
#[test]
fn player_ids_and_titles_follow_the_documented_rules() {
    let l = launch(Backend::Embedded);
    l.define_game();
    for (player, code) in [
        ("ann\u{061C}", "disallowed_character"),
        ("\u{3164}ann", "disallowed_character"),
        ("ann\u{E0041}", "disallowed_character"),
        ("an\u{2028}n", "control_character"),
        ("\u{0430}nn", "confusable"),
        ("ａｎｎ", "disallowed_character"),
        ("Ann Smith", "disallowed_character"),
    ] {
        let r = l.events(
            &l.server,
            json!([{"player_id": player, "stat": "bananas", "value": 1}]),
        );
        assert_eq!(r.status, 422, "{player:?}: {r:?}");
        assert_eq!(r.json["errors"][0]["field"], "player_id", "{r:?}");
        assert_eq!(
            r.json["errors"][0]["code"]["code"], code,
            "{player:?}: {r:?}"
        );
    }
    for player in [
        "ann",
        "auth0|5f7c8e",
        "ann.smith+game@example.com",
        "élodie",
        "иван",
    ] {
        let r = l.events(
            &l.server,
            json!([{"player_id": player, "stat": "bananas", "value": 1}]),
        );
        assert_eq!(r.status, 202, "{player:?}: {r:?}");
    }
    let put = |title: String| {
        l.laurel.call(
            "PUT",
            "/v1/admin/achievements/TITLED",
            Some(&l.admin),
            Some(json!({"title": title, "conditions": [{"stat": "bananas", "at_least": 1}]})),
        )
    };
    let r = put("Line\u{2028}separated".into());
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json["errors"][0]["code"]["code"], "control_character");
    let r = put("x".repeat(129));
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json["errors"][0]["code"]["code"], "too_long");
    assert_eq!(r.json["errors"][0]["code"]["max"], 128);
    assert_eq!(get_achievement(&l, "TITLED").status, 404);
    assert_eq!(put("x".repeat(128)).status, 201);
}

/// The refusals hyper makes before any of Laurel's code runs carry no body: exactly the
/// ones docs/api.md lists ("Refusals below the application").
#[test]
fn connection_level_refusals_are_the_documented_ones() {
    let l = launch(Backend::Embedded);
    let send = |request: &[u8]| -> String {
        let mut tcp =
            std::net::TcpStream::connect(l.laurel.url().trim_start_matches("http://")).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tcp.write_all(request).unwrap();
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut tcp, &mut got);
        String::from_utf8_lossy(&got).into_owned()
    };
    let many_headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    for (what, request, status) in [
        (
            "two Content-Lengths",
            "POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}".to_string(),
            "400",
        ),
        (
            "a control character in a header value",
            "GET /healthz HTTP/1.1\r\nhost: x\r\nx-bad: a\u{1}b\r\n\r\n".to_string(),
            "400",
        ),
        (
            "too many headers",
            format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n"),
            "431",
        ),
    ] {
        let answer = send(request.as_bytes());
        let head = answer.lines().next().unwrap_or_default();
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {answer:?}"
        );
        assert!(
            answer.contains("content-length: 0") || answer.ends_with("\r\n\r\n"),
            "{what}: no body, as documented: {answer:?}"
        );
    }
    let docs = include_str!("../../../docs/api.md");
    for documented in ["Content-Length", "control character", "431"] {
        assert!(
            docs.contains(documented),
            "docs/api.md lists the {documented} refusal"
        );
    }
}

/// A stat name with a typo is refused naming the stat the game probably meant; a name near
/// nothing lists the stats that exist; with none defined, it says how to define one. The
/// code stays `unknown_stat`, and nothing of the batch is appended.
#[test]
fn an_unknown_stat_is_refused_with_the_name_it_probably_meant() {
    let l = launch(Backend::Embedded);
    let server = l.laurel.token(&["--server"]);
    let reason = |events: Value| {
        let r = l.events(&server, events);
        assert_eq!(r.status, 422, "{:?}", r.json);
        assert_eq!(r.json["errors"][0]["code"]["code"], "unknown_stat");
        assert_eq!(r.json["errors"][0]["field"], "stat");
        r.json["errors"][0]["reason"].as_str().unwrap().to_string()
    };
    assert_eq!(
        reason(json!([{"player_id": "ann", "stat": "banana", "value": 1}])),
        "stat banana is not defined; no stat is defined yet (PUT /v1/admin/stats/{name})"
    );
    l.define_game();
    assert_eq!(
        reason(
            json!([{"player_id": "ann", "stat": "bananas", "value": 1}, {"player_id": "ann", "stat": "banana", "value": 1}])
        ),
        "stat banana is not defined; did you mean `bananas`?"
    );
    assert_eq!(
        reason(json!([{"player_id": "ann", "stat": "wood", "value": 1}])),
        "stat wood is not defined; the defined stats are bananas, kills"
    );
    let ann = l.laurel.token(&["--player", "ann"]);
    let stats = l
        .laurel
        .call("GET", "/v1/players/me/stats", Some(&ann), None);
    assert_eq!(
        stats.json["stats"],
        json!({}),
        "a refused batch appends nothing"
    );
}
