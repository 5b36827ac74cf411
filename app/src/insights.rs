//! What the console shows of a stat and an achievement across players: how a stat's values
//! spread (a histogram), why its events were refused, and how many players earned an
//! achievement day by day. Each is a scan of every partition's views, off the async threads.

use std::collections::BTreeMap;

use laurel_schemas::Value;
use serde::Serialize;

use crate::{App, AppError};

/// The most buckets a histogram has.
pub const MAX_BUCKETS: usize = 100;

/// How a stat's values spread over the players, and why its events were refused.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StatSummary {
    /// The stat.
    pub stat: String,
    /// Players with a value of it.
    pub players: u64,
    /// The least value (absent with no players).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The greatest value (absent with no players).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Equal-width buckets from `min` to `max`, in order (for an `int` stat, whole numbers
    /// wide, so never more buckets than values between them).
    pub buckets: Vec<Bucket>,
    /// Events reporting the stat that the engine refused, by reason code.
    pub refusals: BTreeMap<String, u64>,
}

/// Players whose value lies in `[from, to)` (the last bucket includes `to`); for an `int`
/// stat, in `from..=to`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// The bucket's lower bound.
    pub from: f64,
    /// Its upper bound.
    pub to: f64,
    /// Players in it.
    pub players: u64,
}

/// The spread of `stat`'s values in `buckets` buckets, and its refusals by reason.
pub async fn stat_summary(app: &App, stat: &str, buckets: usize) -> Result<StatSummary, AppError> {
    let Some(def) = app.stat_definition(stat) else {
        return Err(AppError::NotFound(format!("no stat `{stat}`")));
    };
    let integral = def.kind == laurel_schemas::StatKind::Int;
    let (views, name) = (app.views.clone(), stat.to_string());
    let (values, refusals) = laurel_runtime::blocking(move || {
        Ok::<_, laurel_derived::StoreError>((
            views.stat_values(&name)?,
            views.stat_refusal_counts(&name)?,
        ))
    })
    .await?;
    let values: Vec<f64> = values.into_iter().map(Value::as_f64).collect();
    let (min, max, buckets) = histogram(&values, buckets.clamp(1, MAX_BUCKETS), integral);
    Ok(StatSummary {
        stat: stat.to_string(),
        players: values.len() as u64,
        min,
        max,
        buckets,
        refusals,
    })
}

/// Equal-width buckets over `values`: `n` of them from the least to the greatest (one when
/// all are equal), with the bounds. `integral` values get whole-number buckets: `from..=to`,
/// at least one wide.
pub fn histogram(
    values: &[f64],
    n: usize,
    integral: bool,
) -> (Option<f64>, Option<f64>, Vec<Bucket>) {
    let Some((min, max)) = values.iter().fold(None, |range: Option<(f64, f64)>, &v| {
        Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
    }) else {
        return (None, None, Vec::new());
    };
    let (n, width) = if integral {
        let span = max - min + 1.0;
        let width = (span / (n as f64).min(span)).ceil();
        // As many whole buckets of that width as it takes to reach `max`.
        ((span / width).ceil() as usize, width)
    } else if max > min {
        (n.max(1), (max - min) / n as f64)
    } else {
        (1, 0.0)
    };
    let mut buckets: Vec<Bucket> = (0..n)
        .map(|i| {
            let from = min + width * i as f64;
            let to = match (integral, i + 1 == n) {
                (_, true) => max,
                (true, false) => from + width - 1.0,
                (false, false) => from + width,
            };
            Bucket {
                from,
                to,
                players: 0,
            }
        })
        .collect();
    for &v in values {
        let i = if width > 0.0 {
            ((v - min) / width) as usize
        } else {
            0
        };
        buckets[i.min(n - 1)].players += 1;
    }
    (Some(min), Some(max), buckets)
}

/// How many players earned an achievement, and when they first did, day by day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RarityHistory {
    /// The achievement.
    pub id: String,
    /// Players seen.
    pub players: u64,
    /// Players who earned it.
    pub earned: u64,
    /// `earned` out of `players`, in percent.
    pub earned_percent: f64,
    /// Each UTC day on which players first earned it, in order.
    pub days: Vec<RarityDay>,
}

/// One day of an achievement's earners.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RarityDay {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Players who first earned it that day.
    pub earned: u64,
    /// Players who had earned it by the end of that day.
    pub total: u64,
}

/// `id`'s earners now and day by day.
pub async fn rarity_history(app: &App, id: &str) -> Result<RarityHistory, AppError> {
    if app.achievement(id).is_none() {
        return Err(AppError::NotFound(format!("no achievement `{id}`")));
    }
    let (views, name) = (app.views.clone(), id.to_string());
    let (rarity, days) = laurel_runtime::blocking(move || {
        Ok::<_, laurel_derived::StoreError>((views.rarity()?, views.first_earns_by_day(&name)?))
    })
    .await?;
    let mut total = 0;
    let days = days
        .into_iter()
        .map(|(day, earned)| {
            total += earned;
            RarityDay { day, earned, total }
        })
        .collect();
    Ok(RarityHistory {
        id: id.to_string(),
        players: rarity.players,
        earned: rarity.earned.get(id).copied().unwrap_or(0),
        earned_percent: rarity.percent(id),
        days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_spreads_values_over_equal_buckets_the_greatest_in_the_last() {
        let (min, max, buckets) = histogram(&[0.0, 1.0, 2.0, 9.0, 10.0], 5, false);
        assert_eq!((min, max), (Some(0.0), Some(10.0)));
        let counts: Vec<u64> = buckets.iter().map(|b| b.players).collect();
        assert_eq!(counts, [2, 1, 0, 0, 2]);
        assert_eq!((buckets[0].from, buckets[0].to), (0.0, 2.0));
        assert_eq!(buckets[4].to, 10.0);
    }

    #[test]
    fn whole_numbers_get_whole_buckets_never_more_than_the_values_between() {
        let (_, _, buckets) = histogram(&[2.0, 3.0, 4.0, 4.0], 20, true);
        let spans: Vec<(f64, f64, u64)> =
            buckets.iter().map(|b| (b.from, b.to, b.players)).collect();
        assert_eq!(spans, [(2.0, 2.0, 1), (3.0, 3.0, 1), (4.0, 4.0, 2)]);
        let (_, _, buckets) = histogram(&[0.0, 9.0, 10.0], 5, true);
        let spans: Vec<(f64, f64, u64)> =
            buckets.iter().map(|b| (b.from, b.to, b.players)).collect();
        assert_eq!(
            spans,
            [(0.0, 2.0, 1), (3.0, 5.0, 0), (6.0, 8.0, 0), (9.0, 10.0, 2)]
        );
    }

    #[test]
    fn equal_values_make_one_bucket_and_none_make_none() {
        let (_, _, buckets) = histogram(&[3.0, 3.0], 10, false);
        assert_eq!(
            buckets,
            [Bucket {
                from: 3.0,
                to: 3.0,
                players: 2
            }]
        );
        assert_eq!(histogram(&[], 10, true), (None, None, Vec::new()));
    }
}
