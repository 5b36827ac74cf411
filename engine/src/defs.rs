//! The definitions cache: stats and achievements compiled for evaluation.
//!
//! Stats and achievements get dense indices in the order they are first named; indices are
//! never reused (stats are never deleted, achievements are archived), so player state held
//! by index stays valid as definitions change. A name referenced before it is defined gets
//! an index with no definition: a condition on it never holds, a requirement on it is never
//! met, until the definition arrives.

use laurel_schemas::{
    AchievementDefinition, AchievementId, AchievementSpec, DefinitionEvent, Millis, Period,
    PeriodKey, Reason, Repeat, Scope, SeasonDefinition, SeasonId, Source, StatDefinition, StatKind,
    StatName, StatSpec, Threshold, ValidationError, Value, to_millis,
};
use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

/// Dense index of a stat in [`Definitions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatIdx(pub(crate) u32);

/// Dense index of an achievement in [`Definitions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AchIdx(pub(crate) u32);

impl StatIdx {
    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }
}

impl AchIdx {
    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StatEntry {
    pub(crate) name: StatName,
    pub(crate) def: Option<StatDefinition>,
    /// The definition's period, for the fold's fast path.
    pub(crate) period: Option<Period>,
    /// Whether it is a community total (`scope: global`).
    pub(crate) global: bool,
}

/// An achievement compiled for evaluation.
#[derive(Debug, Clone)]
pub(crate) struct AchEntry {
    pub(crate) id: AchievementId,
    pub(crate) def: Option<AchievementDefinition>,
    pub(crate) conditions: Vec<(StatIdx, Threshold)>,
    pub(crate) requires: Vec<AchIdx>,
    pub(crate) from_ms: Option<Millis>,
    pub(crate) until_ms: Option<Millis>,
    /// Whether (and how) it is earned again.
    pub(crate) repeat: Option<Repeat>,
    /// The period of the periodic stats its conditions read: it is then earned once per
    /// period, evaluated on the period's values.
    pub(crate) period: Option<Period>,
    /// For a community goal (its condition reads a `global` stat): the least contribution
    /// that earns it once the goal is reached.
    pub(crate) community: Option<Value>,
}

impl AchEntry {
    /// The definition, if the achievement is defined and not archived.
    pub(crate) fn live(&self) -> Option<&AchievementDefinition> {
        self.def.as_ref().filter(|d| !d.archived)
    }

    /// Whether an event received at `at` falls in the availability window `[from, until)`.
    pub(crate) fn available_at(&self, at: Millis) -> bool {
        self.from_ms.is_none_or(|from| at >= from) && self.until_ms.is_none_or(|until| at < until)
    }
}

/// What a definition change means for evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefsChange {
    /// Nothing to re-evaluate (a stat definition, an archive).
    None,
    /// Players whose state satisfies this achievement now should unlock it.
    Reevaluate(AchIdx),
}

/// Stat and achievement definitions, compiled for evaluation. Built by applying the DEFS log.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    pub(crate) stats: Vec<StatEntry>,
    stat_index: FxHashMap<StatName, StatIdx>,
    pub(crate) achievements: Vec<AchEntry>,
    ach_index: FxHashMap<AchievementId, AchIdx>,
    /// For each stat, the achievements whose conditions read it.
    pub(crate) by_stat: Vec<Vec<AchIdx>>,
    /// For each achievement, the achievements that require it.
    pub(crate) required_by: Vec<Vec<AchIdx>>,
    /// Seasons by id.
    seasons: BTreeMap<SeasonId, SeasonDefinition>,
    /// Whether any stat is a community total (most games have none: the fold's shares
    /// bookkeeping is then skipped).
    any_global: bool,
}

impl Definitions {
    /// No definitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of a stat, if it has one.
    pub fn stat_idx(&self, name: &str) -> Option<StatIdx> {
        self.stat_index.get(name).copied()
    }

    /// The index of an achievement, if it has one.
    pub fn achievement_idx(&self, id: &str) -> Option<AchIdx> {
        self.ach_index.get(id).copied()
    }

    /// A stat's definition.
    pub fn stat(&self, name: &str) -> Option<&StatDefinition> {
        self.stat_idx(name)
            .and_then(|i| self.stats[i.get()].def.as_ref())
    }

    /// An achievement's definition (archived ones included).
    pub fn achievement(&self, id: &str) -> Option<&AchievementDefinition> {
        self.achievement_idx(id)
            .and_then(|i| self.achievements[i.get()].def.as_ref())
    }

    /// Every defined stat, in definition order.
    pub fn stats(&self) -> impl Iterator<Item = &StatDefinition> {
        self.stats.iter().filter_map(|s| s.def.as_ref())
    }

    /// Every defined achievement (archived ones included), in definition order.
    pub fn achievements(&self) -> impl Iterator<Item = &AchievementDefinition> {
        self.achievements.iter().filter_map(|a| a.def.as_ref())
    }

    /// Whether any stat is a community total.
    pub fn any_global(&self) -> bool {
        self.any_global
    }

    /// Whether the stat is a community total (`scope: global`).
    pub fn is_global(&self, name: &str) -> bool {
        self.stat_idx(name)
            .is_some_and(|i| self.stats[i.get()].global)
    }

    /// The live community goals on `stat`: each goal's index and its threshold.
    pub fn goals_on(&self, stat: &str) -> Vec<(AchIdx, &AchievementDefinition, Value)> {
        let Some(idx) = self.stat_idx(stat) else {
            return Vec::new();
        };
        self.by_stat[idx.get()]
            .iter()
            .filter_map(|a| {
                let entry = &self.achievements[a.get()];
                entry.community?;
                let threshold = entry.conditions.first()?.1.value();
                Some((*a, entry.live()?, threshold))
            })
            .collect()
    }

    /// A season's definition.
    pub fn season(&self, id: &str) -> Option<&SeasonDefinition> {
        self.seasons.get(id)
    }

    /// Every season, by id.
    pub fn seasons(&self) -> impl Iterator<Item = &SeasonDefinition> {
        self.seasons.values()
    }

    /// The period an event at `at` falls in for `period`: a season's only within its
    /// window (none while the season is not defined).
    pub fn period_key(&self, period: &Period, at: Millis) -> Option<PeriodKey> {
        let window = match period {
            Period::Season(id) => Some(self.seasons.get(id.as_str())?.window()),
            _ => None,
        };
        period.key(at, window)
    }

    /// The number of stat indices handed out.
    pub fn stat_count(&self) -> usize {
        self.stats.len()
    }

    /// The number of achievement indices handed out.
    pub fn achievement_count(&self) -> usize {
        self.achievements.len()
    }

    /// The index of a stat, handing out a new one if the name is new.
    pub fn intern_stat_name(&mut self, name: &StatName) -> StatIdx {
        self.intern_stat(name)
    }

    /// The index of an achievement, handing out a new one if the id is new.
    pub fn intern_achievement_id(&mut self, id: &AchievementId) -> AchIdx {
        self.intern_achievement(id)
    }

    fn intern_stat(&mut self, name: &StatName) -> StatIdx {
        if let Some(i) = self.stat_index.get(name.as_str()) {
            return *i;
        }
        let idx = StatIdx(self.stats.len() as u32);
        self.stats.push(StatEntry {
            name: name.clone(),
            def: None,
            period: None,
            global: false,
        });
        self.by_stat.push(Vec::new());
        self.stat_index.insert(name.clone(), idx);
        idx
    }

    fn intern_achievement(&mut self, id: &AchievementId) -> AchIdx {
        if let Some(i) = self.ach_index.get(id.as_str()) {
            return *i;
        }
        let idx = AchIdx(self.achievements.len() as u32);
        self.achievements.push(AchEntry {
            id: id.clone(),
            def: None,
            conditions: Vec::new(),
            requires: Vec::new(),
            from_ms: None,
            until_ms: None,
            repeat: None,
            period: None,
            community: None,
        });
        self.required_by.push(Vec::new());
        self.ach_index.insert(id.clone(), idx);
        idx
    }

    /// Applies one entry of the DEFS log (every change of a set) and says what it means
    /// for players: the achievements to evaluate again, once all are applied.
    pub fn apply(&mut self, event: &DefinitionEvent) -> Vec<AchIdx> {
        event
            .each()
            .into_iter()
            .filter_map(|change| match self.apply_one(change) {
                DefsChange::Reevaluate(ach) => Some(ach),
                DefsChange::None => None,
            })
            .collect()
    }

    fn apply_one(&mut self, event: &DefinitionEvent) -> DefsChange {
        match event {
            DefinitionEvent::StatDefined { definition, .. } => {
                let idx = self.intern_stat(&definition.name);
                let entry = &mut self.stats[idx.get()];
                entry.period = definition.period.clone();
                entry.global = definition.scope == Scope::Global;
                entry.def = Some(definition.clone());
                self.any_global = self.stats.iter().any(|s| s.global);
                DefsChange::None
            }
            DefinitionEvent::SeasonDefined { definition, .. } => {
                self.seasons
                    .insert(definition.id.clone(), definition.clone());
                DefsChange::None
            }
            DefinitionEvent::AchievementDefined { definition, .. } => {
                DefsChange::Reevaluate(self.define_achievement(definition))
            }
            DefinitionEvent::AchievementArchived { id, version, .. } => {
                let idx = self.intern_achievement(id);
                if let Some(def) = &mut self.achievements[idx.get()].def {
                    def.archived = true;
                    def.version = *version;
                }
                DefsChange::None
            }
            DefinitionEvent::ChangeSet { .. } => {
                self.apply(event);
                DefsChange::None
            }
            // A record for the audit log: no definition changes.
            DefinitionEvent::AdminAction { .. } => DefsChange::None,
        }
    }

    fn define_achievement(&mut self, def: &AchievementDefinition) -> AchIdx {
        let idx = self.intern_achievement(&def.id);
        // Unhook the previous version from the indices before hooking in the new one.
        let old = std::mem::take(&mut self.achievements[idx.get()].conditions);
        for (stat, _) in old {
            self.by_stat[stat.get()].retain(|a| *a != idx);
        }
        let old = std::mem::take(&mut self.achievements[idx.get()].requires);
        for req in old {
            self.required_by[req.get()].retain(|a| *a != idx);
        }
        let conditions: Vec<(StatIdx, Threshold)> = def
            .conditions
            .iter()
            .map(|c| (self.intern_stat(&c.stat), c.threshold))
            .collect();
        let period = conditions
            .iter()
            .find_map(|(stat, _)| self.stats[stat.get()].period.clone());
        let community = conditions
            .iter()
            .any(|(stat, _)| self.stats[stat.get()].global)
            .then(|| def.min_contribution.unwrap_or(Value::Int(1)));
        for (stat, _) in &conditions {
            let readers = &mut self.by_stat[stat.get()];
            if !readers.contains(&idx) {
                readers.push(idx);
            }
        }
        let requires: Vec<AchIdx> = def
            .requires
            .iter()
            .map(|r| self.intern_achievement(r))
            .collect();
        for req in &requires {
            self.required_by[req.get()].push(idx);
        }
        let entry = &mut self.achievements[idx.get()];
        entry.def = Some(def.clone());
        entry.conditions = conditions;
        entry.requires = requires;
        entry.from_ms = def.available_from.map(to_millis);
        entry.until_ms = def.available_until.map(to_millis);
        entry.repeat = def.repeat;
        entry.period = period;
        entry.community = community;
        idx
    }

    /// Checks an achievement spec against these definitions: its own rules, then that its
    /// stats and required achievements exist and that requirements form no cycle.
    pub fn check_achievement(
        &self,
        id: &AchievementId,
        spec: &AchievementSpec,
    ) -> Result<(), Vec<ValidationError>> {
        let mut errors = spec.validate(id).err().unwrap_or_default();
        for (i, c) in spec.conditions.iter().enumerate() {
            if self.stat(c.stat.as_str()).is_none() {
                let reason = Reason::UnknownStat {
                    stat: c.stat.to_string(),
                };
                errors.push(ValidationError::new(
                    format!("conditions[{i}].stat"),
                    reason,
                ));
            }
        }
        let mut period: Option<&Period> = None;
        for (i, c) in spec.conditions.iter().enumerate() {
            let Some(p) = self.stat(c.stat.as_str()).and_then(|d| d.period.as_ref()) else {
                continue;
            };
            match period {
                None => period = Some(p),
                Some(first) if first != p => {
                    let reason = Reason::MixedPeriods {
                        a: first.to_string(),
                        b: p.to_string(),
                    };
                    errors.push(ValidationError::new(
                        format!("conditions[{i}].stat"),
                        reason,
                    ));
                }
                Some(_) => {}
            }
        }
        let global = spec.conditions.iter().any(|c| {
            self.stat(c.stat.as_str())
                .is_some_and(|d| d.scope == Scope::Global)
        });
        if global {
            // A community goal: one `at_least` threshold on the total, earned once.
            let single = spec.conditions.len() == 1
                && matches!(spec.conditions[0].threshold, Threshold::AtLeast(_));
            if !single {
                let what = "other conditions: a community goal has one at_least condition, on its global stat".into();
                errors.push(ValidationError::new(
                    "conditions",
                    Reason::Conflicts { what },
                ));
            }
            if spec.repeat.is_some() {
                let what = "a community goal (earned once, when the community reaches it)".into();
                errors.push(ValidationError::new("repeat", Reason::Conflicts { what }));
            }
        } else if spec.min_contribution.is_some() {
            let what = "a condition on a global stat (a community goal)".into();
            errors.push(ValidationError::new(
                "min_contribution",
                Reason::Needs { what },
            ));
        }
        if let Some(min) = spec.min_contribution
            && !min.is_finite()
        {
            errors.push(ValidationError::new("min_contribution", Reason::NotFinite));
        }
        if period.is_some() && spec.repeat.is_some() {
            let what =
                "conditions on a periodic stat (it is earned once per period already)".into();
            errors.push(ValidationError::new("repeat", Reason::Conflicts { what }));
        }
        for (i, r) in spec.requires.iter().enumerate() {
            if r == id {
                continue; // reported by validate
            }
            if self.achievement(r.as_str()).is_none() {
                let reason = Reason::UnknownAchievement { id: r.to_string() };
                errors.push(ValidationError::new(format!("requires[{i}]"), reason));
            } else if self.requires_transitively(r, id) {
                errors.push(ValidationError::new(
                    format!("requires[{i}]"),
                    Reason::SelfReference,
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Checks a stat spec against these definitions: a season it names must be defined.
    /// (Whether `aggregation`, `kind` and `period` changed is the writer's to refuse.)
    pub fn check_stat(&self, spec: &StatSpec) -> Result<(), Vec<ValidationError>> {
        let mut errors = spec.validate().err().unwrap_or_default();
        if let Some(Period::Season(season)) = &spec.period
            && self.season(season.as_str()).is_none()
        {
            let reason = Reason::UnknownSeason {
                id: season.to_string(),
            };
            errors.push(ValidationError::new("period.season", reason));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether `from` requires `target`, directly or through other requirements.
    fn requires_transitively(&self, from: &AchievementId, target: &AchievementId) -> bool {
        let (Some(start), Some(goal)) = (
            self.achievement_idx(from.as_str()),
            self.achievement_idx(target.as_str()),
        ) else {
            return false;
        };
        let mut seen = FxHashSet::default();
        let mut stack = vec![start];
        while let Some(a) = stack.pop() {
            if a == goal {
                return true;
            }
            if seen.insert(a) {
                stack.extend(&self.achievements[a.get()].requires);
            }
        }
        false
    }

    /// Checks a reported stat value against its definition: defined, writable by `source`,
    /// of the stat's kind, within its bounds. Returns the value coerced to the stat's kind.
    /// (`max_delta` against the current value is the engine's to check.)
    pub fn check_report(&self, stat: &str, value: Value, source: Source) -> Result<Value, Reason> {
        let def = self.stat(stat).ok_or_else(|| Reason::UnknownStat {
            stat: stat.to_string(),
        })?;
        check_report(def, value, source)
    }
}

/// See [`Definitions::check_report`].
pub(crate) fn check_report(
    def: &StatDefinition,
    value: Value,
    source: Source,
) -> Result<Value, Reason> {
    if source == Source::Player && !def.client_writable {
        return Err(Reason::NotWritable {
            stat: def.name.to_string(),
        });
    }
    if !value.is_finite() {
        return Err(Reason::NotFinite);
    }
    let value = match def.kind {
        StatKind::Int => Value::Int(value.to_int()?),
        StatKind::Float => Value::Float(value.as_f64()),
    };
    if let Some(min) = def.min_value
        && value.compare(min).is_lt()
    {
        return Err(Reason::BelowMin { min });
    }
    if let Some(max) = def.max_value
        && value.compare(max).is_gt()
    {
        return Err(Reason::AboveMax { max });
    }
    Ok(value)
}
