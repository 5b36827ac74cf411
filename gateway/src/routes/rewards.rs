//! A player's rewards, and claiming them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use laurel_app::rewards::{self, Claimed};
use laurel_app::rfc3339;
use laurel_projections::RewardRecord;
use serde::Serialize;

use crate::auth::Principal;
use crate::error::{ApiError, Problem, TokenProblems};
use crate::state::AppState;

/// One earn's rewards.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RewardOut {
    /// The earn that pays them (its `unlock_id`).
    unlock_id: String,
    /// Its achievement.
    achievement_id: String,
    /// Which earn of the achievement.
    occurrence: u32,
    /// The rewards, as defined when earned.
    #[schema(value_type = Vec<Object>)]
    rewards: laurel_schemas::Rewards,
    /// Whether the player claims them (`POST .../claim`); otherwise they were paid on earn.
    claim: bool,
    /// `paid` (on earn), `claimable` (waiting for the player's claim) or `claimed`.
    status: &'static str,
    /// When earned (RFC 3339).
    earned_at: Option<String>,
    /// When claimed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_at: Option<String>,
}

impl From<RewardRecord> for RewardOut {
    fn from(r: RewardRecord) -> Self {
        let status = match (r.claim, r.claimed_at) {
            (false, _) => "paid",
            (true, None) => "claimable",
            (true, Some(_)) => "claimed",
        };
        Self {
            unlock_id: r.unlock_id.to_string(),
            achievement_id: r.achievement_id,
            occurrence: r.occurrence,
            rewards: r.rewards,
            claim: r.claim,
            status,
            earned_at: rfc3339(r.earned_at),
            claimed_at: r.claimed_at.and_then(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RewardList {
    /// In the order earned: every reward waiting for a claim, and the last 50 settled.
    rewards: Vec<RewardOut>,
}

/// The caller's rewards.
#[utoipa::path(get, path = "/v1/players/me/rewards", tag = "players", security(("bearer" = [])),
    responses((status = 200, body = RewardList), TokenProblems))]
pub(crate) async fn my_rewards(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<RewardList>, ApiError> {
    let rewards = rewards::of(&state.app, &principal.subject).await?;
    Ok(Json(RewardList {
        rewards: rewards.into_iter().map(RewardOut::from).collect(),
    }))
}

/// Claim the rewards of one of the caller's earns. Idempotent: claiming again answers the
/// same 200. The claim is an event on the log; the engine pays it out once (a
/// `reward_claimed` output). 202 when the claim is on the log but not yet shown paid
/// within the read wait (`--max-wait-ms`): claiming again later answers 200.
#[utoipa::path(post, path = "/v1/players/me/rewards/{unlock_id}/claim", tag = "players", security(("bearer" = [])),
    params(("unlock_id" = String, Path, format = "uuid", description = "The earn's unlock id")),
    responses((status = 200, body = RewardOut, description = "Claimed (now or before)"),
        (status = 202, body = RewardOut, description = "The claim is on the log; not yet shown paid"),
        TokenProblems,
        (status = 404, description = "No earn with rewards by that id for this player", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The rewards were paid on earn: nothing to claim", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The player sends more than allowed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn claim(
    State(state): State<AppState>,
    principal: Principal,
    Path(unlock_id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(
        match rewards::claim(&state.app, &principal.subject, &unlock_id).await? {
            Claimed::Paid(r) => (StatusCode::OK, Json(RewardOut::from(r))).into_response(),
            Claimed::Accepted(r) => {
                (StatusCode::ACCEPTED, Json(RewardOut::from(r))).into_response()
            }
        },
    )
}
