//! The HTTP API of a real `laurel serve` process, on both backends: the helpers every HTTP
//! test uses, and the pipeline seen through the API. `connections` holds the limits of
//! connections and streams, `contract` what the API promises of its documents and bodies.

mod connections;
mod contract;

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

/// A stream reconnecting with `Last-Event-ID` first gets the unlocks it missed, in order,
/// then the live ones: none lost, none twice. An id it cannot resume after gets `lagged`.
fn a_reconnecting_stream_resumes_after_its_last_event_id(backend: Backend) {
    let l = launch(backend);
    let admin = &l.admin;
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/coins",
        Some(admin),
        Some(json!({"aggregation": "sum", "kind": "int", "client_writable": true})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    for n in 1..=4 {
        let r = l.laurel.call(
            "PUT",
            &format!("/v1/admin/achievements/COINS_{n}"),
            Some(admin),
            Some(json!({"title": format!("{n} coins"), "conditions": [{"stat": "coins", "at_least": n}]})),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    let ann = l.laurel.token(&["--player", "ann"]);
    let wait = Duration::from_secs(20);
    let coin = |token: &str| {
        token_of(&l.laurel.call(
            "POST",
            "/v1/events",
            Some(token),
            Some(json!({"events": [{"stat": "coins", "value": 1}]})),
        ))
    };
    let unlocks = |stream: &laurel_tests::SseStream| {
        let mut seen = Vec::new();
        while let Some((event, data)) = stream.next(Duration::from_millis(1500)) {
            if event == "unlocked" {
                seen.push((
                    data["achievement"]["id"].as_str().unwrap().to_string(),
                    stream.last_id().unwrap(),
                ));
            }
        }
        seen
    };

    let first = l.laurel.sse("/v1/players/me/notifications", &ann);
    first.expect("ready", wait);
    coin(&ann);
    assert_eq!(
        first.expect("unlocked", wait)["achievement"]["id"],
        "COINS_1"
    );
    let id = first.last_id().expect("an unlock carries an id");
    assert!(id.starts_with('o') && id.contains(':'), "{id}");
    drop(first);

    // Two unlocks while away.
    coin(&ann);
    let t = coin(&ann);
    l.my(&ann, "achievements", Some(&t));
    let resumed = l
        .laurel
        .sse_after("/v1/players/me/notifications", &ann, Some(&id));
    resumed.expect("ready", wait);
    let missed = unlocks(&resumed);
    assert_eq!(
        missed.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["COINS_2", "COINS_3"],
        "the missed unlocks, in order, and not the one already seen"
    );
    // Then live, once.
    coin(&ann);
    assert_eq!(
        resumed.expect("unlocked", wait)["achievement"]["id"],
        "COINS_4"
    );
    assert!(unlocks(&resumed).is_empty(), "nothing twice");
    let last = resumed.last_id().unwrap();
    drop(resumed);

    // Resuming after the latest misses nothing; an id of another partition or from nowhere
    // says `lagged`.
    let current = l
        .laurel
        .sse_after("/v1/players/me/notifications", &ann, Some(&last));
    current.expect("ready", wait);
    assert!(unlocks(&current).is_empty());
    for foreign in ["o999:1", "nonsense"] {
        let stream = l
            .laurel
            .sse_after("/v1/players/me/notifications", &ann, Some(foreign));
        stream.expect("ready", wait);
        assert_eq!(
            stream.next(wait).map(|(e, _)| e).as_deref(),
            Some("lagged"),
            "{foreign}"
        );
    }
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
    a_reconnecting_stream_resumes_after_its_last_event_id,
    metrics_count_requests_ingest_and_engine_work,
    sigterm_shuts_down_cleanly_and_keeps_everything,
);
