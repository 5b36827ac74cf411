//! What the API promises of its documents and bodies: the OpenAPI document, msgpack, the
//! scope checked before the body, problem documents from every layer.

use super::*;

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
