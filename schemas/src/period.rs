//! Periods of a periodic stat: its value is aggregated per UTC day, ISO week, calendar
//! month or season, the period taken from each event's time, so a replay of the same history
//! gives the same periods.
//!
//! A period is a number ([`PeriodKey`]: days, weeks or months since the Unix epoch; 0 for a
//! season) and a label for people and the wire: `2026-12-03`, `2026-W49` (ISO 8601 week),
//! `2026-12`, or the season's id. Labels of one kind sort as their periods do.

use serde::{Deserialize, Serialize};
use time::{Date, Month, Weekday};

use crate::Millis;
use crate::names::SeasonId;

/// A period's number within its kind.
pub type PeriodKey = i64;

/// How a stat's value is divided in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Per UTC day.
    Daily,
    /// Per ISO 8601 week (Monday to Sunday, UTC).
    Weekly,
    /// Per calendar month (UTC).
    Monthly,
    /// Within one season (`PUT /v1/admin/seasons/{id}`); events outside it do not count.
    Season(SeasonId),
}

/// The wire form of a [`Period`], for the OpenAPI document: a name, or exactly
/// `{"season": ID}`.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = Period)]
#[allow(dead_code)] // documents the wire; serde reads `Period` itself
#[serde(untagged)]
enum PeriodRepr {
    /// `daily`, `weekly` or `monthly`.
    Named(NamedPeriod),
    /// Within a season.
    Season(SeasonPeriod),
}

#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum NamedPeriod {
    Daily,
    Weekly,
    Monthly,
}

#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SeasonPeriod {
    /// The season's id (`PUT /v1/admin/seasons/{id}`).
    season: SeasonId,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Period {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <PeriodRepr as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Period {
    fn name() -> std::borrow::Cow<'static, str> {
        "Period".into()
    }
}

const DAY_MS: i64 = 86_400_000;

fn date_of(day: i64) -> Date {
    // The Unix epoch is Julian day 2440588.
    let julian = i32::try_from(day + 2_440_588).unwrap_or(i32::MAX);
    Date::from_julian_day(julian).unwrap_or(if day < 0 { Date::MIN } else { Date::MAX })
}

impl Period {
    /// The period an event at `at` falls in; for a season, only when `at` is within its
    /// `[starts_at, ends_at)` (given as `season`), else `None`.
    pub fn key(&self, at: Millis, season: Option<(Millis, Millis)>) -> Option<PeriodKey> {
        let day = at.div_euclid(DAY_MS);
        match self {
            Period::Daily => Some(day),
            // 1970-01-01 was a Thursday: weeks start on the Monday three days before.
            Period::Weekly => Some((day + 3).div_euclid(7)),
            Period::Monthly => {
                let date = date_of(day);
                Some(i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1)
            }
            Period::Season(_) => {
                let (from, until) = season?;
                (at >= from && at < until).then_some(0)
            }
        }
    }

    /// The label of period `key` of this kind.
    pub fn label(&self, key: PeriodKey) -> String {
        match self {
            Period::Daily => {
                let d = date_of(key);
                format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
            }
            Period::Weekly => {
                // Week `key` runs from day `7 * key - 3` (a Monday); its Thursday, day
                // `7 * key`, carries its ISO year and week number.
                let thursday = date_of(key * 7);
                debug_assert_eq!(thursday.weekday(), Weekday::Thursday);
                let (year, week, _) = thursday.to_iso_week_date();
                format!("{year:04}-W{week:02}")
            }
            Period::Monthly => {
                let year = key.div_euclid(12);
                let month =
                    Month::try_from((key.rem_euclid(12) + 1) as u8).unwrap_or(Month::January);
                format!("{year:04}-{:02}", u8::from(month))
            }
            Period::Season(id) => id.to_string(),
        }
    }

    /// How many of a stat's periods the engine and the views keep: the current one and the
    /// ones before it (a season is one period, kept for good).
    pub const KEPT: usize = 8;
}

/// As a designer writes it: `daily`, `weekly`, `monthly`, `season s3`.
impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Period::Daily => f.write_str("daily"),
            Period::Weekly => f.write_str("weekly"),
            Period::Monthly => f.write_str("monthly"),
            Period::Season(id) => write!(f, "season {id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Millis {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        crate::to_millis(t)
    }

    fn label(p: &Period, s: &str) -> String {
        p.label(p.key(at(s), None).unwrap())
    }

    #[test]
    fn periods_are_utc_days_iso_weeks_and_months() {
        assert_eq!(label(&Period::Daily, "2026-12-03T23:59:59Z"), "2026-12-03");
        assert_eq!(label(&Period::Daily, "2026-12-04T00:00:00Z"), "2026-12-04");
        assert_eq!(label(&Period::Daily, "1969-12-31T12:00:00Z"), "1969-12-31");
        // ISO weeks: Monday to Sunday; the first week of a year holds its Thursday.
        assert_eq!(label(&Period::Weekly, "2026-12-03T12:00:00Z"), "2026-W49");
        assert_eq!(label(&Period::Weekly, "2026-11-30T00:00:00Z"), "2026-W49");
        assert_eq!(label(&Period::Weekly, "2026-11-29T23:59:59Z"), "2026-W48");
        assert_eq!(label(&Period::Weekly, "2027-01-01T00:00:00Z"), "2026-W53");
        assert_eq!(label(&Period::Weekly, "2025-12-29T00:00:00Z"), "2026-W01");
        assert_eq!(label(&Period::Weekly, "1970-01-01T00:00:00Z"), "1970-W01");
        assert_eq!(label(&Period::Monthly, "2026-12-31T23:59:59Z"), "2026-12");
        assert_eq!(label(&Period::Monthly, "2027-01-01T00:00:00Z"), "2027-01");
        assert_eq!(label(&Period::Monthly, "1969-12-31T00:00:00Z"), "1969-12");
    }

    #[test]
    fn later_periods_have_larger_keys_and_labels() {
        for p in [Period::Daily, Period::Weekly, Period::Monthly] {
            let (a, b) = (at("2026-12-31T00:00:00Z"), at("2027-02-01T00:00:00Z"));
            let (ka, kb) = (p.key(a, None).unwrap(), p.key(b, None).unwrap());
            assert!(ka < kb, "{p:?}");
            assert!(p.label(ka) < p.label(kb), "{p:?}");
        }
    }

    #[test]
    fn a_season_holds_its_window_only() {
        let s = Period::Season(SeasonId::new("s3").unwrap());
        let window = Some((at("2026-12-01T00:00:00Z"), at("2027-03-01T00:00:00Z")));
        assert_eq!(s.key(at("2026-12-01T00:00:00Z"), window), Some(0));
        assert_eq!(s.key(at("2027-03-01T00:00:00Z"), window), None);
        assert_eq!(s.key(at("2026-11-30T23:59:59Z"), window), None);
        assert_eq!(
            s.key(at("2026-12-15T00:00:00Z"), None),
            None,
            "an undefined season holds nothing"
        );
        assert_eq!(s.label(0), "s3");
    }
}
