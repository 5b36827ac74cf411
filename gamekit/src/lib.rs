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
mod python;
mod sanitize;
mod sigv4;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use std::sync::Arc;

use laurel_app::App;
use laurel_gateway::auth::AuthConfig;

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

/// What the GameKit routes share: the application layer, the token checks, and their own
/// settings.
#[derive(Clone)]
pub struct GameKit {
    /// The application layer: every operation goes through its services.
    pub app: App,
    /// How ID tokens are checked.
    pub auth: Arc<AuthConfig>,
    /// Where and how the routes are served.
    pub config: Arc<GameKitConfig>,
}

/// The GameKit routes, under `state.config.base`, for the gateway to serve beside its own
/// (`laurel_gateway::app`).
pub fn router(state: GameKit) -> axum::Router {
    let base = state.config.base.trim_end_matches('/').to_string();
    let base = base.as_str();
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
        .with_state(state)
}

/// GameKit's achievements (definitions with `metadata.gamekit`), not archived, in list order
/// (`order_number`, then id); hidden ones only with `hidden`.
pub(crate) fn achievements(state: &GameKit, hidden: bool) -> Vec<GameKitAchievement> {
    let mut all: Vec<GameKitAchievement> = state.app.defs.read(|defs| {
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
    /// `meta.message` when a Lambda passes its own (else the status's name).
    message: Option<&'static str>,
    /// Why, for whoever debugs: logged and sent in the `laurel-detail` header, never in the
    /// body, which stays GameKit's byte for byte.
    detail: Option<String>,
    data: Value,
    paging: Option<Value>,
}

/// The envelope as GameKit's `response_envelope` builds it, in its key order.
#[derive(serde::Serialize)]
struct Body<'a> {
    meta: Meta<'a>,
    data: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<&'a Value>,
}

#[derive(serde::Serialize)]
struct Meta<'a> {
    code: u16,
    message: &'a str,
}

/// The header that carries why a GameKit call was refused.
pub(crate) const DETAIL_HEADER: &str = "laurel-detail";

impl Envelope {
    pub(crate) fn ok(data: Value) -> Self {
        Self {
            status: StatusCode::OK,
            message: None,
            detail: None,
            data,
            paging: None,
        }
    }

    pub(crate) fn with_paging(mut self, paging: Option<Value>) -> Self {
        self.paging = paging;
        self
    }

    /// A refusal as GameKit's Lambdas give it: the status, its name as `meta.message`
    /// (Python's `http.client.responses`), `data: null`; `detail` says why in a header.
    pub(crate) fn refuse(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            message: None,
            detail: Some(detail.into()),
            data: Value::Null,
            paging: None,
        }
    }

    /// A refusal whose `meta.message` the Lambda words itself ("Invalid paging token").
    pub(crate) fn refuse_saying(status: StatusCode, message: &'static str) -> Self {
        Self {
            message: Some(message),
            ..Self::refuse(status, message)
        }
    }
}

impl IntoResponse for Envelope {
    fn into_response(self) -> Response {
        let message = self
            .message
            .or_else(|| self.status.canonical_reason())
            .unwrap_or("Error");
        let body = python::dumps(&Body {
            meta: Meta {
                code: self.status.as_u16(),
                message,
            },
            data: &self.data,
            paging: self.paging.as_ref(),
        });
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(detail) = self.detail {
            tracing::debug!(
                status = self.status.as_u16(),
                detail,
                "GameKit call refused"
            );
            // Header values are visible ASCII: anything else in the detail is escaped.
            let ascii: String = detail.escape_default().collect();
            if let Ok(value) = axum::http::HeaderValue::from_str(&ascii) {
                response.headers_mut().insert(DETAIL_HEADER, value);
            }
        }
        // Not rewritten as a problem document: GameKit's clients read this envelope.
        response
            .extensions_mut()
            .insert(laurel_gateway::error::Verbatim);
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
                response
                    .extensions_mut()
                    .insert(laurel_gateway::error::Verbatim);
                response
            }
        }
    }
}

impl FromRequestParts<GameKit> for GameKitPlayer {
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &GameKit) -> Result<Self, Unauthorized> {
        let config = &state.config;
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
