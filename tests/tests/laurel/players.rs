//! What a player's view says beyond earned and progress: availability windows, and whether
//! a `wait_for` read got what it waited for.

use serde_json::json;

use crate::http::{launch, launch_with, token_of};
use crate::support::Backend;

/// A time-limited achievement carries its window and where now stands in it; one whose
/// window closed unearned is not listed (it can no longer be earned), an earned one stays.
#[test]
fn time_limited_achievements_show_their_window() {
    let l = launch_with(Backend::Embedded, &[]);
    let define = |id: &str, spec: serde_json::Value| {
        let r = l.laurel.call(
            "PUT",
            &format!("/v1/admin/achievements/{id}"),
            Some(&l.admin),
            Some(spec),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
    };
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/kills",
        Some(&l.admin),
        Some(json!({"aggregation": "sum", "kind": "int", "client_writable": true})),
    );
    assert_eq!(r.status, 201);
    let kills = |n: i64| json!([{"stat": "kills", "at_least": n}]);
    define(
        "OPEN",
        json!({"title": "Open", "available_from": "2020-01-01T00:00:00Z",
        "available_until": "2100-01-01T00:00:00Z", "conditions": kills(1)}),
    );
    define(
        "UPCOMING",
        json!({"title": "Upcoming", "available_from": "2100-01-01T00:00:00Z",
        "conditions": kills(1)}),
    );
    define(
        "CLOSED",
        json!({"title": "Closed", "available_until": "2020-01-01T00:00:00Z",
        "conditions": kills(1)}),
    );
    define("ALWAYS", json!({"title": "Always", "conditions": kills(1)}));
    // A date alone is not a date-time: refused, naming the field.
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/achievements/DATE_ONLY",
        Some(&l.admin),
        Some(json!({"title": "t", "available_until": "2026-12-24", "conditions": kills(1)})),
    );
    assert_eq!(r.status, 400);
    let detail = r.json["detail"].as_str().unwrap();
    assert!(detail.contains("`available_until`"), "{detail}");
    let ann = l.laurel.token(&["--player", "ann"]);
    let t = token_of(&l.events(&ann, json!([{"stat": "kills", "value": 5}])));
    let r = l.laurel.call(
        "GET",
        &format!("/v1/players/me/achievements?wait_for={t}"),
        Some(&ann),
        None,
    );
    assert_eq!(r.status, 200);
    let list = r.json["achievements"].as_array().unwrap();
    let by_id = |id: &str| list.iter().find(|a| a["id"] == id).cloned();
    assert!(by_id("CLOSED").is_none(), "closed and unearned: not listed");
    let open = by_id("OPEN").unwrap();
    assert_eq!(
        (&open["window"], &open["earned"], &open["available_until"]),
        (&json!("open"), &json!(true), &json!("2100-01-01T00:00:00Z"))
    );
    let upcoming = by_id("UPCOMING").unwrap();
    assert_eq!(
        (
            &upcoming["window"],
            &upcoming["earned"],
            &upcoming["available_from"]
        ),
        (
            &json!("upcoming"),
            &json!(false),
            &json!("2100-01-01T00:00:00Z")
        )
    );
    let always = by_id("ALWAYS").unwrap();
    assert!(
        always.get("window").is_none() && always.get("available_from").is_none(),
        "no window, no window fields: {always}"
    );
    let r = l.laurel.call(
        "GET",
        "/v1/players/me/achievements/CLOSED",
        Some(&ann),
        None,
    );
    assert_eq!(r.status, 404);
}

/// A `wait_for` that ends before its events are reflected is no error: the answer says so,
/// in a header and a field; one that got there says that too.
#[test]
fn a_wait_that_times_out_says_so() {
    let l = launch_with(Backend::Embedded, &["--max-wait-ms", "200"]);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let t = token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 1}])));
    for what in ["achievements", "stats", "achievements/EAT_THOUSAND_BANANAS"] {
        let r = l.laurel.call(
            "GET",
            &format!("/v1/players/me/{what}?wait_for={t}"),
            Some(&ann),
            None,
        );
        assert_eq!(r.status, 200, "{what}: {:?}", r.json);
        assert_eq!(r.header("laurel-wait"), Some("reached"), "{what}");
        assert_eq!(r.json["wait_timed_out"], false, "{what}");
        // A position no partition has reached yet.
        let ahead = "0:999999,1:999999,2:999999,3:999999";
        let r = l.laurel.call(
            "GET",
            &format!("/v1/players/me/{what}?wait_for={ahead}"),
            Some(&ann),
            None,
        );
        assert_eq!(r.status, 200, "{what}: {:?}", r.json);
        assert_eq!(r.header("laurel-wait"), Some("timed-out"), "{what}");
        assert_eq!(r.json["wait_timed_out"], true, "{what}");
        let r = l
            .laurel
            .call("GET", &format!("/v1/players/me/{what}"), Some(&ann), None);
        assert!(
            r.header("laurel-wait").is_none() && r.json.get("wait_timed_out").is_none(),
            "{what}: no wait, nothing said of one"
        );
    }
}

/// What the engine refuses after the gateway accepted it (here, changes past `max_delta`)
/// is visible: a player's recent refusals to servers and admins (never to the player), and a
/// metric by reason.
fn engine_refusals_are_listed_and_counted(backend: Backend) {
    let l = launch(backend);
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/score",
        Some(&l.admin),
        Some(json!({"aggregation": "latest", "kind": "int", "client_writable": true, "max_delta": 100})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let ann = l.laurel.token(&["--player", "ann"]);
    let t = token_of(&l.events(
        &ann,
        json!([{"stat": "score", "value": 50}, {"stat": "score", "value": 500},
               {"stat": "score", "value": 120}, {"stat": "score", "value": 999}]),
    ));
    assert_eq!(l.my(&ann, "stats", Some(&t))["stats"]["score"], 120);
    let r = l.laurel.call(
        "GET",
        &format!("/v1/players/ann/refusals?wait_for={t}"),
        Some(&l.server),
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let refusals = r.json["refusals"].as_array().unwrap();
    let seen: Vec<(&serde_json::Value, &serde_json::Value, &serde_json::Value)> = refusals
        .iter()
        .map(|r| (&r["stat"], &r["value"], &r["code"]["code"]))
        .collect();
    assert_eq!(
        seen,
        [
            (&json!("score"), &json!(999), &json!("delta_too_large")),
            (&json!("score"), &json!(500), &json!("delta_too_large")),
        ],
        "newest first"
    );
    assert_eq!(refusals[1]["code"]["max_delta"], 100.0);
    assert!(
        refusals[0]["at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );
    let r = l
        .laurel
        .call("GET", "/v1/players/ann/refusals", Some(&ann), None);
    assert_eq!(r.status, 403, "a player does not learn what was refused");
    let r = l
        .laurel
        .call("GET", "/v1/players/bob/refusals", Some(&l.admin), None);
    assert_eq!((r.status, &r.json["refusals"]), (200, &json!([])));
    let text = String::from_utf8(l.laurel.call("GET", "/metrics", None, None).body).unwrap();
    assert!(
        text.lines()
            .any(|line| line == r#"laurel_engine_refusals_total{reason="delta_too_large"} 2"#),
        "{text}"
    );
}

crate::both_backends_sync!(engine_refusals_are_listed_and_counted);
