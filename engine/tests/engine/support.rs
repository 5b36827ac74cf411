//! A small given/when/then harness over the in-memory [`Engine`].

use laurel_engine::Engine;
use laurel_schemas::{
    AchievementDefinition, AchievementId, AchievementSpec, DefinitionEvent, Grant, Millis, Output,
    PlayerId, Reason, SchemaVersion, Source, StatDefinition, StatEvent, StatName, StatSpec,
    StatsMessage, Unlocked, Value,
};
use serde_json::json;
use uuid::Uuid;

/// A running scenario: an engine, a clock for `received_at`, and ids for events.
pub(crate) struct Scenario {
    pub(crate) engine: Engine,
    pub(crate) now: Millis,
    next_id: u128,
    versions: std::collections::HashMap<String, u64>,
}

pub(crate) fn given() -> Scenario {
    Scenario {
        engine: Engine::new(),
        now: 1_800_000_000_000,
        next_id: 1,
        versions: Default::default(),
    }
}

impl Scenario {
    pub(crate) fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    /// Defines a stat from its JSON spec.
    pub(crate) fn stat(mut self, name: &str, spec: serde_json::Value) -> Self {
        let spec: StatSpec = serde_json::from_value(spec).unwrap();
        spec.validate().unwrap();
        let event = DefinitionEvent::StatDefined {
            v: SchemaVersion::CURRENT,
            event_id: self.id(),
            definition: StatDefinition::from_spec(StatName::new(name).unwrap(), spec, 1),
            by: None,
            at: self.now,
        };
        self.engine.apply_definition(&event, &mut Vec::new());
        self
    }

    /// Defines an achievement from its JSON spec, as part of the setup.
    pub(crate) fn achievement(mut self, id: &str, spec: serde_json::Value) -> Self {
        let out = self.define(id, spec);
        assert!(out.is_empty(), "setup produced outputs: {out:?}");
        self
    }

    /// Defines or redefines an achievement; returns the outputs of re-evaluation.
    pub(crate) fn define(&mut self, id: &str, spec: serde_json::Value) -> Vec<Output> {
        let spec: AchievementSpec = serde_json::from_value(spec).unwrap();
        let id = AchievementId::new(id).unwrap();
        self.engine
            .definitions()
            .check_achievement(&id, &spec)
            .unwrap();
        let version = self.versions.entry(id.to_string()).or_default();
        *version += 1;
        let definition = AchievementDefinition::from_spec(id, spec, *version);
        let event = DefinitionEvent::AchievementDefined {
            v: SchemaVersion::CURRENT,
            event_id: self.id(),
            definition,
            by: None,
            at: self.now,
        };
        let mut out = Vec::new();
        self.engine.apply_definition(&event, &mut out);
        out
    }

    pub(crate) fn archive(&mut self, id: &str) -> Vec<Output> {
        let version = self.versions.entry(id.to_string()).or_default();
        *version += 1;
        let version = *version;
        let event = DefinitionEvent::AchievementArchived {
            v: SchemaVersion::CURRENT,
            event_id: self.id(),
            id: AchievementId::new(id).unwrap(),
            version,
            by: None,
            at: self.now,
        };
        let mut out = Vec::new();
        self.engine.apply_definition(&event, &mut out);
        out
    }

    pub(crate) fn stat_event(
        &mut self,
        player: &str,
        stat: &str,
        value: Value,
        source: Source,
    ) -> StatEvent {
        StatEvent {
            v: SchemaVersion::CURRENT,
            event_id: self.id(),
            player_id: PlayerId::new(player).unwrap(),
            stat: StatName::new(stat).unwrap(),
            value,
            ts: self.now,
            received_at: self.now,
            source,
            occurred_at: None,
        }
    }

    /// A game server reports a value; returns the event's outputs.
    pub(crate) fn report(
        &mut self,
        player: &str,
        stat: &str,
        value: impl Into<Value>,
    ) -> Vec<Output> {
        self.report_as(player, stat, value.into(), Source::Server)
    }

    pub(crate) fn report_as(
        &mut self,
        player: &str,
        stat: &str,
        value: Value,
        source: Source,
    ) -> Vec<Output> {
        let event = self.stat_event(player, stat, value, source);
        self.send(StatsMessage::Stat(event))
    }

    pub(crate) fn send(&mut self, msg: StatsMessage) -> Vec<Output> {
        let mut out = Vec::new();
        self.engine.apply_batch(&[msg], &mut out);
        out
    }

    pub(crate) fn grant(&mut self, player: &str, achievement: &str) -> Vec<Output> {
        self.send_grant(player, achievement, None)
    }

    /// A replay's grant (`laurel replay --apply`) of what the history earned at `earned_at`.
    pub(crate) fn replay_grant(
        &mut self,
        player: &str,
        achievement: &str,
        replay: Uuid,
        earned_at: Millis,
    ) -> Vec<Output> {
        self.send_grant(player, achievement, Some((replay, earned_at)))
    }

    fn send_grant(
        &mut self,
        player: &str,
        achievement: &str,
        replay: Option<(Uuid, Millis)>,
    ) -> Vec<Output> {
        let grant = Grant {
            v: SchemaVersion::CURRENT,
            event_id: self.id(),
            player_id: PlayerId::new(player).unwrap(),
            achievement_id: AchievementId::new(achievement).unwrap(),
            received_at: self.now,
            source: Source::Admin,
            replay: replay.map(|(id, _)| id),
            earned_at: replay.map(|(_, at)| at),
            occurrence: None,
        };
        self.send(StatsMessage::Grant(grant))
    }

    /// An admin's reset of the (test) player.
    pub(crate) fn reset(&mut self, player: &str) -> Vec<Output> {
        let reset = laurel_schemas::Reset {
            v: SchemaVersion::CURRENT,
            event_id: self.id(),
            player_id: PlayerId::new(player).unwrap(),
            received_at: self.now,
        };
        self.send(StatsMessage::Reset(reset))
    }

    /// The player's current value of a stat.
    pub(crate) fn value(&self, player: &str, stat: &str) -> Option<Value> {
        let idx = self.engine.definitions().stat_idx(stat)?;
        self.engine.player(player)?.stat(idx)
    }
}

pub(crate) fn unlocks(out: &[Output]) -> Vec<&Unlocked> {
    out.iter()
        .filter_map(|o| match o {
            Output::Unlocked(u) => Some(u),
            _ => None,
        })
        .collect()
}

pub(crate) fn unlocked_ids(out: &[Output]) -> Vec<String> {
    unlocks(out)
        .iter()
        .map(|u| u.achievement_id.to_string())
        .collect()
}

pub(crate) fn rejections(out: &[Output]) -> Vec<Reason> {
    out.iter()
        .filter_map(|o| match o {
            Output::Rejected(r) => Some(r.reason.clone()),
            _ => None,
        })
        .collect()
}

/// `(achievement, condition, current, required)` of every progress output.
pub(crate) fn progress(out: &[Output]) -> Vec<(String, u32, Value, Value)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Progress(p) => Some((
                p.achievement_id.to_string(),
                p.condition,
                p.current,
                p.required,
            )),
            _ => None,
        })
        .collect()
}

pub(crate) fn int_sum() -> serde_json::Value {
    json!({"aggregation": "sum", "kind": "int"})
}
