//! Validated names and ids: stat names, achievement ids, player ids.
//!
//! Each is a cheap-to-clone shared string that can only hold a valid value: deserializing
//! an invalid one fails, so every decoded message carries valid names.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::validation::Reason;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $check:path, pattern = $pattern:expr, max = $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "Arc<str>")]
        pub struct $name(Arc<str>);

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl $name {
            /// Validates and wraps a name.
            pub fn new(s: impl AsRef<str> + Into<Arc<str>>) -> Result<Self, Reason> {
                $check(s.as_ref())?;
                Ok(Self(s.into()))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The shared string behind the name.
            pub fn as_arc(&self) -> &Arc<str> {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Reason;
            fn try_from(s: String) -> Result<Self, Reason> {
                // Serde calls this for every name it decodes: a refusal is noted for a
                // body parser to answer with its code.
                Self::new(s).inspect_err(crate::validation::note_refusal)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Reason;
            fn try_from(s: &str) -> Result<Self, Reason> {
                Self::new(s)
            }
        }

        impl From<$name> for Arc<str> {
            fn from(n: $name) -> Arc<str> {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
    };
}

name_type!(
    /// A stat's name: segments of `[A-Za-z0-9_-]+` joined by single dots, at most 128 characters.
    StatName,
    check_stat_name,
    pattern = STAT_NAME_PATTERN,
    max = STAT_NAME_MAX
);
name_type!(
    /// An achievement's id: `[A-Za-z0-9_-]{1,64}`, case-sensitive.
    AchievementId,
    check_achievement_id,
    pattern = ACHIEVEMENT_ID_PATTERN,
    max = ACHIEVEMENT_ID_MAX
);
name_type!(
    /// A player's id: 1 to 128 bytes of UTF-8 with no control characters.
    PlayerId,
    check_player_id,
    pattern = crate::validation::ONE_LINE_PATTERN,
    // JSON Schema counts characters; the rule counts bytes (see docs/api.md).
    max = PLAYER_ID_MAX
);

/// The longest stat name, in characters.
pub const STAT_NAME_MAX: usize = 128;
/// The longest achievement id, in characters.
pub const ACHIEVEMENT_ID_MAX: usize = 64;
/// The longest player id, in bytes.
pub const PLAYER_ID_MAX: usize = 128;
/// A stat name's pattern, as the OpenAPI document states it.
pub const STAT_NAME_PATTERN: &str = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$";
/// An achievement id's pattern, as the OpenAPI document states it.
pub const ACHIEVEMENT_ID_PATTERN: &str = r"^[A-Za-z0-9_-]+$";

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn check_stat_name(s: &str) -> Result<(), Reason> {
    if s.is_empty() {
        return Err(Reason::Empty);
    }
    if s.len() > STAT_NAME_MAX {
        return Err(Reason::TooLong {
            max: STAT_NAME_MAX,
            unit: "characters".into(),
        });
    }
    let well_formed = s
        .split('.')
        .all(|seg| !seg.is_empty() && seg.bytes().all(is_word_char));
    if well_formed {
        Ok(())
    } else {
        Err(Reason::Pattern {
            pattern: r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*".into(),
        })
    }
}

fn check_achievement_id(s: &str) -> Result<(), Reason> {
    if s.is_empty() {
        return Err(Reason::Empty);
    }
    if s.len() > ACHIEVEMENT_ID_MAX {
        return Err(Reason::TooLong {
            max: ACHIEVEMENT_ID_MAX,
            unit: "characters".into(),
        });
    }
    if s.bytes().all(is_word_char) {
        Ok(())
    } else {
        Err(Reason::Pattern {
            pattern: "[A-Za-z0-9_-]{1,64}".into(),
        })
    }
}

fn check_player_id(s: &str) -> Result<(), Reason> {
    if s.is_empty() {
        return Err(Reason::Empty);
    }
    if s.len() > PLAYER_ID_MAX {
        return Err(Reason::TooLong {
            max: PLAYER_ID_MAX,
            unit: "bytes".into(),
        });
    }
    crate::validation::check_text(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_are_dot_joined_word_segments() {
        assert!(StatName::new("weapons.rifle.kills").is_ok());
        assert!(StatName::new("a-b_C9").is_ok());
        assert!(matches!(StatName::new("a..b"), Err(Reason::Pattern { .. })));
        assert!(matches!(StatName::new(".a"), Err(Reason::Pattern { .. })));
        assert!(matches!(StatName::new("a."), Err(Reason::Pattern { .. })));
        assert!(matches!(StatName::new("a b"), Err(Reason::Pattern { .. })));
        assert_eq!(StatName::new(""), Err(Reason::Empty));
        assert!(StatName::new("x".repeat(128)).is_ok());
        assert!(matches!(
            StatName::new("x".repeat(129)),
            Err(Reason::TooLong { max: 128, .. })
        ));
    }

    #[test]
    fn gamekit_achievement_ids_fit() {
        assert!(AchievementId::new("EAT_THOUSAND_BANANAS").is_ok());
        assert!(AchievementId::new("x".repeat(64)).is_ok());
        assert!(matches!(
            AchievementId::new("x".repeat(65)),
            Err(Reason::TooLong { max: 64, .. })
        ));
        assert!(matches!(
            AchievementId::new("a.b"),
            Err(Reason::Pattern { .. })
        ));
        assert_ne!(
            AchievementId::new("Win").unwrap(),
            AchievementId::new("WIN").unwrap()
        );
    }

    #[test]
    fn player_ids_are_bounded_utf8_without_control_characters() {
        assert!(PlayerId::new("játékos-1 ✓").is_ok());
        assert_eq!(PlayerId::new("a\nb"), Err(Reason::ControlCharacter));
        assert_eq!(PlayerId::new(" "), Err(Reason::SurroundingWhitespace));
        assert_eq!(
            PlayerId::new("\u{FEFF}ann"),
            Err(Reason::InvisibleCharacter { code_point: 0xFEFF })
        );
        assert_eq!(
            PlayerId::new("ann\u{202E}"),
            Err(Reason::InvisibleCharacter { code_point: 0x202E })
        );
        assert!(PlayerId::new("Ann Smith").is_ok(), "inner spaces are fine");
        assert_eq!(PlayerId::new(""), Err(Reason::Empty));
        assert!(PlayerId::new("é".repeat(64)).is_ok());
        assert!(matches!(
            PlayerId::new("é".repeat(65)),
            Err(Reason::TooLong { max: 128, .. })
        ));
    }

    #[test]
    fn invalid_names_fail_to_deserialize() {
        assert!(serde_json::from_str::<StatName>("\"a..b\"").is_err());
        assert_eq!(
            serde_json::from_str::<StatName>("\"a.b\"")
                .unwrap()
                .as_str(),
            "a.b"
        );
    }
}

/// The patterns the OpenAPI document states agree with the rules the server applies.
#[cfg(test)]
mod pattern_tests {
    use super::*;
    use crate::defs::{ICON_REFERENCE_PATTERN, is_icon_reference};
    use crate::validation::{
        MULTILINE_PATTERN, ONE_LINE_OR_EMPTY_PATTERN, ONE_LINE_PATTERN, check_text,
    };
    use proptest::prelude::*;

    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(s)
    }

    /// Strings mixing plain text with every kind of character a rule is about.
    fn tricky() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            "[a-z0-9_.-]{1,3}",
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("\t".to_string()),
            Just("\u{0}".to_string()),
            Just("\u{1b}".to_string()),
            Just("\u{85}".to_string()),
            Just("\u{a0}".to_string()),
            Just("\u{ad}".to_string()),
            Just("\u{200b}".to_string()),
            Just("\u{202e}".to_string()),
            Just("\u{2066}".to_string()),
            Just("\u{3000}".to_string()),
            Just("\u{feff}".to_string()),
            Just("é🍌".to_string()),
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(pieces, 0..6).prop_map(|p| p.concat())
    }

    /// Icon references and near misses: schemes, hosts, ports, paths and odd characters.
    fn icon_like() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("https://".to_string()),
            Just("http://".to_string()),
            Just("javascript:".to_string()),
            Just("//".to_string()),
            Just("/".to_string()),
            Just(":".to_string()),
            Just("[".to_string()),
            Just("@".to_string()),
            Just("?#".to_string()),
            Just(" ".to_string()),
            "[a-f0-9]{1,64}",
            "[A-Za-z0-9._~%-]{1,4}",
            "[0-9]{1,6}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(pieces, 0..6).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn the_documented_patterns_say_what_the_rules_say(s in tricky()) {
            prop_assert_eq!(
                matches(ONE_LINE_PATTERN, &s),
                !s.is_empty() && check_text(&s, false).is_ok(),
                "one line: {:?}", s
            );
            prop_assert_eq!(
                matches(ONE_LINE_OR_EMPTY_PATTERN, &s),
                s.is_empty() || check_text(&s, false).is_ok(),
                "one line or empty: {:?}", s
            );
            prop_assert_eq!(
                matches(MULTILINE_PATTERN, &s),
                check_text(&s, true).is_ok(),
                "several lines: {:?}", s
            );
            prop_assert_eq!(
                matches(STAT_NAME_PATTERN, &s) && s.chars().count() <= STAT_NAME_MAX,
                StatName::new(s.as_str()).is_ok(),
                "stat: {:?}", s
            );
            prop_assert_eq!(
                matches(ACHIEVEMENT_ID_PATTERN, &s) && s.chars().count() <= ACHIEVEMENT_ID_MAX,
                AchievementId::new(s.as_str()).is_ok(),
                "achievement: {:?}", s
            );
            prop_assert_eq!(
                matches(ONE_LINE_PATTERN, &s) && s.len() <= PLAYER_ID_MAX,
                PlayerId::new(s.as_str()).is_ok(),
                "player: {:?}", s
            );
        }

        #[test]
        fn the_icon_pattern_says_what_the_rule_says(s in icon_like()) {
            prop_assert_eq!(
                matches(ICON_REFERENCE_PATTERN, &s),
                s.is_empty() || is_icon_reference(&s),
                "icon: {:?}", s
            );
        }
    }
}
