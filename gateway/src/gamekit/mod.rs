//! AWS GameKit's achievements API, served by Laurel: a game built on GameKit's plugin points
//! its achievements base URL here and works unchanged (docs/gamekit.md).
//!
//! Answers are GameKit's envelope (`{meta: {code, message}, data, paging}`), refusals
//! included, with the status codes its Lambdas and API Gateway give. An unlock is a stat
//! event on the same log as everything else, so live notifications, analytics, rarity and
//! replay see it.

mod admin;
mod model;
mod paging;
mod player;
mod sigv4;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::state::AppState;

pub(crate) use model::{GameKitAchievement, stat_of};
pub use paging::PagingKey;
pub use sigv4::{SigV4Keys, authorization as sigv4_authorization};

/// Where and how the GameKit routes are served.
#[derive(Debug, Clone)]
pub struct GameKitConfig {
    /// The path the routes live under (a game's achievements base URL ends in it).
    pub base: String,
    /// The ID token claim that names the player.
    pub player_claim: String,
    /// Signs the paging tokens of lists.
    pub paging: PagingKey,
    /// The AWS key pairs whose SigV4 signatures the admin routes take (none: every admin
    /// call is refused).
    pub admin_keys: SigV4Keys,
}

/// The GameKit routes, under `config.base`.
pub fn router(config: &GameKitConfig) -> axum::Router<AppState> {
    let base = config.base.trim_end_matches('/');
    axum::Router::new()
        .route(base, get(player::list))
        .route(
            &format!("{base}/admin"),
            get(admin::list).post(admin::add).delete(admin::delete),
        )
        .route(&format!("{base}/{{achievement_id}}"), get(player::one))
        .route(
            &format!("{base}/{{achievement_id}}/unlock"),
            post(player::unlock),
        )
}

/// GameKit's achievements (definitions with `metadata.gamekit`), not archived, in list order
/// (`order_number`, then id); hidden ones only with `hidden`.
pub(crate) fn achievements(state: &AppState, hidden: bool) -> Vec<GameKitAchievement> {
    let mut all: Vec<GameKitAchievement> = state.defs.read(|defs| {
        defs.achievements()
            .filter(|def| !def.archived)
            .filter_map(GameKitAchievement::from_laurel)
            .filter(|gk| hidden || !gk.is_hidden)
            .collect()
    });
    all.sort_by(|a, b| {
        (a.order_number, &a.achievement_id).cmp(&(b.order_number, &b.achievement_id))
    });
    all
}

/// A GameKit answer: the envelope, with `data` and (for a list with more) `paging`.
pub(crate) struct Envelope {
    status: StatusCode,
    message: Option<String>,
    data: Value,
    paging: Option<Value>,
}

impl Envelope {
    pub(crate) fn ok(data: Value) -> Self {
        Self {
            status: StatusCode::OK,
            message: None,
            data,
            paging: None,
        }
    }

    pub(crate) fn with_paging(mut self, paging: Option<Value>) -> Self {
        self.paging = paging;
        self
    }

    /// A refusal: GameKit's envelope with the status, `data: null`, and a message saying
    /// why (GameKit says only the status's name; the reason is added for whoever debugs).
    pub(crate) fn refuse(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: Some(message.into()),
            data: Value::Null,
            paging: None,
        }
    }
}

impl IntoResponse for Envelope {
    fn into_response(self) -> Response {
        let reason = self.status.canonical_reason().unwrap_or("Error");
        let message = match self.message {
            Some(m) if !self.status.is_success() => format!("{reason}: {m}"),
            Some(m) => m,
            None => reason.to_string(),
        };
        let mut body = json!({
            "meta": {"code": self.status.as_u16(), "message": message},
            "data": self.data,
        });
        if let Some(paging) = self.paging {
            body["paging"] = paging;
        }
        let mut response = (self.status, Json(body)).into_response();
        // Not rewritten as a problem document: GameKit's clients read this envelope.
        response.extensions_mut().insert(crate::error::Verbatim);
        response
    }
}

/// The player of a GameKit call: the Cognito ID token, sent raw in `authorization` as
/// GameKit's clients send it (a `Bearer ` prefix is taken too), names them by the
/// configured claim (`custom:gk_user_id`).
pub(crate) struct GameKitPlayer(pub(crate) String);

/// API Gateway's answer when its Cognito authorizer refuses a token: 401
/// `{"message": "Unauthorized"}`; or, for a valid token without the player claim, the
/// Lambda's own 401 envelope.
pub(crate) enum Unauthorized {
    Token,
    NoPlayer,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        match self {
            Unauthorized::NoPlayer => {
                Envelope::refuse(StatusCode::UNAUTHORIZED, "the token names no player")
                    .into_response()
            }
            Unauthorized::Token => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"message": "Unauthorized"})),
                )
                    .into_response();
                response.extensions_mut().insert(crate::error::Verbatim);
                response
            }
        }
    }
}

impl FromRequestParts<AppState> for GameKitPlayer {
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Unauthorized> {
        let Some(config) = &state.gamekit else {
            return Err(Unauthorized::Token);
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
            .filter(|t| !t.is_empty())
            .ok_or(Unauthorized::Token)?;
        match state
            .auth
            .verify_id_token(token, &config.player_claim)
            .await
        {
            Ok(Some(player)) => Ok(GameKitPlayer(player)),
            Ok(None) => Err(Unauthorized::NoPlayer),
            Err(e) => {
                tracing::debug!(error = %e, "GameKit token refused");
                Err(Unauthorized::Token)
            }
        }
    }
}

/// `laurel gamekit import FILE`: GameKit's achievement definitions as a Laurel definitions
/// file (pretty JSON), every achievement checked as the server would.
pub fn import(file: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let value: Value = serde_json::from_str(&text).context("the file is not JSON")?;
    let list = value
        .pointer("/data/achievements")
        .or_else(|| value.get("achievements"))
        .context("no `achievements` list (nor `data.achievements`) in the file")?;
    let achievements: Vec<GameKitAchievement> =
        serde_json::from_value(list.clone()).context("an achievement is not GameKit's shape")?;
    let mut file = laurel_schemas::DefinitionsFile::default();
    for gk in achievements {
        let id = laurel_schemas::AchievementId::new(gk.achievement_id.as_str())
            .map_err(|r| anyhow::anyhow!("achievement_id {:?}: {r}", gk.achievement_id))?;
        let (stat, stat_spec, spec) = gk.to_laurel();
        if let Err(errors) = spec.validate(&id) {
            let why: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}: {}", gk.achievement_id, why.join("; "));
        }
        file.stats.insert(stat, stat_spec);
        file.achievements.insert(gk.achievement_id, spec);
    }
    Ok(serde_json::to_string_pretty(&file)?)
}
