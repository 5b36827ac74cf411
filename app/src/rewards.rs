//! Rewards: what a player's earns pay out, and claiming those that wait for a claim.
//!
//! A claim is an event on STATS (ordered with the player's stats, under an id derived from
//! the earn, so the log keeps one claim per earn); the engine pays it out once, as a
//! `reward_claimed` output, which the views then show. The answer waits (bounded) for that.

use laurel_log::{Entry, Target, partition_of};
use laurel_projections::RewardRecord;
use laurel_schemas::{Claim, PlayerId, SchemaVersion, StatsMessage, claim_id, encode};
use uuid::Uuid;

use crate::ingest::{append_stats, dedup_id, throttle};
use crate::{App, AppError, now_ms, players};

/// A player's rewards in the order earned: every one waiting for a claim, and the most
/// recent settled ones.
pub async fn of(app: &App, player: &str) -> Result<Vec<RewardRecord>, AppError> {
    Ok(players::view(app, player).await?.rewards)
}

/// How a claim ended.
#[derive(Debug)]
pub enum Claimed {
    /// The claim is paid out (now or before): the reward as the views hold it.
    Paid(RewardRecord),
    /// The claim is on the log, but the views did not show it paid within the wait.
    Accepted(RewardRecord),
}

/// Claims the rewards of the player's earn `unlock_id`. Idempotent: a claim of rewards
/// already claimed answers the same. 404 when the player has no such earn with rewards
/// (yet: the views may not show a very recent earn), 409 when its rewards were paid on
/// earn and there is nothing to claim.
pub async fn claim(app: &App, player: &str, unlock_id: &str) -> Result<Claimed, AppError> {
    let not_found = || {
        AppError::NotFound(format!(
            "the player has no earn {unlock_id:?} with rewards (GET /v1/players/me/rewards lists them)"
        ))
    };
    let unlock_id = Uuid::parse_str(unlock_id).map_err(|_| not_found())?;
    let find = |rewards: Vec<RewardRecord>| rewards.into_iter().find(|r| r.unlock_id == unlock_id);
    let reward = find(of(app, player).await?).ok_or_else(not_found)?;
    if !reward.claim {
        return Err(AppError::Conflict(format!(
            "the rewards of {unlock_id} were paid when earned: there is nothing to claim"
        )));
    }
    if reward.claimed_at.is_some() {
        return Ok(Claimed::Paid(reward));
    }
    throttle(app, player, 1)?;
    let player_id = PlayerId::new(player).map_err(|_| not_found())?;
    let claim = Claim {
        v: SchemaVersion::CURRENT,
        event_id: claim_id(unlock_id),
        player_id: player_id.clone(),
        unlock_id,
        received_at: now_ms(),
    };
    let partition = partition_of(player, app.log.config().partitions);
    let entry = Entry {
        target: Target::Partition(partition),
        id: dedup_id(&player_id, claim.event_id),
        payload: encode(&StatsMessage::Claim(claim)),
    };
    let acks = append_stats(app, vec![entry]).await?;
    let seq = acks.iter().map(|a| a.seq).max().unwrap_or(0);
    app.views
        .wait_for(partition, seq, app.limits.max_wait)
        .await;
    let reward = find(of(app, player).await?).unwrap_or(reward);
    Ok(if reward.claimed_at.is_some() {
        Claimed::Paid(reward)
    } else {
        Claimed::Accepted(reward)
    })
}
