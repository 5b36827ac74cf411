//! The HTTP API of a real `laurel serve` process, on both backends.

use std::time::Duration;

use laurel_tests::{Laurel, NatsServer, Reply};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::Backend;

pub(crate) struct Launched {
    pub(crate) laurel: Laurel,
    pub(crate) nats: Option<NatsServer>,
    pub(crate) dir: TempDir,
    pub(crate) admin: String,
    pub(crate) server: String,
}

pub(crate) fn launch(backend: Backend) -> Launched {
    launch_with(backend, &[])
}

/// Launches with more `laurel serve` flags.
pub(crate) fn launch_with(backend: Backend, flags: &[&str]) -> Launched {
    launch_with_env(backend, flags, &[])
}

/// Launches with more `laurel serve` flags and environment variables.
pub(crate) fn launch_with_env(
    backend: Backend,
    flags: &[&str],
    env: &[(String, String)],
) -> Launched {
    let dir = tempfile::tempdir().unwrap();
    let nats = matches!(backend, Backend::Nats).then(NatsServer::start);
    let mut extra = match &nats {
        Some(n) => vec![
            "--nats".to_string(),
            n.url(),
            "--partitions".into(),
            "4".into(),
        ],
        None => vec!["--partitions".into(), "4".into()],
    };
    extra.extend(flags.iter().map(|f| f.to_string()));
    let laurel = Laurel::start_with_env(&dir.path().join("data"), &extra, env);
    let admin = laurel.token(&["--admin"]);
    let server = laurel.token(&["--server"]);
    Launched {
        laurel,
        nats,
        dir,
        admin,
        server,
    }
}

impl Launched {
    pub(crate) fn define_game(&self) {
        let r = self.laurel.call(
            "PUT",
            "/v1/admin/stats/bananas",
            Some(&self.admin),
            Some(json!({"aggregation": "sum", "kind": "int", "client_writable": true})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
        let r = self.laurel.call(
            "PUT",
            "/v1/admin/stats/kills",
            Some(&self.admin),
            Some(json!({"aggregation": "sum", "kind": "int"})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
        let r = self.laurel.call(
            "PUT",
            "/v1/admin/achievements/EAT_THOUSAND_BANANAS",
            Some(&self.admin),
            Some(json!({"title": "Banana lover", "locked_description": "Eat 1000 bananas", "unlocked_description": "You ate 1000 bananas",
                        "points": 10, "conditions": [{"stat": "bananas", "at_least": 1000}],
                        "localizations": {"fr": {"title": "Amateur de bananes"}}})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
    }

    /// Sends events and returns the reply.
    pub(crate) fn events(&self, token: &str, events: Value) -> Reply {
        self.laurel.call(
            "POST",
            "/v1/events",
            Some(token),
            Some(json!({ "events": events })),
        )
    }

    pub(crate) fn my(&self, token: &str, what: &str, wait_for: Option<&str>) -> Value {
        let path = match wait_for {
            Some(t) => format!("/v1/players/me/{what}?wait_for={t}"),
            None => format!("/v1/players/me/{what}"),
        };
        let r = self.laurel.call("GET", &path, Some(token), None);
        assert_eq!(r.status, 200, "{:?}", r.json);
        r.json
    }
}

pub(crate) fn token_of(r: &Reply) -> String {
    assert_eq!(r.status, 202, "{:?}", r.json);
    r.json["token"].as_str().unwrap().to_string()
}

fn the_quick_start_unlocks_and_reads_back(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let t = token_of(&l.events(
        &ann,
        json!([{"stat": "bananas", "value": 600}, {"stat": "bananas", "value": 400}]),
    ));
    let mine = l.my(&ann, "achievements", Some(&t));
    let a = &mine["achievements"][0];
    assert_eq!(a["id"], "EAT_THOUSAND_BANANAS");
    assert_eq!(a["earned"], true, "{mine}");
    assert_eq!(a["description"], "You ate 1000 bananas");
    assert!(a["earned_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        a["progress"],
        json!([{"stat": "bananas", "current": 1000, "required": 1000}])
    );
    assert_eq!(mine["points_total"], 10);
    assert_eq!(
        l.my(&ann, "stats", None),
        json!({"stats": {"bananas": 1000}, "points_total": 10})
    );
    let one = l.laurel.call(
        "GET",
        "/v1/players/me/achievements/EAT_THOUSAND_BANANAS",
        Some(&ann),
        None,
    );
    assert_eq!(one.json["earned"], true);
    let published = l.laurel.call("GET", "/v1/achievements", Some(&ann), None);
    assert_eq!(published.json["achievements"][0]["earned_percent"], 100.0);
    let other = l
        .laurel
        .call("GET", "/v1/players/ann/achievements", Some(&l.server), None);
    assert_eq!(other.json["points_total"], 10);
}

fn an_invalid_batch_is_refused_whole(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let r = l.events(&ann, json!([{"stat": "bananas", "value": 5}, {"stat": "nope", "value": 1}, {"stat": "bananas", "value": 1.5}, {"stat": "bananas", "value": "5"}]));
    assert_eq!(r.status, 422);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let errors = r.json["errors"].as_array().unwrap();
    assert_eq!(
        errors
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(errors[0]["field"], "stat");
    assert_eq!(errors[1]["code"]["code"], "not_integer");
    // A string is a type error, said as one (not "must be a finite number").
    assert_eq!(
        (
            &errors[2]["field"],
            &errors[2]["code"]["code"],
            &errors[2]["reason"]
        ),
        (
            &json!("value"),
            &json!("not_a_number"),
            &json!("must be a number, not a string")
        )
    );
    // A server token must name the player of each event: a missing one is "required".
    let r = l.events(&l.server, json!([{"stat": "bananas", "value": 1}]));
    assert_eq!(r.status, 422);
    assert_eq!(
        (
            &r.json["errors"][0]["field"],
            &r.json["errors"][0]["code"]["code"]
        ),
        (&json!("player_id"), &json!("required"))
    );
    // Nothing of the refused batch was appended: only the next valid event counts.
    let t = token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 1}])));
    assert_eq!(l.my(&ann, "stats", Some(&t))["stats"]["bananas"], 1);
}

fn a_retried_event_is_counted_once(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let batch = json!([{"event_id": "8c0c0f6e-9c1e-4c57-9a55-0d1d4f6c2a11", "stat": "bananas", "value": 7}]);
    let first = l.events(&ann, batch.clone());
    assert_eq!(
        (
            first.json["accepted"].as_u64(),
            first.json["duplicates"].as_u64()
        ),
        (Some(1), Some(0))
    );
    let again = l.events(&ann, batch);
    assert_eq!(
        (
            again.json["accepted"].as_u64(),
            again.json["duplicates"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(
        l.my(&ann, "stats", Some(&token_of(&again)))["stats"]["bananas"],
        7
    );
}

/// Events without ids go to STATS grouped per partition, those with client ids one by one:
/// a retry that regroups the client's events counts each once and says exactly which were
/// duplicates, and every grouped event counts.
fn a_regrouped_retry_counts_each_event_once(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let (ann_id, bob_id) = (
        "0f5b7f6e-1c1e-4c57-9a55-0d1d4f6c2a01",
        "0f5b7f6e-1c1e-4c57-9a55-0d1d4f6c2a02",
    );
    let first = l.events(
        &l.server,
        json!([
            {"event_id": ann_id, "player_id": "ann", "stat": "bananas", "value": 1},
            {"player_id": "ann", "stat": "bananas", "value": 10},
            {"event_id": bob_id, "player_id": "bob", "stat": "bananas", "value": 2},
            {"player_id": "bob", "stat": "bananas", "value": 20},
            {"player_id": "ann", "stat": "bananas", "value": 100},
        ]),
    );
    assert_eq!(
        (
            first.json["accepted"].as_u64(),
            first.json["duplicates"].as_u64()
        ),
        (Some(5), Some(0)),
        "{:?}",
        first.json
    );
    let again = l.events(
        &l.server,
        json!([
            {"event_id": bob_id, "player_id": "bob", "stat": "bananas", "value": 2},
            {"player_id": "ann", "stat": "bananas", "value": 1000},
            {"event_id": ann_id, "player_id": "ann", "stat": "bananas", "value": 1},
        ]),
    );
    assert_eq!(
        (
            again.json["accepted"].as_u64(),
            again.json["duplicates"].as_u64()
        ),
        (Some(1), Some(2)),
        "{:?}",
        again.json
    );
    let t = token_of(&again);
    let ann = l.laurel.token(&["--player", "ann"]);
    let bob = l.laurel.token(&["--player", "bob"]);
    assert_eq!(l.my(&ann, "stats", Some(&t))["stats"]["bananas"], 1111);
    assert_eq!(l.my(&bob, "stats", Some(&t))["stats"]["bananas"], 22);
}

fn tokens_and_scopes_are_enforced(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let body = Some(json!({"events": [{"stat": "bananas", "value": 1}]}));
    assert_eq!(
        l.laurel
            .call("POST", "/v1/events", None, body.clone())
            .status,
        401
    );
    assert_eq!(
        l.laurel
            .call("POST", "/v1/events", Some("not-a-jwt"), body.clone())
            .status,
        401
    );
    let tampered = format!("{}x", &ann[..ann.len() - 1]);
    assert_eq!(
        l.laurel
            .call("POST", "/v1/events", Some(&tampered), body.clone())
            .status,
        401
    );
    let key = std::fs::read_to_string(l.dir.path().join("data/dev-signing-key")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mint = |secret: &str, claims: Value| {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.trim().as_bytes()),
        )
        .unwrap()
    };
    let valid = mint(&key, json!({"sub": "ann", "exp": now + 600}));
    let refused = [
        (
            "expired",
            mint(&key, json!({"sub": "ann", "exp": now - 120})),
        ),
        (
            "exp as a string",
            mint(&key, json!({"sub": "ann", "exp": (now + 600).to_string()})),
        ),
        ("no exp", mint(&key, json!({"sub": "ann"}))),
        (
            "another key",
            mint("some-other-secret", json!({"sub": "ann", "exp": now + 600})),
        ),
        (
            "alg none",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbm4iLCJleHAiOjk5OTk5OTk5OTl9."
                .to_string(),
        ),
    ];
    for (what, token) in refused {
        let r = l
            .laurel
            .call("POST", "/v1/events", Some(&token), body.clone());
        assert_eq!(r.status, 401, "{what}: {r:?}");
    }
    assert_eq!(
        l.laurel
            .call("POST", "/v1/events", Some(&valid), body.clone())
            .status,
        202
    );
    // A player may not report for another player, nor a server-only stat, nor administer.
    let r = l.events(
        &ann,
        json!([{"player_id": "bob", "stat": "bananas", "value": 1}]),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = l.events(&ann, json!([{"stat": "kills", "value": 1}]));
    assert_eq!(
        (r.status, r.json["errors"][0]["code"]["code"].as_str()),
        (403, Some("not_writable"))
    );
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/x",
        Some(&ann),
        Some(json!({"aggregation": "sum", "kind": "int"})),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        l.laurel
            .call("GET", "/v1/players/bob/achievements", Some(&ann), None)
            .status,
        403
    );
    // A server names the player; without one the event is invalid.
    let r = l.events(&l.server, json!([{"stat": "kills", "value": 1}]));
    assert_eq!(
        (r.status, r.json["errors"][0]["field"].as_str()),
        (422, Some("player_id"))
    );
    assert_eq!(
        l.events(
            &l.server,
            json!([{"player_id": "bob", "stat": "kills", "value": 1}])
        )
        .status,
        202
    );
}

fn limits_and_malformed_bodies_get_problems(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"stat": "bananas", "value": 1}))
        .collect();
    let r = l.events(&ann, Value::Array(many));
    assert_eq!(r.status, 413);
    let huge = vec![b' '; 1024 * 1024 + 10];
    let r = l
        .laurel
        .try_request(
            "POST",
            "/v1/events",
            Some(&ann),
            Some(("application/json", huge)),
        )
        .unwrap();
    assert_eq!(r.status, 413);
    let r = l.laurel.call(
        "POST",
        "/v1/events",
        Some(&ann),
        Some(json!({"events": [], "extra": 1})),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json["detail"].as_str().unwrap().contains("extra"),
        "{r:?}"
    );
    assert_eq!(r.json["status"], 400);
    assert!(r.header("x-request-id").is_some());
    let r = l.laurel.call("GET", "/v1/nowhere", Some(&ann), None);
    assert_eq!(
        (r.status, r.header("content-type")),
        (404, Some("application/problem+json"))
    );
}

fn versions_guard_concurrent_edits(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let path = "/v1/admin/achievements/EAT_THOUSAND_BANANAS";
    let spec = json!({"title": "Banana fan", "conditions": [{"stat": "bananas", "at_least": 500}]});
    let r = l
        .laurel
        .try_request_with(
            "PUT",
            path,
            Some(&l.admin),
            Some(("application/json", spec.to_string().into_bytes())),
            &[("if-match", "\"1\"")],
        )
        .unwrap();
    assert_eq!(
        (r.status, r.json["version"].as_u64(), r.header("etag")),
        (200, Some(2), Some("\"2\""))
    );
    let r = l
        .laurel
        .try_request_with(
            "PUT",
            path,
            Some(&l.admin),
            Some(("application/json", spec.to_string().into_bytes())),
            &[("if-match", "\"1\"")],
        )
        .unwrap();
    assert_eq!(r.status, 412);
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/achievements/BAD",
        Some(&l.admin),
        Some(json!({"title": "t", "conditions": [{"stat": "ghost", "at_least": 1}]})),
    );
    assert_eq!(
        (r.status, r.json["errors"][0]["field"].as_str()),
        (422, Some("conditions[0].stat"))
    );
    assert_eq!(
        l.laurel.call("DELETE", path, Some(&l.admin), None).json["archived"],
        true
    );
    let all = l
        .laurel
        .call("GET", "/v1/admin/achievements", Some(&l.admin), None);
    assert_eq!(all.json["achievements"][0]["version"], 3);
    let ann = l.laurel.token(&["--player", "ann"]);
    assert!(
        l.my(&ann, "achievements", None)["achievements"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

fn hidden_secret_and_localized_achievements_show_right(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    for (id, visibility) in [("HIDDEN", "hidden"), ("SECRET", "secret")] {
        let r = l.laurel.call(
            "PUT",
            &format!("/v1/admin/achievements/{id}"),
            Some(&l.admin),
            Some(json!({"title": id, "locked_description": "how", "unlocked_description": "done", "visibility": visibility,
                        "conditions": [{"stat": "bananas", "at_least": 1}]})),
        );
        assert_eq!(r.status, 201);
    }
    let ann = l.laurel.token(&["--player", "ann"]);
    let ids = |v: &Value| {
        v["achievements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let before = l.my(&ann, "achievements", None);
    assert_eq!(ids(&before), vec!["EAT_THOUSAND_BANANAS", "SECRET"]);
    assert_eq!(before["achievements"][1]["description"], "");
    assert_eq!(
        before["achievements"][1]["progress"],
        json!([]),
        "a secret does not tell how to earn it"
    );
    let r = l
        .laurel
        .try_request_with(
            "GET",
            "/v1/players/me/achievements",
            Some(&ann),
            None,
            &[("accept-language", "fr-CA, en;q=0.5")],
        )
        .unwrap();
    assert_eq!(r.json["achievements"][0]["title"], "Amateur de bananes");
    let t = token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 1}])));
    let after = l.my(&ann, "achievements", Some(&t));
    assert_eq!(
        ids(&after),
        vec!["EAT_THOUSAND_BANANAS", "HIDDEN", "SECRET"]
    );
    assert_eq!(after["achievements"][2]["description"], "done");
    assert_eq!(
        after["achievements"][2]["progress"],
        json!([{"stat": "bananas", "current": 1, "required": 1}])
    );
}

fn a_grant_unlocks_through_the_log(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/achievements/BETA",
        Some(&l.admin),
        Some(json!({"title": "Beta tester", "points": 5})),
    );
    assert_eq!(r.status, 201);
    let r = l.laurel.call(
        "POST",
        "/v1/admin/players/ann/grants",
        Some(&l.admin),
        Some(json!({"achievement_id": "BETA"})),
    );
    let t = token_of(&r);
    let ann = l.laurel.token(&["--player", "ann"]);
    let mine = l.my(&ann, "achievements", Some(&t));
    let beta = mine["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "BETA")
        .unwrap()
        .clone();
    assert_eq!(beta["earned"], true);
    let r = l.laurel.call(
        "POST",
        "/v1/admin/players/ann/grants",
        Some(&l.admin),
        Some(json!({"achievement_id": "NOPE"})),
    );
    assert_eq!(r.status, 422);
}

fn notifications_stream_the_players_own_unlocks_live(backend: Backend) {
    let mut l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let bob = l.laurel.token(&["--player", "bob"]);
    let wait = Duration::from_secs(20);
    let anns = l.laurel.sse("/v1/players/me/notifications", &ann);
    let bobs = l.laurel.sse("/v1/players/me/notifications", &bob);
    assert_eq!(
        (anns.status, anns.content_type.as_str()),
        (200, "text/event-stream")
    );
    anns.expect("ready", wait);
    bobs.expect("ready", wait);
    l.events(&ann, json!([{"stat": "bananas", "value": 600}]));
    let progress = anns.expect("progress", wait);
    assert_eq!(
        progress,
        json!({"achievement_id": "EAT_THOUSAND_BANANAS", "condition": 0, "stat": "bananas",
               "current": 600, "required": 1000})
    );
    l.events(&ann, json!([{"stat": "bananas", "value": 400}]));
    let unlocked = anns.expect("unlocked", wait);
    assert_eq!(unlocked["achievement"]["id"], "EAT_THOUSAND_BANANAS");
    assert_eq!(unlocked["achievement"]["earned"], true);
    assert_eq!(
        unlocked["achievement"]["description"],
        "You ate 1000 bananas"
    );
    assert!(unlocked["unlock_id"].is_string());
    // Bob hears only his own progress, never Ann's.
    l.events(&bob, json!([{"stat": "bananas", "value": 250}]));
    let (event, data) = bobs.next(wait).expect("bob's progress");
    assert_eq!(
        (event.as_str(), &data["current"]),
        ("progress", &json!(250))
    );
    let unauthenticated = l
        .laurel
        .call("GET", "/v1/players/me/notifications", None, None);
    assert_eq!(unauthenticated.status, 401);
    // An open stream does not hold up a graceful shutdown.
    assert!(
        l.laurel.terminate(),
        "laurel exits 0 on SIGTERM with streams open"
    );
}

fn metrics_count_requests_ingest_and_engine_work(backend: Backend) {
    let l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let t = token_of(&l.events(
        &ann,
        json!([{"stat": "bananas", "value": 600}, {"stat": "bananas", "value": 400}]),
    ));
    l.events(&ann, json!([{"stat": "nope", "value": 1}]));
    l.my(&ann, "stats", Some(&t));
    l.my(&ann, "stats", None);
    let r = l.laurel.call("GET", "/metrics", None, None);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(r.body).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
    };
    assert_eq!(
        value(r#"laurel_ingest_events_total{outcome="accepted"}"#),
        2.0
    );
    assert_eq!(
        value(r#"laurel_ingest_events_total{outcome="refused"}"#),
        1.0
    );
    assert_eq!(
        value(r#"laurel_http_requests_total{method="POST",route="/v1/events",status="202"}"#),
        1.0
    );
    assert_eq!(
        value(r#"laurel_http_requests_total{method="POST",route="/v1/events",status="422"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"laurel_http_requests_total{method="GET",route="/v1/players/me/stats",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        value(r#"laurel_http_request_duration_seconds_count{route="/v1/players/me/stats"}"#),
        2.0
    );
    // The engine folded both events before the views could show them; the two events of
    // one player's batch, with ids the gateway made, are one STATS entry.
    assert!(value("laurel_engine_events_total") >= 2.0);
    assert!(value("laurel_views_applied_stats_total") >= 1.0);
    assert!(text.ends_with("# EOF\n"));
}

fn sigterm_shuts_down_cleanly_and_keeps_everything(backend: Backend) {
    let mut l = launch(backend);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 3}])));
    assert!(l.laurel.terminate(), "laurel exits 0 on SIGTERM");
    l.laurel.restart();
    let t = token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 4}])));
    assert_eq!(l.my(&ann, "stats", Some(&t))["stats"]["bananas"], 7);
}

#[test]
fn a_player_past_the_ingest_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--player-events-per-minute",
        "1",
        "--player-events-burst",
        "1000",
    ]
    .map(String::from)
    .to_vec();
    let laurel = Laurel::start(&dir.path().join("data"), &args);
    let admin = laurel.token(&["--admin"]);
    let r = laurel.call(
        "PUT",
        "/v1/admin/stats/bananas",
        Some(&admin),
        Some(json!({"aggregation": "sum", "kind": "int", "client_writable": true})),
    );
    assert_eq!(r.status, 201);
    let send = |token: &str, n: usize| {
        let events: Vec<Value> = (0..n)
            .map(|_| json!({"player_id": "ann", "stat": "bananas", "value": 1}))
            .collect();
        laurel.call(
            "POST",
            "/v1/events",
            Some(token),
            Some(json!({ "events": events })),
        )
    };
    let ann = laurel.token(&["--player", "ann"]);
    assert_eq!(send(&ann, 1000).status, 202, "the burst is allowed");
    let r = send(&ann, 1);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Other players and game servers are not held back by Ann's rate.
    let bob = laurel.token(&["--player", "bob"]);
    let r = laurel.call(
        "POST",
        "/v1/events",
        Some(&bob),
        Some(json!({"events": [{"stat": "bananas", "value": 1}]})),
    );
    assert_eq!(r.status, 202);
    let server = laurel.token(&["--server"]);
    assert_eq!(send(&server, 10).status, 202);
    // Refused events were not appended: Ann has exactly her burst.
    let t = token_of(&send(&server, 1));
    let stats = laurel.call(
        "GET",
        &format!("/v1/players/ann/achievements?wait_for={t}"),
        Some(&server),
        None,
    );
    assert_eq!(stats.status, 200);
    let mine = laurel.call("GET", "/v1/players/me/stats", Some(&ann), None);
    assert_eq!(mine.json["stats"]["bananas"], 1011);
}

#[test]
fn the_openapi_document_describes_exactly_the_served_routes() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(&dir.path().join("data"), &[]);
    let r = laurel.call("GET", "/openapi.json", None, None);
    assert_eq!(r.status, 200);
    let doc = r.json;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for spec_route in [
        "/v1/events",
        "/v1/players/me/achievements",
        "/v1/players/me/achievements/{id}",
        "/v1/players/me/stats",
        "/v1/players/me/notifications",
        "/v1/players/{player_id}/achievements",
        "/v1/achievements",
        "/v1/admin/stats/{name}",
        "/v1/admin/achievements",
        "/v1/admin/achievements/{id}",
        "/v1/admin/players/{player_id}/grants",
        "/v1/admin/achievements/{id}/icons/{slot}",
        "/v1/icons/{digest}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            paths.contains_key(spec_route),
            "{spec_route} is not documented"
        );
    }
    // Every documented operation is served: without a token it gets 401 or an answer (a
    // handler's own 404 for what does not exist, as for an icon), never the router's 404
    // ("no such route") or 405.
    for (path, ops) in paths {
        let concrete = path
            .replace("{id}", "X")
            .replace("{name}", "x")
            .replace("{player_id}", "p")
            .replace("{slot}", "locked")
            .replace("{digest}", &"0".repeat(64));
        for method in ops.as_object().unwrap().keys() {
            let r = laurel
                .try_request(&method.to_uppercase(), &concrete, None, None)
                .unwrap();
            let unrouted =
                r.status == 405 || (r.status == 404 && r.json["detail"] == "no such route");
            assert!(
                !unrouted,
                "{method} {path} is documented but not served: {r:?}"
            );
        }
    }
    let wrong = laurel
        .try_request("PATCH", "/v1/events", None, None)
        .unwrap();
    assert_eq!(
        (wrong.status, wrong.header("content-type")),
        (405, Some("application/problem+json"))
    );
    // Refusals are documented as problem documents: 401 everywhere a token is needed, 403
    // on admin routes.
    let problem = |path: &str, method: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/problem+json"]
            ["schema"]["$ref"]
            .clone()
    };
    let reference = json!("#/components/schemas/Problem");
    assert_eq!(problem("/v1/players/me/stats", "get", "401"), reference);
    assert_eq!(problem("/v1/admin/stats", "get", "401"), reference);
    assert_eq!(problem("/v1/admin/stats", "get", "403"), reference);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Condition"]["properties"]["at_least"]["type"],
        json!(["number", "null"])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn msgpack_bodies_are_accepted_and_answered() {
    let l = launch(Backend::Embedded);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let msgpack = |v: &Value| rmp_serde::to_vec_named(v).unwrap();
    let unpack = |r: &Reply| -> Value { rmp_serde::from_slice(&r.body).expect("a msgpack body") };
    let accept = [("accept", "application/msgpack")];
    let body = json!({"events": [{"stat": "bananas", "value": 1000}]});
    let r = l
        .laurel
        .try_request_with(
            "POST",
            "/v1/events",
            Some(&ann),
            Some(("application/msgpack", msgpack(&body))),
            &accept,
        )
        .unwrap();
    assert_eq!(
        (r.status, r.header("content-type")),
        (202, Some("application/msgpack"))
    );
    let accepted = unpack(&r);
    assert_eq!(
        (
            accepted["accepted"].as_u64(),
            accepted["duplicates"].as_u64()
        ),
        (Some(1), Some(0))
    );
    let token = accepted["token"].as_str().unwrap();
    let path = format!("/v1/players/me/achievements?wait_for={token}");
    let r = l
        .laurel
        .try_request_with("GET", &path, Some(&ann), None, &accept)
        .unwrap();
    assert_eq!(r.header("content-type"), Some("application/msgpack"));
    let mine = unpack(&r);
    assert_eq!(mine["achievements"][0]["earned"], true);
    assert_eq!(mine["points_total"], 10);
    // Unknown fields are refused in msgpack as in JSON; problems stay problem+json.
    let bad = json!({"events": [{"stat": "bananas", "value": 1, "cheat": true}]});
    let r = l
        .laurel
        .try_request_with(
            "POST",
            "/v1/events",
            Some(&ann),
            Some(("application/msgpack", msgpack(&bad))),
            &accept,
        )
        .unwrap();
    assert_eq!(
        (r.status, r.header("content-type")),
        (400, Some("application/problem+json"))
    );
    assert!(
        r.json["detail"].as_str().unwrap().contains("cheat"),
        "{:?}",
        r.json
    );
}

#[test]
fn msgpack_with_trailing_bytes_is_refused_like_json_with_trailing_text() {
    let l = launch(Backend::Embedded);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    let body = json!({"events": [{"stat": "bananas", "value": 1}]});
    let mut packed = rmp_serde::to_vec_named(&body).unwrap();
    packed.extend_from_slice(&rmp_serde::to_vec_named(&body).unwrap());
    let mut text = body.to_string().into_bytes();
    text.extend_from_slice(b" {}");
    for (content_type, bytes) in [("application/msgpack", packed), ("application/json", text)] {
        let r = l
            .laurel
            .try_request(
                "POST",
                "/v1/events",
                Some(&ann),
                Some((content_type, bytes)),
            )
            .unwrap();
        assert_eq!(
            (r.status, r.header("content-type")),
            (400, Some("application/problem+json")),
            "{content_type}: {r:?}"
        );
    }
    let stats = l
        .laurel
        .call("GET", "/v1/players/me/stats", Some(&ann), None);
    assert_eq!(stats.json["stats"], json!({}), "nothing was appended");
}

#[test]
fn a_body_announced_over_the_limit_is_refused_before_it_is_sent() {
    use std::io::{Read as _, Write as _};
    let l = launch(Backend::Embedded);
    let ann = l.laurel.token(&["--player", "ann"]);
    let mut tcp =
        std::net::TcpStream::connect(l.laurel.url().trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Headers only: a server that waited for the body would never answer.
    write!(
        tcp,
        "POST /v1/events HTTP/1.1\r\nhost: laurel\r\nauthorization: Bearer {ann}\r\n\
         content-type: application/json\r\ncontent-length: 100000000\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 512];
    let n = tcp.read(&mut answer).expect("an answer without the body");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

crate::both_backends_sync!(
    the_quick_start_unlocks_and_reads_back,
    an_invalid_batch_is_refused_whole,
    a_retried_event_is_counted_once,
    a_regrouped_retry_counts_each_event_once,
    tokens_and_scopes_are_enforced,
    limits_and_malformed_bodies_get_problems,
    versions_guard_concurrent_edits,
    hidden_secret_and_localized_achievements_show_right,
    a_grant_unlocks_through_the_log,
    notifications_stream_the_players_own_unlocks_live,
    metrics_count_requests_ingest_and_engine_work,
    sigterm_shuts_down_cleanly_and_keeps_everything,
);

/// Reads from `tcp` until the server answers or closes: what it sent, and whether it closed
/// (within the read timeout set on `tcp`; a timeout is neither).
fn answer_or_close(tcp: &mut std::net::TcpStream) -> (String, bool) {
    use std::io::Read as _;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

fn connect(l: &Launched) -> std::net::TcpStream {
    let tcp = std::net::TcpStream::connect(l.laurel.url().trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    tcp
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    use std::io::Write as _;
    let l = launch_with(
        Backend::Embedded,
        &["--header-timeout-secs", "1", "--body-timeout-secs", "1"],
    );
    let ann = l.laurel.token(&["--player", "ann"]);
    let connect = || connect(&l);
    // Headers sent one piece and then no more (slowloris): closed after the header timeout.
    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: laurel\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    let (_, closed) = answer_or_close(&mut slow);
    assert!(closed, "a connection stuck in its headers is closed");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A connection that never sends anything is closed the same way.
    let mut idle = connect();
    let (_, closed) = answer_or_close(&mut idle);
    assert!(closed, "an idle connection is closed");
    // A body that stops halfway: 408, as a problem document.
    let mut body = connect();
    write!(
        body,
        "POST /v1/events HTTP/1.1\r\nhost: laurel\r\nauthorization: Bearer {ann}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"events\": ["
    )
    .unwrap();
    let (answer, _) = answer_or_close(&mut body);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[test]
fn connections_past_the_cap_are_closed_at_once() {
    use std::io::Write as _;
    let l = launch_with(Backend::Embedded, &["--max-connections", "3"]);
    let connect = || connect(&l);
    // Five connections against a cap of three (the test client may hold one of its own
    // from the start): those past the cap are closed at once, unanswered.
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..5 {
        let mut tcp = connect();
        let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: laurel\r\n\r\n");
        let mut buf = [0u8; 256];
        match std::io::Read::read(&mut tcp, &mut buf) {
            Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200") => served.push(tcp),
            Ok(_) | Err(_) => refused += 1,
        }
    }
    assert!(
        (2..=3).contains(&served.len()),
        "served {}, refused {refused}",
        served.len()
    );
    assert!(refused >= 2, "served {}, refused {refused}", served.len());
    drop(served);
    laurel_tests::wait_until(
        "a freed connection to make room",
        Duration::from_secs(10),
        || {
            l.laurel
                .try_request("GET", "/healthz", None, None)
                .is_ok_and(|r| r.status == 200)
                .then_some(())
        },
    );
}

#[test]
fn a_live_stream_ends_when_its_token_expires() {
    let l = launch(Backend::Embedded);
    let short = l.laurel.token(&["--player", "ann", "--ttl", "2"]);
    let sse = l.laurel.sse("/v1/players/me/notifications", &short);
    assert_eq!(sse.status, 200);
    sse.expect("ready", Duration::from_secs(5));
    let expired = sse.expect("expired", Duration::from_secs(10));
    assert!(
        expired["detail"].as_str().unwrap().contains("expired"),
        "{expired}"
    );
    assert!(
        sse.ends_within(Duration::from_secs(5)),
        "the stream ends after `expired`"
    );
}

/// Opens a live notification stream on a socket of its own: its status, and the socket
/// (dropping it closes the stream).
fn raw_stream(l: &Launched, token: &str) -> (u16, std::net::TcpStream) {
    use std::io::{Read as _, Write as _};
    let mut tcp = connect(l);
    write!(
        tcp,
        "GET /v1/players/me/notifications HTTP/1.1\r\nhost: laurel\r\n\
         authorization: Bearer {token}\r\naccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
    (status, tcp)
}

fn notification_players(l: &Launched) -> Option<u64> {
    let metrics = l.laurel.call("GET", "/metrics", None, None);
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .find_map(|line| {
            line.strip_prefix("laurel_notification_players ")?
                .parse()
                .ok()
        })
}

#[test]
fn a_player_has_a_bounded_number_of_live_streams() {
    let l = launch_with(Backend::Embedded, &["--max-streams-per-player", "2"]);
    let ann = l.laurel.token(&["--player", "ann"]);
    let bob = l.laurel.token(&["--player", "bob"]);
    let first = raw_stream(&l, &ann);
    let second = raw_stream(&l, &ann);
    assert_eq!((first.0, second.0), (200, 200));
    let third = l.laurel.sse("/v1/players/me/notifications", &ann);
    assert_eq!(third.status, 429);
    assert_eq!(third.content_type, "application/problem+json");
    let bobs = raw_stream(&l, &bob);
    assert_eq!(bobs.0, 200, "another player's streams are counted apart");
    assert_eq!(notification_players(&l), Some(2));
    // A stream that closes gives its place back, and a player with none left is forgotten.
    drop(first);
    let _kept = laurel_tests::wait_until(
        "a closed stream to free its place",
        Duration::from_secs(40),
        || {
            let (status, tcp) = raw_stream(&l, &ann);
            (status == 200).then_some(tcp)
        },
    );
    drop((second, bobs));
    laurel_tests::wait_until("bob to be forgotten", Duration::from_secs(40), || {
        (notification_players(&l) == Some(1)).then_some(())
    });
}

#[test]
fn admin_routes_check_the_scope_before_reading_the_body() {
    let l = launch(Backend::Embedded);
    let ann = l.laurel.token(&["--player", "ann"]);
    let bodies = [
        (
            "PUT",
            "/v1/admin/stats/kills",
            json!({"aggregation": "sum", "kind": "int", "secret_field": 1}),
        ),
        ("PUT", "/v1/admin/achievements/A", json!({"title": 5})),
        ("POST", "/v1/admin/players/bob/grants", json!({"what": "?"})),
    ];
    for (method, path, body) in bodies {
        let r = l.laurel.call(method, path, Some(&ann), Some(body));
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
        let detail = r.json["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("field"),
            "nothing about the body: {detail}"
        );
    }
}

#[test]
fn a_stats_aggregation_and_kind_are_fixed_once_defined() {
    let l = launch(Backend::Embedded);
    l.define_game();
    let put = |body: Value| {
        l.laurel
            .call("PUT", "/v1/admin/stats/bananas", Some(&l.admin), Some(body))
    };
    for changed in [
        json!({"aggregation": "min", "kind": "int", "client_writable": true}),
        json!({"aggregation": "sum", "kind": "float", "client_writable": true}),
    ] {
        let r = put(changed.clone());
        assert_eq!(r.status, 409, "{changed}: {r:?}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert!(
            r.json["detail"]
                .as_str()
                .unwrap()
                .contains("define a new stat")
        );
    }
    let stat = l
        .laurel
        .call("GET", "/v1/admin/stats", Some(&l.admin), None);
    assert_eq!(
        stat.json["stats"][0]["aggregation"], "sum",
        "nothing changed: {stat:?}"
    );
    // What may change still does.
    let r = put(
        json!({"aggregation": "sum", "kind": "int", "client_writable": false, "max_delta": 10}),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn look_alike_ids_and_control_characters_in_titles_are_refused() {
    let l = launch(Backend::Embedded);
    l.define_game();
    for player in [" ", " ann", "\u{feff}ann", "ann\u{202e}"] {
        let r = l.events(
            &l.server,
            json!([{"player_id": player, "stat": "bananas", "value": 1}]),
        );
        assert_eq!(r.status, 422, "{player:?}: {r:?}");
        assert_eq!(r.json["errors"][0]["field"], "player_id", "{r:?}");
    }
    for (title, code) in [
        ("Null\u{0}byte", "control_character"),
        ("\u{1b}[31mRed", "control_character"),
        ("Flipped \u{202e}txet", "invisible_character"),
        (" Padded", "surrounding_whitespace"),
    ] {
        let r = l.laurel.call(
            "PUT",
            "/v1/admin/achievements/LOOKALIKE",
            Some(&l.admin),
            Some(json!({"title": title, "conditions": [{"stat": "bananas", "at_least": 1}]})),
        );
        assert_eq!(r.status, 422, "{title:?}: {r:?}");
        assert_eq!(r.json["errors"][0]["field"], "title", "{r:?}");
        assert_eq!(r.json["errors"][0]["code"]["code"], code, "{r:?}");
    }
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/achievements/FINE",
        Some(&l.admin),
        Some(
            json!({"title": "Bananes à gogo 🍌", "locked_description": "Two\nlines",
            "conditions": [{"stat": "bananas", "at_least": 1}]}),
        ),
    );
    assert!(matches!(r.status, 200 | 201), "{r:?}");
}

#[test]
fn a_rule_broken_inside_an_admin_body_is_a_422_naming_field_and_code() {
    let l = launch(Backend::Embedded);
    l.define_game();
    for (body, field, code) in [
        (
            json!({"title": "Both", "conditions": [
                {"stat": "bananas", "at_least": 1, "at_most": 9}]}),
            "conditions[0]",
            "exactly_one_of",
        ),
        (
            json!({"title": "Neither", "conditions": [{"stat": "bananas"}]}),
            "conditions[0]",
            "exactly_one_of",
        ),
        (
            json!({"title": "Empty", "requires": [""]}),
            "requires[0]",
            "empty",
        ),
    ] {
        let r = l.laurel.call(
            "PUT",
            "/v1/admin/achievements/BROKEN",
            Some(&l.admin),
            Some(body.clone()),
        );
        assert_eq!(r.status, 422, "{body}: {r:?}");
        assert_eq!(r.json["errors"][0]["field"], field, "{r:?}");
        assert_eq!(r.json["errors"][0]["code"]["code"], code, "{r:?}");
    }
    let r = l
        .laurel
        .call("GET", "/v1/admin/achievements/BROKEN", Some(&l.admin), None);
    assert_eq!(r.status, 404, "nothing was stored: {r:?}");
}

#[test]
fn refusals_from_every_layer_are_problem_documents() {
    let l = launch(Backend::Embedded);
    let ann = l.laurel.token(&["--player", "ann"]);
    for (path, token) in [
        // An undecodable path segment (axum's path rejection).
        ("/v1/players/%FF%FE/achievements", l.server.as_str()),
        // A repeated query parameter (axum's query rejection).
        (
            "/v1/players/me/achievements?wait_for=1:1&wait_for=2:2",
            ann.as_str(),
        ),
    ] {
        let r = l.laurel.call("GET", path, Some(token), None);
        assert!((400..500).contains(&r.status), "{path}: {r:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        assert_eq!(r.json["status"], r.status, "{path}: {r:?}");
        assert!(
            !r.json["detail"].as_str().unwrap_or_default().is_empty(),
            "{path}"
        );
        assert!(r.header("x-request-id").is_some(), "{path}");
    }
}
