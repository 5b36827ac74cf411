//! Properties of the fold: determinism, batch independence, replay equals live.

use std::collections::BTreeMap;

use laurel_engine::{Definitions, Engine, milestone};
use laurel_schemas::{
    AchievementDefinition, AchievementId, AchievementSpec, Condition, DefinitionEvent, Grant,
    Output, PlayerId, SchemaVersion, Source, StatDefinition, StatEvent, StatName, StatSpec,
    StatsMessage, Threshold, Value,
};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

const STATS: [(&str, &str); 5] = [
    ("kills", r#"{"aggregation":"sum","kind":"int"}"#),
    ("score", r#"{"aggregation":"max","kind":"int"}"#),
    (
        "level",
        r#"{"aggregation":"latest","kind":"int","max_delta":25}"#,
    ),
    ("lap", r#"{"aggregation":"min","kind":"float"}"#),
    (
        "gold",
        r#"{"aggregation":"sum","kind":"int","min_value":0,"max_value":100,"client_writable":true}"#,
    ),
];
const PLAYERS: usize = 4;

#[derive(Debug, Clone)]
struct AchGen {
    conditions: Vec<(usize, bool, i64)>,
    requires: Option<usize>,
}

#[derive(Debug, Clone)]
enum EventGen {
    Stat {
        player: usize,
        stat: usize,
        value: i64,
        by_player: bool,
    },
    Grant {
        player: usize,
        achievement: usize,
    },
}

fn arb_achievements() -> impl Strategy<Value = Vec<AchGen>> {
    let condition = (0..STATS.len(), any::<bool>(), -10i64..80);
    let ach = (
        prop::collection::vec(condition, 0..3),
        prop::option::of(0usize..8),
    );
    prop::collection::vec(ach, 1..8).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (conditions, requires))| AchGen {
                conditions,
                // Only earlier achievements may be required: no cycles.
                requires: requires.filter(|r| *r < i),
            })
            .collect()
    })
}

fn arb_events() -> impl Strategy<Value = Vec<EventGen>> {
    let stat = (0..PLAYERS, 0..STATS.len(), -15i64..40, any::<bool>()).prop_map(
        |(player, stat, value, by_player)| EventGen::Stat {
            player,
            stat,
            value,
            by_player,
        },
    );
    let grant = (0..PLAYERS, 0usize..8).prop_map(|(player, achievement)| EventGen::Grant {
        player,
        achievement,
    });
    prop::collection::vec(prop_oneof![10 => stat, 1 => grant], 0..120)
}

fn definitions(achievements: &[AchGen]) -> Vec<DefinitionEvent> {
    let mut events = Vec::new();
    for (i, (name, spec)) in STATS.iter().enumerate() {
        let spec: StatSpec = serde_json::from_str(spec).unwrap();
        events.push(DefinitionEvent::StatDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::from_u128(i as u128 + 1),
            definition: StatDefinition::from_spec(StatName::new(*name).unwrap(), spec, 1),
            at: 0,
        });
    }
    for (i, a) in achievements.iter().enumerate() {
        let mut spec: AchievementSpec =
            serde_json::from_value(json!({"title": format!("A{i}"), "points": i})).unwrap();
        spec.conditions = a
            .conditions
            .iter()
            .map(|&(stat, at_least, t)| Condition {
                stat: StatName::new(STATS[stat].0).unwrap(),
                threshold: if at_least {
                    Threshold::AtLeast(Value::Int(t))
                } else {
                    Threshold::AtMost(Value::Int(t))
                },
            })
            .collect();
        spec.requires = a
            .requires
            .iter()
            .map(|r| AchievementId::new(format!("A{r}")).unwrap())
            .collect();
        events.push(DefinitionEvent::AchievementDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::from_u128(100 + i as u128),
            definition: AchievementDefinition::from_spec(
                AchievementId::new(format!("A{i}")).unwrap(),
                spec,
                1,
            ),
            at: 0,
        });
    }
    events
}

fn messages(events: &[EventGen]) -> Vec<StatsMessage> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let event_id = Uuid::from_u128(10_000 + i as u128);
            let received_at = 1_000 + i as i64;
            match *e {
                EventGen::Stat {
                    player,
                    stat,
                    value,
                    by_player,
                } => StatsMessage::Stat(StatEvent {
                    v: SchemaVersion::CURRENT,
                    event_id,
                    player_id: PlayerId::new(format!("p{player}")).unwrap(),
                    stat: StatName::new(STATS[stat].0).unwrap(),
                    value: if stat == 3 {
                        Value::Float(value as f64 / 2.0)
                    } else {
                        Value::Int(value)
                    },
                    ts: received_at,
                    received_at,
                    source: if by_player {
                        Source::Player
                    } else {
                        Source::Server
                    },
                }),
                EventGen::Grant {
                    player,
                    achievement,
                } => StatsMessage::Grant(Grant {
                    v: SchemaVersion::CURRENT,
                    event_id,
                    player_id: PlayerId::new(format!("p{player}")).unwrap(),
                    achievement_id: AchievementId::new(format!("A{achievement}")).unwrap(),
                    received_at,
                    source: Source::Admin,
                    replay: None,
                    earned_at: None,
                }),
            }
        })
        .collect()
}

fn compiled(defs: &[DefinitionEvent]) -> Definitions {
    let mut d = Definitions::new();
    for e in defs {
        d.apply(e);
    }
    d
}

fn run_live(defs: &[DefinitionEvent], msgs: &[StatsMessage]) -> (Engine, Vec<Output>) {
    let mut engine = Engine::new();
    let mut out = Vec::new();
    for d in defs {
        engine.apply_definition(d, &mut out);
    }
    engine.apply_batch(msgs, &mut out);
    (engine, out)
}

/// What a consumer of the coalesced OUTPUT log ends up knowing.
#[derive(Debug, PartialEq)]
struct Observed {
    unlocks: Vec<(Uuid, i64, Uuid)>,
    rejected: Vec<Uuid>,
    last_progress: BTreeMap<(String, String, u32), (Value, Value)>,
    last_stat: BTreeMap<(String, String), String>,
}

fn observe(out: &[Output]) -> Observed {
    let mut o = Observed {
        unlocks: Vec::new(),
        rejected: Vec::new(),
        last_progress: BTreeMap::new(),
        last_stat: BTreeMap::new(),
    };
    for output in out {
        match output {
            Output::Unlocked(u) => o.unlocks.push((u.unlock_id, u.unlocked_at, u.caused_by)),
            Output::Rejected(r) => o.rejected.push(r.event_id),
            Output::Progress(p) => {
                let key = (
                    p.player_id.to_string(),
                    p.achievement_id.to_string(),
                    p.condition,
                );
                o.last_progress.insert(key, (p.current, p.required));
            }
            Output::Stat(s) => {
                o.last_stat.insert(
                    (s.player_id.to_string(), s.stat.to_string()),
                    s.value.to_string(),
                );
            }
            Output::Checkpoint(_) | Output::Changes(_) => {}
        }
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_same_events_give_the_same_outputs(achievements in arb_achievements(), events in arb_events()) {
        let defs = definitions(&achievements);
        let msgs = messages(&events);
        let (a, out_a) = run_live(&defs, &msgs);
        let (b, out_b) = run_live(&defs, &msgs);
        prop_assert_eq!(out_a, out_b);
        prop_assert_eq!(a.snapshot(), b.snapshot());
    }

    #[test]
    fn any_split_into_batches_gives_the_same_result(
        achievements in arb_achievements(),
        events in arb_events(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let defs = definitions(&achievements);
        let msgs = messages(&events);
        let (whole, whole_out) = run_live(&defs, &msgs);

        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(msgs.len() + 1)).collect();
        cuts.push(msgs.len());
        cuts.sort_unstable();
        let (mut engine, mut batched_out) = run_live(&defs, &[]);
        let mut start = 0;
        for end in cuts {
            // Between batches the state goes through storage, as the shell's does.
            let stored = laurel_schemas::encode(&engine.snapshot());
            engine = Engine::restore(compiled(&defs), &laurel_schemas::decode(&stored).unwrap());
            engine.apply_batch(&msgs[start..end], &mut batched_out);
            start = end;
        }
        let (batched, whole_seen) = (observe(&batched_out), observe(&whole_out));
        prop_assert_eq!(&batched.unlocks, &whole_seen.unlocks);
        prop_assert_eq!(&batched.rejected, &whole_seen.rejected);
        prop_assert_eq!(&batched.last_stat, &whole_seen.last_stat);
        // For every condition still unearned at the end, the last milestone reported (none:
        // 0) is the milestone of the final value, however the events were batched.
        let defs = whole.definitions();
        for (p, snapshot) in whole.snapshot() {
            for def in defs.achievements() {
                let idx = defs.achievement_idx(def.id.as_str()).unwrap();
                if whole.player(p.as_str()).unwrap().has_earned(idx) || def.archived {
                    continue;
                }
                for (c, condition) in def.conditions.iter().enumerate() {
                    let value = snapshot.stats.iter().find(|(s, _)| *s == condition.stat).map(|(_, v)| *v);
                    let want = milestone(value, condition.threshold);
                    let key = (p.to_string(), def.id.to_string(), c as u32);
                    for seen in [&batched, &whole_seen] {
                        let last = seen.last_progress.get(&key).map_or(0, |(current, _)| milestone(Some(*current), condition.threshold));
                        prop_assert_eq!(last, want, "{:?}", key);
                    }
                }
            }
        }
        prop_assert_eq!(engine.snapshot(), whole.snapshot());
    }

    #[test]
    fn replaying_a_history_unlocks_exactly_what_live_folding_did(
        achievements in arb_achievements(),
        events in arb_events(),
    ) {
        let defs = definitions(&achievements);
        let msgs = messages(&events);
        let (live, live_out) = run_live(&defs, &msgs);
        let mut replay = Engine::replaying(compiled(&defs));
        let mut replay_out = Vec::new();
        replay.apply_batch(&msgs, &mut replay_out);
        prop_assert!(replay_out.iter().all(|o| !matches!(o, Output::Unlocked(u) if !u.replay)));
        prop_assert_eq!(observe(&replay_out).unlocks, observe(&live_out).unlocks);
        prop_assert_eq!(replay.snapshot(), live.snapshot());
    }
}
