//! The web console: served by `laurel serve` from the binary with a strict policy, the admin
//! routes it needs (who a token is, a player's stats, every player's unlocks live), and the
//! whole console driven in the system Chromium (console/e2e/run.mjs, Playwright).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use laurel_tests::{Laurel, laurel_bin};
use serde_json::json;

/// PUTs a definition with the admin token `admin`; panics unless it is created.
fn define(laurel: &Laurel, admin: &str, path: &str, body: serde_json::Value) {
    let put = laurel.call("PUT", path, Some(admin), Some(body));
    assert_eq!(put.status, 201, "{path}: {:?}", put.json);
}

fn console_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../console")
}

#[test]
fn the_console_is_served_from_the_binary_with_no_inline_code_and_nothing_external() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(&dir.path().join("data"), &[]);

    // `/console` sends to `/console/` (the client follows the redirect).
    let bare = laurel.call("GET", "/console", None, None);
    assert_eq!(bare.status, 200);
    assert_eq!(
        bare.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    let page = laurel.call("GET", "/console/", None, None);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(
        !html.contains("<style") && !html.contains("style="),
        "{html}"
    );

    // Every asset the page names is served, typed, cached for good, and fetches nothing
    // from elsewhere.
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/console/assets/"))
        .collect();
    assert!(
        assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")),
        "{html}"
    );
    for asset in assets {
        let reply = laurel.call("GET", asset, None, None);
        assert_eq!(reply.status, 200, "{asset}");
        let kind = if asset.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(reply.header("content-type"), Some(kind), "{asset}");
        assert_eq!(
            reply.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            !text.contains("fonts.googleapis") && !text.contains("cdn."),
            "{asset} fetches from elsewhere"
        );
    }

    let missing = laurel.call("GET", "/console/assets/nothing.js", None, None);
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
}

#[test]
fn the_session_route_says_who_an_admin_token_is() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(&dir.path().join("data"), &[]);
    let admin = laurel.token(&["--admin", "--ttl", "600"]);
    let player = laurel.token(&["--player", "ann"]);

    let who = laurel.call("GET", "/v1/admin/session", Some(&admin), None);
    assert_eq!(who.status, 200, "{:?}", who.json);
    assert_eq!(who.json["subject"], "admin");
    assert_eq!(who.json["scopes"], json!(["laurel:admin"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires = who.json["expires_at"].as_u64().unwrap();
    assert!(
        (now + 590..=now + 610).contains(&expires),
        "{expires} vs {now}"
    );

    assert_eq!(
        laurel
            .call("GET", "/v1/admin/session", Some(&player), None)
            .status,
        403
    );
    let none = laurel.call("GET", "/v1/admin/session", None, None);
    assert_eq!(none.status, 401);
}

#[test]
fn admins_read_any_players_stats_and_players_may_not() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(&dir.path().join("data"), &[]);
    let admin = laurel.token(&["--admin"]);
    let player = laurel.token(&["--player", "ann"]);
    laurel.define_sum_stat(&admin, "wins");
    let sent = laurel.call(
        "POST",
        "/v1/events",
        Some(&admin),
        Some(json!({"events": [{"player_id": "bob", "stat": "wins", "value": 3}]})),
    );
    assert_eq!(sent.status, 202, "{:?}", sent.json);
    let token = sent.json["token"].as_str().unwrap();

    let stats = laurel.call(
        "GET",
        &format!("/v1/players/bob/stats?wait_for={token}"),
        Some(&admin),
        None,
    );
    assert_eq!(stats.status, 200, "{:?}", stats.json);
    assert_eq!(stats.json["stats"], json!({"wins": 3}));
    assert_eq!(stats.json["points_total"], 0);

    assert_eq!(
        laurel
            .call("GET", "/v1/players/bob/stats", Some(&player), None)
            .status,
        403
    );
    assert_eq!(
        laurel
            .call(
                "GET",
                &format!("/v1/players/{}/stats", "x".repeat(129)),
                Some(&admin),
                None
            )
            .status,
        404
    );
}

#[test]
fn admins_follow_every_players_unlocks_live_and_players_may_not() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(&dir.path().join("data"), &[]);
    let admin = laurel.token(&["--admin"]);
    let player = laurel.token(&["--player", "ann"]);
    laurel.define_sum_stat(&admin, "wins");
    define(
        &laurel,
        &admin,
        "/v1/admin/achievements/first_win",
        json!({"title": "First win", "points": 10, "conditions": [{"stat": "wins", "at_least": 1}]}),
    );

    assert_eq!(
        laurel
            .client()
            .sse("/v1/admin/notifications", &player)
            .status,
        403
    );
    let live = laurel.client().sse("/v1/admin/notifications", &admin);
    assert_eq!(live.status, 200);
    assert!(
        live.content_type.starts_with("text/event-stream"),
        "{}",
        live.content_type
    );
    live.expect("ready", Duration::from_secs(5));

    let sent = laurel.call(
        "POST",
        "/v1/events",
        Some(&admin),
        Some(json!({"events": [
            {"player_id": "ann", "stat": "wins", "value": 1},
            {"player_id": "bob", "stat": "wins", "value": 2},
        ]})),
    );
    assert_eq!(sent.status, 202, "{:?}", sent.json);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let unlock = live.expect("unlocked", Duration::from_secs(10));
        assert_eq!(unlock["achievement_id"], "first_win");
        assert_eq!(unlock["title"], "First win");
        assert_eq!(unlock["points"], 10);
        assert_eq!(unlock["occurrence"], 1);
        assert_eq!(unlock["replay"], false);
        assert!(
            unlock["unlocked_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{unlock}"
        );
        assert!(unlock["unlock_id"].as_str().is_some(), "{unlock}");
        seen.push(unlock["player_id"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["ann", "bob"]);
}

/// The console end to end in Debian's Chromium, driven by Playwright (`playwright-core`),
/// against a real `laurel serve`: each screen's screenshot lands in
/// `target/console-screenshots/`. Needs `npm ci` in `console/` and the `chromium` package
/// (.ci/run sets both up).
#[test]
fn the_console_works_end_to_end_in_chromium() {
    let console = console_dir();
    assert!(
        console.join("node_modules/playwright-core").is_dir(),
        "the console's test tools are missing: run `npm ci --prefix console` (.ci/run does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt-get install chromium` (.ci/run does), or set CHROMIUM"
    );
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(
        &dir.path().join("data"),
        &["--test-players".to_string(), "qa-*".to_string()],
    );
    let admin = laurel.token(&["--admin"]);
    let short = laurel.token(&["--admin", "--ttl", "120"]);
    let shots = laurel_bin()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new("node")
        .arg("e2e/run.mjs")
        .current_dir(&console)
        .env("LAUREL_URL", laurel.url())
        .env("LAUREL_ADMIN_TOKEN", &admin)
        .env("LAUREL_SHORT_TOKEN", &short)
        .env("LAUREL_SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs (Node 20 or later)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("console e2e: all passed"), "{stdout}");
    let taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(taken >= 15, "{taken} screenshots in {}", shots.display());
}

#[test]
fn a_stats_spread_and_refusals_and_an_achievements_earners_by_day_are_read_across_players() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(&dir.path().join("data"), &[]);
    let admin = laurel.token(&["--admin"]);
    define(
        &laurel,
        &admin,
        "/v1/admin/stats/kills",
        json!({"aggregation": "sum", "kind": "int", "max_delta": 5}),
    );
    define(
        &laurel,
        &admin,
        "/v1/admin/achievements/killer",
        json!({"title": "Killer", "conditions": [{"stat": "kills", "at_least": 4}]}),
    );
    let sent = laurel.call(
        "POST",
        "/v1/events",
        Some(&admin),
        Some(json!({"events": [
            {"player_id": "a", "stat": "kills", "value": 2},
            {"player_id": "b", "stat": "kills", "value": 4},
            {"player_id": "c", "stat": "kills", "value": 4},
            {"player_id": "c", "stat": "kills", "value": 50},
        ]})),
    );
    assert_eq!(sent.status, 202, "{:?}", sent.json);
    for player in ["a", "b", "c"] {
        let token = sent.json["token"].as_str().unwrap();
        let r = laurel.call(
            "GET",
            &format!("/v1/players/{player}/stats?wait_for={token}"),
            Some(&admin),
            None,
        );
        assert_eq!(r.header("laurel-wait"), Some("reached"));
    }

    let summary = laurel.call(
        "GET",
        "/v1/admin/stats/kills/summary?buckets=10",
        Some(&admin),
        None,
    );
    assert_eq!(summary.status, 200, "{:?}", summary.json);
    assert_eq!(
        summary.json,
        json!({"stat": "kills", "players": 3, "min": 2.0, "max": 4.0,
        "buckets": [{"from": 2.0, "to": 2.0, "players": 1}, {"from": 3.0, "to": 3.0, "players": 0},
            {"from": 4.0, "to": 4.0, "players": 2}],
        "refusals": {"delta_too_large": 1}})
    );
    let bad = laurel.call(
        "GET",
        "/v1/admin/stats/kills/summary?buckets=0",
        Some(&admin),
        None,
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        laurel
            .call("GET", "/v1/admin/stats/nope/summary", Some(&admin), None)
            .status,
        404
    );

    let rarity = laurel.call(
        "GET",
        "/v1/admin/achievements/killer/rarity",
        Some(&admin),
        None,
    );
    assert_eq!(rarity.status, 200, "{:?}", rarity.json);
    // The day is the unlock's (the batch's receiving time), not the test's clock.
    let view = laurel.call("GET", "/v1/players/b/achievements", Some(&admin), None);
    let earned_at = view.json["achievements"][0]["earned_at"]
        .as_str()
        .unwrap()
        .to_string();
    let day = &earned_at[..10];
    assert_eq!(rarity.json["earned"], 2);
    assert_eq!(rarity.json["players"], 3);
    assert_eq!(
        rarity.json["days"],
        json!([{"day": day, "earned": 2, "total": 2}])
    );
    assert_eq!(
        laurel
            .call(
                "GET",
                "/v1/admin/achievements/nope/rarity",
                Some(&admin),
                None
            )
            .status,
        404
    );
    let player = laurel.token(&["--player", "a"]);
    assert_eq!(
        laurel
            .call(
                "GET",
                "/v1/admin/achievements/killer/rarity",
                Some(&player),
                None
            )
            .status,
        403
    );
}

/// A player's timeline, read from OUTPUT: each stat change from what to what, the refused
/// event and why, the unlock and what caused it; on both logs.
fn a_players_timeline_says_what_each_event_changed_and_what_was_refused(extra: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let laurel = Laurel::start(&dir.path().join("data"), extra);
    let admin = laurel.token(&["--admin"]);
    define(
        &laurel,
        &admin,
        "/v1/admin/stats/wins",
        json!({"aggregation": "sum", "kind": "int", "max_delta": 5}),
    );
    define(
        &laurel,
        &admin,
        "/v1/admin/achievements/three",
        json!({"title": "Three", "conditions": [{"stat": "wins", "at_least": 3}]}),
    );
    // One event at a time, each folded before the next: a batch of its own each.
    for (player, value) in [("p", 2), ("p", 50), ("other", 1), ("p", 1)] {
        let sent = laurel.call(
            "POST",
            "/v1/events",
            Some(&admin),
            Some(json!({"events": [{"player_id": player, "stat": "wins", "value": value}]})),
        );
        assert_eq!(sent.status, 202, "{:?}", sent.json);
        let token = sent.json["token"].as_str().unwrap();
        let r = laurel.call(
            "GET",
            &format!("/v1/players/{player}/stats?wait_for={token}"),
            Some(&admin),
            None,
        );
        assert_eq!(r.header("laurel-wait"), Some("reached"));
    }

    let r = laurel.call("GET", "/v1/admin/players/p/timeline", Some(&admin), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["player_id"], "p");
    assert_eq!(r.json["complete"], true);
    let entries = r.json["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let at = |kind: &str| {
        kinds
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("no {kind} in {kinds:?}"))
    };
    let refused = &entries[at("refused")];
    assert_eq!(refused["stat"], "wins");
    assert_eq!(refused["value"], 50);
    assert_eq!(refused["code"]["code"], "delta_too_large");
    let unlocked = &entries[at("unlocked")];
    assert_eq!(unlocked["achievement_id"], "three");
    assert_eq!(unlocked["cause"], "stat");
    let changes: Vec<(serde_json::Value, serde_json::Value)> = entries
        .iter()
        .filter(|e| e["kind"] == "stat")
        .map(|e| (e["previous"].clone(), e["value"].clone()))
        .collect();
    // Newest first: 2 -> 3, then the first report, none -> 2. The other player's is not here.
    assert_eq!(changes, [(json!(2), json!(3)), (json!(null), json!(2))]);
    assert!(at("stat") < at("refused"), "newest first: {kinds:?}");

    let one = laurel.call(
        "GET",
        "/v1/admin/players/p/timeline?limit=1",
        Some(&admin),
        None,
    );
    assert_eq!(one.json["entries"].as_array().unwrap().len(), 1);
    assert_eq!(one.json["entries"][0], entries[0]);
    assert_eq!(
        laurel
            .call(
                "GET",
                "/v1/admin/players/p/timeline?limit=0",
                Some(&admin),
                None
            )
            .status,
        400
    );
    let nobody = laurel.call(
        "GET",
        "/v1/admin/players/nobody/timeline",
        Some(&admin),
        None,
    );
    assert_eq!(nobody.json["entries"], json!([]));
    let player = laurel.token(&["--player", "p"]);
    assert_eq!(
        laurel
            .call("GET", "/v1/admin/players/p/timeline", Some(&player), None)
            .status,
        403
    );
}

#[test]
fn a_players_timeline_on_the_embedded_log() {
    a_players_timeline_says_what_each_event_changed_and_what_was_refused(&[]);
}

#[test]
fn a_players_timeline_on_jetstream() {
    let nats = laurel_tests::NatsServer::start();
    a_players_timeline_says_what_each_event_changed_and_what_was_refused(&[
        "--nats".to_string(),
        nats.url(),
    ]);
}

/// An HS256 admin token for `subject`, signed with `secret`.
fn admin_token(secret: &str, subject: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": subject, "exp": now + 600, "scope": "laurel:admin"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Behind a load balancer: what two admins do through two gateways is one audit log, read
/// alike through either, each action with who did it.
#[test]
fn the_audit_log_names_who_did_each_admin_action_through_any_gateway() {
    let nats = laurel_tests::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = "audit-test-secret";
    let extra = [
        "--nats",
        &nats.url(),
        "--partitions",
        "2",
        "--jwt-secret",
        secret,
    ]
    .map(String::from);
    let one = Laurel::start_gateway(&dir.path().join("one"), &extra);
    let two = Laurel::start_gateway(&dir.path().join("two"), &extra);
    let (ana, bob) = (admin_token(secret, "ana"), admin_token(secret, "bob"));

    one.define_sum_stat(&ana, "wins");
    let put = two.call(
        "PUT",
        "/v1/admin/achievements/first",
        Some(&bob),
        Some(json!({"title": "First", "conditions": [{"stat": "wins", "at_least": 1}]})),
    );
    assert_eq!(put.status, 201, "{:?}", put.json);
    assert_eq!(
        one.call("DELETE", "/v1/admin/achievements/first", Some(&ana), None)
            .status,
        200
    );
    let file = json!({"definitions": {"achievements": {"second": {"title": "Second"}, "third": {"title": "Third"}}}});
    assert_eq!(
        two.call("PUT", "/v1/admin/definitions", Some(&bob), Some(file))
            .status,
        200
    );
    let granted = one.call(
        "POST",
        "/v1/admin/players/p-1/grants",
        Some(&ana),
        Some(json!({"achievement_id": "second"})),
    );
    assert_eq!(granted.status, 202, "{:?}", granted.json);
    // A refused write is no action.
    let refused = one.call(
        "PUT",
        "/v1/admin/achievements/bad",
        Some(&ana),
        Some(json!({"title": ""})),
    );
    assert_eq!(refused.status, 422);

    let expected = json!([
        ["ana", "grant", "player p-1: second"],
        // A definitions file's changes, each (at the one position they share).
        ["bob", "define", "achievement third (version 1)"],
        ["bob", "define", "achievement second (version 1)"],
        ["ana", "archive", "achievement first archived (version 2)"],
        ["bob", "define", "achievement first (version 1)"],
        ["ana", "define", "stat wins (version 1)"],
    ]);
    for gateway in [&one, &two] {
        let r = gateway.call("GET", "/v1/admin/audit", Some(&bob), None);
        assert_eq!(r.status, 200, "{:?}", r.json);
        let entries = r.json["entries"].as_array().unwrap();
        let seen: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| json!([e["by"], e["action"], e["what"]]))
            .collect();
        assert_eq!(serde_json::Value::from(seen), expected);
        assert!(
            entries
                .iter()
                .all(|e| e["at"].as_str().is_some_and(|t| t.ends_with('Z'))),
            "{entries:?}"
        );
    }
    let one_entry = one.call("GET", "/v1/admin/audit?limit=1", Some(&ana), None);
    assert_eq!(one_entry.json["entries"].as_array().unwrap().len(), 1);
    assert_eq!(
        one.call("GET", "/v1/admin/audit?limit=0", Some(&ana), None)
            .status,
        400
    );
}

/// A test player reset through the log, on both logs: stats, earns and refusals gone, the
/// audit log names who did it, rarity no longer counts them, and what they earn next is a
/// new unlock (its own id), also after a kill -9 that makes the engine and the views fold
/// the reset again from the log (state is written behind every 60 s here, so the crash
/// always falls inside that window).
fn a_test_player_reset_is_exact_across_a_crash(extra: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = extra.to_vec();
    args.extend(
        [
            "--test-players",
            "qa-*,tester@*",
            "--checkpoint-interval-ms",
            "60000",
        ]
        .map(String::from),
    );
    let mut laurel = Laurel::start(&dir.path().join("data"), &args);
    let admin = laurel.token(&["--admin"]);
    define(
        &laurel,
        &admin,
        "/v1/admin/stats/wins",
        json!({"aggregation": "sum", "kind": "int", "max_delta": 5}),
    );
    define(
        &laurel,
        &admin,
        "/v1/admin/achievements/first",
        json!({"title": "First", "points": 10, "conditions": [{"stat": "wins", "at_least": 1}]}),
    );
    let live = laurel.client().sse("/v1/admin/notifications", &admin);
    live.expect("ready", Duration::from_secs(5));
    let send = |laurel: &Laurel, player: &str, value: i64| {
        let sent = laurel.call(
            "POST",
            "/v1/events",
            Some(&admin),
            Some(json!({"events": [{"player_id": player, "stat": "wins", "value": value}]})),
        );
        assert_eq!(sent.status, 202, "{:?}", sent.json);
        sent.json["token"].as_str().unwrap().to_string()
    };
    let read = |laurel: &Laurel, player: &str, token: &str| {
        let stats = laurel.call(
            "GET",
            &format!("/v1/players/{player}/stats?wait_for={token}"),
            Some(&admin),
            None,
        );
        assert_eq!(stats.header("laurel-wait"), Some("reached"));
        let view = laurel.call(
            "GET",
            &format!("/v1/players/{player}/achievements"),
            Some(&admin),
            None,
        );
        (stats.json, view.json["achievements"][0].clone())
    };
    send(&laurel, "qa-1", 3);
    send(&laurel, "qa-1", 50); // refused: max_delta
    let token = send(&laurel, "p-1", 1);
    read(&laurel, "p-1", &token);
    let first = live.expect("unlocked", Duration::from_secs(10));
    let second = live.expect("unlocked", Duration::from_secs(10));
    let before = [first, second]
        .into_iter()
        .find(|u| u["player_id"] == "qa-1")
        .expect("qa-1 earned first");

    // Not a test player: refused, nothing changes.
    let refused = laurel.call("POST", "/v1/admin/players/p-1/reset", Some(&admin), None);
    assert_eq!(refused.status, 403, "{:?}", refused.json);
    assert_eq!(
        refused.json["errors"][0]["code"]["code"],
        "not_a_test_player"
    );
    let player = laurel.token(&["--player", "qa-1"]);
    assert_eq!(
        laurel
            .call("POST", "/v1/admin/players/qa-1/reset", Some(&player), None)
            .status,
        403
    );

    let reset = laurel.call("POST", "/v1/admin/players/qa-1/reset", Some(&admin), None);
    assert_eq!(reset.status, 202, "{:?}", reset.json);
    let (stats, first) = read(&laurel, "qa-1", reset.json["token"].as_str().unwrap());
    assert_eq!(stats["stats"], json!({}));
    assert_eq!(stats["points_total"], 0);
    assert_eq!(first["earned"], false);
    let refusals = laurel.call("GET", "/v1/players/qa-1/refusals", Some(&admin), None);
    assert_eq!(refusals.json["refusals"], json!([]));
    let rarity = laurel.call(
        "GET",
        "/v1/admin/achievements/first/rarity",
        Some(&admin),
        None,
    );
    assert_eq!(
        (
            rarity.json["earned"].clone(),
            rarity.json["players"].clone()
        ),
        (json!(1), json!(2))
    );
    let audit = laurel.call("GET", "/v1/admin/audit?limit=1", Some(&admin), None);
    assert_eq!(audit.json["entries"][0]["action"], "reset");
    assert_eq!(audit.json["entries"][0]["what"], "player qa-1");
    assert_eq!(audit.json["entries"][0]["by"], "admin");

    // The engine's and the views' state on disk is from before all this: both fold the
    // reset again from the log.
    laurel.kill9();
    laurel.restart();
    let token = send(&laurel, "qa-1", 1);
    let (stats, first) = read(&laurel, "qa-1", &token);
    assert_eq!(
        stats["stats"],
        json!({"wins": 1}),
        "the reset's values stay gone"
    );
    assert_eq!(first["earned"], true);
    assert_eq!(stats["points_total"], 10);
    let live = laurel.client().sse("/v1/admin/notifications", &admin);
    live.expect("ready", Duration::from_secs(5));
    // Earned again after the reset: a new unlock, under an id of its own.
    let timeline = laurel.call("GET", "/v1/admin/players/qa-1/timeline", Some(&admin), None);
    let entries = timeline.json["entries"].as_array().unwrap();
    let unlock_ids: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "unlocked")
        .map(|e| e["unlock_id"].as_str().unwrap())
        .collect();
    assert_eq!(unlock_ids.len(), 2, "{entries:?}");
    assert_eq!(unlock_ids[1], before["unlock_id"].as_str().unwrap());
    assert_ne!(unlock_ids[0], unlock_ids[1]);
    assert!(entries.iter().any(|e| e["kind"] == "reset"), "{entries:?}");
    let rarity = laurel.call(
        "GET",
        "/v1/admin/achievements/first/rarity",
        Some(&admin),
        None,
    );
    assert_eq!(rarity.json["earned"], 2);
    // The other player never moved.
    let (stats, first) = read(&laurel, "p-1", &token);
    assert_eq!(
        (stats["stats"].clone(), first["earned"].clone()),
        (json!({"wins": 1}), json!(true))
    );
}

#[test]
fn a_test_player_reset_on_the_embedded_log() {
    a_test_player_reset_is_exact_across_a_crash(&[]);
}

#[test]
fn a_test_player_reset_on_jetstream() {
    let nats = laurel_tests::NatsServer::start();
    a_test_player_reset_is_exact_across_a_crash(&["--nats".to_string(), nats.url()]);
}
