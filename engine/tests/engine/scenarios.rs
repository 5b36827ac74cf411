//! Given definitions and events, when an event arrives, then these outputs.

use laurel_engine::{Engine, coalesce};
use laurel_schemas::outputs::unlock_id;
use laurel_schemas::{
    AchievementId, CauseKind, Output, PlayerId, Reason, Source, StatsMessage, ValidationError,
    Value,
};
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

mod aggregation {
    use super::*;

    #[test]
    fn sum_adds_every_reported_value() {
        let mut s = given().stat("kills", int_sum());
        s.report("p", "kills", 3);
        s.report("p", "kills", -1);
        s.report("p", "kills", 5);
        assert_eq!(s.value("p", "kills"), Some(Value::Int(7)));
    }

    #[test]
    fn max_keeps_the_largest_value() {
        let mut s = given().stat("score", json!({"aggregation": "max", "kind": "int"}));
        s.report("p", "score", 30);
        s.report("p", "score", 10);
        assert_eq!(s.value("p", "score"), Some(Value::Int(30)));
        s.report("p", "score", 31);
        assert_eq!(s.value("p", "score"), Some(Value::Int(31)));
    }

    #[test]
    fn min_keeps_the_smallest_value() {
        let mut s = given().stat("lap", json!({"aggregation": "min", "kind": "float"}));
        s.report("p", "lap", 93.5);
        s.report("p", "lap", 95.0);
        assert_eq!(s.value("p", "lap"), Some(Value::Float(93.5)));
        s.report("p", "lap", 90.25);
        assert_eq!(s.value("p", "lap"), Some(Value::Float(90.25)));
    }

    #[test]
    fn latest_keeps_the_last_value() {
        let mut s = given().stat("level", json!({"aggregation": "latest", "kind": "int"}));
        s.report("p", "level", 30);
        s.report("p", "level", 12);
        assert_eq!(s.value("p", "level"), Some(Value::Int(12)));
    }

    #[test]
    fn float_stats_sum_floats_and_accept_integers() {
        let mut s = given().stat("distance", json!({"aggregation": "sum", "kind": "float"}));
        s.report("p", "distance", 1.5);
        s.report("p", "distance", 2);
        assert_eq!(s.value("p", "distance"), Some(Value::Float(3.5)));
    }

    #[test]
    fn int_stats_refuse_fractions_but_take_whole_floats() {
        let mut s = given().stat("kills", int_sum());
        let out = s.report("p", "kills", 1.5);
        assert_eq!(rejections(&out), vec![Reason::NotInteger]);
        assert_eq!(s.value("p", "kills"), None);
        s.report("p", "kills", 2.0);
        assert_eq!(s.value("p", "kills"), Some(Value::Int(2)));
    }

    #[test]
    fn int_sums_saturate_instead_of_overflowing() {
        let mut s = given().stat("kills", int_sum());
        s.report("p", "kills", i64::MAX);
        s.report("p", "kills", 5);
        assert_eq!(s.value("p", "kills"), Some(Value::Int(i64::MAX)));
    }

    #[test]
    fn a_changed_value_is_reported_and_an_unchanged_one_is_not() {
        let mut s = given().stat("score", json!({"aggregation": "max", "kind": "int"}));
        let out = s.report("p", "score", 10);
        assert!(matches!(&out[..], [Output::Stat(c)] if c.value == Value::Int(10)));
        assert!(s.report("p", "score", 4).is_empty());
    }
}

mod anti_cheat {
    use super::*;

    #[test]
    fn values_outside_the_bounds_are_rejected() {
        let mut s = given().stat(
            "kills",
            json!({"aggregation": "sum", "kind": "int", "min_value": 0, "max_value": 100}),
        );
        assert_eq!(
            rejections(&s.report("p", "kills", -1)),
            vec![Reason::BelowMin { min: Value::Int(0) }]
        );
        assert_eq!(
            rejections(&s.report("p", "kills", 101)),
            vec![Reason::AboveMax {
                max: Value::Int(100)
            }]
        );
        assert_eq!(s.value("p", "kills"), None);
    }

    #[test]
    fn a_sum_saturates_at_its_max_value() {
        let mut s = given().stat(
            "kills",
            json!({"aggregation": "sum", "kind": "int", "max_value": 100}),
        );
        s.report("p", "kills", 60);
        s.report("p", "kills", 60);
        assert_eq!(s.value("p", "kills"), Some(Value::Int(100)));
    }

    #[test]
    fn a_sum_event_larger_than_max_delta_is_rejected() {
        let mut s = given().stat(
            "kills",
            json!({"aggregation": "sum", "kind": "int", "max_delta": 10}),
        );
        s.report("p", "kills", 10);
        let out = s.report("p", "kills", 11);
        assert_eq!(
            rejections(&out),
            vec![Reason::DeltaTooLarge {
                delta: 11.0,
                max_delta: 10.0
            }]
        );
        assert_eq!(s.value("p", "kills"), Some(Value::Int(10)));
    }

    #[test]
    fn max_delta_measures_the_change_from_the_current_value() {
        let mut s = given().stat(
            "level",
            json!({"aggregation": "latest", "kind": "int", "max_delta": 5}),
        );
        // The first value is measured from zero.
        assert_eq!(rejections(&s.report("p", "level", 6)).len(), 1);
        s.report("p", "level", 5);
        s.report("p", "level", 10);
        assert_eq!(rejections(&s.report("p", "level", 16)).len(), 1);
        assert_eq!(s.value("p", "level"), Some(Value::Int(10)));
    }

    #[test]
    fn players_cannot_report_server_only_stats() {
        let mut s = given().stat("kills", int_sum()).stat(
            "jumps",
            json!({"aggregation": "sum", "kind": "int", "client_writable": true}),
        );
        let out = s.report_as("p", "kills", Value::Int(1), Source::Player);
        assert_eq!(
            rejections(&out),
            vec![Reason::NotWritable {
                stat: "kills".into()
            }]
        );
        assert!(rejections(&s.report_as("p", "jumps", Value::Int(1), Source::Player)).is_empty());
        assert!(rejections(&s.report_as("p", "kills", Value::Int(1), Source::Server)).is_empty());
        assert_eq!(s.value("p", "kills"), Some(Value::Int(1)));
    }

    #[test]
    fn undefined_stats_are_rejected() {
        let mut s = given();
        let out = s.report("p", "ghost", 1);
        assert_eq!(
            rejections(&out),
            vec![Reason::UnknownStat {
                stat: "ghost".into()
            }]
        );
    }
}

mod conditions {
    use super::*;

    #[test]
    fn at_least_unlocks_when_the_threshold_is_reached() {
        let mut s = given().stat("kills", int_sum()).achievement(
            "K10",
            json!({"title": "Ten", "conditions": [{"stat": "kills", "at_least": 10}]}),
        );
        assert!(unlocked_ids(&s.report("p", "kills", 9)).is_empty());
        assert_eq!(unlocked_ids(&s.report("p", "kills", 1)), vec!["K10"]);
    }

    #[test]
    fn at_most_holds_at_or_below_the_threshold() {
        let mut s = given()
            .stat("lap", json!({"aggregation": "min", "kind": "float"}))
            .achievement(
                "FAST",
                json!({"title": "Fast", "conditions": [{"stat": "lap", "at_most": 60.0}]}),
            );
        assert!(unlocked_ids(&s.report("p", "lap", 61.0)).is_empty());
        assert_eq!(unlocked_ids(&s.report("p", "lap", 60)), vec!["FAST"]);
    }

    #[test]
    fn a_condition_on_a_stat_never_reported_does_not_hold() {
        let mut s = given()
            .stat("deaths", int_sum())
            .stat("wins", int_sum())
            .achievement(
                "FLAWLESS",
                json!({"title": "Flawless", "conditions": [
                    {"stat": "wins", "at_least": 1}, {"stat": "deaths", "at_most": 0}]}),
            );
        assert!(unlocked_ids(&s.report("p", "wins", 1)).is_empty());
        assert_eq!(unlocked_ids(&s.report("p", "deaths", 0)), vec!["FLAWLESS"]);
    }

    #[test]
    fn all_conditions_must_hold() {
        let mut s = given()
            .stat("kills", int_sum())
            .stat("wins", int_sum())
            .achievement(
                "BOTH",
                json!({"title": "Both", "conditions": [
                    {"stat": "kills", "at_least": 5}, {"stat": "wins", "at_least": 2}]}),
            );
        assert!(unlocked_ids(&s.report("p", "kills", 5)).is_empty());
        assert!(unlocked_ids(&s.report("p", "wins", 1)).is_empty());
        assert_eq!(unlocked_ids(&s.report("p", "wins", 1)), vec!["BOTH"]);
    }

    #[test]
    fn players_are_evaluated_separately() {
        let mut s = given().stat("kills", int_sum()).achievement(
            "K2",
            json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 2}]}),
        );
        s.report("a", "kills", 1);
        assert!(unlocked_ids(&s.report("b", "kills", 1)).is_empty());
        assert_eq!(unlocked_ids(&s.report("a", "kills", 1)), vec!["K2"]);
    }

    #[test]
    fn an_event_only_evaluates_achievements_that_read_its_stat() {
        // TIMED's stat was satisfied before its window opened; a later event on another stat,
        // inside the window, is not about TIMED and must not unlock it.
        let mut s = given().stat("kills", int_sum()).stat("jumps", int_sum());
        let opens = s.now + 1000;
        let from =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(opens) * 1_000_000).unwrap();
        let from = from
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        s.define(
            "TIMED",
            json!({"title": "t", "available_from": from, "conditions": [{"stat": "kills", "at_least": 1}]}),
        );
        s.report("p", "kills", 1);
        s.now = opens;
        assert!(unlocked_ids(&s.report("p", "jumps", 1)).is_empty());
        assert_eq!(unlocked_ids(&s.report("p", "kills", 1)), vec!["TIMED"]);
    }
}

mod requirements {
    use super::*;

    fn chain() -> Scenario {
        given()
            .stat("kills", int_sum())
            .stat("wins", int_sum())
            .achievement("FIRST_WIN", json!({"title": "t", "conditions": [{"stat": "wins", "at_least": 1}]}))
            .achievement(
                "VETERAN",
                json!({"title": "t", "requires": ["FIRST_WIN"], "conditions": [{"stat": "kills", "at_least": 3}]}),
            )
    }

    #[test]
    fn a_requirement_must_be_earned_first() {
        let mut s = chain();
        assert!(unlocked_ids(&s.report("p", "kills", 5)).is_empty());
    }

    #[test]
    fn earning_a_requirement_cascades_in_the_same_step() {
        let mut s = chain();
        s.report("p", "kills", 5);
        let out = s.report("p", "wins", 1);
        assert_eq!(unlocked_ids(&out), vec!["FIRST_WIN", "VETERAN"]);
        let u = unlocks(&out);
        assert_eq!(u[1].cause, CauseKind::Requirement);
        assert_eq!(u[1].caused_by, u[0].caused_by);
    }

    #[test]
    fn a_grant_cascades_too() {
        let mut s = chain();
        s.report("p", "kills", 5);
        assert_eq!(
            unlocked_ids(&s.grant("p", "FIRST_WIN")),
            vec!["FIRST_WIN", "VETERAN"]
        );
    }

    #[test]
    fn requirement_cycles_and_unknown_references_are_refused() {
        let s = chain();
        let defs = s.engine.definitions();
        let spec = serde_json::from_value(json!({"title": "t", "requires": ["VETERAN"], "conditions": [{"stat": "nope", "at_least": 1}]})).unwrap();
        let errors = defs
            .check_achievement(&AchievementId::new("FIRST_WIN").unwrap(), &spec)
            .unwrap_err();
        assert_eq!(
            errors,
            vec![
                ValidationError::new(
                    "conditions[0].stat",
                    Reason::UnknownStat {
                        stat: "nope".into()
                    }
                ),
                ValidationError::new("requires[0]", Reason::SelfReference),
            ]
        );
        let spec = serde_json::from_value(json!({"title": "t", "requires": ["MISSING"]})).unwrap();
        let errors = defs
            .check_achievement(&AchievementId::new("X").unwrap(), &spec)
            .unwrap_err();
        assert_eq!(
            errors,
            vec![ValidationError::new(
                "requires[0]",
                Reason::UnknownAchievement {
                    id: "MISSING".into()
                }
            )]
        );
    }
}

mod windows {
    use super::*;

    fn rfc3339(ms: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    fn windowed() -> (Scenario, i64, i64) {
        let s = given().stat("kills", int_sum());
        let (from, until) = (s.now + 10_000, s.now + 20_000);
        let s = s.achievement(
            "EVENT",
            json!({"title": "t", "available_from": rfc3339(from), "available_until": rfc3339(until),
                   "conditions": [{"stat": "kills", "at_least": 1}]}),
        );
        (s, from, until)
    }

    #[test]
    fn events_before_the_window_do_not_unlock() {
        let (mut s, from, _) = windowed();
        s.now = from - 1;
        assert!(unlocked_ids(&s.report("p", "kills", 1)).is_empty());
        s.now = from;
        assert_eq!(unlocked_ids(&s.report("p", "kills", 1)), vec!["EVENT"]);
    }

    #[test]
    fn events_at_or_after_the_end_do_not_unlock() {
        let (mut s, _, until) = windowed();
        s.now = until;
        assert!(unlocked_ids(&s.report("p", "kills", 1)).is_empty());
        s.now = until - 1;
        assert_eq!(unlocked_ids(&s.report("p", "kills", 1)), vec!["EVENT"]);
    }

    #[test]
    fn no_progress_is_reported_outside_the_window() {
        let s = given().stat("kills", int_sum());
        let (from, until) = (s.now + 10_000, s.now + 20_000);
        let mut s = s.achievement(
            "EVENT",
            json!({"title": "t", "available_from": rfc3339(from), "available_until": rfc3339(until),
                   "conditions": [{"stat": "kills", "at_least": 8}]}),
        );
        s.now = from - 1;
        assert!(progress(&s.report("p", "kills", 2)).is_empty(), "upcoming");
        s.now = from;
        assert_eq!(
            progress(&s.report("p", "kills", 2)),
            vec![("EVENT".into(), 0, Value::Int(4), Value::Int(8))],
            "open: halfway"
        );
        s.now = until;
        assert!(progress(&s.report("q", "kills", 4)).is_empty(), "closed");
    }

    #[test]
    fn the_window_is_judged_on_server_time_not_client_time() {
        let (mut s, from, until) = windowed();
        s.now = until + 5;
        let mut event = s.stat_event("p", "kills", Value::Int(1), Source::Server);
        event.ts = from + 1; // a client clock claiming to be inside the window
        assert!(unlocked_ids(&s.send(StatsMessage::Stat(event))).is_empty());
    }
}

mod grants {
    use super::*;

    fn setup() -> Scenario {
        given()
            .stat("kills", int_sum())
            .achievement("BETA_TESTER", json!({"title": "Beta", "points": 50}))
            .achievement(
                "K1",
                json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 1}]}),
            )
    }

    #[test]
    fn an_achievement_without_conditions_is_earned_only_by_a_grant() {
        let mut s = setup();
        assert!(
            unlocked_ids(&s.report("p", "kills", 100))
                .iter()
                .all(|id| id != "BETA_TESTER")
        );
        let out = s.grant("p", "BETA_TESTER");
        let u = unlocks(&out);
        assert_eq!(unlocked_ids(&out), vec!["BETA_TESTER"]);
        assert_eq!((u[0].cause, u[0].points), (CauseKind::Grant, 50));
    }

    #[test]
    fn a_replay_grant_unlocks_once_marked_as_the_replay_at_the_historical_time() {
        let mut s = setup()
            .achievement("K1_FIRST", json!({"title": "t", "requires": ["K1"], "conditions": [{"stat": "kills", "at_least": 0}]}));
        let replay = Uuid::from_u128(0xfeed);
        let earned_at = s.now - 86_400_000;
        let out = s.replay_grant("p", "K1", replay, earned_at);
        let u = unlocks(&out);
        assert_eq!(
            unlocked_ids(&out),
            vec!["K1"],
            "a dependent needs its own conditions"
        );
        assert_eq!(
            (u[0].cause, u[0].caused_by, u[0].unlocked_at, u[0].replay),
            (CauseKind::Replay, replay, earned_at, true)
        );
        assert!(
            s.replay_grant("p", "K1", replay, earned_at).is_empty(),
            "earned once"
        );
        let live = s.report("p", "kills", 5);
        let u = unlocks(&live);
        assert_eq!(unlocked_ids(&live), vec!["K1_FIRST"]);
        assert!(!u[0].replay, "live play after a replay is not a replay");
    }

    #[test]
    fn defining_or_requiring_a_grant_only_achievement_unlocks_nothing() {
        let mut s = setup();
        s.report("p", "kills", 1);
        assert!(
            s.define("GRANT_ONLY", json!({"title": "t", "requires": ["K1"]}))
                .is_empty()
        );
        assert!(
            unlocked_ids(&s.report("q", "kills", 1))
                .iter()
                .all(|id| id != "GRANT_ONLY")
        );
    }

    #[test]
    fn a_grant_of_an_earned_achievement_changes_nothing() {
        let mut s = setup();
        s.grant("p", "BETA_TESTER");
        assert!(s.grant("p", "BETA_TESTER").is_empty());
    }

    #[test]
    fn grants_of_unknown_or_archived_achievements_are_rejected() {
        let mut s = setup();
        assert_eq!(
            rejections(&s.grant("p", "NOPE")),
            vec![Reason::UnknownAchievement { id: "NOPE".into() }]
        );
        s.archive("BETA_TESTER");
        assert_eq!(
            rejections(&s.grant("p", "BETA_TESTER")),
            vec![Reason::Archived {
                id: "BETA_TESTER".into()
            }]
        );
    }
}

mod earned_stays_earned {
    use super::*;

    fn earned() -> Scenario {
        let mut s = given()
            .stat("level", json!({"aggregation": "latest", "kind": "int"}))
            .achievement(
                "L10",
                json!({"title": "t", "conditions": [{"stat": "level", "at_least": 10}]}),
            );
        assert_eq!(unlocked_ids(&s.report("p", "level", 10)), vec!["L10"]);
        s
    }

    fn still_earned(s: &Scenario) -> bool {
        let idx = s.engine.definitions().achievement_idx("L10").unwrap();
        s.engine.player("p").unwrap().has_earned(idx)
    }

    #[test]
    fn a_falling_stat_does_not_revoke_or_re_unlock() {
        let mut s = earned();
        s.report("p", "level", 3);
        assert!(unlocked_ids(&s.report("p", "level", 12)).is_empty());
        assert!(still_earned(&s));
    }

    #[test]
    fn raising_the_threshold_does_not_revoke() {
        let mut s = earned();
        let out = s.define(
            "L10",
            json!({"title": "t", "conditions": [{"stat": "level", "at_least": 50}]}),
        );
        assert!(out.is_empty());
        assert!(still_earned(&s));
    }

    #[test]
    fn archiving_does_not_revoke_and_stops_new_unlocks() {
        let mut s = earned();
        s.archive("L10");
        assert!(still_earned(&s));
        assert!(unlocked_ids(&s.report("q", "level", 10)).is_empty());
    }
}

mod definition_changes {
    use super::*;

    /// A set of changes (a definitions file applied whole) is applied whole before anyone
    /// is evaluated again: an achievement requiring another of the same set unlocks too,
    /// after it, each once.
    #[test]
    fn a_change_set_is_applied_whole_then_evaluated() {
        let mut s = given().stat("kills", json!({"aggregation": "sum", "kind": "int"}));
        s.report("p", "kills", 5);
        let file: laurel_schemas::DefinitionsFile = serde_json::from_value(json!({
            "achievements": {
                "A_LATER": {"title": "t", "requires": ["Z_FIRST"], "conditions": [{"stat": "kills", "at_least": 5}]},
                "Z_FIRST": {"title": "t", "conditions": [{"stat": "kills", "at_least": 1}]}
            }
        }))
        .unwrap();
        let changes = s
            .engine
            .definitions()
            .overlay(&file, s.now)
            .unwrap()
            .changes;
        let set = laurel_schemas::DefinitionEvent::ChangeSet {
            v: laurel_schemas::SchemaVersion::CURRENT,
            event_id: s.id(),
            changes,
            by: None,
            at: s.now,
        };
        let mut out = Vec::new();
        s.engine.apply_definition(&set, &mut out);
        assert_eq!(unlocked_ids(&out), ["Z_FIRST", "A_LATER"]);
        assert!(unlocked_ids(&s.report("p", "kills", 1)).is_empty());
    }

    #[test]
    fn a_new_achievement_unlocks_for_players_who_already_qualify() {
        let mut s = given().stat("kills", int_sum());
        s.report("veteran", "kills", 50);
        s.report("rookie", "kills", 2);
        let out = s.define(
            "K10",
            json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 10}]}),
        );
        let u = unlocks(&out);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].player_id.as_str(), "veteran");
        assert_eq!(
            (u[0].cause, u[0].unlocked_at),
            (CauseKind::Definition, s.now)
        );
    }

    #[test]
    fn lowering_a_threshold_unlocks_without_a_new_event() {
        let mut s = given().stat("kills", int_sum()).achievement(
            "K",
            json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 100}]}),
        );
        s.report("p", "kills", 60);
        let out = s.define(
            "K",
            json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 50}]}),
        );
        assert_eq!(unlocked_ids(&out), vec!["K"]);
        assert_eq!(unlocks(&out)[0].definition_version, 2);
    }

    #[test]
    fn a_changed_condition_moves_the_achievement_to_its_new_stat() {
        let mut s = given()
            .stat("kills", int_sum())
            .stat("wins", int_sum())
            .achievement(
                "A",
                json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 1}]}),
            );
        s.define(
            "A",
            json!({"title": "t", "conditions": [{"stat": "wins", "at_least": 1}]}),
        );
        assert!(unlocked_ids(&s.report("p", "kills", 5)).is_empty());
        assert_eq!(unlocked_ids(&s.report("p", "wins", 1)), vec!["A"]);
    }
}

mod outputs {
    use super::*;

    #[test]
    fn an_unlock_carries_its_deterministic_id_cause_and_definition() {
        let mut s = given().stat("kills", int_sum()).achievement(
            "K1",
            json!({"title": "t", "points": 15, "conditions": [{"stat": "kills", "at_least": 1}]}),
        );
        s.now += 42;
        let event = s.stat_event("p", "kills", Value::Int(1), Source::Server);
        let out = s.send(StatsMessage::Stat(event.clone()));
        let u = unlocks(&out)[0];
        let expected_id = unlock_id(
            &PlayerId::new("p").unwrap(),
            &AchievementId::new("K1").unwrap(),
        );
        assert_eq!(u.unlock_id, expected_id);
        assert_eq!(u.unlocked_at, event.received_at);
        assert_eq!(u.caused_by, event.event_id);
        assert_eq!(
            (u.definition_version, u.points, u.cause, u.replay),
            (1, 15, CauseKind::Stat, false)
        );
    }

    #[test]
    fn progress_is_reported_per_condition_that_reads_the_stat() {
        let mut s = given()
            .stat("kills", int_sum())
            .stat("wins", int_sum())
            .achievement(
                "A",
                json!({"title": "t", "conditions": [{"stat": "wins", "at_least": 3}, {"stat": "kills", "at_least": 10}]}),
            )
            .achievement("B", json!({"title": "t", "conditions": [{"stat": "wins", "at_least": 5}]}));
        let out = s.report("p", "kills", 4);
        assert_eq!(
            progress(&out),
            vec![("A".into(), 1, Value::Int(4), Value::Int(10))]
        );
    }

    #[test]
    fn progress_is_reported_at_each_quarter_of_the_way() {
        let mut s = given().stat("kills", int_sum()).achievement(
            "K100",
            json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 100}]}),
        );
        let mut reported = Vec::new();
        for _ in 0..10 {
            for (_, _, current, _) in progress(&s.report("p", "kills", 10)) {
                reported.push(current);
            }
        }
        let ints: Vec<Value> = [30, 50, 80, 100].into_iter().map(Value::Int).collect();
        assert_eq!(
            reported[..3],
            ints[..3],
            "25, 50 and 75 % crossed at 30, 50 and 80"
        );
        assert_eq!(
            reported.len(),
            3,
            "100 % is the unlock itself: {reported:?}"
        );
    }

    #[test]
    fn no_progress_is_reported_for_earned_achievements() {
        let mut s = given().stat("kills", int_sum()).achievement(
            "K2",
            json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 2}]}),
        );
        assert_eq!(
            progress(&s.report("p", "kills", 1)),
            vec![("K2".into(), 0, Value::Int(1), Value::Int(2))]
        );
        let out = s.report("p", "kills", 1);
        assert_eq!(unlocked_ids(&out), vec!["K2"]);
        assert!(progress(&out).is_empty());
        assert!(progress(&s.report("p", "kills", 1)).is_empty());
    }

    #[test]
    fn a_replay_marks_its_unlocks() {
        let s = given().stat("kills", int_sum()).achievement(
            "K1",
            json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 1}]}),
        );
        let mut replay = Engine::replaying(s.engine.definitions().clone());
        let mut out = Vec::new();
        let mut s = s;
        let event = s.stat_event("p", "kills", Value::Int(1), Source::Server);
        replay.apply(&StatsMessage::Stat(event), &mut out);
        assert!(unlocks(&out)[0].replay);
    }

    #[test]
    fn a_batch_reports_the_last_stat_value_and_its_progress_once() {
        let mut s = given()
            .stat("kills", int_sum())
            .achievement(
                "K5",
                json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 5}]}),
            )
            .achievement(
                "K9",
                json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 9}]}),
            );
        let mut batch: Vec<StatsMessage> = (0..5)
            .map(|_| StatsMessage::Stat(s.stat_event("p", "kills", Value::Int(1), Source::Server)))
            .collect();
        batch.push(StatsMessage::Stat(s.stat_event(
            "q",
            "kills",
            Value::Int(1),
            Source::Server,
        )));
        let mut out = Vec::new();
        s.engine.apply_batch(&batch, &mut out);
        let kinds: Vec<String> = out
            .iter()
            .map(|o| match o {
                Output::Stat(c) => format!("stat {} {}", c.player_id, c.value),
                Output::Progress(p) => format!(
                    "progress {} {} {}",
                    p.player_id, p.achievement_id, p.current
                ),
                Output::Unlocked(u) => format!("unlocked {} {}", u.player_id, u.achievement_id),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec!["stat p 5", "progress p K9 5", "unlocked p K5", "stat q 1"]
        );
    }

    #[test]
    fn coalescing_keeps_the_last_output_per_key_in_order() {
        let mut s = given().stat("kills", int_sum());
        let mut out = Vec::new();
        for player in ["p", "q", "p"] {
            out.extend(s.report(player, "kills", 1));
        }
        coalesce(&mut out);
        let values: Vec<String> = out
            .iter()
            .map(|o| match o {
                Output::Stat(c) => format!("{} {}", c.player_id, c.value),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(values, vec!["q 1", "p 2"]);
    }
}

mod resets {
    use super::*;

    fn game() -> Scenario {
        given()
            .stat("kills", int_sum())
            .achievement(
                "K2",
                json!({"title": "t", "points": 5, "conditions": [{"stat": "kills", "at_least": 2}]}),
            )
            .achievement(
                "R",
                json!({"title": "t", "repeat": {"max": null}, "conditions": [{"stat": "kills", "at_least": 1}]}),
            )
    }

    #[test]
    fn a_reset_player_starts_again_and_earns_new_unlocks() {
        let mut s = game();
        let first = s.report("p", "kills", 2);
        let before: Vec<Uuid> = unlocks(&first).iter().map(|u| u.unlock_id).collect();
        assert_eq!(unlocked_ids(&first), ["K2", "R"]);
        let out = s.reset("p");
        assert!(
            matches!(&out[..], [Output::PlayerReset(r)] if r.player_id.as_str() == "p" && r.resets == 1),
            "{out:?}"
        );
        assert_eq!(s.value("p", "kills"), None);
        let again = s.report("p", "kills", 2);
        let after = unlocks(&again);
        assert_eq!(unlocked_ids(&again), ["K2", "R"]);
        // The first earns again (occurrence 1), under ids never used before.
        assert!(after.iter().all(|u| u.occurrence == 1), "{after:?}");
        assert!(
            after.iter().all(|u| !before.contains(&u.unlock_id)),
            "{after:?}"
        );
        let p = PlayerId::new("p").unwrap();
        let k2 = AchievementId::new("K2").unwrap();
        assert_eq!(
            after[0].unlock_id,
            laurel_schemas::after_resets(unlock_id(&p, &k2), 1)
        );
        // A second reset: ids of its own again.
        s.reset("p");
        let third = s.report("p", "kills", 2);
        assert_eq!(
            unlocks(&third)[0].unlock_id,
            laurel_schemas::after_resets(unlock_id(&p, &k2), 2)
        );
    }

    #[test]
    fn a_reset_touches_no_other_player() {
        let mut s = game();
        s.report("p", "kills", 2);
        s.report("q", "kills", 1);
        s.reset("p");
        assert_eq!(s.value("q", "kills"), Some(Value::Int(1)));
        assert_eq!(unlocked_ids(&s.report("q", "kills", 1)), ["K2", "R"]);
    }

    #[test]
    fn coalescing_drops_what_a_reset_took_away_earlier_in_the_batch() {
        let mut s = game();
        let mut out = Vec::new();
        out.extend(s.report("p", "kills", 1));
        out.extend(s.report("q", "kills", 1));
        out.extend(s.reset("p"));
        out.extend(s.report("p", "kills", 1));
        coalesce(&mut out);
        let kinds: Vec<String> = out
            .iter()
            .filter_map(|o| match o {
                Output::Stat(c) => Some(format!(
                    "stat {} {} from {:?}",
                    c.player_id, c.value, c.previous
                )),
                Output::PlayerReset(r) => Some(format!("reset {}", r.player_id)),
                _ => None,
            })
            .collect();
        // p's change before the reset is gone; the one after counts from nothing.
        assert_eq!(
            kinds,
            ["stat q 1 from None", "reset p", "stat p 1 from None"]
        );
    }
}

mod snapshots {
    use super::*;

    #[test]
    fn a_restored_engine_continues_where_the_snapshot_left_off() {
        let mut s = given()
            .stat("kills", int_sum())
            .achievement(
                "K1",
                json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 1}]}),
            )
            .achievement(
                "K3",
                json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 3}]}),
            );
        s.report("p", "kills", 2);
        let stored = laurel_schemas::encode(&s.engine.snapshot());
        let snapshot = laurel_schemas::decode(&stored).unwrap();
        s.engine = Engine::restore(s.engine.definitions().clone(), &snapshot);
        assert_eq!(s.value("p", "kills"), Some(Value::Int(2)));
        assert!(unlocked_ids(&s.report("p", "kills", 1)).contains(&"K3".to_string()));
        assert!(!unlocked_ids(&s.report("p", "kills", 1)).contains(&"K1".to_string()));
    }
}

mod repeatable {
    use laurel_schemas::{Claim, claim_id, earn_id};

    use super::*;

    fn repeating(repeat: serde_json::Value) -> Scenario {
        given().stat("wins", int_sum()).achievement(
            "TEN_MORE",
            json!({"title": "t", "points": 5, "repeat": repeat,
                   "conditions": [{"stat": "wins", "at_least": 10}]}),
        )
    }

    /// An earn: its number, its id, and the values its next earn counts from.
    type Earn = (u32, Uuid, Vec<(String, Value)>);

    fn earns(out: &[Output]) -> Vec<Earn> {
        unlocks(out)
            .iter()
            .map(|u| {
                let baseline = u
                    .baseline
                    .iter()
                    .map(|(s, v)| (s.to_string(), *v))
                    .collect();
                (u.occurrence, u.unlock_id, baseline)
            })
            .collect()
    }

    #[test]
    fn each_further_ten_is_another_earn_with_an_id_of_its_own() {
        let mut s = repeating(json!({"max": null}));
        let p = PlayerId::new("p").unwrap();
        let a = AchievementId::new("TEN_MORE").unwrap();
        assert_eq!(
            earns(&s.report("p", "wins", 10)),
            vec![(1, unlock_id(&p, &a), vec![("wins".into(), Value::Int(10))])]
        );
        // Progress starts again from 10: 9 more is not enough, and a jump past two tens is
        // one earn, the next counting from where it happened.
        assert!(earns(&s.report("p", "wins", 9)).is_empty());
        assert_eq!(
            earns(&s.report("p", "wins", 16)),
            vec![(2, earn_id(&p, &a, 2), vec![("wins".into(), Value::Int(35))])]
        );
        assert!(earns(&s.report("p", "wins", 9)).is_empty());
        let third = s.report("p", "wins", 1);
        assert_eq!(earns(&third)[0].0, 3);
        assert_ne!(earn_id(&p, &a, 2), earn_id(&p, &a, 3));
        let idx = s.engine.definitions().achievement_idx("TEN_MORE").unwrap();
        assert_eq!(s.engine.player("p").unwrap().times_earned(idx), 3);
    }

    #[test]
    fn progress_counts_from_the_last_earn() {
        let mut s = repeating(json!({}));
        s.report("p", "wins", 10);
        let out = s.report("p", "wins", 5);
        let progress: Vec<(Value, Value)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Progress(p) => Some((p.current, p.required)),
                _ => None,
            })
            .collect();
        assert_eq!(progress, vec![(Value::Int(5), Value::Int(10))]);
    }

    #[test]
    fn max_ends_the_repeats_and_grants_count_against_it() {
        let mut s = repeating(json!({"max": 2}));
        assert_eq!(unlocked_ids(&s.grant("p", "TEN_MORE")), vec!["TEN_MORE"]);
        assert_eq!(earns(&s.report("p", "wins", 10))[0].0, 2);
        assert!(earns(&s.report("p", "wins", 50)).is_empty());
        assert!(earns(&s.grant("p", "TEN_MORE")).is_empty());
    }

    #[test]
    fn a_cooldown_holds_the_next_earn_until_it_passed_in_event_time() {
        let mut s = repeating(json!({"cooldown_secs": 60}));
        s.report("p", "wins", 10);
        s.now += 59_000;
        assert!(
            earns(&s.report("p", "wins", 10)).is_empty(),
            "within the cooldown"
        );
        s.now += 1_000;
        // The progress made during the cooldown counts once it is over, at the next event
        // that moves the stat.
        assert_eq!(earns(&s.report("p", "wins", 1))[0].0, 2);
        // A grant is not held by the cooldown.
        assert_eq!(earns(&s.grant("p", "TEN_MORE"))[0].0, 3);
    }

    #[test]
    fn a_one_shot_turned_repeatable_counts_on_from_its_earn() {
        let mut s = given().stat("wins", int_sum()).achievement(
            "WINNER",
            json!({"title": "t", "conditions": [{"stat": "wins", "at_least": 10}]}),
        );
        s.report("p", "wins", 12);
        let out = s.define(
            "WINNER",
            json!({"title": "t", "repeat": {}, "conditions": [{"stat": "wins", "at_least": 10}]}),
        );
        // What the one-shot's earn counted is not known: the next earn counts from the
        // values when it became repeatable (12), not from zero.
        assert!(out.is_empty(), "{out:?}");
        assert!(earns(&s.report("p", "wins", 9)).is_empty());
        assert_eq!(earns(&s.report("p", "wins", 1))[0].0, 2);
    }

    #[test]
    fn a_repeatable_must_have_something_to_count_towards() {
        let s = given().stat("wins", int_sum());
        let spec: laurel_schemas::AchievementSpec = serde_json::from_value(json!({
            "title": "t", "repeat": {"max": 0}, "conditions": [{"stat": "wins", "at_most": 3}]
        }))
        .unwrap();
        let errors = s
            .engine
            .definitions()
            .check_achievement(&AchievementId::new("X").unwrap(), &spec)
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["repeat.max", "repeat"]);
    }

    fn rewarded(claim: bool) -> Scenario {
        given().stat("wins", int_sum()).achievement(
            "GOLDEN",
            json!({"title": "t", "repeat": {}, "rewards": [{"currency": "gold", "amount": 100}],
                   "claim": claim, "conditions": [{"stat": "wins", "at_least": 1}]}),
        )
    }

    fn rewards(out: &[Output]) -> Vec<(Uuid, u32, bool)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Reward(r) => Some((r.unlock_id, r.occurrence, r.claim)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_earn_pays_its_rewards_under_its_unlock_id_before_the_unlock() {
        let mut s = rewarded(false);
        let out = s.report("p", "wins", 1);
        let first = unlocks(&out)[0].unlock_id;
        assert_eq!(rewards(&out), vec![(first, 1, false)]);
        assert!(
            matches!(out.iter().position(|o| matches!(o, Output::Reward(_))), Some(i) if matches!(out[i + 1], Output::Unlocked(_)))
        );
        let out = s.report("p", "wins", 1);
        assert_eq!(rewards(&out), vec![(unlocks(&out)[0].unlock_id, 2, false)]);
    }

    fn claim(s: &mut Scenario, unlock_id: Uuid) -> Vec<Output> {
        let claim = Claim {
            v: laurel_schemas::SchemaVersion::CURRENT,
            event_id: claim_id(unlock_id),
            player_id: PlayerId::new("p").unwrap(),
            unlock_id,
            received_at: s.now,
        };
        s.send(StatsMessage::Claim(claim))
    }

    #[test]
    fn a_reward_to_claim_pays_once_on_the_claim() {
        let mut s = rewarded(true);
        let earned = unlocks(&s.report("p", "wins", 1))[0].unlock_id;
        let out = claim(&mut s, earned);
        let claimed: Vec<Uuid> = out
            .iter()
            .filter_map(|o| match o {
                Output::RewardClaimed(c) => Some(c.unlock_id),
                _ => None,
            })
            .collect();
        assert_eq!(claimed, vec![earned]);
        assert!(
            claim(&mut s, earned).is_empty(),
            "a second claim pays nothing"
        );
        assert!(
            claim(&mut s, Uuid::from_u128(7)).is_empty(),
            "nor a claim of no earn"
        );
        // What waits for a claim survives storage.
        let second = unlocks(&s.report("p", "wins", 1))[0].unlock_id;
        let stored = laurel_schemas::encode(&s.engine.snapshot());
        s.engine = Engine::restore(
            s.engine.definitions().clone(),
            &laurel_schemas::decode(&stored).unwrap(),
        );
        assert_eq!(claim(&mut s, second).len(), 1);
    }

    #[test]
    fn an_offline_event_counts_at_the_time_it_was_played() {
        let mut s = given().stat("wins", int_sum()).achievement(
            "W",
            json!({"title": "t", "conditions": [{"stat": "wins", "at_least": 1}]}),
        );
        let mut event = s.stat_event("p", "wins", Value::Int(1), Source::Server);
        event.occurred_at = Some(s.now - 3_600_000);
        let out = s.send(StatsMessage::Stat(event));
        assert_eq!(unlocks(&out)[0].unlocked_at, s.now - 3_600_000);
    }
}

mod periodic {
    use laurel_schemas::{DefinitionEvent, SchemaVersion, SeasonDefinition, SeasonId};

    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-11-30T00:00:00Z, a Monday: the start of ISO week 2026-W49.
    const W49: i64 = 1_796_083_200_000;

    fn weekly() -> Scenario {
        let mut s = given()
            .stat("wins", json!({"aggregation": "sum", "kind": "int", "period": "weekly"}))
            .achievement(
                "WEEKLY_TEN",
                json!({"title": "t", "points": 3, "conditions": [{"stat": "wins", "at_least": 10}]}),
            );
        s.now = W49 + DAY;
        s
    }

    fn stat_periods(out: &[Output]) -> Vec<(Option<String>, Value)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Stat(c) => Some((c.period.clone(), c.value)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_weekly_stat_counts_each_week_from_zero() {
        let mut s = weekly();
        s.report("p", "wins", 6);
        assert_eq!(
            stat_periods(&s.report("p", "wins", 1)),
            vec![(Some("2026-W49".into()), Value::Int(7))]
        );
        s.now += 7 * DAY;
        assert_eq!(
            stat_periods(&s.report("p", "wins", 2)),
            vec![(Some("2026-W50".into()), Value::Int(2))]
        );
    }

    #[test]
    fn a_periodic_achievement_is_earned_once_per_period_under_an_id_per_period() {
        let mut s = weekly();
        let first = s.report("p", "wins", 10);
        let u = unlocks(&first)[0].clone();
        assert_eq!(u.period.as_deref(), Some("2026-W49"));
        assert!(
            unlocks(&s.report("p", "wins", 10)).is_empty(),
            "once per period"
        );
        s.now += 7 * DAY;
        let second = s.report("p", "wins", 10);
        let v = unlocks(&second)[0].clone();
        assert_eq!(v.period.as_deref(), Some("2026-W50"));
        assert_ne!(u.unlock_id, v.unlock_id);
        assert_eq!(
            v.unlock_id,
            laurel_schemas::period_earn_id(
                &PlayerId::new("p").unwrap(),
                &AchievementId::new("WEEKLY_TEN").unwrap(),
                "2026-W50"
            )
        );
    }

    #[test]
    fn offline_play_counts_in_the_period_it_was_played() {
        let mut s = weekly();
        s.now += 7 * DAY; // in 2026-W50
        s.report("p", "wins", 4);
        // Played last week while offline, sent now: it counts for last week, and earns it.
        let mut event = s.stat_event("p", "wins", Value::Int(10), Source::Server);
        event.occurred_at = Some(W49 + 2 * DAY);
        let out = s.send(StatsMessage::Stat(event));
        assert_eq!(
            stat_periods(&out),
            vec![(Some("2026-W49".into()), Value::Int(10))]
        );
        assert_eq!(unlocks(&out)[0].period.as_deref(), Some("2026-W49"));
        assert_eq!(unlocks(&out)[0].unlocked_at, W49 + 2 * DAY);
    }

    #[test]
    fn periods_older_than_the_kept_ones_are_refused() {
        let mut s = weekly();
        for week in 0..8 {
            s.now = W49 + week * 7 * DAY;
            s.report("p", "wins", 1);
        }
        let mut event = s.stat_event("p", "wins", Value::Int(1), Source::Server);
        event.occurred_at = Some(W49 - 7 * DAY);
        let out = s.send(StatsMessage::Stat(event));
        assert_eq!(
            rejections(&out),
            vec![Reason::PeriodClosed {
                period: "2026-W48".into(),
                kept: 8
            }]
        );
    }

    fn season(s: &mut Scenario, from: i64, until: i64) {
        let at = |ms: i64| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
        };
        let event = DefinitionEvent::SeasonDefined {
            v: SchemaVersion::CURRENT,
            event_id: s.id(),
            definition: SeasonDefinition {
                id: SeasonId::new("s3").unwrap(),
                starts_at: at(from),
                ends_at: at(until),
                version: 1,
            },
            by: None,
            at: s.now,
        };
        s.engine.apply_definition(&event, &mut Vec::new());
    }

    #[test]
    fn a_season_stat_counts_inside_its_season_only() {
        let mut s = given();
        season(&mut s, W49, W49 + 28 * DAY);
        let mut s = s
            .stat(
                "kills",
                json!({"aggregation": "sum", "kind": "int", "period": {"season": "s3"}}),
            )
            .achievement(
                "S3_HUNTER",
                json!({"title": "t", "conditions": [{"stat": "kills", "at_least": 5}]}),
            );
        s.now = W49 - 1;
        assert_eq!(
            rejections(&s.report("p", "kills", 5)),
            vec![Reason::OutsideSeason {
                season: "s3".into()
            }]
        );
        s.now = W49;
        let out = s.report("p", "kills", 5);
        assert_eq!(unlocks(&out)[0].period.as_deref(), Some("s3"));
        s.now = W49 + 28 * DAY;
        assert_eq!(rejections(&s.report("p", "kills", 1)).len(), 1);
    }

    #[test]
    fn an_achievement_reads_one_period_and_does_not_repeat_on_top() {
        let s = given()
            .stat(
                "wins",
                json!({"aggregation": "sum", "kind": "int", "period": "weekly"}),
            )
            .stat(
                "laps",
                json!({"aggregation": "sum", "kind": "int", "period": "daily"}),
            );
        let spec: laurel_schemas::AchievementSpec = serde_json::from_value(json!({
            "title": "t", "repeat": {},
            "conditions": [{"stat": "wins", "at_least": 1}, {"stat": "laps", "at_least": 1}]
        }))
        .unwrap();
        let errors = s
            .engine
            .definitions()
            .check_achievement(&AchievementId::new("X").unwrap(), &spec)
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["conditions[1].stat", "repeat"]);
    }
}

mod community {
    use laurel_schemas::{CommunityReached, SchemaVersion, StatName};

    use super::*;

    fn goal() -> Scenario {
        given()
            .stat("donations", json!({"aggregation": "sum", "kind": "int", "scope": "global", "client_writable": true}))
            .achievement(
                "BRIDGE_BUILT",
                json!({"title": "t", "min_contribution": 10,
                       "conditions": [{"stat": "donations", "at_least": 100}]}),
            )
    }

    fn reached(s: &mut Scenario) -> Vec<Output> {
        let msg = CommunityReached {
            v: SchemaVersion::CURRENT,
            event_id: s.id(),
            achievement_id: AchievementId::new("BRIDGE_BUILT").unwrap(),
            total: Value::Int(100),
            received_at: s.now,
        };
        s.send(StatsMessage::CommunityReached(msg))
    }

    #[test]
    fn a_reached_goal_unlocks_for_every_contributor_once_and_later_for_latecomers() {
        let mut s = goal();
        assert!(
            unlocks(&s.report("a", "donations", 60)).is_empty(),
            "not reached yet"
        );
        s.report("b", "donations", 30);
        s.report("c", "donations", 5);
        let share = s.engine.community().shares[&StatName::new("donations").unwrap()];
        assert_eq!(share, Value::Int(95));
        s.report("c", "donations", 5);
        let out = reached(&mut s);
        let mut who: Vec<(String, CauseKind)> = unlocks(&out)
            .iter()
            .map(|u| (u.player_id.to_string(), u.cause))
            .collect();
        who.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            who,
            vec![
                ("a".into(), CauseKind::Community),
                ("b".into(), CauseKind::Community),
                ("c".into(), CauseKind::Community)
            ]
        );
        assert!(unlocks(&reached(&mut s)).is_empty(), "reached once");
        // A player who reaches the minimum later earns it then, once.
        s.report("d", "donations", 4);
        assert!(unlocks(&s.report("d", "donations", 4)).is_empty());
        let late = s.report("d", "donations", 2);
        assert_eq!(unlocks(&late)[0].cause, CauseKind::Stat);
        assert!(unlocks(&s.report("d", "donations", 50)).is_empty());
        assert_eq!(
            s.engine.community().shares[&StatName::new("donations").unwrap()],
            Value::Int(160)
        );
    }

    #[test]
    fn a_community_goal_is_one_threshold_on_a_global_sum() {
        let s = given()
            .stat(
                "donations",
                json!({"aggregation": "sum", "kind": "int", "scope": "global"}),
            )
            .stat("wins", int_sum());
        let check = |spec: serde_json::Value| -> Vec<String> {
            let spec: laurel_schemas::AchievementSpec = serde_json::from_value(spec).unwrap();
            s.engine
                .definitions()
                .check_achievement(&AchievementId::new("X").unwrap(), &spec)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(
            check(json!({"title": "t", "repeat": {}, "conditions": [
                {"stat": "donations", "at_least": 100}, {"stat": "wins", "at_least": 1}]})),
            vec!["conditions", "repeat"]
        );
        assert_eq!(
            check(
                json!({"title": "t", "min_contribution": 5, "conditions": [{"stat": "wins", "at_least": 1}]})
            ),
            vec!["min_contribution"]
        );
        let global_max: laurel_schemas::StatSpec = serde_json::from_value(
            json!({"aggregation": "max", "kind": "int", "scope": "global", "period": "daily"}),
        )
        .unwrap();
        let fields: Vec<String> = global_max
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, vec!["scope", "scope"]);
    }
}
