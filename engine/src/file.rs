//! A definitions file laid over the definitions in force: validated whole, compiled, and
//! turned into the DEFS changes that applying it means.

use laurel_schemas::{
    AchievementDefinition, AchievementId, DefinitionEvent, DefinitionsFile, Millis, Reason,
    SchemaVersion, SeasonDefinition, SeasonId, StatDefinition, StatName, ValidationError, encode,
};
use uuid::Uuid;

use crate::defs::Definitions;

/// Namespace of the ids of definition changes made from a file.
const CHANGE_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_7572_656c_2d64_6566_732d_6669_6c65);

/// The definitions in force with a file laid over them.
#[derive(Debug, Clone)]
pub struct Overlaid {
    /// The definitions as they would be.
    pub defs: Definitions,
    /// The changes that make them so, in the order they can be applied (seasons, stats,
    /// then achievements after those they require); empty when the file changes nothing.
    pub changes: Vec<DefinitionEvent>,
}

impl Definitions {
    /// Lays `file` over these definitions: a stat or achievement of the file replaces the one
    /// in force (its version goes up by one) when it differs; what the file leaves out stays
    /// as it is. The file is checked whole: every field, every condition's stat and every
    /// requirement against the definitions as they would be, and no stat's `aggregation` or
    /// `kind` changing. Errors name their field as `stats.NAME.FIELD` or
    /// `achievements.ID.FIELD`. `at` is the changes' time.
    pub fn overlay(
        &self,
        file: &DefinitionsFile,
        at: Millis,
    ) -> Result<Overlaid, Vec<ValidationError>> {
        self.overlay_pruning(file, false, at)
    }

    /// [`Definitions::overlay`], and with `prune`, archives every achievement in force that
    /// the file leaves out (last, after the file's own changes); a file achievement must then
    /// not require one of them.
    pub fn overlay_pruning(
        &self,
        file: &DefinitionsFile,
        prune: bool,
        at: Millis,
    ) -> Result<Overlaid, Vec<ValidationError>> {
        let mut overlaid = self.overlay_file(file, at)?;
        if !prune {
            return Ok(overlaid);
        }
        let pruned: Vec<AchievementDefinition> = self
            .achievements()
            .filter(|d| !d.archived && !file.achievements.contains_key(d.id.as_str()))
            .cloned()
            .collect();
        let mut errors = Vec::new();
        for (id, spec) in &file.achievements {
            for (i, required) in spec.requires.iter().enumerate() {
                if pruned.iter().any(|d| d.id == *required) {
                    errors.push(ValidationError::new(
                        format!("achievements.{id}.requires[{i}]"),
                        Reason::Archived {
                            id: required.to_string(),
                        },
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for definition in pruned {
            let event = DefinitionEvent::AchievementArchived {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::new_v5(
                    &CHANGE_NAMESPACE,
                    format!("archive {} {}", definition.id, definition.version).as_bytes(),
                ),
                id: definition.id,
                version: definition.version + 1,
                by: None,
                at,
            };
            overlaid.defs.apply(&event);
            overlaid.changes.push(event);
        }
        Ok(overlaid)
    }

    fn overlay_file(
        &self,
        file: &DefinitionsFile,
        at: Millis,
    ) -> Result<Overlaid, Vec<ValidationError>> {
        let mut defs = self.clone();
        let mut changes = Vec::new();
        let mut errors = Vec::new();
        let mut prefixed = |prefix: String, found: Vec<ValidationError>| {
            errors.extend(found.into_iter().map(|e| ValidationError {
                field: format!("{prefix}.{}", e.field),
                reason: e.reason,
            }));
        };
        for (id, spec) in &file.seasons {
            let season = match SeasonId::new(id.as_str()) {
                Ok(season) => season,
                Err(reason) => {
                    prefixed("seasons".into(), vec![ValidationError::new(id, reason)]);
                    continue;
                }
            };
            if let Err(found) = spec.validate() {
                prefixed(format!("seasons.{id}"), found);
                continue;
            }
            let current = self.season(id);
            if current.is_some_and(|d| d.to_spec() == *spec) {
                continue;
            }
            let definition = SeasonDefinition {
                id: season,
                starts_at: spec.starts_at,
                ends_at: spec.ends_at,
                version: current.map_or(0, |d| d.version) + 1,
            };
            let event = DefinitionEvent::SeasonDefined {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::new_v5(&CHANGE_NAMESPACE, &encode(&definition)),
                definition,
                by: None,
                at,
            };
            defs.apply(&event);
            changes.push(event);
        }
        for (name, spec) in &file.stats {
            let stat = match StatName::new(name.as_str()) {
                Ok(stat) => stat,
                Err(reason) => {
                    prefixed("stats".into(), vec![ValidationError::new(name, reason)]);
                    continue;
                }
            };
            // Against the definitions as they would be: a season of the file counts.
            if let Err(found) = defs.check_stat(spec) {
                prefixed(format!("stats.{name}"), found);
                continue;
            }
            let current = self.stat(name);
            if let Some(current) = current {
                let mut fixed = Vec::new();
                if current.aggregation != spec.aggregation {
                    fixed.push(ValidationError::new("aggregation", Reason::Fixed));
                }
                if current.kind != spec.kind {
                    fixed.push(ValidationError::new("kind", Reason::Fixed));
                }
                if current.period != spec.period {
                    fixed.push(ValidationError::new("period", Reason::Fixed));
                }
                if !fixed.is_empty() {
                    prefixed(format!("stats.{name}"), fixed);
                    continue;
                }
                if current.to_spec() == *spec {
                    continue;
                }
            }
            let version = current.map_or(0, |d| d.version) + 1;
            let definition = StatDefinition::from_spec(stat, spec.clone(), version);
            let event = DefinitionEvent::StatDefined {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::new_v5(&CHANGE_NAMESPACE, &encode(&definition)),
                definition,
                by: None,
                at,
            };
            defs.apply(&event);
            changes.push(event);
        }
        let mut valid = Vec::new();
        for (id, spec) in &file.achievements {
            match AchievementId::new(id.as_str()) {
                Ok(achievement) => valid.push((achievement, spec)),
                Err(reason) => prefixed(
                    "achievements".into(),
                    vec![ValidationError::new(id, reason)],
                ),
            }
        }
        let mut defined = Vec::new();
        for (id, spec) in valid {
            let current = self.achievement(id.as_str());
            if current.is_some_and(|d| !d.archived && d.to_spec() == *spec) {
                continue;
            }
            let version = current.map_or(0, |d| d.version) + 1;
            defined.push(AchievementDefinition::from_spec(id, spec.clone(), version));
        }
        // Defined before checked, so that requirements among the file's achievements are
        // known; each is then checked against the whole.
        let events: Vec<DefinitionEvent> = defined
            .into_iter()
            .map(|definition| DefinitionEvent::AchievementDefined {
                v: SchemaVersion::CURRENT,
                event_id: Uuid::new_v5(&CHANGE_NAMESPACE, &encode(&definition)),
                definition,
                by: None,
                at,
            })
            .collect();
        for event in &events {
            defs.apply(event);
        }
        for event in &events {
            let DefinitionEvent::AchievementDefined { definition, .. } = event else {
                continue;
            };
            let spec = definition.to_spec();
            if let Err(found) = defs.check_achievement(&definition.id, &spec) {
                prefixed(format!("achievements.{}", definition.id), found);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        changes.extend(requirements_first(events));
        Ok(Overlaid { defs, changes })
    }
}

/// Achievement changes with each after those it requires (among them); the rest in the
/// order given. Requirements were checked acyclic.
fn requirements_first(mut left: Vec<DefinitionEvent>) -> Vec<DefinitionEvent> {
    let id_of = |e: &DefinitionEvent| match e {
        DefinitionEvent::AchievementDefined { definition, .. } => Some(definition.id.clone()),
        _ => None,
    };
    let mut placed: Vec<DefinitionEvent> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let pending: Vec<AchievementId> = left.iter().filter_map(id_of).collect();
        let ready = |e: &DefinitionEvent| match e {
            DefinitionEvent::AchievementDefined { definition, .. } => {
                definition.requires.iter().all(|r| !pending.contains(r))
            }
            _ => true,
        };
        let (now, later): (Vec<_>, Vec<_>) = left.into_iter().partition(|e| ready(e));
        if now.is_empty() {
            placed.extend(later);
            break;
        }
        placed.extend(now);
        left = later;
    }
    placed
}
