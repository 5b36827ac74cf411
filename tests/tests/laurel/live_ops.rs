//! Live-ops achievements through a real `laurel serve`, on both logs: repeatable
//! achievements, rewards and their claims, offline play that keeps its time, and tags.

use serde_json::{Value, json};

use crate::http::{Launched, launch, launch_with, token_of};
use crate::support::Backend;

fn put(l: &Launched, path: &str, body: Value) {
    let r = l.laurel.call("PUT", path, Some(&l.admin), Some(body));
    assert!(r.status == 200 || r.status == 201, "{path}: {:?}", r.json);
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The player's view of one achievement, once the token's events are reflected.
fn achievement(l: &Launched, player: &str, id: &str, wait_for: &str) -> Value {
    let r = l.laurel.call(
        "GET",
        &format!("/v1/players/{player}/achievements?wait_for={wait_for}"),
        Some(&l.server),
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn wins(l: &Launched, player: &str, n: i64) -> String {
    report(l, player, "wins", n)
}

fn rewards(l: &Launched, token: &str) -> Vec<Value> {
    let r = l
        .laurel
        .call("GET", "/v1/players/me/rewards", Some(token), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["rewards"].as_array().unwrap().clone()
}

/// A repeatable achievement is earned at every further ten wins, each earn its own
/// unlock with its own id, points and reward, up to its `max`; the view shows how many
/// times it was earned and the progress toward the next.
fn repeatable_achievements_earn_again_and_pay_each_time(backend: Backend) {
    let l = launch(backend);
    put(
        &l,
        "/v1/admin/stats/wins",
        json!({"aggregation": "sum", "kind": "int"}),
    );
    put(
        &l,
        "/v1/admin/achievements/TEN_MORE",
        json!({"title": "Ten more", "points": 5, "tags": ["combat", "season-3"],
               "repeat": {"max": 3}, "rewards": [{"currency": "gold", "amount": 100}],
               "conditions": [{"stat": "wins", "at_least": 10}]}),
    );
    let t = wins(&l, "ann", 10);
    let a = achievement(&l, "ann", "TEN_MORE", &t);
    assert_eq!(
        (a["earned"].clone(), a["times_earned"].clone()),
        (json!(true), json!(1))
    );
    assert_eq!(a["repeat"], json!({"max": 3, "cooldown_secs": 0}));
    assert_eq!(a["progress"][0]["current"], 0, "counted from the earn: {a}");
    // A jump past two tens is one earn; the next counts from where it happened (35).
    let t = wins(&l, "ann", 25);
    let a = achievement(&l, "ann", "TEN_MORE", &t);
    assert_eq!(a["times_earned"], 2, "{a}");
    assert!(a["last_earned_at"].is_string(), "{a}");
    let t = wins(&l, "ann", 9);
    assert_eq!(
        achievement(&l, "ann", "TEN_MORE", &t)["progress"][0]["current"],
        9
    );
    let t = wins(&l, "ann", 1);
    assert_eq!(achievement(&l, "ann", "TEN_MORE", &t)["times_earned"], 3);
    // The max reached: no fourth earn.
    let t = wins(&l, "ann", 100);
    assert_eq!(achievement(&l, "ann", "TEN_MORE", &t)["times_earned"], 3);
    let ann = l.laurel.token(&["--player", "ann"]);
    let stats = l.my(&ann, "stats", Some(&t));
    assert_eq!(stats["points_total"], 15, "points count per earn: {stats}");
    let paid = rewards(&l, &ann);
    let ids: std::collections::BTreeSet<&str> = paid
        .iter()
        .map(|r| r["unlock_id"].as_str().unwrap())
        .collect();
    assert_eq!(paid.len(), 3, "{paid:?}");
    assert_eq!(ids.len(), 3, "each earn its own id: {paid:?}");
    for (i, r) in paid.iter().enumerate() {
        assert_eq!(r["occurrence"], i + 1);
        assert_eq!(r["status"], "paid");
        assert_eq!(r["rewards"], json!([{"currency": "gold", "amount": 100}]));
    }
    // Grants earn a repeatable again too, within its max: the max is reached.
    let r = l.laurel.call(
        "POST",
        "/v1/admin/players/ann/grants",
        Some(&l.admin),
        Some(json!({"achievement_id": "TEN_MORE"})),
    );
    assert!(r.status == 202 || r.status == 200, "{:?}", r.json);
    let t = wins(&l, "ann", 1);
    assert_eq!(achievement(&l, "ann", "TEN_MORE", &t)["times_earned"], 3);
}

/// A reward to claim waits in the player's view until claimed; the claim is paid once
/// and a second claim answers the same; a reward paid on earn cannot be claimed, nor an
/// earn that is not the player's.
fn rewards_to_claim_wait_for_one_claim(backend: Backend) {
    let l = launch(backend);
    put(
        &l,
        "/v1/admin/stats/wins",
        json!({"aggregation": "sum", "kind": "int"}),
    );
    put(
        &l,
        "/v1/admin/achievements/CHEST",
        json!({"title": "Chest", "rewards": [{"item": "skin_red"}], "claim": true,
               "conditions": [{"stat": "wins", "at_least": 1}]}),
    );
    put(
        &l,
        "/v1/admin/achievements/COINS",
        json!({"title": "Coins", "rewards": [{"currency": "gold", "amount": 5}],
               "conditions": [{"stat": "wins", "at_least": 1}]}),
    );
    let t = wins(&l, "bea", 1);
    let bea = l.laurel.token(&["--player", "bea"]);
    l.my(&bea, "achievements", Some(&t));
    let list = rewards(&l, &bea);
    let chest = list
        .iter()
        .find(|r| r["achievement_id"] == "CHEST")
        .unwrap();
    let coins = list
        .iter()
        .find(|r| r["achievement_id"] == "COINS")
        .unwrap();
    assert_eq!(chest["status"], "claimable");
    assert_eq!(coins["status"], "paid");
    let claim = |token: &str, id: &str| {
        l.laurel.call(
            "POST",
            &format!("/v1/players/me/rewards/{id}/claim"),
            Some(token),
            None,
        )
    };
    let chest_id = chest["unlock_id"].as_str().unwrap();
    let first = claim(&bea, chest_id);
    assert_eq!(first.status, 200, "{:?}", first.json);
    assert_eq!(first.json["status"], "claimed");
    assert!(first.json["claimed_at"].is_string());
    let again = claim(&bea, chest_id);
    assert_eq!(
        (again.status, again.json.clone()),
        (200, first.json.clone())
    );
    let r = claim(&bea, coins["unlock_id"].as_str().unwrap());
    assert_eq!(r.status, 409, "{:?}", r.json);
    // Another player cannot claim bea's earn; nor is a made-up id anything.
    let cid = l.laurel.token(&["--player", "cid"]);
    assert_eq!(claim(&cid, chest_id).status, 404);
    assert_eq!(claim(&bea, "not-a-uuid").status, 404);
    let listed = rewards(&l, &bea);
    let chest = listed
        .iter()
        .find(|r| r["achievement_id"] == "CHEST")
        .unwrap();
    assert_eq!(chest["status"], "claimed");
}

/// A game server's `ts` is when the play happened: it counts for time windows and
/// `unlocked_at`, within `--max-event-age` in the past and five minutes ahead (422 naming
/// `ts` outside). A player's own `ts` is informational unless the stat says
/// `client_time`.
fn offline_play_keeps_its_time(backend: Backend) {
    let l = launch_with(backend, &["--max-event-age", "1d"]);
    put(
        &l,
        "/v1/admin/stats/wins",
        json!({"aggregation": "sum", "kind": "int", "client_writable": true}),
    );
    put(
        &l,
        "/v1/admin/stats/laps",
        json!({"aggregation": "sum", "kind": "int", "client_writable": true, "client_time": true}),
    );
    let now = now_ms();
    // The event window closed an hour ago: play from two hours ago still counts.
    put(
        &l,
        "/v1/admin/achievements/LAST_WEEKEND",
        json!({"title": "Last weekend", "available_until": rfc3339(now - 3_600_000),
               "conditions": [{"stat": "wins", "at_least": 1}]}),
    );
    put(
        &l,
        "/v1/admin/achievements/LAPPER",
        json!({"title": "Lapper", "conditions": [{"stat": "laps", "at_least": 1}]}),
    );
    let played = now - 7_200_000;
    let t = token_of(&l.events(
        &l.server,
        json!([{"player_id": "dan", "stat": "wins", "value": 1, "ts": played}]),
    ));
    let a = achievement(&l, "dan", "LAST_WEEKEND", &t);
    assert_eq!(a["earned"], true, "{a}");
    assert_eq!(a["earned_at"], rfc3339(played));
    // A player's own ts on a stat without client_time is informational: the window is
    // judged on when the gateway received it, and it is closed.
    let eve = l.laurel.token(&["--player", "eve"]);
    let t = token_of(&l.events(&eve, json!([{"stat": "wins", "value": 1, "ts": played}])));
    assert_eq!(
        achievement(&l, "eve", "LAST_WEEKEND", &t),
        Value::Null,
        "closed and unearned: not listed"
    );
    // ...and on a client_time stat it counts.
    let t = token_of(&l.events(&eve, json!([{"stat": "laps", "value": 1, "ts": played}])));
    assert_eq!(
        achievement(&l, "eve", "LAPPER", &t)["earned_at"],
        rfc3339(played)
    );
    // Outside the bounds: 422 naming ts, nothing appended.
    for (ts, code) in [
        (now - 2 * 86_400_000, "too_old"),
        (now + 600_000, "in_the_future"),
    ] {
        let r = l.events(
            &l.server,
            json!([{"player_id": "dan", "stat": "wins", "value": 1, "ts": ts}]),
        );
        assert_eq!(r.status, 422, "{:?}", r.json);
        assert_eq!(r.json["errors"][0]["field"], "ts");
        assert_eq!(r.json["errors"][0]["code"]["code"], code);
        let r = l.events(&eve, json!([{"stat": "laps", "value": 1, "ts": ts}]));
        assert_eq!(r.status, 422, "{:?}", r.json);
    }
    // A player's informational ts is not bounded.
    let r = l.events(
        &eve,
        json!([{"stat": "wins", "value": 1, "ts": now - 2 * 86_400_000}]),
    );
    assert_eq!(r.status, 202, "{:?}", r.json);
}

/// Every list filters on `?tag=`; a tag no achievement can carry is a 400 naming it.
fn lists_filter_on_tags(backend: Backend) {
    let l = launch(backend);
    put(
        &l,
        "/v1/admin/stats/wins",
        json!({"aggregation": "sum", "kind": "int"}),
    );
    put(
        &l,
        "/v1/admin/achievements/A",
        json!({"title": "A", "tags": ["combat"], "conditions": [{"stat": "wins", "at_least": 1}]}),
    );
    put(
        &l,
        "/v1/admin/achievements/B",
        json!({"title": "B", "tags": ["combat", "season-3"], "conditions": [{"stat": "wins", "at_least": 1}]}),
    );
    put(
        &l,
        "/v1/admin/achievements/C",
        json!({"title": "C", "conditions": [{"stat": "wins", "at_least": 1}]}),
    );
    let ids = |path: &str, token: &str| -> Vec<String> {
        let r = l.laurel.call("GET", path, Some(token), None);
        assert_eq!(r.status, 200, "{path}: {:?}", r.json);
        r.json["achievements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let fay = l.laurel.token(&["--player", "fay"]);
    for (path, token) in [
        ("/v1/achievements", fay.as_str()),
        ("/v1/players/me/achievements", fay.as_str()),
        ("/v1/players/fay/achievements", l.server.as_str()),
        ("/v1/admin/achievements", l.admin.as_str()),
    ] {
        assert_eq!(ids(path, token), vec!["A", "B", "C"], "{path}");
        assert_eq!(
            ids(&format!("{path}?tag=combat"), token),
            vec!["A", "B"],
            "{path}"
        );
        assert_eq!(
            ids(&format!("{path}?tag=season-3"), token),
            vec!["B"],
            "{path}"
        );
        assert!(ids(&format!("{path}?tag=none"), token).is_empty(), "{path}");
        let r = l
            .laurel
            .call("GET", &format!("{path}?tag=a%20b"), Some(token), None);
        assert_eq!(r.status, 400, "{path}: {:?}", r.json);
        assert!(
            r.json["detail"].as_str().unwrap().starts_with("tag:"),
            "{:?}",
            r.json
        );
    }
    // Bad definitions are refused, naming the field.
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/achievements/BAD",
        Some(&l.admin),
        Some(
            json!({"title": "Bad", "tags": ["ok", "not ok"], "repeat": {"max": 0},
                    "claim": true, "conditions": [{"stat": "wins", "at_least": 1}]}),
        ),
    );
    assert_eq!(r.status, 422, "{:?}", r.json);
    let fields: Vec<&str> = r.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["tags[1]", "repeat.max", "claim"],
        "{:?}",
        r.json
    );
}

fn iso_week(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    let (year, week, _) = t.to_iso_week_date();
    format!("{year:04}-W{week:02}")
}

/// Weekly and season stats: values per period from each event's time (offline play counts
/// in the week it was played), achievements on them earned once per period, previous
/// periods kept in the view, rarity per period, and events outside a season refused.
fn seasons_and_weekly_stats_count_per_period(backend: Backend) {
    // A week ago exactly is last week, and within the accepted age.
    let l = launch_with(backend, &["--max-event-age", "8d"]);
    let now = now_ms();
    let (this_week, last_week) = (iso_week(now), iso_week(now - 7 * 86_400_000));
    put(
        &l,
        "/v1/admin/seasons/s1",
        json!({"starts_at": rfc3339(now - 86_400_000), "ends_at": rfc3339(now + 30 * 86_400_000)}),
    );
    put(
        &l,
        "/v1/admin/stats/wins",
        json!({"aggregation": "sum", "kind": "int", "period": "weekly"}),
    );
    put(
        &l,
        "/v1/admin/stats/kills",
        json!({"aggregation": "sum", "kind": "int", "period": {"season": "s1"}}),
    );
    put(
        &l,
        "/v1/admin/achievements/WEEKLY_THREE",
        json!({"title": "Three this week", "points": 2, "conditions": [{"stat": "wins", "at_least": 3}]}),
    );
    put(
        &l,
        "/v1/admin/achievements/S1_HUNTER",
        json!({"title": "Season hunter", "conditions": [{"stat": "kills", "at_least": 5}]}),
    );
    let t = token_of(&l.events(
        &l.server,
        json!([
            {"player_id": "gil", "stat": "wins", "value": 3},
            // Played last week, sent now: it counts for last week.
            {"player_id": "gil", "stat": "wins", "value": 4, "ts": now - 7 * 86_400_000},
            {"player_id": "gil", "stat": "kills", "value": 5},
            // Before the season: refused by the engine, listed in the refusals.
            {"player_id": "gil", "stat": "kills", "value": 9, "ts": now - 2 * 86_400_000},
        ]),
    ));
    let weekly = achievement(&l, "gil", "WEEKLY_THREE", &t);
    assert_eq!(weekly["period"], this_week, "{weekly}");
    assert_eq!(weekly["earned"], true);
    assert_eq!(weekly["times_earned"], 2);
    let mut both = vec![last_week.clone(), this_week.clone()];
    both.sort();
    assert_eq!(weekly["earned_periods"], json!(both));
    assert_eq!(weekly["progress"][0]["current"], 3, "this week's value");
    let hunter = achievement(&l, "gil", "S1_HUNTER", &t);
    assert_eq!(
        (hunter["period"].clone(), hunter["earned"].clone()),
        (json!("s1"), json!(true))
    );
    let gil = l.laurel.token(&["--player", "gil"]);
    let stats = l.my(&gil, "stats", Some(&t));
    assert_eq!(stats["stats"]["wins"], 3, "{stats}");
    assert_eq!(stats["stats"]["kills"], 5, "{stats}");
    assert_eq!(stats["periods"]["wins"][&last_week], 4, "{stats}");
    assert_eq!(stats["periods"]["wins"][&this_week], 3, "{stats}");
    assert_eq!(stats["periods"]["kills"]["s1"], 5, "{stats}");
    assert_eq!(stats["points_total"], 4, "points per period earned");
    let r = l
        .laurel
        .call("GET", "/v1/players/gil/refusals", Some(&l.server), None);
    assert_eq!(
        r.json["refusals"][0]["code"]["code"], "outside_season",
        "{:?}",
        r.json
    );
    // Rarity per period: gil earned it this week; hal played this week without earning.
    token_of(&l.events(
        &l.server,
        json!([{"player_id": "hal", "stat": "wins", "value": 1}]),
    ));
    let listed = l.laurel.call("GET", "/v1/achievements", Some(&gil), None);
    let weekly = listed.json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "WEEKLY_THREE")
        .unwrap()
        .clone();
    assert_eq!(weekly["period"], this_week);
    let percent = weekly["earned_percent"].as_f64().unwrap();
    assert!(percent == 100.0 || percent == 50.0, "{weekly}");
    let seasons = l
        .laurel
        .call("GET", "/v1/admin/seasons", Some(&l.admin), None);
    assert_eq!(seasons.json["seasons"][0]["id"], "s1");
    // A season no one defined, and a period changed after the fact: refused.
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/deaths",
        Some(&l.admin),
        Some(json!({"aggregation": "sum", "kind": "int", "period": {"season": "s9"}})),
    );
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(r.json["errors"][0]["field"], "period.season");
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/wins",
        Some(&l.admin),
        Some(json!({"aggregation": "sum", "kind": "int", "period": "daily"})),
    );
    assert_eq!(r.status, 409, "{:?}", r.json);
}

crate::both_backends_sync!(
    repeatable_achievements_earn_again_and_pay_each_time,
    rewards_to_claim_wait_for_one_claim,
    offline_play_keeps_its_time,
    lists_filter_on_tags,
    seasons_and_weekly_stats_count_per_period,
    community_goals_unlock_for_contributors_once,
);

/// A community goal: the total of a `global` stat sums every player's contributions across
/// partitions; once it reaches the goal, every player whose own contribution reached
/// `min_contribution` earns it, once, and a player who reaches it later earns it then.
fn community_goals_unlock_for_contributors_once(backend: Backend) {
    let l = launch(backend);
    put(
        &l,
        "/v1/admin/stats/donations",
        json!({"aggregation": "sum", "kind": "int", "scope": "global"}),
    );
    put(
        &l,
        "/v1/admin/achievements/BRIDGE",
        json!({"title": "The bridge", "min_contribution": 10, "rewards": [{"item": "bridge_badge"}],
               "conditions": [{"stat": "donations", "at_least": 100}]}),
    );
    let donate = |player: &str, n: i64| report(&l, player, "donations", n);
    donate("ann", 60);
    donate("bob", 30);
    let t = donate("cid", 5);
    let community = |token: &str| {
        let r = l
            .laurel
            .call("GET", "/v1/community/donations", Some(token), None);
        assert_eq!(r.status, 200, "{:?}", r.json);
        r.json
    };
    achievement(&l, "cid", "BRIDGE", &t);
    // The total is as of each partition's last folded batch (docs/reference.md): cid's token
    // waits for cid's partition only, so ann's and bob's shares may land a moment later.
    let before = laurel_tests::wait_until(
        "ann's, bob's and cid's donations in the total",
        std::time::Duration::from_secs(30),
        || {
            let now = community(&l.server);
            (now["total"] == 95).then_some(now)
        },
    );
    assert_eq!(before["goals"][0]["reached"], false, "{before}");
    // Dee's ten reach the goal: ann, bob and dee contributed 10 or more; cid did not.
    donate("dee", 10);
    let earned = |player: &str| achievement(&l, player, "BRIDGE", "")["earned"] == true;
    laurel_tests::wait_until(
        "the goal unlocked for the contributors",
        std::time::Duration::from_secs(30),
        || {
            ["ann", "bob", "dee"]
                .iter()
                .all(|p| earned(p))
                .then_some(())
        },
    );
    assert!(!earned("cid"), "cid's 5 are under the minimum");
    let cid = l.laurel.token(&["--player", "cid"]);
    let seen = community(&cid);
    assert_eq!(seen["total"], 105, "{seen}");
    assert_eq!(seen["contribution"], 5);
    assert_eq!(
        (
            seen["goals"][0]["reached"].clone(),
            seen["goals"][0]["earned"].clone()
        ),
        (json!(true), json!(false))
    );
    // cid reaches the minimum later: earned then.
    let t = donate("cid", 5);
    assert_eq!(achievement(&l, "cid", "BRIDGE", &t)["earned"], true);
    // Each earned once, each paid once; nobody else.
    for player in ["ann", "bob", "cid", "dee"] {
        let a = achievement(&l, player, "BRIDGE", "");
        assert_eq!(a["times_earned"], 1, "{player}: {a}");
        let token = l.laurel.token(&["--player", player]);
        assert_eq!(rewards(&l, &token).len(), 1, "{player}");
    }
    let r = l.laurel.call("GET", "/v1/community/nope", Some(&cid), None);
    assert_eq!(r.status, 404);
}

/// A game server reports `n` of `stat` for `player`; the read-your-writes token.
fn report(l: &Launched, player: &str, stat: &str, n: i64) -> String {
    token_of(&l.events(
        &l.server,
        json!([{"player_id": player, "stat": stat, "value": n}]),
    ))
}
