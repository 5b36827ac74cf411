//! Properties of the fold: determinism, batch independence, replay equals live.

use std::collections::BTreeMap;

use laurel_engine::{Definitions, Engine, milestone};
use laurel_schemas::{
    AchievementDefinition, AchievementId, AchievementSpec, Claim, Condition, DefinitionEvent,
    Grant, Output, PlayerId, Repeat, SchemaVersion, Source, StatDefinition, StatEvent, StatName,
    StatSpec, StatsMessage, Threshold, Value, claim_id, earn_id,
};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

const STATS: [(&str, &str); 6] = [
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
    // Periodic: achievements on it are earned once per day.
    (
        "daily",
        r#"{"aggregation":"sum","kind":"int","period":"daily"}"#,
    ),
];
/// The periodic stat's index in [`STATS`].
const DAILY: usize = 5;
const PLAYERS: usize = 4;

#[derive(Debug, Clone)]
struct AchGen {
    conditions: Vec<(usize, bool, i64)>,
    requires: Option<usize>,
    /// `repeat`: its `max` and `cooldown_secs`.
    repeat: Option<(Option<u32>, u32)>,
    /// `rewards` (one), and whether they are claimed.
    rewards: Option<bool>,
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
    Claim {
        player: usize,
        achievement: usize,
        occurrence: u32,
    },
}

fn arb_achievements() -> impl Strategy<Value = Vec<AchGen>> {
    let condition = (0..STATS.len(), any::<bool>(), -10i64..80);
    let repeat = prop::option::weighted(
        0.4,
        (
            prop::option::of(1u32..4),
            prop_oneof![Just(0u32), Just(60), Just(3_600), Just(20_000)],
        ),
    );
    let ach = (
        prop::collection::vec(condition, 0..3),
        prop::option::of(0usize..8),
        repeat,
        prop::option::weighted(0.4, any::<bool>()),
    );
    prop::collection::vec(ach, 1..8).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (mut conditions, requires, mut repeat, rewards))| {
                // An achievement on a periodic stat is earned once per period, not repeated.
                if conditions.iter().any(|c| c.0 == DAILY) {
                    repeat = None;
                }
                // A repeatable needs an at_least condition above zero to count towards.
                if repeat.is_some()
                    && let Some(first) = conditions.first_mut()
                    && !conditions_count(&[*first])
                {
                    *first = (first.0, true, first.2.abs() + 1);
                }
                AchGen {
                    conditions,
                    // Only earlier achievements may be required: no cycles.
                    requires: requires.filter(|r| *r < i),
                    repeat,
                    rewards,
                }
            })
            .collect()
    })
}

fn conditions_count(conditions: &[(usize, bool, i64)]) -> bool {
    conditions.iter().any(|&(_, at_least, t)| at_least && t > 0)
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
    let claim = (0..PLAYERS, 0usize..8, 1u32..3).prop_map(|(player, achievement, occurrence)| {
        EventGen::Claim {
            player,
            achievement,
            occurrence,
        }
    });
    prop::collection::vec(prop_oneof![10 => stat, 1 => grant, 1 => claim], 0..120)
}

fn definitions(achievements: &[AchGen]) -> Vec<DefinitionEvent> {
    let mut events = Vec::new();
    for (i, (name, spec)) in STATS.iter().enumerate() {
        let spec: StatSpec = serde_json::from_str(spec).unwrap();
        events.push(DefinitionEvent::StatDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::from_u128(i as u128 + 1),
            definition: StatDefinition::from_spec(StatName::new(*name).unwrap(), spec, 1),
            by: None,
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
        spec.repeat = a
            .repeat
            .map(|(max, cooldown_secs)| Repeat { max, cooldown_secs });
        if let Some(claim) = a.rewards {
            spec.rewards = vec![json!({"gold": i}).as_object().unwrap().clone()].into();
            spec.claim = claim;
        }
        spec.validate(&AchievementId::new(format!("A{i}")).unwrap())
            .expect("generated definitions are valid");
        events.push(DefinitionEvent::AchievementDefined {
            v: SchemaVersion::CURRENT,
            event_id: Uuid::from_u128(100 + i as u128),
            definition: AchievementDefinition::from_spec(
                AchievementId::new(format!("A{i}")).unwrap(),
                spec,
                1,
            ),
            by: None,
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
            // Minutes apart, so that cooldowns pass and hold and days go by.
            let received_at = 1_000 + 1_000_000 * i as i64;
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
                    // Some events played offline, out of order: their time is earlier, in
                    // another period at times.
                    occurred_at: (i % 3 == 0).then_some(received_at - 3_600_000 * (i as i64 % 5)),
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
                    occurrence: None,
                }),
                EventGen::Claim {
                    player,
                    achievement,
                    occurrence,
                } => {
                    let player_id = PlayerId::new(format!("p{player}")).unwrap();
                    let achievement = AchievementId::new(format!("A{achievement}")).unwrap();
                    let unlock_id = earn_id(&player_id, &achievement, occurrence);
                    StatsMessage::Claim(Claim {
                        v: SchemaVersion::CURRENT,
                        event_id: claim_id(unlock_id),
                        player_id,
                        unlock_id,
                        received_at,
                    })
                }
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
    /// Unlocks with their occurrence.
    earns: Vec<(Uuid, u32)>,
    /// Rewards (unlock id, whether to claim), and claimed rewards.
    rewards: Vec<(Uuid, bool)>,
    claimed: Vec<Uuid>,
    resets: Vec<Uuid>,
}

fn observe(out: &[Output]) -> Observed {
    let mut o = Observed {
        unlocks: Vec::new(),
        rejected: Vec::new(),
        last_progress: BTreeMap::new(),
        last_stat: BTreeMap::new(),
        earns: Vec::new(),
        rewards: Vec::new(),
        claimed: Vec::new(),
        resets: Vec::new(),
    };
    for output in out {
        match output {
            Output::Unlocked(u) => {
                o.unlocks.push((u.unlock_id, u.unlocked_at, u.caused_by));
                o.earns.push((u.unlock_id, u.occurrence));
            }
            Output::Reward(r) => o.rewards.push((r.unlock_id, r.claim)),
            Output::RewardClaimed(c) => o.claimed.push(c.unlock_id),
            Output::PlayerReset(r) => o.resets.push(r.caused_by),
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
        prop_assert_eq!(&batched.earns, &whole_seen.earns);
        prop_assert_eq!(&batched.rewards, &whole_seen.rewards);
        prop_assert_eq!(&batched.claimed, &whole_seen.claimed);
        prop_assert_eq!(&batched.rejected, &whole_seen.rejected);
        prop_assert_eq!(&batched.last_stat, &whole_seen.last_stat);
        // For every condition still unearned at the end, the last milestone reported (none:
        // 0) is the milestone of the final value, however the events were batched.
        let defs = whole.definitions();
        for (p, snapshot) in whole.snapshot() {
            for def in defs.achievements() {
                let idx = defs.achievement_idx(def.id.as_str()).unwrap();
                let periodic = def.conditions.iter().any(|c| c.stat.as_str() == STATS[DAILY].0);
                if whole.player(p.as_str()).unwrap().has_earned(idx) || def.archived || periodic {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Repeatable achievements: each player's earns of an achievement are numbered 1, 2, 3...
    /// up to its `max`, a cooldown apart (in event time), each under its own id; each earn of
    /// a rewarded achievement pays one reward, and each reward to claim is claimed at most
    /// once, only after it was earned.
    #[test]
    fn earns_count_up_and_rewards_pay_once(achievements in arb_achievements(), events in arb_events()) {
        let defs = definitions(&achievements);
        let msgs = messages(&events);
        let (_, out) = run_live(&defs, &msgs);
        // Per player and achievement: each earn's number, time and cause.
        type Earns = Vec<(u32, i64, laurel_schemas::CauseKind)>;
        let mut earns: BTreeMap<(String, String, Option<String>), Earns> = BTreeMap::new();
        let mut ids = std::collections::BTreeSet::new();
        let mut rewarded = BTreeMap::new();
        let mut claimed = std::collections::BTreeSet::new();
        for output in &out {
            match output {
                Output::Reward(r) => {
                    prop_assert!(rewarded.insert(r.unlock_id, r.claim).is_none(), "one reward per earn");
                }
                Output::Unlocked(u) => {
                    prop_assert!(ids.insert(u.unlock_id), "an id of its own per earn");
                    let id = match &u.period {
                        Some(p) => laurel_schemas::period_earn_id(&u.player_id, &u.achievement_id, p),
                        None => earn_id(&u.player_id, &u.achievement_id, u.occurrence),
                    };
                    prop_assert_eq!(u.unlock_id, id);
                    let i: usize = u.achievement_id.as_str()[1..].parse().unwrap();
                    prop_assert_eq!(rewarded.contains_key(&u.unlock_id), achievements[i].rewards.is_some(), "the reward comes with (before) its earn");
                    // A periodic achievement's earns are numbered within their period.
                    earns.entry((u.player_id.to_string(), u.achievement_id.to_string(), u.period.clone()))
                        .or_default()
                        .push((u.occurrence, u.unlocked_at, u.cause));
                }
                Output::RewardClaimed(c) => {
                    prop_assert_eq!(rewarded.get(&c.unlock_id), Some(&true), "only a reward to claim, once earned");
                    prop_assert!(claimed.insert(c.unlock_id), "claimed once");
                }
                _ => {}
            }
        }
        for ((_, ach, _), list) in &earns {
            let i: usize = ach[1..].parse().unwrap();
            let numbers: Vec<u32> = list.iter().map(|e| e.0).collect();
            let expected: Vec<u32> = (1..=list.len() as u32).collect();
            prop_assert_eq!(&numbers, &expected);
            match achievements[i].repeat {
                None => prop_assert_eq!(list.len(), 1),
                Some((max, cooldown)) => {
                    prop_assert!(max.is_none_or(|m| list.len() as u32 <= m));
                    for pair in list.windows(2) {
                        // Grants skip the cooldown; earned by play, an earn waits for it.
                        if pair[1].2 != laurel_schemas::CauseKind::Grant {
                            prop_assert!(pair[1].1 >= pair[0].1 + i64::from(cooldown) * 1_000);
                        }
                    }
                }
            }
        }
    }
}
