//! Bearer-token authentication: who is calling, and what they may do.

mod jwks;

use std::collections::HashSet;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use jwks::Jwks;
pub use jwks::{JwksError, JwksSource, RefetchPolicy};

/// The scope that administers definitions and grants.
pub const ADMIN_SCOPE: &str = "laurel:admin";
/// The scope of game servers: report stats for any player.
pub const SERVER_SCOPE: &str = "laurel:server";

/// What a token must say besides its signature.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud` (Cognito access tokens carry none: use `client_id`).
    pub audience: Option<String>,
    /// Required `client_id`, as in Amazon Cognito access tokens; with it `token_use` must be
    /// `access`.
    pub client_id: Option<String>,
    /// The claim naming the player.
    pub subject_claim: String,
}

/// How tokens are checked: which keys, and which claims.
pub struct AuthConfig {
    hmac: Option<DecodingKey>,
    jwks: Option<Jwks>,
    claims: Claims,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("hs256", &self.hmac.is_some())
            .field("jwks", &self.jwks.is_some())
            .field("claims", &self.claims)
            .finish()
    }
}

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

impl AuthConfig {
    /// HS256 with a shared secret (development).
    pub fn hs256(secret: &[u8], claims: Claims) -> Self {
        Self {
            hmac: Some(DecodingKey::from_secret(secret)),
            jwks: None,
            claims,
        }
    }

    /// RS256, ES256 and EdDSA keys from a key set, and HS256 too when `secret` is given.
    pub async fn with_jwks(
        source: JwksSource,
        policy: RefetchPolicy,
        secret: Option<&[u8]>,
        claims: Claims,
    ) -> Result<Self, JwksError> {
        Ok(Self {
            hmac: secret.map(DecodingKey::from_secret),
            jwks: Some(Jwks::load(source, policy).await?),
            claims,
        })
    }

    fn validation(&self, algorithm: Algorithm, audiences: &[&str]) -> Validation {
        let mut validation = Validation::new(algorithm);
        // A configured claim must be present, not just right when present.
        let mut required = vec!["exp", "sub"];
        validation.leeway = LEEWAY_SECS;
        // A token not yet valid is refused like an expired one (with the same leeway).
        validation.validate_nbf = true;
        if let Some(iss) = &self.claims.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        if audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            // Any of them here; every one of them is checked once the token decodes.
            validation.set_audience(audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The keys a token signed with `algorithm` (and naming `kid`) may be checked with.
    async fn keys(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Vec<DecodingKey>, ApiError> {
        if algorithm == Algorithm::HS256 {
            return self.hmac.clone().map(|k| vec![k]).ok_or_else(|| {
                ApiError::Unauthorized("HS256 tokens are not accepted by this server".into())
            });
        }
        let jwks = match &self.jwks {
            Some(jwks) if jwks::ACCEPTED.contains(&algorithm) => jwks,
            _ => {
                return Err(ApiError::Unauthorized(format!(
                    "{algorithm:?} tokens are not accepted by this server"
                )));
            }
        };
        let keys: Vec<DecodingKey> = jwks
            .candidates(kid, algorithm)
            .await
            .into_iter()
            .map(|k| k.key)
            .collect();
        if keys.is_empty() {
            return Err(ApiError::Unauthorized(match kid {
                Some(kid) => format!("no {algorithm:?} key with kid `{kid}`"),
                None => format!("the token names no key (`kid`) and no {algorithm:?} key has none"),
            }));
        }
        Ok(keys)
    }

    /// Checks a raw token and says who is calling.
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let audiences: Vec<&str> = self.claims.audience.as_deref().into_iter().collect();
        let claims = self.checked_claims(token, &audiences).await?;
        self.principal(&claims)
    }

    /// Checks an ID token as Amazon Cognito issues them and AWS GameKit's clients send them
    /// (signature, `exp`, `nbf`, `iss`; `aud` names the app client, `--jwt-client-id`, and
    /// `--jwt-audience`, each when set; `token_use` is `id` when present) and names its
    /// player by `player_claim` (`None`: a valid token without that claim).
    pub async fn verify_id_token(
        &self,
        token: &str,
        player_claim: &str,
    ) -> Result<Option<String>, ApiError> {
        let audiences: Vec<&str> = [&self.claims.client_id, &self.claims.audience]
            .into_iter()
            .filter_map(|a| a.as_deref())
            .collect();
        let claims = self.checked_claims(token, &audiences).await?;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
        if let Some(use_) = text("token_use").filter(|u| *u != "id") {
            return Err(ApiError::Unauthorized(format!(
                "a `{use_}` token is not an ID token"
            )));
        }
        Ok(text(player_claim)
            .filter(|p| !p.is_empty())
            .map(str::to_string))
    }

    /// A token's claims, once its signature and time and issuer claims check out, and its
    /// `aud` names every one of `audiences`.
    async fn checked_claims(
        &self,
        token: &str,
        audiences: &[&str],
    ) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ApiError::Unauthorized(format!("invalid token: {}", refusal(&e))))?;
        let keys = self.keys(header.kid.as_deref(), header.alg).await?;
        let validation = self.validation(header.alg, audiences);
        let mut failure = None;
        for key in &keys {
            match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                token,
                key,
                &validation,
            ) {
                Ok(data) => {
                    let named = |want: &str| match data.claims.get("aud") {
                        Some(serde_json::Value::String(aud)) => aud == want,
                        Some(serde_json::Value::Array(auds)) => {
                            auds.iter().any(|a| a.as_str() == Some(want))
                        }
                        _ => false,
                    };
                    if let Some(missing) = audiences.iter().find(|a| !named(a)) {
                        return Err(ApiError::Unauthorized(format!(
                            "invalid token: meant for another audience (`aud` does not name `{missing}`)"
                        )));
                    }
                    return Ok(data.claims);
                }
                Err(e) => failure = Some(e),
            }
        }
        Err(ApiError::Unauthorized(match failure {
            Some(e) => format!("invalid token: {}", refusal(&e)),
            None => "invalid token".into(),
        }))
    }

    fn principal(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Principal, ApiError> {
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
        if let Some(use_) = text("token_use").filter(|u| *u != "access") {
            return Err(ApiError::Unauthorized(format!(
                "a `{use_}` token is not an access token"
            )));
        }
        if let Some(client) = &self.claims.client_id {
            if text("client_id") != Some(client.as_str()) {
                return Err(ApiError::Unauthorized(
                    "the token's `client_id` is not this server's".into(),
                ));
            }
            if text("token_use") != Some("access") {
                return Err(ApiError::Unauthorized(
                    "the token has no `token_use: access`".into(),
                ));
            }
        }
        let claim = &self.claims.subject_claim;
        let subject = text(claim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::Unauthorized(format!("the token has no `{claim}` claim")))?
            .to_string();
        Ok(Principal {
            subject,
            scopes: scopes(claims),
            expires_at: expiry(claims)?,
        })
    }
}

/// When a token expires (Unix seconds). jsonwebtoken takes `exp` as an integer or a
/// number with a fraction (`2051222424.0`); a live stream must end then either way (the
/// fuzzer found a float `exp` read as none, and the stream never ended).
fn expiry(claims: &serde_json::Map<String, serde_json::Value>) -> Result<Option<u64>, ApiError> {
    let Some(exp) = claims.get("exp") else {
        return Ok(None);
    };
    let seconds = exp.as_u64().or_else(|| {
        exp.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    });
    seconds
        .map(Some)
        .ok_or_else(|| ApiError::Unauthorized("the `exp` claim is malformed".into()))
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
    /// When the token expires (Unix seconds): a live notification stream ends then.
    pub expires_at: Option<u64>,
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

    /// The caller as the application layer knows it.
    pub fn caller(&self) -> laurel_app::Caller {
        let source = if self.is_admin() {
            laurel_schemas::Source::Admin
        } else if self.is_server() {
            laurel_schemas::Source::Server
        } else {
            laurel_schemas::Source::Player
        };
        laurel_app::Caller {
            subject: self.subject.clone(),
            source,
        }
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

/// Why a token was refused, in words (jsonwebtoken says only `InvalidToken` and the like).
fn refusal(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidToken => "not a JSON Web Token (three base64url parts)".into(),
        ErrorKind::InvalidSignature => "the signature does not match the key".into(),
        ErrorKind::ExpiredSignature => "expired (`exp` has passed)".into(),
        ErrorKind::ImmatureSignature => "not valid yet (`nbf` is in the future)".into(),
        ErrorKind::InvalidIssuer => "issued by another issuer (`iss`)".into(),
        ErrorKind::InvalidAudience => "meant for another audience (`aud`)".into(),
        ErrorKind::InvalidSubject => "for another subject (`sub`)".into(),
        ErrorKind::InvalidAlgorithm => "signed with an algorithm this key does not take".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the `{claim}` claim is missing"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the `{claim}` claim is malformed"),
        ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            format!("not a JSON Web Token (three base64url parts of JSON): {e}")
        }
        // Key and signing errors are the server's, and jsonwebtoken may add kinds.
        _ => e.to_string(),
    }
}

/// Every state that holds the token checks can check a caller.
impl<S> FromRequestParts<S> for Principal
where
    Arc<AuthConfig>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
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
        Arc::<AuthConfig>::from_ref(state)
            .verify(token.trim())
            .await
    }
}

/// A caller with the `laurel:admin` scope: checked from the headers, before anything else
/// of the request (its body above all) is read, so a caller without the scope learns
/// nothing from a body's refusal.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl<S> FromRequestParts<S> for Admin
where
    Arc<AuthConfig>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        principal.require_admin()?;
        Ok(Admin(principal))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(claims: serde_json::Value) -> Result<Principal, ApiError> {
        let secret = b"unit-secret";
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        let auth = AuthConfig::hs256(
            secret,
            Claims {
                subject_claim: "sub".into(),
                ..Claims::default()
            },
        );
        let verify = std::pin::pin!(auth.verify(&token));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(verify, &mut context) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => panic!("an HS256 check waited"),
        }
    }

    #[test]
    fn a_token_s_expiry_is_read_whether_exp_is_an_integer_or_a_float() {
        let exp = jsonwebtoken::get_current_timestamp() + 600;
        let int = verify(serde_json::json!({"sub": "ann", "exp": exp})).unwrap();
        assert_eq!(int.expires_at, Some(exp));
        let float = verify(serde_json::json!({"sub": "ann", "exp": exp as f64 + 0.5})).unwrap();
        assert_eq!(
            float.expires_at,
            Some(exp),
            "a live stream must end at a float `exp`"
        );
    }
}
