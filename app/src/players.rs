//! Players: a player's view of the achievements (texts in their language, progress, the
//! availability window, icons as URLs), which the player reads, the live stream sends and
//! the console shows alike.

use std::collections::BTreeMap;

use laurel_projections::{PlayerView, Rarity, Refusal};
use laurel_schemas::{AchievementDefinition, Period, Repeat, Threshold, Value, Visibility};
use serde::Serialize;

use crate::{App, AppError, rfc3339};

/// A player's view (stats, progress, what they earned), read off the async threads: the
/// views live on disk.
pub async fn view(app: &App, player: &str) -> Result<PlayerView, AppError> {
    let (views, player) = (app.views.clone(), player.to_string());
    Ok(laurel_runtime::blocking(move || views.player(&player)).await?)
}

/// The events of a player the engine refused, newest last, read off the async threads.
pub async fn refusals(app: &App, player: &str) -> Result<Vec<Refusal>, AppError> {
    let (views, player) = (app.views.clone(), player.to_string());
    Ok(laurel_runtime::blocking(move || views.refusals(&player)).await?)
}

/// How many players earned each achievement (a scan of every partition), read off the
/// async threads.
pub async fn rarity(app: &App) -> Result<Rarity, AppError> {
    let views = app.views.clone();
    Ok(laurel_runtime::blocking(move || views.rarity()).await?)
}

/// An achievement's progress toward one of its stats, as a player sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressOut {
    stat: String,
    #[schema(value_type = f64)]
    current: Value,
    #[schema(value_type = f64)]
    required: Value,
}

/// Where now stands in a time-limited achievement's availability window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Before `available_from`: it cannot be earned yet.
    Upcoming,
    /// Inside the window: it can be earned now.
    Open,
    /// At or past `available_until`: it can no longer be earned.
    Closed,
}

/// One achievement as a player sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AchievementOut {
    id: String,
    title: String,
    description: String,
    icon_url: Option<String>,
    points: u32,
    order: i32,
    visibility: Visibility,
    earned: bool,
    /// RFC 3339.
    earned_at: Option<String>,
    progress: Vec<ProgressOut>,
    /// When it can first be earned (RFC 3339), for a time-limited achievement.
    #[serde(skip_serializing_if = "Option::is_none")]
    available_from: Option<String>,
    /// When it can no longer be earned (RFC 3339, exclusive), for a time-limited achievement.
    #[serde(skip_serializing_if = "Option::is_none")]
    available_until: Option<String>,
    /// Where now stands in its window; absent for an achievement without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<Window>,
    /// Its categories.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// How it repeats, for a repeatable achievement.
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<Repeat>,
    /// How many times the player earned it (0 or 1 unless it repeats); `earned_at` is the
    /// first earn, `last_earned_at` the latest.
    times_earned: u32,
    /// The latest earn (RFC 3339), for a repeatable earned more than once.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_earned_at: Option<String>,
    /// What each earn pays out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    rewards: laurel_schemas::Rewards,
    /// Whether the player claims the rewards.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    claim: bool,
    /// For an achievement on a periodic stat, the current period (`2026-W49`, a season's
    /// id): `earned`, `earned_at` and `progress` are this period's.
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<String>,
    /// For a periodic achievement, the periods the player earned it in (the last 8), oldest
    /// first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    earned_periods: Vec<String>,
    /// With `wait_for`, on the one-achievement route: true when the wait ended before the
    /// token's events were reflected (the answer is what the views held then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_timed_out: Option<bool>,
}

/// The texts of `def` in the best language the client accepts.
pub fn texts<'a>(def: &'a AchievementDefinition, langs: &[String]) -> (&'a str, &'a str, &'a str) {
    let loc = langs.iter().find_map(|want| {
        let want = want.to_ascii_lowercase();
        def.localizations
            .iter()
            .find(|(tag, _)| tag.to_ascii_lowercase() == want)
            .or_else(|| {
                let primary = want.split('-').next().unwrap_or_default();
                def.localizations
                    .iter()
                    .find(|(tag, _)| tag.to_ascii_lowercase().split('-').next() == Some(primary))
            })
            .map(|(_, l)| l)
    });
    let pick = |over: Option<&'a String>, base: &'a str| over.map_or(base, String::as_str);
    (
        pick(loc.and_then(|l| l.title.as_ref()), &def.title),
        pick(
            loc.and_then(|l| l.locked_description.as_ref()),
            &def.locked_description,
        ),
        pick(
            loc.and_then(|l| l.unlocked_description.as_ref()),
            &def.unlocked_description,
        ),
    )
}

/// Where `now` stands in `def`'s availability window, if it has one.
fn window(def: &AchievementDefinition, now: i64) -> Option<Window> {
    let from = def.available_from.map(laurel_schemas::to_millis);
    let until = def.available_until.map(laurel_schemas::to_millis);
    match (from, until) {
        (None, None) => None,
        (Some(from), _) if now < from => Some(Window::Upcoming),
        (_, Some(until)) if now >= until => Some(Window::Closed),
        _ => Some(Window::Open),
    }
}

/// For an achievement on a periodic stat, its period kind and the label of the period `now`
/// falls in (`None` outside its season).
pub fn current_period(
    app: &App,
    def: &AchievementDefinition,
    now: i64,
) -> Option<(Period, Option<String>)> {
    app.defs.read(|d| {
        let period = def
            .conditions
            .iter()
            .find_map(|c| d.stat(c.stat.as_str())?.period.clone())?;
        let label = d.period_key(&period, now).map(|key| period.label(key));
        Some((period, label))
    })
}

/// A stat's value as a player reads it: a periodic stat's in the current period (0 when
/// nothing was reported in it), else the lifetime value (0 before any).
fn value_now(player: &PlayerView, stat: &str, period: Option<&Option<String>>) -> Value {
    let value = match period {
        None => player.stats.get(stat),
        Some(label) => label
            .as_ref()
            .and_then(|l| player.periods.get(stat)?.get(l)),
    };
    value.copied().unwrap_or(Value::Int(0))
}

/// The player's view of `def` at `now`, or `None` when the player may not see it: archived,
/// hidden, or time-limited with its window closed, unless earned.
pub fn achievement_out(
    app: &App,
    def: &AchievementDefinition,
    player: &PlayerView,
    langs: &[String],
    now: i64,
) -> Option<AchievementOut> {
    let icons = &app.icons;
    let period = current_period(app, def, now).map(|(_, label)| label);
    let recorded = player.earned.get(def.id.as_str());
    // A periodic achievement is earned in this period or not.
    let earned = match &period {
        None => recorded,
        Some(label) => {
            recorded.filter(|e| label.as_ref().is_some_and(|l| e.periods.contains_key(l)))
        }
    };
    let window = window(def, now);
    if recorded.is_none()
        && (def.archived || def.visibility == Visibility::Hidden || window == Some(Window::Closed))
    {
        return None;
    }
    let (title, locked, unlocked) = texts(def, langs);
    let description = match (earned, def.visibility) {
        (Some(_), _) => unlocked,
        (None, Visibility::Secret) => "",
        (None, _) => locked,
    };
    let icon = if earned.is_some() {
        def.unlocked_icon.as_ref().or(def.locked_icon.as_ref())
    } else {
        def.locked_icon.as_ref()
    };
    // A secret achievement does not tell how to earn it until earned.
    let secret = earned.is_none() && def.visibility == Visibility::Secret;
    // A repeatable's progress is towards its next earn: `at_least` conditions count from
    // the values at the last earn.
    let baseline = earned.filter(|_| def.repeat.is_some()).map(|e| &e.baseline);
    let progress = def
        .conditions
        .iter()
        .filter(|_| !secret)
        .map(|c| {
            let stat_period = app.defs.read(|d| {
                let p = d.stat(c.stat.as_str())?.period.clone()?;
                Some(d.period_key(&p, now).map(|key| p.label(key)))
            });
            let value = value_now(player, c.stat.as_str(), stat_period.as_ref());
            let base = baseline
                .filter(|_| matches!(c.threshold, Threshold::AtLeast(_)))
                .and_then(|b| b.get(c.stat.as_str()));
            ProgressOut {
                stat: c.stat.to_string(),
                current: base.map_or(value, |b| value.minus(*b)),
                required: c.threshold.value(),
            }
        })
        .collect();
    Some(AchievementOut {
        id: def.id.to_string(),
        title: title.to_string(),
        description: description.to_string(),
        icon_url: icon.map(|i| icons.url(i)),
        points: def.points,
        order: def.order,
        visibility: def.visibility,
        earned: earned.is_some(),
        earned_at: earned.and_then(|e| match &period {
            Some(Some(label)) => e.periods.get(label).copied().and_then(rfc3339),
            _ => rfc3339(e.unlocked_at),
        }),
        progress,
        available_from: def
            .available_from
            .and_then(|t| rfc3339(laurel_schemas::to_millis(t))),
        available_until: def
            .available_until
            .and_then(|t| rfc3339(laurel_schemas::to_millis(t))),
        window,
        tags: def.tags.clone(),
        repeat: def.repeat,
        times_earned: recorded.map_or(0, |e| e.times),
        last_earned_at: recorded.and_then(|e| e.last_unlocked_at).and_then(rfc3339),
        rewards: def.rewards.clone(),
        claim: def.claim,
        period: period.flatten(),
        earned_periods: recorded.map_or_else(Vec::new, |e| e.periods.keys().cloned().collect()),
        wait_timed_out: None,
    })
}

/// A player's periodic stats: stat, then period label, to value.
pub type PeriodValues = BTreeMap<String, BTreeMap<String, Value>>;

/// A player's stats as they read them: lifetime values, and each periodic stat's value in
/// the current period (0 when nothing was reported in it), with its kept periods.
pub fn stats_now(
    app: &App,
    player: &PlayerView,
    now: i64,
) -> (BTreeMap<String, Value>, PeriodValues) {
    let mut stats = player.stats.clone();
    let periodic: Vec<(String, Option<String>)> = app.defs.read(|d| {
        d.stats()
            .filter_map(|s| {
                let p = s.period.as_ref()?;
                Some((
                    s.name.to_string(),
                    d.period_key(p, now).map(|key| p.label(key)),
                ))
            })
            .collect()
    });
    for (name, label) in periodic {
        stats.insert(name.clone(), value_now(player, &name, Some(&label)));
    }
    (stats, player.periods.clone())
}
