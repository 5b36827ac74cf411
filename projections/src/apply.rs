//! How log entries change the views: a fold into an overlay of one tree, committed as one
//! sled batch with the position it reaches.

use std::collections::{BTreeMap, HashMap};

use laurel_schemas::{
    AchievementDefinition, DefinitionEvent, Millis, Output, StatChanged, decode, encode,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys;
use crate::staged::Staged;
use crate::views::PlayerView;

/// An earned achievement, as a player's view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Earned {
    /// The unlock's deterministic id.
    pub unlock_id: Uuid,
    /// When it was earned (server time of the causing event).
    pub unlocked_at: Millis,
    /// Points it awarded.
    pub points: u32,
    /// The definition version that unlocked.
    pub definition_version: u64,
}

/// Reads through a batch's writes to the view; stages them with the position they reach.
pub(crate) struct Overlay<'a> {
    view: &'a Staged,
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Player records touched by the batch, decoded once and encoded at commit.
    players: HashMap<String, PlayerView>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(view: &'a Staged) -> Self {
        Self {
            view,
            writes: BTreeMap::new(),
            players: HashMap::new(),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, sled::Error> {
        match self.writes.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None => self.view.get(key),
        }
    }

    fn get_u64(&self, key: &[u8]) -> Result<u64, sled::Error> {
        Ok(keys::u64_of(self.get(key)?.as_deref()))
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, value);
    }

    fn add(&mut self, key: Vec<u8>, delta: u64) -> Result<(), sled::Error> {
        let value = self.get_u64(&key)? + delta;
        self.put(key, value.to_be_bytes().to_vec());
        Ok(())
    }

    /// Stages everything with the position reached (written to disk together, later);
    /// returns how many keys the view has staged.
    pub(crate) fn commit(mut self, position: u64) -> usize {
        for (player, record) in &self.players {
            self.writes.insert(keys::player(player), encode(record));
        }
        self.writes
            .insert(keys::POSITION.to_vec(), position.to_be_bytes().to_vec());
        self.view.stage(self.writes)
    }

    /// Counts the player the first time any output names them.
    /// The player's record, as the batch has it so far; a player seen for the first time
    /// is counted.
    fn player(&mut self, player: &str) -> Result<&mut PlayerView, sled::Error> {
        if !self.players.contains_key(player) {
            let record = match self.view.get(&keys::player(player))? {
                Some(raw) => decode(&raw).unwrap_or_else(|e| {
                    tracing::error!(player, error = %e, "unreadable player view; starting it again");
                    PlayerView::default()
                }),
                None => {
                    self.add(keys::PLAYERS.to_vec(), 1)?;
                    PlayerView::default()
                }
            };
            self.players.insert(player.to_string(), record);
        }
        Ok(self.players.get_mut(player).expect("inserted above"))
    }

    pub(crate) fn apply_output(&mut self, output: &Output) -> Result<(), sled::Error> {
        match output {
            Output::Stat(s) => self.stat(s)?,
            Output::Unlocked(u) => {
                let record = self.player(u.player_id.as_str())?;
                let id = u.achievement_id.as_str();
                if !record.earned.contains_key(id) {
                    let earned = Earned {
                        unlock_id: u.unlock_id,
                        unlocked_at: u.unlocked_at,
                        points: u.points,
                        definition_version: u.definition_version,
                    };
                    record.earned.insert(id.to_string(), earned);
                    record.points_total += u64::from(u.points);
                    self.add(keys::rarity(id), 1)?;
                }
            }
            Output::Checkpoint(c) => self.checkpoint(c.stats_seq)?,
            Output::Changes(c) => {
                for s in &c.stats {
                    self.stat(s)?;
                }
                if c.complete {
                    self.checkpoint(c.stats_seq)?;
                }
            }
            // Progress is derived at read time from stats and definitions; rejections are
            // for analytics. Neither changes a view.
            Output::Progress(_) | Output::Rejected(_) => {}
        }
        Ok(())
    }

    fn stat(&mut self, s: &StatChanged) -> Result<(), sled::Error> {
        let record = self.player(s.player_id.as_str())?;
        record.stats.insert(s.stat.as_str().to_string(), s.value);
        Ok(())
    }

    fn checkpoint(&mut self, stats_seq: u64) -> Result<(), sled::Error> {
        let seq = self.get_u64(keys::CHECKPOINT)?.max(stats_seq);
        self.put(keys::CHECKPOINT.to_vec(), seq.to_be_bytes().to_vec());
        Ok(())
    }

    /// Folds one DEFS entry into the definitions view.
    pub(crate) fn apply_definition(&mut self, event: &DefinitionEvent) -> Result<(), sled::Error> {
        match event {
            DefinitionEvent::StatDefined { definition, .. } => {
                self.put(keys::stat_def(definition.name.as_str()), encode(definition));
            }
            DefinitionEvent::AchievementDefined { definition, .. } => {
                self.put(
                    keys::achievement_def(definition.id.as_str()),
                    encode(definition),
                );
            }
            DefinitionEvent::AchievementArchived { id, version, .. } => {
                let key = keys::achievement_def(id.as_str());
                let stored = self.get(&key)?;
                match stored.as_deref().map(decode::<AchievementDefinition>) {
                    Some(Ok(mut def)) => {
                        def.archived = true;
                        def.version = *version;
                        self.put(key, encode(&def));
                    }
                    Some(Err(e)) => tracing::error!(%id, error = %e, "corrupt definition in view"),
                    None => tracing::warn!(%id, "archive of an achievement the view never saw"),
                }
            }
        }
        Ok(())
    }
}
