//! An engine holding every player's state in memory: for tests, benchmarks and replays.
//! The durable shell keeps state on disk instead and folds with the same [`Fold`].

use std::collections::BTreeMap;

use laurel_schemas::{DefinitionEvent, Output, PlayerId, StatsMessage};
use rustc_hash::FxHashMap;

use crate::coalesce::coalesce;
use crate::defs::Definitions;
use crate::fold::Fold;
use crate::state::{PlayerSnapshot, PlayerState};

/// Definitions and every player's state, in memory.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    defs: Definitions,
    players: FxHashMap<PlayerId, PlayerState>,
    replay: bool,
}

impl Engine {
    /// An engine with no definitions and no players, folding live.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine whose unlocks are marked as emitted by a replay.
    pub fn replaying(defs: Definitions) -> Self {
        Self {
            defs,
            players: FxHashMap::default(),
            replay: true,
        }
    }

    /// The definitions in force.
    pub fn definitions(&self) -> &Definitions {
        &self.defs
    }

    /// A player's state, if any event reached them.
    pub fn player(&self, id: &str) -> Option<&PlayerState> {
        self.players.get(id)
    }

    /// How many players have state.
    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    /// Applies a definition change (every change of a set) and unlocks what players'
    /// current state now satisfies.
    pub fn apply_definition(&mut self, event: &DefinitionEvent, out: &mut Vec<Output>) {
        let changed = self.defs.apply(event);
        if changed.is_empty() {
            return;
        }
        let fold = Fold {
            defs: &self.defs,
            replay: self.replay,
            unlocks: true,
        };
        // Player order is fixed so the outputs are deterministic.
        let mut ids: Vec<&PlayerId> = self.players.keys().collect();
        ids.sort_unstable();
        let ids: Vec<PlayerId> = ids.into_iter().cloned().collect();
        let causes: Vec<&DefinitionEvent> = event
            .each()
            .into_iter()
            .filter(|e| matches!(e, DefinitionEvent::AchievementDefined { .. }))
            .collect();
        for (ach, cause) in changed.into_iter().zip(causes) {
            for id in &ids {
                let player = self.players.get_mut(id.as_str()).expect("listed above");
                fold.reevaluate(player, id, ach, cause.event_id(), cause.at(), out);
            }
        }
    }

    /// Folds one STATS message.
    pub fn apply(&mut self, msg: &StatsMessage, out: &mut Vec<Output>) {
        let id = msg.player_id();
        if !self.players.contains_key(id.as_str()) {
            self.players.insert(id.clone(), PlayerState::new());
        }
        let player = self.players.get_mut(id.as_str()).expect("inserted above");
        Fold {
            defs: &self.defs,
            replay: self.replay,
            unlocks: true,
        }
        .apply(player, msg, out);
    }

    /// Folds a batch of STATS messages and appends its coalesced outputs, with the
    /// `progress` each final stat value means, as the durable shell publishes them.
    pub fn apply_batch(&mut self, msgs: &[StatsMessage], out: &mut Vec<Output>) {
        let mut batch = Vec::new();
        for msg in msgs {
            self.apply(msg, &mut batch);
        }
        coalesce(&mut batch);
        let fold = Fold {
            defs: &self.defs,
            replay: self.replay,
            unlocks: true,
        };
        for output in batch {
            let change = match &output {
                Output::Stat(change) => Some(change.clone()),
                _ => None,
            };
            out.push(output);
            if let Some(change) = change {
                let player = &self.players[change.player_id.as_str()];
                fold.progress(player, &change, out);
            }
        }
    }

    /// Every player's state by name, ordered by player id.
    pub fn snapshot(&self) -> BTreeMap<PlayerId, PlayerSnapshot> {
        self.players
            .iter()
            .map(|(id, p)| (id.clone(), p.to_snapshot(&self.defs)))
            .collect()
    }

    /// An engine restored from definitions and stored player snapshots.
    pub fn restore(mut defs: Definitions, players: &BTreeMap<PlayerId, PlayerSnapshot>) -> Self {
        let players = players
            .iter()
            .map(|(id, s)| (id.clone(), PlayerState::from_snapshot(s, &mut defs)))
            .collect();
        Self {
            defs,
            players,
            replay: false,
        }
    }
}
