//! Typed validation errors: which field, and why.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// The longest title, in characters.
pub const TITLE_MAX: usize = 128;
/// The longest description, in characters.
pub const DESCRIPTION_MAX: usize = 4096;
/// The longest icon reference, in characters.
pub const ICON_MAX: usize = 1024;
/// An icon reference as a JSON Schema pattern: empty, an `http(s)` URL, an uploaded icon's
/// digest, or a relative path. [`crate::is_icon_reference`] is the rule.
pub const ICON_REFERENCE_PATTERN: &str = concat!(
    "^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?",
    "|[A-Za-z0-9._~%-][A-Za-z0-9._~%/-]*)?$"
);

/// Why a field, an event or a definition was refused. Also the reason on a `rejected` output.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// The field is required here and was not given (a server or admin token must name
    /// the player of each event).
    #[error("is required")]
    Required,
    /// The field is empty.
    #[error("must not be empty")]
    Empty,
    /// The field is longer than allowed.
    #[error("must be at most {max} {unit}")]
    TooLong {
        /// The limit.
        max: usize,
        /// What the limit counts (`characters`, `bytes`).
        unit: String,
    },
    /// The field holds characters outside its alphabet.
    #[error("must match {pattern}")]
    Pattern {
        /// The allowed shape, as a regular expression.
        pattern: String,
    },
    /// The field holds a control character.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// The field starts or ends with whitespace (`" ann"` would pass for `"ann"`).
    #[error("must not start or end with whitespace")]
    SurroundingWhitespace,
    /// The field holds an invisible or bidirectional-control character, with which one
    /// text passes for another (a leading U+FEFF, a U+202E that reverses what follows).
    #[error(
        "must not contain invisible or bidirectional control characters (found U+{code_point:04X})"
    )]
    InvisibleCharacter {
        /// The character's code point.
        code_point: u32,
    },
    /// A number was expected and something else was given (`"5"`, `true`, `null`).
    #[error("must be a number, not {found}")]
    NotANumber {
        /// What was given: `a string`, `a boolean`, `null`, `an array` or `an object`.
        found: String,
    },
    /// A number is NaN or infinite.
    #[error("must be a finite number")]
    NotFinite,
    /// A fractional number was given for an `int` stat.
    #[error("must be an integer: the stat is of kind int")]
    NotInteger,
    /// An integer too large to be exact: past 2^53 a number written with a fraction or an
    /// exponent (or past i64 at all) does not tell which integer it is.
    #[error(
        "must be an exact integer: integers must be written without fraction or exponent and lie within the 64-bit range (-9223372036854775808 to 9223372036854775807)"
    )]
    IntegerOutOfRange,
    /// `min_value` is greater than `max_value`.
    #[error("min_value must not exceed max_value")]
    MinAboveMax,
    /// A number that must be positive is not.
    #[error("must be greater than zero")]
    NotPositive,
    /// `available_from` is not before `available_until`.
    #[error("available_from must be before available_until")]
    EmptyWindow,
    /// Exactly one of two fields must be given.
    #[error("exactly one of {a} and {b} must be given")]
    ExactlyOneOf {
        /// The first field.
        a: String,
        /// The second field.
        b: String,
    },
    /// An achievement requires itself.
    #[error("an achievement cannot require itself")]
    SelfReference,
    /// The same item is listed twice.
    #[error("is listed twice")]
    Duplicate,
    /// The stat is not defined.
    #[error("stat {stat} is not defined")]
    UnknownStat {
        /// The stat's name.
        stat: String,
    },
    /// The achievement is not defined.
    #[error("achievement {id} is not defined")]
    UnknownAchievement {
        /// The achievement's id.
        id: String,
    },
    /// The achievement is archived.
    #[error("achievement {id} is archived")]
    Archived {
        /// The achievement's id.
        id: String,
    },
    /// The value is below the stat's `min_value`.
    #[error("must be at least {min}")]
    BelowMin {
        /// The stat's `min_value`.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        min: Value,
    },
    /// The value is above the stat's `max_value`.
    #[error("must be at most {max}")]
    AboveMax {
        /// The stat's `max_value`.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        max: Value,
    },
    /// The event would change the stat by more than its `max_delta`.
    #[error("changes the stat by {delta}, more than its max_delta {max_delta}")]
    DeltaTooLarge {
        /// The change this event would make.
        delta: f64,
        /// The stat's `max_delta`.
        max_delta: f64,
    },
    /// A player's own token reported a stat that only game servers may report.
    #[error("stat {stat} is not client_writable: only a game server may report it")]
    NotWritable {
        /// The stat's name.
        stat: String,
    },
    /// A reset named a player who is not a test player (no `--test-players` pattern
    /// matches the id).
    #[error("is not a test player: only ids matching --test-players can be reset")]
    NotATestPlayer,
    /// The field is fixed once defined (a stat's `aggregation` and `kind`: stored totals
    /// were folded under them).
    #[error("is fixed once defined: define a new stat instead")]
    Fixed,
    /// A language tag is not a BCP 47 tag.
    #[error("is not a BCP 47 language tag")]
    LanguageTag,
    /// An icon reference is neither an `http(s)` URL nor an icon digest.
    #[error(
        "must be an uploaded icon's digest (64 lowercase hex digits), an https:// or http:// URL (a host name or IPv4 address, an optional port, then printable ASCII without spaces), or a relative path (letters, digits, ._~%-/, not starting with /)"
    )]
    IconReference,
    /// An uploaded image was refused (its declared size, or it does not decode).
    #[error("{problem}")]
    Image {
        /// What is wrong with it.
        problem: String,
    },
    /// An icon digest names no uploaded icon.
    #[error(
        "no icon {digest} was uploaded (PUT /v1/admin/achievements/{{id}}/icons/locked or unlocked)"
    )]
    UnknownIcon {
        /// The digest.
        digest: String,
    },
    /// Something the field's setting needs is missing (a repeatable achievement with
    /// nothing to count towards, a claim with no reward).
    #[error("needs {what}")]
    Needs {
        /// What is missing.
        what: String,
    },
    /// An event's time (`ts`) is further in the past than the server accepts.
    #[error("is more than {max_age_secs} s in the past (--max-event-age)")]
    TooOld {
        /// The oldest an event may be, in seconds.
        max_age_secs: u64,
    },
    /// An event's time (`ts`) is further in the future than clocks drift.
    #[error("is more than {max_ahead_secs} s in the future")]
    InTheFuture {
        /// How far ahead an event may be, in seconds.
        max_ahead_secs: u64,
    },
    /// Two settings cannot go together.
    #[error("cannot go with {what}")]
    Conflicts {
        /// What it cannot go with.
        what: String,
    },
    /// The season is not defined.
    #[error("season {id} is not defined (PUT /v1/admin/seasons/{{id}})")]
    UnknownSeason {
        /// The season's id.
        id: String,
    },
    /// An event of a season stat falls outside the season (or the season is not defined).
    #[error("falls outside season {season}")]
    OutsideSeason {
        /// The stat's season.
        season: String,
    },
    /// An event of a periodic stat falls in a period older than the ones kept.
    #[error("falls in period {period}, older than the {kept} periods kept")]
    PeriodClosed {
        /// The event's period.
        period: String,
        /// How many periods are kept.
        kept: usize,
    },
    /// An achievement reads periodic stats of different periods.
    #[error(
        "reads stats of different periods ({a} and {b}): an achievement evaluates within one period"
    )]
    MixedPeriods {
        /// One period.
        a: String,
        /// Another.
        b: String,
    },
    /// A free-form value nests deeper than allowed.
    #[error("must nest at most {max} levels deep")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// An id holds a character outside the player id profile (docs/reference.md): not an
    /// ASCII letter, digit or one of `_-.@:|+=~`, nor a letter or digit that Unicode's
    /// identifier profile (UTS #39) allows.
    #[error(
        "must be ASCII letters, digits and _-.@:|+=~, or letters and digits of one script (found U+{code_point:04X})"
    )]
    DisallowedCharacter {
        /// The character's code point.
        code_point: u32,
    },
    /// An id mixes scripts (Cyrillic `а` in a Latin name) or is written in other letters
    /// that look like ASCII ones (an all-Cyrillic `асе`), so it would pass for another.
    #[error("must not pass for another id: {why}")]
    Confusable {
        /// `mixes scripts`, or `looks like the ASCII id <skeleton>`.
        why: String,
    },
}

impl Reason {
    /// The reason's code, as on the wire (`delta_too_large`).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Required => "required",
            Reason::Empty => "empty",
            Reason::TooLong { .. } => "too_long",
            Reason::Pattern { .. } => "pattern",
            Reason::ControlCharacter => "control_character",
            Reason::SurroundingWhitespace => "surrounding_whitespace",
            Reason::InvisibleCharacter { .. } => "invisible_character",
            Reason::NotANumber { .. } => "not_a_number",
            Reason::NotFinite => "not_finite",
            Reason::NotInteger => "not_integer",
            Reason::IntegerOutOfRange => "integer_out_of_range",
            Reason::MinAboveMax => "min_above_max",
            Reason::NotPositive => "not_positive",
            Reason::EmptyWindow => "empty_window",
            Reason::ExactlyOneOf { .. } => "exactly_one_of",
            Reason::SelfReference => "self_reference",
            Reason::Duplicate => "duplicate",
            Reason::UnknownStat { .. } => "unknown_stat",
            Reason::UnknownAchievement { .. } => "unknown_achievement",
            Reason::Archived { .. } => "archived",
            Reason::BelowMin { .. } => "below_min",
            Reason::AboveMax { .. } => "above_max",
            Reason::DeltaTooLarge { .. } => "delta_too_large",
            Reason::NotWritable { .. } => "not_writable",
            Reason::NotATestPlayer => "not_a_test_player",
            Reason::Fixed => "fixed",
            Reason::LanguageTag => "language_tag",
            Reason::IconReference => "icon_reference",
            Reason::Image { .. } => "image",
            Reason::UnknownIcon { .. } => "unknown_icon",
            Reason::TooDeep { .. } => "too_deep",
            Reason::Needs { .. } => "needs",
            Reason::TooOld { .. } => "too_old",
            Reason::InTheFuture { .. } => "in_the_future",
            Reason::Conflicts { .. } => "conflicts",
            Reason::UnknownSeason { .. } => "unknown_season",
            Reason::OutsideSeason { .. } => "outside_season",
            Reason::PeriodClosed { .. } => "period_closed",
            Reason::MixedPeriods { .. } => "mixed_periods",
            Reason::DisallowedCharacter { .. } => "disallowed_character",
            Reason::Confusable { .. } => "confusable",
        }
    }
}

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The field's path, e.g. `conditions[0].stat`.
    pub field: String,
    /// Why it was refused.
    pub reason: Reason,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, reason: Reason) -> Self {
        Self {
            field: field.into(),
            reason,
        }
    }

    /// The same error, with its field nested under `parent` (`parent.field`).
    pub fn under(self, parent: impl fmt::Display) -> Self {
        let field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        Self { field, ..self }
    }
}

thread_local! {
    static REFUSED: std::cell::RefCell<Option<Reason>> = const { std::cell::RefCell::new(None) };
}

/// Notes why a value was refused while it was being deserialized. serde carries only a
/// message out of a refusal; a body parser that wants the reason itself (to answer 422 with
/// its code rather than 400 with words) clears the note, deserializes on this thread, and
/// takes the note when the parse fails.
pub fn note_refusal(reason: &Reason) {
    REFUSED.with(|r| *r.borrow_mut() = Some(reason.clone()));
}

/// Takes (and clears) the reason last noted on this thread by [`note_refusal`].
pub fn take_refusal() -> Option<Reason> {
    REFUSED.with(|r| r.borrow_mut().take())
}

/// Characters never shown: controls, invisible and bidirectional-control characters (a
/// JSON Schema character-class body).
macro_rules! never_shown {
    () => {
        r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    };
}

/// Whitespace, as Rust's `trim` takes it (a JSON Schema character-class body).
macro_rules! spaces {
    () => {
        r"\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// A one-line text fit to show, as `check_text` rules it.
macro_rules! one_line {
    () => {
        concat!(
            "[^",
            never_shown!(),
            spaces!(),
            "]",
            "([^",
            never_shown!(),
            "]*[^",
            never_shown!(),
            spaces!(),
            "])?"
        )
    };
}

/// A one-line text fit to show (ids, titles) as a JSON Schema pattern: no control or
/// invisible character, no whitespace at either end. `check_text` is the rule; this says
/// the same for the OpenAPI document (ECMA-262, as JSON Schema reads it).
pub const ONE_LINE_PATTERN: &str = concat!("^", one_line!(), "$");

/// [`ONE_LINE_PATTERN`], or empty (icons, localized titles).
pub const ONE_LINE_OR_EMPTY_PATTERN: &str = concat!("^(", one_line!(), ")?$");

/// A text of several lines fit to show (descriptions), as a JSON Schema pattern: no
/// control character but the line feed, no invisible character.
pub const MULTILINE_PATTERN: &str = concat!(
    r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064",
    r"\u2066-\u2069\ufeff]*$",
);

/// OpenAPI schemas of the texts the rules above apply to.
#[cfg(feature = "openapi")]
pub mod openapi {
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

    use super::{DESCRIPTION_MAX, ICON_MAX, TITLE_MAX};

    fn text(pattern: &str, max: usize, optional: bool) -> Object {
        let kind = if optional {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::Type(Type::String)
        };
        ObjectBuilder::new()
            .schema_type(kind)
            .pattern(Some(pattern))
            .max_length(Some(max))
            .build()
    }

    /// An achievement's title.
    pub fn title() -> Object {
        text(super::ONE_LINE_PATTERN, TITLE_MAX, false)
    }

    /// A description (may be empty).
    pub fn description() -> Object {
        text(super::MULTILINE_PATTERN, DESCRIPTION_MAX, false)
    }

    /// An icon reference (optional, may be empty).
    pub fn icon() -> Object {
        text(super::ICON_REFERENCE_PATTERN, ICON_MAX, true)
    }

    /// A localized title (optional, may be empty).
    pub fn localized_title() -> Object {
        text(super::ONE_LINE_OR_EMPTY_PATTERN, TITLE_MAX, true)
    }

    /// A localized description (optional).
    pub fn localized_description() -> Object {
        text(super::MULTILINE_PATTERN, DESCRIPTION_MAX, true)
    }
}

/// Invisible and bidirectional-control characters: zero-width spaces and joiners, the
/// directional marks, embeddings, overrides and isolates, word joiners and invisible
/// operators, the byte-order mark, the soft hyphen.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Checks text shown to players: no control characters (a line feed only where
/// `multiline`; Unicode's line and paragraph separators U+2028 and U+2029 count as control
/// characters, since the line feed is the one line break), no invisible or
/// bidirectional-control characters, and, unless `multiline`, no whitespace at either end.
pub fn check_text(s: &str, multiline: bool) -> Result<(), Reason> {
    let control = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if s.chars().any(|c| control(c) && !(multiline && c == '\n')) {
        return Err(Reason::ControlCharacter);
    }
    if let Some(c) = s.chars().find(|&c| is_invisible(c)) {
        return Err(Reason::InvisibleCharacter {
            code_point: u32::from(c),
        });
    }
    if !multiline && s.trim() != s {
        return Err(Reason::SurroundingWhitespace);
    }
    Ok(())
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn look_alike_and_control_text_is_refused() {
        assert_eq!(check_text("Banana lover", false), Ok(()));
        assert_eq!(check_text("Eat\n1000", true), Ok(()));
        assert_eq!(
            check_text("Eat\n1000", false),
            Err(Reason::ControlCharacter)
        );
        assert_eq!(check_text("a\0b", true), Err(Reason::ControlCharacter));
        assert_eq!(
            check_text("\u{1b}[31mred", false),
            Err(Reason::ControlCharacter)
        );
        assert_eq!(
            check_text("\u{FEFF}ann", false),
            Err(Reason::InvisibleCharacter { code_point: 0xFEFF })
        );
        assert_eq!(
            check_text("abc\u{202E}fed", true),
            Err(Reason::InvisibleCharacter { code_point: 0x202E })
        );
        assert_eq!(
            check_text(" ann", false),
            Err(Reason::SurroundingWhitespace)
        );
        assert_eq!(
            check_text("ann ", false),
            Err(Reason::SurroundingWhitespace)
        );
        assert_eq!(check_text("Ünïcödé 名前 🍌", false), Ok(()));
    }
}
