//! Bearer-token authentication: who is calling, and what they may do.

use std::collections::HashSet;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// The scope that administers definitions and grants.
pub const ADMIN_SCOPE: &str = "laurel:admin";
/// The scope of game servers: report stats for any player.
pub const SERVER_SCOPE: &str = "laurel:server";

/// How tokens are checked.
#[derive(Clone)]
pub struct AuthConfig {
    key: DecodingKey,
    validation: Validation,
    subject_claim: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("subject_claim", &self.subject_claim)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// HS256 with a shared secret (development), checking issuer and audience when given.
    pub fn hs256(
        secret: &[u8],
        issuer: Option<&str>,
        audience: Option<&str>,
        subject_claim: &str,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 30;
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
            subject_claim: subject_claim.to_string(),
        }
    }

    /// Checks a raw token and says who is calling.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|e| ApiError::Unauthorized(format!("invalid token: {e}")))?;
        let claims = data.claims;
        let subject = claims
            .get(&self.subject_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(format!("the token has no `{}` claim", self.subject_claim))
            })?
            .to_string();
        Ok(Principal {
            subject,
            scopes: scopes(&claims),
        })
    }
}

/// Scopes from `scope` (space-separated), `scp` (array or string) and `cognito:groups`.
fn scopes(claims: &serde_json::Map<String, serde_json::Value>) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut add = |value: Option<&serde_json::Value>| match value {
        Some(serde_json::Value::String(s)) => out.extend(s.split_whitespace().map(str::to_string)),
        Some(serde_json::Value::Array(items)) => {
            out.extend(items.iter().filter_map(|i| i.as_str()).map(str::to_string))
        }
        _ => {}
    };
    add(claims.get("scope"));
    add(claims.get("scp"));
    add(claims.get("cognito:groups"));
    out
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject: the player, for player tokens.
    pub subject: String,
    /// Granted scopes.
    pub scopes: HashSet<String>,
}

impl Principal {
    /// Whether the caller administers Laurel.
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(ADMIN_SCOPE)
    }

    /// Whether the caller may report stats for any player.
    pub fn is_server(&self) -> bool {
        self.is_admin() || self.scopes.contains(SERVER_SCOPE)
    }

    /// Refuses callers without the admin scope.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                format!("this needs the `{ADMIN_SCOPE}` scope"),
                Vec::new(),
            ))
        }
    }

    /// Refuses callers that are neither servers nor admins.
    pub fn require_server(&self) -> Result<(), ApiError> {
        if self.is_server() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                format!("this needs the `{SERVER_SCOPE}` or `{ADMIN_SCOPE}` scope"),
                Vec::new(),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("no Authorization header".into()))?
            .to_str()
            .map_err(|_| ApiError::Unauthorized("unreadable Authorization header".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into())
            })?;
        state.auth.verify(token.trim())
    }
}

/// Claims of a development token.
#[derive(Debug, Serialize, Deserialize)]
struct DevClaims {
    sub: String,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    scope: String,
}

/// Mints an HS256 development token for `subject` with `scope`, valid for `ttl_secs`.
pub fn mint_dev_token(secret: &[u8], subject: &str, scope: &str, ttl_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = DevClaims {
        sub: subject.to_string(),
        exp: now + ttl_secs,
        iat: now,
        scope: scope.to_string(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing does not fail")
}
