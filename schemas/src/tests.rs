//! Wire round-trips for every type, and validation cases.

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::outputs::unlock_id;
use crate::*;

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let packed = encode(value);
    assert_eq!(&decode::<T>(&packed).unwrap(), value, "msgpack round trip");
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(
        &serde_json::from_str::<T>(&json).unwrap(),
        value,
        "json round trip: {json}"
    );
}

/// Decodes msgpack generically, as a consumer without Laurel's code would.
fn as_plain_map(bytes: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    match rmp_serde::from_slice::<serde_json::Value>(bytes).unwrap() {
        serde_json::Value::Object(map) => map,
        other => panic!("expected a map, got {other}"),
    }
}

fn player(s: &str) -> PlayerId {
    PlayerId::new(s).unwrap()
}
fn stat(s: &str) -> StatName {
    StatName::new(s).unwrap()
}
fn ach(s: &str) -> AchievementId {
    AchievementId::new(s).unwrap()
}

fn sample_achievement() -> AchievementDefinition {
    let spec: AchievementSpec = serde_json::from_value(serde_json::json!({
        "title": "Banana lover",
        "locked_description": "Eat 1000 bananas",
        "unlocked_description": "You ate 1000 bananas",
        "locked_icon": "https://cdn.example/locked.png",
        "points": 10,
        "order": 3,
        "visibility": "secret",
        "conditions": [{"stat": "food.bananas", "at_least": 1000}, {"stat": "deaths", "at_most": 2.5}],
        "requires": ["FIRST_BANANA"],
        "available_from": "2026-01-01T00:00:00Z",
        "available_until": "2026-12-31T23:59:59.5+02:00",
        "localizations": {"fr-FR": {"title": "Amateur de bananes"}},
        "metadata": {"season": 4, "tags": ["food"]}
    }))
    .unwrap();
    AchievementDefinition::from_spec(ach("EAT_THOUSAND_BANANAS"), spec, 7)
}

fn sample_stat_definition() -> StatDefinition {
    StatDefinition::from_spec(
        stat("food.bananas"),
        StatSpec {
            aggregation: Aggregation::Sum,
            kind: StatKind::Int,
            min_value: Some(Value::Int(0)),
            max_value: Some(Value::Int(1_000_000)),
            max_delta: Some(Value::Int(50)),
            client_writable: true,
            client_time: false,
            period: None,
            scope: Default::default(),
        },
        2,
    )
}

#[test]
fn definitions_round_trip() {
    roundtrip(&sample_stat_definition());
    roundtrip(&sample_stat_definition().to_spec());
    roundtrip(&sample_achievement());
    roundtrip(&sample_achievement().to_spec());
    roundtrip(&DefinitionEvent::StatDefined {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        definition: sample_stat_definition(),
        by: None,
        at: 1_700_000_000_000,
    });
    roundtrip(&DefinitionEvent::AchievementDefined {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        definition: sample_achievement(),
        by: None,
        at: 1,
    });
    roundtrip(&DefinitionEvent::AchievementArchived {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        id: ach("A"),
        version: 3,
        by: None,
        at: 2,
    });
}

#[test]
fn stats_messages_and_outputs_round_trip() {
    let p = player("p-1");
    roundtrip(&StatsMessage::Grant(Grant {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        player_id: p.clone(),
        achievement_id: ach("A"),
        received_at: 5,
        source: Source::Admin,
        replay: None,
        earned_at: None,
        occurrence: None,
    }));
    roundtrip(&StatsMessage::Grant(Grant {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::new_v4(),
        player_id: p.clone(),
        achievement_id: ach("A"),
        received_at: 9,
        source: Source::Admin,
        replay: Some(Uuid::from_u128(3)),
        earned_at: Some(4),
        occurrence: None,
    }));
    let outputs = [
        Output::Unlocked(Unlocked {
            v: SchemaVersion::CURRENT,
            unlock_id: unlock_id(&p, &ach("A")),
            player_id: p.clone(),
            achievement_id: ach("A"),
            definition_version: 1,
            points: 5,
            unlocked_at: 10,
            caused_by: Uuid::new_v4(),
            cause: CauseKind::Stat,
            replay: false,
            occurrence: 1,
            baseline: Vec::new(),
            period: None,
        }),
        Output::Progress(Progress {
            v: SchemaVersion::CURRENT,
            player_id: p.clone(),
            achievement_id: ach("A"),
            condition: 0,
            stat: stat("kills"),
            current: Value::Int(3),
            required: Value::Float(10.5),
            at: 10,
        }),
        Output::Stat(StatChanged {
            v: SchemaVersion::CURRENT,
            player_id: p.clone(),
            stat: stat("kills"),
            value: Value::Int(-3),
            previous: Some(Value::Int(2)),
            at: 10,
            period: None,
        }),
        Output::Rejected(Rejected {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::new_v4(),
            player_id: p.clone(),
            stat: Some(stat("kills")),
            value: Some(Value::Int(100)),
            reason: Reason::DeltaTooLarge {
                delta: 100.0,
                max_delta: 10.0,
            },
            at: 10,
        }),
        Output::Checkpoint(Checkpoint {
            v: SchemaVersion::CURRENT,
            partition: 3,
            stats_seq: 99,
        }),
    ];
    for output in &outputs {
        roundtrip(output);
    }
    // A `changes` entry holds the batch's stat, progress and rejected outputs, and stands
    // for them and its checkpoint; an empty one drops its empty lists on the wire.
    let (stats, progress, rejected) = (outputs[2].clone(), outputs[1].clone(), outputs[3].clone());
    let (Output::Stat(s), Output::Progress(pr), Output::Rejected(r)) = (stats, progress, rejected)
    else {
        panic!("outputs as listed above");
    };
    let changes = Changes {
        v: SchemaVersion::CURRENT,
        partition: 3,
        first_seq: 90,
        stats_seq: 99,
        complete: true,
        stats: vec![s],
        progress: vec![pr],
        rejected: vec![r],
        community: Vec::new(),
        reached: Vec::new(),
    };
    roundtrip(&Output::Changes(changes.clone()));
    assert_eq!(
        Output::Changes(changes.clone()).into_outputs(),
        vec![
            outputs[2].clone(),
            outputs[1].clone(),
            outputs[3].clone(),
            outputs[4].clone()
        ]
    );
    let empty = Output::Changes(Changes {
        complete: false,
        stats: Vec::new(),
        progress: Vec::new(),
        rejected: Vec::new(),
        ..changes
    });
    roundtrip(&empty);
    assert!(!as_plain_map(&encode(&empty)).contains_key("stats"));
    assert!(empty.into_outputs().is_empty());
}

#[test]
fn messages_are_maps_with_named_fields_and_a_type_tag() {
    let msg = StatsMessage::Stat(StatEvent {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::nil(),
        player_id: player("p"),
        stat: stat("kills"),
        value: Value::Int(2),
        ts: 1,
        received_at: 2,
        source: Source::Server,
        occurred_at: None,
    });
    let map = as_plain_map(&encode(&msg));
    assert_eq!(map["type"], "stat");
    assert_eq!(map["v"], 1);
    assert_eq!(map["player_id"], "p");
    assert_eq!(map["stat"], "kills");
    assert_eq!(map["value"], 2);
    assert_eq!(map["source"], "server");
    let checkpoint = Output::Checkpoint(Checkpoint {
        v: SchemaVersion::CURRENT,
        partition: 1,
        stats_seq: 2,
    });
    let map = as_plain_map(&encode(&checkpoint));
    assert_eq!(map["type"], "checkpoint");
    assert_eq!(map["stats_seq"], 2);
}

#[test]
fn messages_without_a_version_field_read_as_version_one() {
    let json = r#"{"type":"checkpoint","partition":1,"stats_seq":2}"#;
    let Output::Checkpoint(c) = serde_json::from_str::<Output>(json).unwrap() else {
        panic!("not a checkpoint");
    };
    assert_eq!(c.v, SchemaVersion(1));
}

#[test]
fn values_keep_integers_exact_and_refuse_non_finite_numbers() {
    assert_eq!(serde_json::from_str::<Value>("7").unwrap(), Value::Int(7));
    assert_eq!(serde_json::from_str::<Value>("-7").unwrap(), Value::Int(-7));
    assert_eq!(
        serde_json::from_str::<Value>("7.5").unwrap(),
        Value::Float(7.5)
    );
    assert_eq!(Value::Float(7.0).as_exact_int(), Some(7));
    assert_eq!(Value::Float(7.5).as_exact_int(), None);
    assert_eq!(Value::Float(1e300).as_exact_int(), None);
    assert!(decode::<Value>(&encode(&f64::NAN)).is_err());
    assert!(decode::<Value>(&encode(&f64::INFINITY)).is_err());
    assert!(serde_json::from_str::<Value>("\"7\"").is_err());
    assert!(
        Value::Int(i64::MAX)
            .compare(Value::Int(i64::MAX - 1))
            .is_gt()
    );
}

#[test]
fn specs_refuse_unknown_fields() {
    let err = serde_json::from_str::<StatSpec>(r#"{"aggregation":"sum","kind":"int","bogus":1}"#)
        .unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
    assert!(serde_json::from_str::<AchievementSpec>(r#"{"title":"t","version":3}"#).is_err());
    assert!(
        serde_json::from_str::<AchievementSpec>(
            r#"{"title":"t","conditions":[{"stat":"s","at_least":1,"extra":2}]}"#
        )
        .is_err()
    );
}

#[test]
fn conditions_need_exactly_one_threshold() {
    let parse = |c: &str| serde_json::from_str::<Condition>(c);
    assert_eq!(
        parse(r#"{"stat":"s","at_least":3}"#).unwrap().threshold,
        Threshold::AtLeast(Value::Int(3))
    );
    assert_eq!(
        parse(r#"{"stat":"s","at_most":3.5}"#).unwrap().threshold,
        Threshold::AtMost(Value::Float(3.5))
    );
    assert!(parse(r#"{"stat":"s"}"#).is_err());
    assert!(parse(r#"{"stat":"s","at_least":1,"at_most":2}"#).is_err());
    assert!(parse(r#"{"stat":"a..b","at_least":1}"#).is_err());
}

#[test]
fn stat_spec_validation_names_field_and_reason() {
    let spec = |json: serde_json::Value| serde_json::from_value::<StatSpec>(json).unwrap();
    assert_eq!(
        spec(serde_json::json!({"aggregation":"sum","kind":"int","min_value":10,"max_value":5}))
            .validate(),
        Err(vec![ValidationError::new("min_value", Reason::MinAboveMax)])
    );
    assert_eq!(
        spec(serde_json::json!({"aggregation":"max","kind":"int","max_value":5.5})).validate(),
        Err(vec![ValidationError::new("max_value", Reason::NotInteger)])
    );
    assert_eq!(
        spec(serde_json::json!({"aggregation":"max","kind":"float","max_delta":0})).validate(),
        Err(vec![ValidationError::new("max_delta", Reason::NotPositive)])
    );
    assert!(
        spec(serde_json::json!({"aggregation":"latest","kind":"float","min_value":-1.5,"max_delta":2}))
            .validate()
            .is_ok()
    );
}

#[test]
fn achievement_spec_validation_names_field_and_reason() {
    let id = ach("A");
    let mut spec = sample_achievement().to_spec();
    assert_eq!(spec.validate(&id), Ok(()));
    spec.title = "  ".into();
    spec.requires = vec![ach("B"), ach("A"), ach("B")];
    spec.available_until = spec.available_from;
    spec.localizations
        .insert("not a tag".into(), Localization::default());
    let errors = spec.validate(&id).unwrap_err();
    assert!(errors.contains(&ValidationError::new("title", Reason::Empty)));
    assert!(errors.contains(&ValidationError::new("requires[1]", Reason::SelfReference)));
    assert!(errors.contains(&ValidationError::new("requires[2]", Reason::Duplicate)));
    assert!(errors.contains(&ValidationError::new("available_from", Reason::EmptyWindow)));
    assert!(errors.contains(&ValidationError::new(
        "localizations.not a tag",
        Reason::LanguageTag
    )));
    assert_eq!(errors.len(), 5, "{errors:?}");
}

#[test]
fn nested_field_paths_read_naturally() {
    let e = ValidationError::new("stat", Reason::Empty).under("events[3]");
    assert_eq!(e.field, "events[3].stat");
    let e = ValidationError::new("[2]", Reason::Empty).under("requires");
    assert_eq!(e.field, "requires[2]");
}

#[test]
fn unlock_ids_are_deterministic_and_unambiguous() {
    let a = unlock_id(&player("ab"), &ach("c"));
    assert_eq!(a, unlock_id(&player("ab"), &ach("c")));
    assert_ne!(a, unlock_id(&player("a"), &ach("bc")));
    assert_eq!(a.get_version_num(), 5);
}

fn arb_value() -> impl Strategy<Value = crate::Value> {
    prop_oneof![
        any::<i64>().prop_map(crate::Value::Int),
        (-1e12f64..1e12).prop_map(crate::Value::Float),
    ]
}

proptest! {
    #[test]
    fn any_stat_event_round_trips(
        player_id in "[^\\p{Cc}]{1,32}"
            .prop_filter("a valid player id", |s| PlayerId::new(s.as_str()).is_ok()),
        stat_name in "[a-z0-9_-]{1,10}(\\.[A-Z0-9_-]{1,10}){0,3}",
        value in arb_value(),
        ts in any::<i64>(),
        received_at in any::<i64>(),
        id in any::<u128>(),
    ) {
        let msg = StatsMessage::Stat(StatEvent {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::from_u128(id),
            player_id: PlayerId::new(player_id).unwrap(),
            stat: StatName::new(stat_name).unwrap(),
            value,
            ts,
            received_at,
            source: Source::Player,
            occurred_at: None,
        });
        roundtrip(&msg);
        // A single message decodes as a STATS entry of its own, and a grouped entry of it
        // and another comes back whole.
        let entry: StatsEntry = decode(&encode(&msg)).unwrap();
        prop_assert_eq!(entry.clone().into_messages(), vec![msg.clone()]);
        let StatsEntry::Stat(event) = entry else { panic!("a stat entry") };
        let grouped = StatsEntry::Stats(StatEvents {
            v: SchemaVersion::CURRENT,
            events: vec![event.clone(), StatEvent { value: Value::Int(1), ..event }],
        });
        roundtrip(&grouped);
    }
}

#[test]
fn stats_entries_decode_every_form_and_refuse_what_is_not_one() {
    let grant = StatsMessage::Grant(Grant {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::from_u128(7),
        player_id: player("ann"),
        achievement_id: AchievementId::new("WIN").unwrap(),
        received_at: 5,
        source: Source::Admin,
        replay: Some(Uuid::from_u128(8)),
        earned_at: Some(2),
        occurrence: None,
    });
    let entry: StatsEntry = decode(&encode(&grant)).unwrap();
    assert_eq!(entry.into_messages(), vec![grant]);
    assert!(decode::<StatsEntry>(&encode(&serde_json::json!({"type": "stat", "v": 1}))).is_err());
    assert!(decode::<StatsEntry>(&encode(&serde_json::json!({"type": "nope"}))).is_err());
}

#[test]
fn every_reason_code_is_its_wire_code() {
    let reasons = [
        Reason::Required,
        Reason::Empty,
        Reason::TooLong {
            max: 1,
            unit: "bytes".into(),
        },
        Reason::Pattern {
            pattern: "x".into(),
        },
        Reason::ControlCharacter,
        Reason::SurroundingWhitespace,
        Reason::InvisibleCharacter { code_point: 1 },
        Reason::NotANumber {
            found: "a string".into(),
        },
        Reason::NotFinite,
        Reason::NotInteger,
        Reason::IntegerOutOfRange,
        Reason::MinAboveMax,
        Reason::NotPositive,
        Reason::EmptyWindow,
        Reason::ExactlyOneOf {
            a: "a".into(),
            b: "b".into(),
        },
        Reason::SelfReference,
        Reason::Duplicate,
        Reason::UnknownStat { stat: "s".into() },
        Reason::UnknownAchievement { id: "a".into() },
        Reason::Archived { id: "a".into() },
        Reason::BelowMin { min: Value::Int(0) },
        Reason::AboveMax { max: Value::Int(0) },
        Reason::DeltaTooLarge {
            delta: 1.0,
            max_delta: 0.5,
        },
        Reason::NotWritable { stat: "s".into() },
        Reason::Fixed,
        Reason::LanguageTag,
    ];
    for reason in reasons {
        assert_eq!(
            serde_json::to_value(&reason).unwrap()["code"],
            reason.code(),
            "{reason:?}"
        );
    }
}
