//! Live notifications: one task reads the views' unlock and progress stream and hands each
//! output to the subscribers of its player only, so a connected player costs nothing when
//! other players progress; every unlock also goes to the admins following all players (the
//! console's live screen), when any is connected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use laurel_projections::{Applied, Views};
use laurel_runtime::Shutdown;
use laurel_schemas::Output;
use tokio::sync::broadcast;

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Notice {
    /// An unlock or progress of the subscriber's player.
    Output(Arc<Applied>),
    /// Notifications were dropped (the hub fell behind): read the state again.
    Lagged,
    /// A community total moved (sent to every subscriber, at most once a second a stat).
    Community(laurel_schemas::StatName),
}

/// The least time between two community notices of one stat.
const COMMUNITY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Outputs a player's subscription buffers before it is told it lagged.
const PER_PLAYER_BUFFER: usize = 256;

/// Unlocks an all-players subscription buffers before it is told it lagged.
const ALL_PLAYERS_BUFFER: usize = 4096;

/// Per-player fan-out of live outputs. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    /// Every player's unlocks, for admins.
    all: broadcast::Sender<Notice>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            all: broadcast::channel(ALL_PLAYERS_BUFFER).0,
        }
    }
}

#[derive(Default)]
struct Inner {
    players: HashMap<String, broadcast::Sender<Notice>>,
    /// Past this many players, subscribing drops the players nobody listens to any more.
    prune_at: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("players", &self.subscribers())
            .finish()
    }
}

/// A subscription: notices as they come. Dropping a player's last one forgets the player.
pub struct Subscription {
    receiver: broadcast::Receiver<Notice>,
    hub: Hub,
    /// The player followed; `None` for every player's unlocks.
    player: Option<String>,
}

impl Subscription {
    /// The next notice; `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<Notice> {
        match self.receiver.recv().await {
            Ok(notice) => Some(notice),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Notice::Lagged),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(player) = &self.player else { return };
        let mut inner = self.hub.inner.lock().expect("hub lock");
        // Counted under the lock, where subscribing happens: this receiver is still one.
        if inner
            .players
            .get(player)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            inner.players.remove(player);
        }
    }
}

/// A player has as many live streams as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyStreams {
    /// The cap.
    pub max: usize,
}

impl Hub {
    /// Subscribes to `player`'s notifications, unless the player already has `max` streams.
    pub fn subscribe(&self, player: &str, max: usize) -> Result<Subscription, TooManyStreams> {
        let mut inner = self.inner.lock().expect("hub lock");
        if inner.players.len() >= inner.prune_at {
            inner
                .players
                .retain(|_, sender| sender.receiver_count() > 0);
            inner.prune_at = 2 * inner.players.len() + 1024;
        }
        let sender = inner
            .players
            .entry(player.to_string())
            .or_insert_with(|| broadcast::channel(PER_PLAYER_BUFFER).0);
        if sender.receiver_count() >= max {
            return Err(TooManyStreams { max });
        }
        let receiver = sender.subscribe();
        Ok(Subscription {
            receiver,
            hub: self.clone(),
            player: Some(player.to_string()),
        })
    }

    /// Subscribes to every player's unlocks (and `Lagged` when this one fell behind).
    pub fn subscribe_all(&self) -> Subscription {
        Subscription {
            receiver: self.all.subscribe(),
            hub: self.clone(),
            player: None,
        }
    }

    /// Players with a subscription (some may have just disconnected).
    pub fn subscribers(&self) -> usize {
        self.inner.lock().expect("hub lock").players.len()
    }

    fn dispatch(&self, notice: &Notice, player: Option<&str>) {
        let players = &mut self.inner.lock().expect("hub lock").players;
        match player {
            Some(player) => {
                if let Some(sender) = players.get(player)
                    && sender.send(notice.clone()).is_err()
                {
                    // Every receiver is gone: forget the player.
                    players.remove(player);
                }
            }
            None => players.retain(|_, sender| sender.send(notice.clone()).is_ok()),
        }
    }

    /// Forwards the views' outputs to subscribers until `shutdown` turns true.
    pub async fn run(self, views: Views, shutdown: Shutdown) {
        let mut outputs = views.subscribe();
        let mut community_sent: HashMap<laurel_schemas::StatName, tokio::time::Instant> =
            HashMap::new();
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                next = outputs.recv() => match next {
                    Ok(output) => {
                        let player = match &output.output {
                            Output::Unlocked(u) => {
                                if self.all.receiver_count() > 0 {
                                    // No receiver left in between is fine: nobody listens.
                                    let _ = self.all.send(Notice::Output(output.clone()));
                                }
                                &u.player_id
                            }
                            Output::Progress(p) => &p.player_id,
                            Output::Reward(r) => &r.player_id,
                            Output::RewardClaimed(c) => &c.player_id,
                            Output::Changes(c) => {
                                for share in &c.community {
                                    let due = community_sent
                                        .get(&share.stat)
                                        .is_none_or(|at| at.elapsed() >= COMMUNITY_EVERY);
                                    if due {
                                        community_sent.insert(share.stat.clone(), tokio::time::Instant::now());
                                        self.dispatch(&Notice::Community(share.stat.clone()), None);
                                    }
                                }
                                continue;
                            }
                            _ => continue,
                        };
                        self.dispatch(&Notice::Output(output.clone()), Some(player.as_str()));
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "live notifications fell behind");
                        self.dispatch(&Notice::Lagged, None);
                        let _ = self.all.send(Notice::Lagged);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}
