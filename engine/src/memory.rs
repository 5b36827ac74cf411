//! An engine holding every player's state in memory: for tests, benchmarks and replays.
//! The durable shell keeps state on disk instead and folds with the same [`Fold`].

use std::collections::BTreeMap;

use laurel_schemas::{DefinitionEvent, Output, PlayerId, StatsMessage};
use rustc_hash::FxHashMap;

use crate::coalesce::coalesce;
use crate::community::Community;
use crate::defs::Definitions;
use crate::fold::Fold;
use crate::state::{PlayerSnapshot, PlayerState};

/// Definitions and every player's state, in memory.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    defs: Definitions,
    players: FxHashMap<PlayerId, PlayerState>,
    replay: bool,
    /// The community state of all players (one partition's, as it were).
    community: Community,
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
            community: Community::default(),
        }
    }

    /// The definitions in force.
    pub fn definitions(&self) -> &Definitions {
        &self.defs
    }

    /// The community state: shares of `global` stats and goals reached.
    pub fn community(&self) -> &Community {
        &self.community
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
        let reached = self.community.reached_in(&self.defs);
        let fold = Fold {
            defs: &self.defs,
            replay: self.replay,
            unlocks: true,
            reached: &reached,
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
        let reached = self.community.reached_in(&self.defs);
        let fold = Fold {
            defs: &self.defs,
            replay: self.replay,
            unlocks: true,
            reached: &reached,
        };
        let Some(id) = msg.player_id() else {
            if let StatsMessage::CommunityReached(c) = msg
                && let Some(goal) = self.defs.achievement_idx(c.achievement_id.as_str())
                && self.community.reach(&c.achievement_id)
            {
                // Every player whose contribution is enough earns it now.
                let reached = self.community.reached_in(&self.defs);
                let fold = fold.with_reached(&reached);
                let mut ids: Vec<PlayerId> = self.players.keys().cloned().collect();
                ids.sort_unstable();
                for id in ids {
                    let player = self.players.get_mut(id.as_str()).expect("listed above");
                    fold.community_reached(player, &id, goal, c.event_id, c.received_at, out);
                }
            }
            return;
        };
        if !self.players.contains_key(id.as_str()) {
            self.players.insert(id.clone(), PlayerState::new());
        }
        let player = self.players.get_mut(id.as_str()).expect("inserted above");
        let start = out.len();
        fold.apply(player, msg, out);
        self.community.add(&self.defs, &out[start..]);
    }

    /// Folds a batch of STATS messages and appends its coalesced outputs, with the
    /// `progress` each final stat value means, as the durable shell publishes them.
    pub fn apply_batch(&mut self, msgs: &[StatsMessage], out: &mut Vec<Output>) {
        let mut batch = Vec::new();
        for msg in msgs {
            self.apply(msg, &mut batch);
        }
        coalesce(&mut batch);
        let reached = self.community.reached_in(&self.defs);
        let fold = Fold {
            defs: &self.defs,
            replay: self.replay,
            unlocks: true,
            reached: &reached,
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
            community: Community::default(),
        }
    }
}
