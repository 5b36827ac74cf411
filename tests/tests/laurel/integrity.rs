//! Data integrity through a real `laurel serve`: numbers that cannot overflow into a wiped
//! state, derived state that never outlives its log, a fast 503 and a bounded shutdown while
//! the broker is gone.

use std::time::{Duration, Instant};

use laurel_tests::{Laurel, NatsServer};
use serde_json::json;

use crate::http::{Launched, launch, launch_with, token_of};
use crate::support::Backend;

fn define_distance(l: &Launched) {
    let r = l.laurel.call(
        "PUT",
        "/v1/admin/stats/distance",
        Some(&l.admin),
        Some(json!({"aggregation": "sum", "kind": "float", "client_writable": true})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
}

fn numbers_stay_finite_and_huge_integers_are_refused_alike(backend: Backend) {
    let mut l = launch(backend);
    l.define_game();
    define_distance(&l);
    let ann = l.laurel.token(&["--player", "ann"]);
    token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 7}])));
    for _ in 0..2 {
        token_of(&l.events(&ann, json!([{"stat": "distance", "value": 1e308}])));
    }
    // Integers past i64 on either side, and whole floats too large to name one integer.
    for (value, code) in [
        ("9223372036854775808", "integer_out_of_range"),
        ("-9223372036854775809", "integer_out_of_range"),
        ("1e19", "integer_out_of_range"),
        ("-1e19", "integer_out_of_range"),
        ("2.5", "not_integer"),
    ] {
        let body = format!(r#"{{"events": [{{"stat": "bananas", "value": {value}}}]}}"#);
        let r = l
            .laurel
            .try_request(
                "POST",
                "/v1/events",
                Some(&ann),
                Some(("application/json", body.into_bytes())),
            )
            .unwrap();
        assert_eq!(r.status, 422, "{value}: {:?}", r.json);
        assert_eq!(r.json["errors"][0]["field"], "value", "{value}");
        assert_eq!(r.json["errors"][0]["code"]["code"], code, "{value}");
    }
    let t = token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 1}])));
    let stats = l.my(&ann, "stats", Some(&t));
    assert_eq!(
        stats["stats"],
        json!({"bananas": 8, "distance": f64::MAX}),
        "the float sum saturates at the largest finite value"
    );
    // The saturated state is stored and read back whole across a crash.
    l.laurel.kill9();
    l.laurel.restart();
    let t = token_of(&l.events(
        &ann,
        json!([{"stat": "bananas", "value": 2}, {"stat": "distance", "value": 5.0}]),
    ));
    let stats = l.my(&ann, "stats", Some(&t));
    assert_eq!(stats["stats"], json!({"bananas": 10, "distance": f64::MAX}));
}

/// A quick start on the embedded log, then `--nats` with the same data dir: the new log's
/// positions start below the stored ones, and its events must still be applied.
#[test]
fn switching_logs_with_one_data_dir_applies_the_new_logs_events() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let partitions = ["--partitions".to_string(), "4".to_string()];
    let first = Laurel::start(&data, &partitions);
    let embedded = Launched {
        admin: first.token(&["--admin"]),
        server: first.token(&["--server"]),
        laurel: first,
        nats: None,
        dir: tempfile::tempdir().unwrap(),
    };
    embedded.define_game();
    let ann = embedded.laurel.token(&["--player", "ann"]);
    let many: Vec<_> = (0..40)
        .map(|_| json!({"stat": "bananas", "value": 1}))
        .collect();
    let t = token_of(&embedded.events(&ann, json!(many)));
    assert_eq!(embedded.my(&ann, "stats", Some(&t))["stats"]["bananas"], 40);
    let Launched { mut laurel, .. } = embedded;
    assert!(laurel.terminate());

    let nats = NatsServer::start();
    let mut flags = partitions.to_vec();
    flags.extend(["--nats".to_string(), nats.url()]);
    let second = Laurel::start(&data, &flags);
    let on_nats = Launched {
        admin: second.token(&["--admin"]),
        server: second.token(&["--server"]),
        laurel: second,
        nats: Some(nats),
        dir: tempfile::tempdir().unwrap(),
    };
    on_nats.define_game();
    let t = token_of(&on_nats.events(&ann, json!([{"stat": "bananas", "value": 3}])));
    let stats = on_nats.my(&ann, "stats", Some(&t));
    assert_eq!(
        stats["stats"],
        json!({"bananas": 3}),
        "the new log's event is applied, and nothing of the old log's state shows"
    );
}

/// While the broker is down, ingest answers 503 within a second. A 503 means the outcome is
/// unknown (what was published before the connection went may still be stored), so the
/// client resends the same ids once the broker is back, and the event counts exactly once.
#[test]
fn ingest_answers_503_fast_while_the_broker_is_down() {
    let mut l = launch(Backend::Nats);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 5}])));
    l.nats.as_mut().unwrap().kill();
    let refused = json!([{"event_id": "6f0e9c1e-3d6b-4c44-9a53-6c1f0c3b7a11", "stat": "bananas", "value": 100}]);
    for _ in 0..3 {
        let started = Instant::now();
        let r = l.events(&ann, refused.clone());
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{r:?}");
        assert!(took < Duration::from_secs(1), "the 503 took {took:?}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert!(r.header("retry-after").is_some(), "{r:?}");
    }
    l.nats.as_mut().unwrap().restart();
    let resent =
        laurel_tests::wait_until("ingest to accept again", Duration::from_secs(30), || {
            let r = l.events(&ann, refused.clone());
            (r.status == 202).then_some(r)
        });
    assert_eq!(
        resent.json["accepted"].as_u64().unwrap() + resent.json["duplicates"].as_u64().unwrap(),
        1,
        "{:?}",
        resent.json
    );
    let after = token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 1}])));
    let stats = l.my(&ann, "stats", Some(&after));
    if stats["stats"]["bananas"] != 106 {
        let logs = crate::faults::explain(&mut l, 4, "ann");
        panic!("5 before, the refused 100 once, 1 after: {stats}\n{logs}");
    }
}

/// With the broker gone for good, SIGTERM still ends the process within the drain time.
#[test]
fn shutdown_is_bounded_when_the_broker_is_gone_for_good() {
    let mut l = launch_with(Backend::Nats, &["--shutdown-timeout-secs", "2"]);
    l.define_game();
    let ann = l.laurel.token(&["--player", "ann"]);
    token_of(&l.events(&ann, json!([{"stat": "bananas", "value": 5}])));
    l.nats.as_mut().unwrap().kill();
    assert_eq!(
        l.events(&ann, json!([{"stat": "bananas", "value": 1}]))
            .status,
        503
    );
    let started = Instant::now();
    let exited = l.laurel.terminate_within(Duration::from_secs(8));
    assert!(
        exited.is_some(),
        "laurel was still running {:?} after SIGTERM",
        started.elapsed()
    );
}

crate::both_backends_sync!(numbers_stay_finite_and_huge_integers_are_refused_alike);
