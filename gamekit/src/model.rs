//! AWS GameKit's achievement model, and how it maps onto Laurel's.
//!
//! A GameKit achievement is a counter per player that earns at `max_value`. In Laurel it is
//! a stat `gamekit.<achievement_id>` (an `int` summed, players may write it) and an
//! achievement whose one condition is that stat at least `max_value`. GameKit's fields
//! without a Laurel counterpart (`is_stateful`, `is_hidden`, `max_value`) are kept in the
//! definition's `metadata.gamekit`, which the GameKit routes read.

use std::collections::BTreeMap;

use laurel_schemas::{
    AchievementDefinition, AchievementSpec, Aggregation, Condition, StatKind, StatSpec, Threshold,
    Value, Visibility,
};
use serde::{Deserialize, Serialize};

/// The prefix of the stats that count GameKit achievements' progress.
pub(crate) const STAT_PREFIX: &str = "gamekit.";

/// An achievement as GameKit's admin API takes and gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GameKitAchievement {
    pub(crate) achievement_id: String,
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) locked_description: String,
    #[serde(default)]
    pub(crate) unlocked_description: String,
    #[serde(default)]
    pub(crate) locked_icon_url: String,
    #[serde(default)]
    pub(crate) unlocked_icon_url: String,
    #[serde(default)]
    pub(crate) points: u32,
    #[serde(default)]
    pub(crate) is_stateful: bool,
    #[serde(default = "one")]
    pub(crate) max_value: u32,
    #[serde(default)]
    pub(crate) is_secret: bool,
    #[serde(default)]
    pub(crate) is_hidden: bool,
    #[serde(default)]
    pub(crate) order_number: i32,
}

fn one() -> u32 {
    1
}

/// What `metadata.gamekit` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GameKitExtra {
    pub(crate) is_stateful: bool,
    pub(crate) is_hidden: bool,
    pub(crate) max_value: u32,
    /// When GameKit's admin API first stored it (Python's `isoformat()`, kept across
    /// updates), and last stored it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) updated_at: Option<String>,
}

impl GameKitExtra {
    /// A definition's GameKit fields (`None`: not a GameKit achievement).
    pub(crate) fn of(def: &AchievementDefinition) -> Option<Self> {
        serde_json::from_value(def.metadata.get("gamekit")?.clone()).ok()
    }
}

/// A UTC time as GameKit's Lambdas write it: Python's `datetime.isoformat()`, with
/// microseconds unless there are none (`2021-07-27T00:38:42.927855+00:00`).
pub(crate) fn python_isoformat(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let fraction = match at.microsecond() {
        0 => String::new(),
        micros => format!(".{micros:06}"),
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}+00:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The stat counting an achievement's progress.
pub(crate) fn stat_of(achievement_id: &str) -> String {
    format!("{STAT_PREFIX}{achievement_id}")
}

impl GameKitAchievement {
    /// This achievement as GameKit's AdminAddAchievements stores it: its id, title,
    /// descriptions and icon URLs through GameKit's sanitizer.
    pub(crate) fn sanitized(&self) -> Self {
        use super::sanitize::sanitize;
        Self {
            achievement_id: sanitize(&self.achievement_id),
            title: sanitize(&self.title),
            locked_description: sanitize(&self.locked_description),
            unlocked_description: sanitize(&self.unlocked_description),
            locked_icon_url: sanitize(&self.locked_icon_url),
            unlocked_icon_url: sanitize(&self.unlocked_icon_url),
            ..self.clone()
        }
    }

    /// The stat and achievement definitions that mean this achievement in Laurel.
    pub(crate) fn to_laurel(&self) -> (String, StatSpec, AchievementSpec) {
        let max_value = self.max_value.max(1);
        let stat = stat_of(&self.achievement_id);
        let stat_spec = StatSpec {
            aggregation: Aggregation::Sum,
            kind: StatKind::Int,
            min_value: None,
            max_value: None,
            max_delta: None,
            client_writable: true,
            client_time: false,
            period: None,
            scope: Default::default(),
        };
        let extra = GameKitExtra {
            is_stateful: self.is_stateful,
            is_hidden: self.is_hidden,
            max_value,
            created_at: None,
            updated_at: None,
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "gamekit".into(),
            serde_json::to_value(extra).expect("plain fields serialize"),
        );
        let icon = |url: &str| (!url.is_empty()).then(|| url.to_string());
        let spec = AchievementSpec {
            title: self.title.clone(),
            locked_description: self.locked_description.clone(),
            unlocked_description: self.unlocked_description.clone(),
            locked_icon: icon(&self.locked_icon_url),
            unlocked_icon: icon(&self.unlocked_icon_url),
            points: self.points,
            order: self.order_number,
            visibility: if self.is_hidden {
                Visibility::Hidden
            } else if self.is_secret {
                Visibility::Secret
            } else {
                Visibility::Visible
            },
            conditions: vec![Condition {
                stat: stat
                    .as_str()
                    .try_into()
                    .expect("a valid id makes a valid stat name"),
                threshold: Threshold::AtLeast(Value::Int(i64::from(max_value))),
            }],
            requires: Vec::new(),
            available_from: None,
            available_until: None,
            localizations: BTreeMap::new(),
            metadata,
            tags: Vec::new(),
            repeat: None,
            rewards: Default::default(),
            claim: false,
            min_contribution: None,
        };
        (stat, stat_spec, spec)
    }

    /// A Laurel definition as GameKit shows it (`None`: not a GameKit achievement).
    pub(crate) fn from_laurel(def: &AchievementDefinition) -> Option<Self> {
        let extra = GameKitExtra::of(def)?;
        Some(Self {
            achievement_id: def.id.to_string(),
            title: def.title.clone(),
            locked_description: def.locked_description.clone(),
            unlocked_description: def.unlocked_description.clone(),
            locked_icon_url: def.locked_icon.clone().unwrap_or_default(),
            unlocked_icon_url: def.unlocked_icon.clone().unwrap_or_default(),
            points: def.points,
            is_stateful: extra.is_stateful,
            max_value: extra.max_value,
            is_secret: def.visibility == Visibility::Secret,
            is_hidden: extra.is_hidden,
            order_number: def.order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_python_writes_them() {
        let at = time::macros::datetime!(2021-07-27 00:38:42.927855 UTC);
        assert_eq!(python_isoformat(at), "2021-07-27T00:38:42.927855+00:00");
        let whole = time::macros::datetime!(2022-01-01 00:00:00 UTC);
        assert_eq!(python_isoformat(whole), "2022-01-01T00:00:00+00:00");
    }

    #[test]
    fn a_gamekit_achievement_maps_to_laurel_and_back() {
        let gk: GameKitAchievement = serde_json::from_value(serde_json::json!({
            "achievement_id": "EAT_BANANAS", "title": "Banana lover", "points": 10,
            "locked_description": "Eat 10 bananas", "unlocked_description": "You ate 10",
            "locked_icon_url": "https://cdn.example/l.png", "unlocked_icon_url": "",
            "is_stateful": true, "max_value": 10, "is_secret": true, "is_hidden": false,
            "order_number": 3
        }))
        .unwrap();
        let (stat, stat_spec, spec) = gk.to_laurel();
        assert_eq!(stat, "gamekit.EAT_BANANAS");
        assert!(stat_spec.client_writable);
        assert_eq!(spec.visibility, Visibility::Secret);
        assert_eq!(
            spec.conditions[0].threshold,
            Threshold::AtLeast(Value::Int(10))
        );
        assert_eq!(spec.unlocked_icon, None);
        let id = "EAT_BANANAS".try_into().unwrap();
        spec.validate(&id).unwrap();
        let def = AchievementDefinition::from_spec(id, spec, 1);
        assert_eq!(GameKitAchievement::from_laurel(&def), Some(gk));
    }
}
