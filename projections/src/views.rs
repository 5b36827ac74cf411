//! The read side of the views: what the gateway serves, and waits on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use laurel_schemas::{Output, Value, decode};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::{broadcast, watch};

use crate::apply::{Earned, EarnedRecord, PeriodsRecord, Refusal, RewardRecord, StatsRecord};
use crate::keys;
use crate::staged::Staged;

/// The layout of the view trees; views of another layout are rebuilt from the log.
const LAYOUT: &str = "player stats and earned records; refusals per stat; first earns per day";

/// The views over the derived-state store, with change notifications. Cheap to clone.
#[derive(Clone)]
pub struct Views {
    inner: Arc<Inner>,
}

struct Inner {
    partitions: Vec<Staged>,
    checkpoints: Vec<watch::Sender<u64>>,
    events: broadcast::Sender<Arc<Applied>>,
    /// How long writes of staged views to the store take (behind the projector).
    flushes: Histogram,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("partitions", &self.inner.partitions.len())
            .finish_non_exhaustive()
    }
}

/// An output the views applied, and where it is on OUTPUT: what live notifications carry,
/// and what a notification stream resumes after.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The OUTPUT partition.
    pub partition: u32,
    /// The position of the entry that held it.
    pub position: u64,
    /// The output.
    pub output: Output,
}

/// One player's view. Stored as two records per player, its stats and its earned
/// achievements with points (msgpack): a lookup is two reads, a million players are two
/// million keys (not one per stat and unlock), and a stat change rewrites only the small one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerView {
    /// Aggregated stats by name.
    pub stats: BTreeMap<String, Value>,
    /// Earned achievements by id.
    pub earned: BTreeMap<String, Earned>,
    /// Sum of earned points.
    pub points_total: u64,
    /// Rewards in the order earned: every one waiting for a claim, and the most recent
    /// settled ones.
    pub rewards: Vec<RewardRecord>,
    /// Periodic stats: stat, then period label, to value (the last periods of each).
    pub periods: BTreeMap<String, BTreeMap<String, Value>>,
}

/// What the players of one partition earned (see [`Views::earned_in_partition`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionEarned {
    /// The last STATS position whose effects the views held before the read.
    pub checkpoint: u64,
    /// Each player's earned achievements by id.
    pub players: Vec<(String, BTreeMap<String, Earned>)>,
}

/// How many players earned each achievement, out of how many players.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rarity {
    /// Players seen on OUTPUT.
    pub players: u64,
    /// Earners per achievement id.
    pub earned: BTreeMap<String, u64>,
    /// Earners per periodic achievement id and period label.
    pub by_period: BTreeMap<(String, String), u64>,
}

impl Rarity {
    /// Percentage of players who earned `id` (0 with no players).
    pub fn percent(&self, id: &str) -> f64 {
        match self.players {
            0 => 0.0,
            n => self.earned.get(id).copied().unwrap_or(0) as f64 * 100.0 / n as f64,
        }
    }

    /// Percentage of players who earned periodic achievement `id` in `period`.
    pub fn percent_in(&self, id: &str, period: &str) -> f64 {
        let earners = self
            .by_period
            .get(&(id.to_string(), period.to_string()))
            .copied()
            .unwrap_or(0);
        match self.players {
            0 => 0.0,
            n => earners as f64 * 100.0 / n as f64,
        }
    }
}

fn position(view: &Staged, key: &[u8]) -> Result<u64, laurel_derived::StoreError> {
    Ok(keys::u64_of(view.get(key)?.as_deref()))
}

impl Views {
    /// Opens the views of `log` in `db`. Views derived from another log are dropped first
    /// (see [`laurel_derived::bind`]): the projector then folds this log from the start.
    pub fn open(
        db: &laurel_derived::Store,
        log: &laurel_log::Log,
    ) -> Result<Self, laurel_derived::StoreError> {
        let binding = format!("{} (views: {LAYOUT})", log.identity());
        db.bind("views/", &binding)?;
        let partitions = log.config().partitions;
        let trees = (0..partitions)
            .map(|p| Ok(Staged::new(db.tree(&format!("views/{p}"))?)))
            .collect::<Result<Vec<_>, laurel_derived::StoreError>>()?;
        let checkpoints = trees
            .iter()
            .map(|t| Ok(watch::channel(position(t, keys::CHECKPOINT)?).0))
            .collect::<Result<Vec<_>, laurel_derived::StoreError>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                partitions: trees,
                checkpoints,
                events: broadcast::channel(4096).0,
                // 0.1 ms to 1.6 s.
                flushes: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            }),
        })
    }

    /// How long the writes of staged views to disk took, for `/metrics`.
    pub fn flush_timings(&self) -> &Histogram {
        &self.inner.flushes
    }

    pub(crate) fn flushed(&self, took: std::time::Duration) {
        self.inner.flushes.observe(took.as_secs_f64());
    }

    /// Partitions of the views.
    pub fn partitions(&self) -> u32 {
        self.inner.partitions.len() as u32
    }

    pub(crate) fn tree(&self, partition: u32) -> &Staged {
        &self.inner.partitions[partition as usize]
    }

    /// A player's stats, earned achievements and points.
    pub fn player(&self, player: &str) -> Result<PlayerView, laurel_derived::StoreError> {
        let tree = self.tree(laurel_log::partition_of(player, self.partitions()));
        let stats: StatsRecord = match tree.get(&keys::stats(player))? {
            None => StatsRecord::default(),
            Some(raw) => decode(&raw).unwrap_or_else(|e| {
                tracing::error!(player, error = %e, "unreadable player stats");
                StatsRecord::default()
            }),
        };
        let earned: EarnedRecord = match tree.get(&keys::earned(player))? {
            None => EarnedRecord::default(),
            Some(raw) => decode(&raw).unwrap_or_else(|e| {
                tracing::error!(player, error = %e, "unreadable player achievements");
                EarnedRecord::default()
            }),
        };
        let periods: PeriodsRecord = match tree.get(&keys::periods(player))? {
            None => PeriodsRecord::default(),
            Some(raw) => decode(&raw).unwrap_or_else(|e| {
                tracing::error!(player, error = %e, "unreadable player periods");
                PeriodsRecord::default()
            }),
        };
        Ok(PlayerView {
            stats,
            earned: earned.earned,
            points_total: earned.points_total,
            rewards: earned.rewards,
            periods,
        })
    }

    /// What every player of `partition` earned, by player, and the STATS position the views
    /// held when the read began (read first, so what was earned may reflect a little more).
    pub fn earned_in_partition(
        &self,
        partition: u32,
    ) -> Result<PartitionEarned, laurel_derived::StoreError> {
        let checkpoint = self.checkpoint(partition);
        let prefix = keys::earned("");
        let mut players = Vec::new();
        for (key, raw) in self.tree(partition).scan_kind(prefix[0])? {
            let Some(player) = keys::suffix(&key, prefix.len()) else {
                continue;
            };
            match decode::<EarnedRecord>(&raw) {
                Ok(record) => players.push((player.to_string(), record.earned)),
                Err(e) => tracing::error!(player, error = %e, "unreadable player achievements"),
            }
        }
        Ok(PartitionEarned {
            checkpoint,
            players,
        })
    }

    /// A player's most recent refusals (at most [`RECENT_REFUSALS`](crate::RECENT_REFUSALS)),
    /// newest first.
    pub fn refusals(&self, player: &str) -> Result<Vec<Refusal>, laurel_derived::StoreError> {
        let tree = self.tree(laurel_log::partition_of(player, self.partitions()));
        Ok(match tree.get(&keys::refusals(player))? {
            None => Vec::new(),
            Some(raw) => decode(&raw).unwrap_or_else(|e| {
                tracing::error!(player, error = %e, "unreadable player refusals");
                Vec::new()
            }),
        })
    }

    /// Events the engine refused, by reason code, over all partitions.
    pub fn refusal_counts(&self) -> Result<BTreeMap<String, u64>, laurel_derived::StoreError> {
        let mut counts = BTreeMap::new();
        for tree in &self.inner.partitions {
            for (k, v) in tree.scan_kind(b'C')? {
                if let Some(code) = keys::suffix(&k, 1) {
                    *counts.entry(code.to_string()).or_default() += keys::u64_of(Some(&v));
                }
            }
        }
        Ok(counts)
    }

    /// Events reporting `stat` the engine refused, by reason code, over all partitions.
    pub fn stat_refusal_counts(
        &self,
        stat: &str,
    ) -> Result<BTreeMap<String, u64>, laurel_derived::StoreError> {
        let prefix = format!("{stat}\0");
        let mut counts = BTreeMap::new();
        for tree in &self.inner.partitions {
            for (k, v) in tree.scan_kind(b'K')? {
                if let Some(code) = keys::suffix(&k, 1).and_then(|s| s.strip_prefix(&prefix)) {
                    *counts.entry(code.to_string()).or_default() += keys::u64_of(Some(&v));
                }
            }
        }
        Ok(counts)
    }

    /// Players who first earned `achievement` on each UTC day (`YYYY-MM-DD`), over all
    /// partitions, in day order.
    pub fn first_earns_by_day(
        &self,
        achievement: &str,
    ) -> Result<BTreeMap<String, u64>, laurel_derived::StoreError> {
        let prefix = format!("{achievement}\0");
        let mut days = BTreeMap::new();
        for tree in &self.inner.partitions {
            for (k, v) in tree.scan_kind(b'D')? {
                if let Some(day) = keys::suffix(&k, 1).and_then(|s| s.strip_prefix(&prefix)) {
                    *days.entry(day.to_string()).or_default() += keys::u64_of(Some(&v));
                }
            }
        }
        Ok(days)
    }

    /// Every player's value of `stat` that has one, over all partitions (a periodic stat's
    /// value as last stored).
    pub fn stat_values(&self, stat: &str) -> Result<Vec<Value>, laurel_derived::StoreError> {
        let mut values = Vec::new();
        for tree in &self.inner.partitions {
            for (_, raw) in tree.scan_kind(b'S')? {
                let record: StatsRecord = decode(&raw).unwrap_or_default();
                values.extend(record.get(stat).copied());
            }
        }
        Ok(values)
    }

    /// Earners per achievement and players, over all partitions.
    pub fn rarity(&self) -> Result<Rarity, laurel_derived::StoreError> {
        let mut rarity = Rarity::default();
        for tree in &self.inner.partitions {
            rarity.players += keys::u64_of(tree.get(keys::PLAYERS)?.as_deref());
            for (k, v) in tree.scan_kind(b'R')? {
                let count = keys::u64_of(Some(&v));
                match keys::suffix(&k, 1).map(|s| s.split_once('\0')) {
                    Some(Some((id, period))) => {
                        let key = (id.to_string(), period.to_string());
                        *rarity.by_period.entry(key).or_default() += count;
                    }
                    Some(None) => {
                        let id = keys::suffix(&k, 1).unwrap_or_default();
                        *rarity.earned.entry(id.to_string()).or_default() += count;
                    }
                    None => {}
                }
            }
        }
        Ok(rarity)
    }

    /// A community total: the sum of every partition's share of the `global` stat (as of
    /// each partition's last batch); `None` before any contribution.
    pub fn community_total(&self, stat: &str) -> Result<Option<Value>, laurel_derived::StoreError> {
        let mut total: Option<Value> = None;
        for tree in &self.inner.partitions {
            if let Some(raw) = tree.get(&keys::community_share(stat))? {
                let share: Value = decode(&raw).map_err(|e| {
                    laurel_derived::StoreError::Corrupt(format!(
                        "an unreadable community share: {e}"
                    ))
                })?;
                total = Some(match total {
                    None => share,
                    Some(t) => t.plus(share),
                });
            }
        }
        Ok(total)
    }

    /// The partitions whose engine has not yet learnt that community goal `achievement`
    /// was reached (as far as the views know).
    pub fn not_told(&self, achievement: &str) -> Result<Vec<u32>, laurel_derived::StoreError> {
        let key = keys::community_reached(achievement);
        let mut missing = Vec::new();
        for (p, tree) in self.inner.partitions.iter().enumerate() {
            if tree.get(&key)?.is_none() {
                missing.push(p as u32);
            }
        }
        Ok(missing)
    }

    /// The last STATS position whose effects the views of `partition` hold.
    pub fn checkpoint(&self, partition: u32) -> u64 {
        *self.inner.checkpoints[partition as usize].borrow()
    }

    /// Waits until the views of `partition` hold every effect of STATS up to `seq`; false
    /// when `timeout` passes first.
    pub async fn wait_for(&self, partition: u32, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.inner.checkpoints[partition as usize].subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|s| *s >= seq)).await,
            Ok(Ok(_))
        )
    }

    /// The `unlocked`, `progress` and reward outputs as they are applied, with the OUTPUT
    /// position each came from (for live notifications). A slow receiver misses entries
    /// (`Lagged`) rather than slowing the projector.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Applied>> {
        self.inner.events.subscribe()
    }

    /// The last OUTPUT position of `partition` the views hold (what they answer already
    /// reflects it; its notices are sent or about to be).
    pub fn output_position(&self, partition: u32) -> Result<u64, laurel_derived::StoreError> {
        position(self.tree(partition), keys::POSITION)
    }

    pub(crate) fn applied(&self, partition: u32, checkpoint: u64, outputs: Vec<(u64, Output)>) {
        self.inner.checkpoints[partition as usize].send_if_modified(|s| {
            let moved = checkpoint > *s;
            *s = (*s).max(checkpoint);
            moved
        });
        if self.inner.events.receiver_count() > 0 {
            for (position, output) in outputs {
                let community = matches!(&output, Output::Changes(c) if !c.community.is_empty());
                if community
                    || matches!(
                        output,
                        Output::Unlocked(_)
                            | Output::Progress(_)
                            | Output::Reward(_)
                            | Output::RewardClaimed(_)
                    )
                {
                    let _ = self.inner.events.send(Arc::new(Applied {
                        partition,
                        position,
                        output,
                    }));
                }
            }
        }
    }
}
