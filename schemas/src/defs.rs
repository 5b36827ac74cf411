//! Stat and achievement definitions, and the DEFS log's [`DefinitionEvent`].
//!
//! `*Spec` types are what an admin writes (the HTTP body, the definitions file): they refuse
//! unknown fields. `*Definition` types are what Laurel stores: the spec plus the name or id
//! and the server-assigned `version`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::names::LANGUAGE_TAG_PATTERN;
use crate::names::{AchievementId, PlayerId, SeasonId, StatName, is_language_tag};
use crate::period::Period;
pub use crate::validation::{DESCRIPTION_MAX, ICON_MAX, ICON_REFERENCE_PATTERN, TITLE_MAX};
use crate::validation::{Reason, ValidationError};
use crate::value::Value;
use crate::{Millis, SchemaVersion};

/// How a stat folds the values reported for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Add every reported value (a reported value is a delta).
    Sum,
    /// Keep the largest value reported.
    Max,
    /// Keep the smallest value reported.
    Min,
    /// Keep the last value reported.
    Latest,
}

/// Whose value a stat is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each player's own.
    #[default]
    Player,
    /// A community total: every player's contributions summed into one value (a `sum` stat;
    /// each player's own contribution is still their value).
    Global,
}

impl Scope {
    fn is_player(&self) -> bool {
        *self == Scope::Player
    }
}

/// The number type of a stat.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatKind {
    /// A 64-bit signed integer.
    Int,
    /// A 64-bit float.
    Float,
}

/// A stat definition as an admin writes it (`PUT /v1/admin/stats/{name}`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatSpec {
    /// How reported values fold into the stat.
    pub aggregation: Aggregation,
    /// The number type.
    pub kind: StatKind,
    /// The smallest value a report may carry and the stat may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub min_value: Option<Value>,
    /// The largest value a report may carry and the stat may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub max_value: Option<Value>,
    /// The largest change one event may make to the stat (anti-cheat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, exclusive_minimum = 0))]
    pub max_delta: Option<Value>,
    /// Whether a player's own token may report it (default: only game servers).
    #[serde(default)]
    pub client_writable: bool,
    /// Whether a player's own token's `ts` counts as the event's time (default: only a game
    /// server's `ts` counts; a player's is informational).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_time: bool,
    /// Aggregated per period (absent: over the player's whole history). Fixed once defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// `global`: a community total of every player's contributions. Fixed once defined.
    #[serde(default, skip_serializing_if = "Scope::is_player")]
    pub scope: Scope,
}

impl StatSpec {
    /// Checks the spec on its own (no other definitions needed).
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        let numbers = [
            ("min_value", self.min_value),
            ("max_value", self.max_value),
            ("max_delta", self.max_delta),
        ];
        for (field, value) in numbers {
            let Some(value) = value else { continue };
            if !value.is_finite() {
                errors.push(ValidationError::new(field, Reason::NotFinite));
            } else if self.kind == StatKind::Int
                && let Err(reason) = value.to_int()
            {
                errors.push(ValidationError::new(field, reason));
            }
        }
        if let (Some(min), Some(max)) = (self.min_value, self.max_value)
            && min.compare(max).is_gt()
        {
            errors.push(ValidationError::new("min_value", Reason::MinAboveMax));
        }
        if let Some(delta) = self.max_delta
            && delta.as_f64() <= 0.0
        {
            errors.push(ValidationError::new("max_delta", Reason::NotPositive));
        }
        if self.scope == Scope::Global {
            if self.aggregation != Aggregation::Sum {
                let what =
                    "an aggregation other than sum (a community total adds contributions)".into();
                errors.push(ValidationError::new("scope", Reason::Conflicts { what }));
            }
            if self.period.is_some() {
                let what = "a period".into();
                errors.push(ValidationError::new("scope", Reason::Conflicts { what }));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A stored stat definition.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatDefinition {
    /// The stat's name.
    pub name: StatName,
    /// How reported values fold into the stat.
    pub aggregation: Aggregation,
    /// The number type.
    pub kind: StatKind,
    /// The smallest value a report may carry and the stat may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub min_value: Option<Value>,
    /// The largest value a report may carry and the stat may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub max_value: Option<Value>,
    /// The largest change one event may make to the stat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, exclusive_minimum = 0))]
    pub max_delta: Option<Value>,
    /// Whether a player's own token may report it.
    #[serde(default)]
    pub client_writable: bool,
    /// Whether a player's own token's `ts` counts as the event's time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_time: bool,
    /// Aggregated per period (absent: over the player's whole history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// `global`: a community total of every player's contributions.
    #[serde(default, skip_serializing_if = "Scope::is_player")]
    pub scope: Scope,
    /// Server-assigned, +1 on every change.
    pub version: u64,
}

impl StatDefinition {
    /// The stored definition of `name` from a spec, at `version`.
    pub fn from_spec(name: StatName, spec: StatSpec, version: u64) -> Self {
        let StatSpec {
            aggregation,
            kind,
            min_value,
            max_value,
            max_delta,
            client_writable,
            client_time,
            period,
            scope,
        } = spec;
        Self {
            name,
            aggregation,
            kind,
            min_value,
            max_value,
            max_delta,
            client_writable,
            client_time,
            period,
            scope,
            version,
        }
    }

    /// The spec an admin would write for this definition.
    pub fn to_spec(&self) -> StatSpec {
        StatSpec {
            aggregation: self.aggregation,
            kind: self.kind,
            min_value: self.min_value,
            max_value: self.max_value,
            max_delta: self.max_delta,
            client_writable: self.client_writable,
            client_time: self.client_time,
            period: self.period.clone(),
            scope: self.scope,
        }
    }
}

/// A season as an admin writes it (`PUT /v1/admin/seasons/{id}`): the window of the stats
/// whose `period` names it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeasonSpec {
    /// When it starts (RFC 3339, inclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When it ends (RFC 3339, exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
}

impl SeasonSpec {
    /// Checks the spec on its own.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        if self.starts_at >= self.ends_at {
            return Err(vec![ValidationError::new("starts_at", Reason::EmptyWindow)]);
        }
        Ok(())
    }
}

/// A stored season.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonDefinition {
    /// The season's id.
    pub id: SeasonId,
    /// When it starts (RFC 3339, inclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When it ends (RFC 3339, exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// Server-assigned, +1 on every change.
    pub version: u64,
}

impl SeasonDefinition {
    /// Its window in ms since the epoch, `[starts_at, ends_at)`.
    pub fn window(&self) -> (Millis, Millis) {
        (
            crate::to_millis(self.starts_at),
            crate::to_millis(self.ends_at),
        )
    }

    /// The spec an admin would write for it.
    pub fn to_spec(&self) -> SeasonSpec {
        SeasonSpec {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
        }
    }
}

/// Who sees an achievement before it is earned.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed with its title and locked description.
    #[default]
    Visible,
    /// Listed with its title; descriptions hidden until earned.
    Secret,
    /// Not listed to the player until earned.
    Hidden,
}

/// One condition of an achievement: a threshold on a stat's current value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConditionRepr", into = "ConditionRepr")]
pub struct Condition {
    /// The stat the condition reads.
    pub stat: StatName,
    /// The threshold.
    pub threshold: Threshold,
}

/// The threshold a stat's value must meet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// The value must be at least this.
    AtLeast(Value),
    /// The value must be at most this.
    AtMost(Value),
}

impl Threshold {
    /// The threshold's number.
    pub fn value(self) -> Value {
        match self {
            Threshold::AtLeast(v) | Threshold::AtMost(v) => v,
        }
    }

    /// Whether `value` meets the threshold.
    pub fn holds(self, value: Value) -> bool {
        match self {
            Threshold::AtLeast(t) => value.compare(t).is_ge(),
            Threshold::AtMost(t) => value.compare(t).is_le(),
        }
    }
}

/// A condition on the wire: a stat and exactly one of `at_least` and `at_most`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Condition))]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionRepr {
    stat: StatName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    at_least: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    at_most: Option<Value>,
}

impl TryFrom<ConditionRepr> for Condition {
    type Error = Reason;
    fn try_from(r: ConditionRepr) -> Result<Self, Reason> {
        let threshold = match (r.at_least, r.at_most) {
            (Some(v), None) => Threshold::AtLeast(v),
            (None, Some(v)) => Threshold::AtMost(v),
            _ => {
                let reason = Reason::ExactlyOneOf {
                    a: "at_least".into(),
                    b: "at_most".into(),
                };
                crate::validation::note_refusal(&reason);
                return Err(reason);
            }
        };
        Ok(Condition {
            stat: r.stat,
            threshold,
        })
    }
}

impl From<Condition> for ConditionRepr {
    fn from(c: Condition) -> Self {
        let (at_least, at_most) = match c.threshold {
            Threshold::AtLeast(v) => (Some(v), None),
            Threshold::AtMost(v) => (None, Some(v)),
        };
        ConditionRepr {
            stat: c.stat,
            at_least,
            at_most,
        }
    }
}

/// Texts of an achievement in one language.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Localization {
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::localized_title))]
    pub title: Option<String>,
    /// The description shown before it is earned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::localized_description))]
    pub locked_description: Option<String>,
    /// The description shown once earned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::localized_description))]
    pub unlocked_description: Option<String>,
}

/// How deeply an achievement's `metadata` may nest (the object itself is level 1): deep
/// enough for any game's data, shallow enough that a definition always decodes from the log
/// (whose decoder stops at [`crate::codec::MAX_DEPTH`]).
pub const METADATA_MAX_DEPTH: usize = 32;
/// Whether `s` is an icon digest: 64 lowercase hex digits (a SHA-256).
pub fn is_icon_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` may stand in an icon field: an uploaded icon's digest; an `http(s)` URL whose
/// host is a name or IPv4 address (letters, digits, `.` and `-`), with an optional port, and
/// printable ASCII after it; or a path relative to wherever the game keeps its icons
/// (letters, digits and `._~%-/`, not starting with `/`: AWS GameKit's
/// `icons/x_locked.png`). Anything with another scheme (`javascript:`, `data:`) would be
/// handed to players' clients as a link: refused.
pub fn is_icon_reference(s: &str) -> bool {
    let url = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    let path_byte = |b: u8| b.is_ascii_alphanumeric() || b"._~%-/".contains(&b);
    let Some(rest) = url else {
        return !s.is_empty() && !s.starts_with('/') && s.bytes().all(path_byte);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok && tail.bytes().all(|b| b.is_ascii_graphic())
}

/// The most conditions one achievement may have.
pub const CONDITIONS_MAX: usize = 32;
/// The most tags one achievement may have.
pub const TAGS_MAX: usize = 16;
/// The longest tag, in characters.
pub const TAG_MAX: usize = 64;
/// A tag as a JSON Schema pattern.
pub const TAG_PATTERN: &str = "^[A-Za-z0-9_.:-]{1,64}$";
/// The most rewards one achievement may pay out per earn.
pub const REWARDS_MAX: usize = 16;

/// Whether `s` is a tag: 1 to 64 ASCII letters, digits and `_.:-`.
pub fn is_tag(s: &str) -> bool {
    (1..=TAG_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// How an achievement is earned again: after each earn, its `at_least` conditions count
/// from the stat values at that earn.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// The most earns (absent or null: no limit).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u64))]
    pub max: Option<u32>,
    /// The least time between two earns, in seconds of event time (grants excepted).
    #[serde(default, deserialize_with = "crate::integral::exact")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 4294967295_u64))]
    pub cooldown_secs: u32,
}

macro_rules! achievement_fields {
    ($(#[$attr:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            $($extra)*
            /// The title (default language).
            #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::title))]
            pub title: String,
            /// The description shown before it is earned.
            #[serde(default)]
            #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::description))]
            pub locked_description: String,
            /// The description shown once earned.
            #[serde(default)]
            #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::description))]
            pub unlocked_description: String,
            /// The icon shown before it is earned (a URL or an icon digest).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::icon))]
            pub locked_icon: Option<String>,
            /// The icon shown once earned (a URL or an icon digest).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::openapi::icon))]
            pub unlocked_icon: Option<String>,
            /// Points awarded when earned (0 to 4294967295).
            #[serde(default, deserialize_with = "crate::integral::exact")]
            #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 0, maximum = 4294967295_u64))]
            pub points: u32,
            /// Sort key in lists.
            #[serde(default, deserialize_with = "crate::integral::exact")]
            pub order: i32,
            /// Who sees it before it is earned.
            #[serde(default)]
            pub visibility: Visibility,
            /// All must hold for it to unlock; none means it is earned only by a grant.
            #[serde(default)]
            pub conditions: Vec<Condition>,
            /// Achievements that must be earned first.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub requires: Vec<AchievementId>,
            /// Events received before this instant do not unlock it.
            #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
            pub available_from: Option<OffsetDateTime>,
            /// Events received at or after this instant do not unlock it.
            #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
            pub available_until: Option<OffsetDateTime>,
            /// Texts per BCP 47 language tag, chosen by `Accept-Language`.
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            #[cfg_attr(feature = "openapi", schema(schema_with = crate::names::openapi::localizations_by_tag))]
            pub localizations: BTreeMap<String, Localization>,
            /// Free-form data, returned as is.
            #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
            #[cfg_attr(feature = "openapi", schema(value_type = Object))]
            pub metadata: serde_json::Map<String, serde_json::Value>,
            /// Categories for the game's menus and the console (`?tag=` filters lists).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            #[cfg_attr(feature = "openapi", schema(max_items = 16, inline = false))]
            pub tags: Vec<String>,
            /// Earned again after each earn (absent: earned once).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub repeat: Option<Repeat>,
            /// What each earn pays out: free-form objects (`{"currency": "gold", "amount":
            /// 100}`), one `reward` output per earn on OUTPUT.
            #[serde(default, skip_serializing_if = "crate::outputs::no_rewards")]
            #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>, max_items = 16))]
            pub rewards: crate::outputs::Rewards,
            /// Whether the player claims the rewards (`POST
            /// /v1/players/me/rewards/{unlock_id}/claim`) instead of receiving them on earn.
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            pub claim: bool,
            /// For a community goal (a condition on a `global` stat): the least a player's
            /// own contribution must be for the goal to unlock for them (default 1).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
            pub min_contribution: Option<Value>,
        }
    };
}

achievement_fields!(
    /// An achievement definition as an admin writes it (`PUT /v1/admin/achievements/{id}`).
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    AchievementSpec {}
);

achievement_fields!(
    /// A stored achievement definition.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    AchievementDefinition {
        /// The achievement's id.
        pub id: AchievementId,
        /// Server-assigned, +1 on every change.
        pub version: u64,
        /// Archived achievements unlock no more; earned ones stay earned.
        #[serde(default)]
        pub archived: bool,
    }
);

impl AchievementSpec {
    /// Checks the spec on its own; `id` is the achievement it will be stored under.
    /// Whether its stats and required achievements exist is checked against the
    /// definitions by the engine.
    pub fn validate(&self, id: &AchievementId) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        // Length, and text fit to show players: descriptions may hold line breaks; titles
        // and icon references are one line without whitespace at either end.
        let check_len = |errors: &mut Vec<ValidationError>, field: &str, text: &str, max: usize| {
            if text.chars().count() > max {
                errors.push(ValidationError::new(
                    field,
                    Reason::TooLong {
                        max,
                        unit: "characters".into(),
                    },
                ));
            }
            let multiline = field.ends_with("description");
            // An all-blank title is reported as empty, below.
            let blank_title = field == "title" && text.trim().is_empty();
            if !text.is_empty()
                && !blank_title
                && let Err(reason) = crate::validation::check_text(text, multiline)
            {
                errors.push(ValidationError::new(field, reason));
            }
        };
        let e = &mut errors;
        check_len(e, "title", &self.title, TITLE_MAX);
        check_len(
            e,
            "locked_description",
            &self.locked_description,
            DESCRIPTION_MAX,
        );
        check_len(
            e,
            "unlocked_description",
            &self.unlocked_description,
            DESCRIPTION_MAX,
        );
        check_len(
            e,
            "locked_icon",
            self.locked_icon.as_deref().unwrap_or(""),
            ICON_MAX,
        );
        check_len(
            e,
            "unlocked_icon",
            self.unlocked_icon.as_deref().unwrap_or(""),
            ICON_MAX,
        );
        for (field, icon) in [
            ("locked_icon", &self.locked_icon),
            ("unlocked_icon", &self.unlocked_icon),
        ] {
            if let Some(icon) = icon.as_deref().filter(|i| !i.is_empty())
                && icon.chars().count() <= ICON_MAX
                && !is_icon_reference(icon)
            {
                errors.push(ValidationError::new(field, Reason::IconReference));
            }
        }
        for (tag, loc) in &self.localizations {
            let field = format!("localizations.{tag}");
            if !is_language_tag(tag) {
                errors.push(ValidationError::new(field.clone(), Reason::LanguageTag));
            }
            let texts = [
                ("title", &loc.title, TITLE_MAX),
                (
                    "locked_description",
                    &loc.locked_description,
                    DESCRIPTION_MAX,
                ),
                (
                    "unlocked_description",
                    &loc.unlocked_description,
                    DESCRIPTION_MAX,
                ),
            ];
            for (name, text, max) in texts {
                let text = text.as_deref().unwrap_or("");
                check_len(&mut errors, &format!("{field}.{name}"), text, max);
            }
        }
        if self.title.trim().is_empty() {
            errors.push(ValidationError::new("title", Reason::Empty));
        }
        if object_depth(&self.metadata) > METADATA_MAX_DEPTH {
            errors.push(ValidationError::new(
                "metadata",
                Reason::TooDeep {
                    max: METADATA_MAX_DEPTH,
                },
            ));
        }
        if self.conditions.len() > CONDITIONS_MAX {
            errors.push(ValidationError::new(
                "conditions",
                Reason::TooLong {
                    max: CONDITIONS_MAX,
                    unit: "conditions".into(),
                },
            ));
        }
        for (i, c) in self.conditions.iter().enumerate() {
            if !c.threshold.value().is_finite() {
                errors.push(ValidationError::new(
                    format!("conditions[{i}]"),
                    Reason::NotFinite,
                ));
            }
        }
        for (i, r) in self.requires.iter().enumerate() {
            if r == id {
                errors.push(ValidationError::new(
                    format!("requires[{i}]"),
                    Reason::SelfReference,
                ));
            } else if self.requires[..i].contains(r) {
                errors.push(ValidationError::new(
                    format!("requires[{i}]"),
                    Reason::Duplicate,
                ));
            }
        }
        if let (Some(from), Some(until)) = (self.available_from, self.available_until)
            && from >= until
        {
            errors.push(ValidationError::new("available_from", Reason::EmptyWindow));
        }
        self.validate_live_ops(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl AchievementSpec {
    /// The checks of tags, `repeat`, `rewards` and `claim`.
    fn validate_live_ops(&self, errors: &mut Vec<ValidationError>) {
        if self.tags.len() > TAGS_MAX {
            let unit = "tags".into();
            errors.push(ValidationError::new(
                "tags",
                Reason::TooLong {
                    max: TAGS_MAX,
                    unit,
                },
            ));
        }
        for (i, tag) in self.tags.iter().enumerate() {
            let field = format!("tags[{i}]");
            if !is_tag(tag) {
                let pattern = TAG_PATTERN.into();
                errors.push(ValidationError::new(field, Reason::Pattern { pattern }));
            } else if self.tags[..i].contains(tag) {
                errors.push(ValidationError::new(field, Reason::Duplicate));
            }
        }
        if let Some(repeat) = self.repeat {
            if repeat.max == Some(0) {
                errors.push(ValidationError::new("repeat.max", Reason::NotPositive));
            }
            // Counted from the last earn, an achievement with nothing to count towards would
            // be earned again on every event.
            let counts = self
                .conditions
                .iter()
                .any(|c| matches!(c.threshold, Threshold::AtLeast(t) if t.as_f64() > 0.0));
            if !self.conditions.is_empty() && !counts {
                let what = "an at_least condition with a threshold above zero (or no conditions: earned by grants)".into();
                errors.push(ValidationError::new("repeat", Reason::Needs { what }));
            }
        }
        if self.rewards.len() > REWARDS_MAX {
            let unit = "rewards".into();
            errors.push(ValidationError::new(
                "rewards",
                Reason::TooLong {
                    max: REWARDS_MAX,
                    unit,
                },
            ));
        }
        for (i, reward) in self.rewards.iter().enumerate() {
            if object_depth(reward) > METADATA_MAX_DEPTH {
                let field = format!("rewards[{i}]");
                let max = METADATA_MAX_DEPTH;
                errors.push(ValidationError::new(field, Reason::TooDeep { max }));
            }
        }
        if self.claim && self.rewards.is_empty() {
            let what = "at least one reward to claim".into();
            errors.push(ValidationError::new("claim", Reason::Needs { what }));
        }
    }
}

/// How deeply an object nests: 1 for `{}` or `{"a": 1}`, 2 for `{"a": []}`.
fn object_depth(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    fn depth(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            serde_json::Value::Null
            | serde_json::Value::Bool(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::String(_) => 0,
        }
    }
    1 + map.values().map(depth).max().unwrap_or(0)
}

impl AchievementDefinition {
    /// The stored definition of `id` from a spec, at `version`.
    pub fn from_spec(id: AchievementId, spec: AchievementSpec, version: u64) -> Self {
        let AchievementSpec {
            title,
            locked_description,
            unlocked_description,
            locked_icon,
            unlocked_icon,
            points,
            order,
            visibility,
            conditions,
            requires,
            available_from,
            available_until,
            localizations,
            metadata,
            tags,
            repeat,
            rewards,
            claim,
            min_contribution,
        } = spec;
        Self {
            id,
            version,
            archived: false,
            title,
            locked_description,
            unlocked_description,
            locked_icon,
            unlocked_icon,
            points,
            order,
            visibility,
            conditions,
            requires,
            available_from,
            available_until,
            localizations,
            metadata,
            tags,
            repeat,
            rewards,
            claim,
            min_contribution,
        }
    }

    /// Whether it carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The spec an admin would write for this definition.
    pub fn to_spec(&self) -> AchievementSpec {
        AchievementSpec {
            title: self.title.clone(),
            locked_description: self.locked_description.clone(),
            unlocked_description: self.unlocked_description.clone(),
            locked_icon: self.locked_icon.clone(),
            unlocked_icon: self.unlocked_icon.clone(),
            points: self.points,
            order: self.order,
            visibility: self.visibility,
            conditions: self.conditions.clone(),
            requires: self.requires.clone(),
            available_from: self.available_from,
            available_until: self.available_until,
            localizations: self.localizations.clone(),
            metadata: self.metadata.clone(),
            tags: self.tags.clone(),
            repeat: self.repeat,
            rewards: self.rewards.clone(),
            claim: self.claim,
            min_contribution: self.min_contribution,
        }
    }
}

/// A change to the definitions: what the DEFS log carries.
// Definition changes are rare and short-lived; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DefinitionEvent {
    /// A stat was created or updated.
    StatDefined {
        /// Wire schema version.
        #[serde(default)]
        v: SchemaVersion,
        /// Unique id of this change.
        event_id: Uuid,
        /// The definition as stored.
        definition: StatDefinition,
        /// The admin who made the change (the token's subject); absent on entries written
        /// before it was recorded, and on changes no admin made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// When the server accepted the change.
        at: Millis,
    },
    /// An achievement was created or updated (un-archiving it if it was archived).
    AchievementDefined {
        /// Wire schema version.
        #[serde(default)]
        v: SchemaVersion,
        /// Unique id of this change.
        event_id: Uuid,
        /// The definition as stored.
        definition: AchievementDefinition,
        /// The admin who made the change (the token's subject); absent on entries written
        /// before it was recorded, and on changes no admin made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// When the server accepted the change.
        at: Millis,
    },
    /// A season was created or its window changed.
    SeasonDefined {
        /// Wire schema version.
        #[serde(default)]
        v: SchemaVersion,
        /// Unique id of this change.
        event_id: Uuid,
        /// The season as stored.
        definition: SeasonDefinition,
        /// The admin who made the change (the token's subject); absent on entries written
        /// before it was recorded, and on changes no admin made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// When the server accepted the change.
        at: Millis,
    },
    /// An achievement was archived: it unlocks no more, earned ones stay earned.
    AchievementArchived {
        /// Wire schema version.
        #[serde(default)]
        v: SchemaVersion,
        /// Unique id of this change.
        event_id: Uuid,
        /// The archived achievement.
        id: AchievementId,
        /// Its version after archiving.
        version: u64,
        /// The admin who made the change (the token's subject); absent on entries written
        /// before it was recorded, and on changes no admin made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// When the server accepted the change.
        at: Millis,
    },
    /// Changes made together, all or none (a definitions file applied whole): one DEFS
    /// entry, on the subject `laurel.defs.set.file`. Readers apply every change, then
    /// act on them (a re-evaluation sees the definitions after the whole set).
    ChangeSet {
        /// Wire schema version.
        #[serde(default)]
        v: SchemaVersion,
        /// Unique id of the set.
        event_id: Uuid,
        /// The changes, in the order they apply (stats first, requirements before the
        /// achievements requiring them); never a set themselves.
        changes: Vec<DefinitionEvent>,
        /// The admin who made the change (the token's subject); absent on entries written
        /// before it was recorded, and on changes no admin made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// When the server accepted the set.
        at: Millis,
    },
    /// An admin acted on players through STATS (a grant, a reset) or ran a replay's apply:
    /// recorded here, before the action is appended, for the audit log. Changes no
    /// definition.
    AdminAction {
        /// Wire schema version.
        #[serde(default)]
        v: SchemaVersion,
        /// Unique id of the record (derived from the action's own id).
        event_id: Uuid,
        /// The admin (the token's subject).
        by: String,
        /// What was done.
        action: AdminAction,
        /// When the server accepted it.
        at: Millis,
    },
}

/// What an admin did that the audit log records beside definition changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AdminAction {
    /// Granted an achievement to a player.
    Grant {
        /// The player.
        player_id: PlayerId,
        /// The achievement.
        achievement_id: AchievementId,
    },
    /// Reset a test player: stats, earns and rewards gone.
    Reset {
        /// The player.
        player_id: PlayerId,
    },
    /// Applied a replay: its definitions, and grants of what it found gained.
    Replay {
        /// The replay.
        replay_id: Uuid,
        /// Players' gains it grants.
        gained: u64,
    },
}

impl DefinitionEvent {
    /// The single changes this entry makes, in order: the changes of a set, or itself.
    pub fn each(&self) -> Vec<&DefinitionEvent> {
        match self {
            DefinitionEvent::ChangeSet { changes, .. } => {
                changes.iter().flat_map(DefinitionEvent::each).collect()
            }
            single => vec![single],
        }
    }

    /// The unique id of this change.
    pub fn event_id(&self) -> Uuid {
        match self {
            DefinitionEvent::StatDefined { event_id, .. }
            | DefinitionEvent::SeasonDefined { event_id, .. }
            | DefinitionEvent::AchievementDefined { event_id, .. }
            | DefinitionEvent::AchievementArchived { event_id, .. }
            | DefinitionEvent::ChangeSet { event_id, .. }
            | DefinitionEvent::AdminAction { event_id, .. } => *event_id,
        }
    }

    /// The admin who made the change, when recorded.
    pub fn by(&self) -> Option<&str> {
        match self {
            DefinitionEvent::StatDefined { by, .. }
            | DefinitionEvent::SeasonDefined { by, .. }
            | DefinitionEvent::AchievementDefined { by, .. }
            | DefinitionEvent::AchievementArchived { by, .. }
            | DefinitionEvent::ChangeSet { by, .. } => by.as_deref(),
            DefinitionEvent::AdminAction { by, .. } => Some(by),
        }
    }

    /// The same change, recorded as made by `admin` (a set and each of its changes).
    pub fn made_by(mut self, admin: &str) -> Self {
        match &mut self {
            DefinitionEvent::StatDefined { by, .. }
            | DefinitionEvent::SeasonDefined { by, .. }
            | DefinitionEvent::AchievementDefined { by, .. }
            | DefinitionEvent::AchievementArchived { by, .. } => *by = Some(admin.to_string()),
            DefinitionEvent::ChangeSet { by, changes, .. } => {
                *by = Some(admin.to_string());
                for change in changes.iter_mut() {
                    *change = std::mem::replace(change, placeholder()).made_by(admin);
                }
            }
            DefinitionEvent::AdminAction { by, .. } => *by = admin.to_string(),
        }
        self
    }

    /// What the change is about: `("stat", name)` or `("achievement", id)`, as in the DEFS
    /// subject `laurel.defs.<kind>.<id>`.
    pub fn subject(&self) -> (&'static str, &str) {
        match self {
            DefinitionEvent::StatDefined { definition, .. } => ("stat", definition.name.as_str()),
            DefinitionEvent::SeasonDefined { definition, .. } => ("season", definition.id.as_str()),
            DefinitionEvent::AchievementDefined { definition, .. } => {
                ("achievement", definition.id.as_str())
            }
            DefinitionEvent::AchievementArchived { id, .. } => ("achievement", id.as_str()),
            DefinitionEvent::ChangeSet { .. } => ("set", "file"),
            DefinitionEvent::AdminAction { action, .. } => ("admin", action.name()),
        }
    }

    /// When the server accepted the change.
    pub fn at(&self) -> Millis {
        match self {
            DefinitionEvent::StatDefined { at, .. }
            | DefinitionEvent::SeasonDefined { at, .. }
            | DefinitionEvent::AchievementDefined { at, .. }
            | DefinitionEvent::AchievementArchived { at, .. }
            | DefinitionEvent::ChangeSet { at, .. }
            | DefinitionEvent::AdminAction { at, .. } => *at,
        }
    }
}

/// A change with nothing in it, to take another's place for a moment.
fn placeholder() -> DefinitionEvent {
    DefinitionEvent::ChangeSet {
        v: SchemaVersion::CURRENT,
        event_id: Uuid::nil(),
        changes: Vec::new(),
        by: None,
        at: 0,
    }
}

impl AdminAction {
    /// The action's name: `grant`, `reset` or `replay`.
    pub fn name(&self) -> &'static str {
        match self {
            AdminAction::Grant { .. } => "grant",
            AdminAction::Reset { .. } => "reset",
            AdminAction::Replay { .. } => "replay",
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Condition {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <ConditionRepr as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Condition {
    fn name() -> std::borrow::Cow<'static, str> {
        "Condition".into()
    }
}
