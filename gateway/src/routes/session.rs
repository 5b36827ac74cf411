//! `GET /v1/admin/session`: who an admin token is, as the server reads it (the console's
//! sign-in checks a pasted token with it, and shows who is signed in until when).

use axum::Json;
use serde::Serialize;

use crate::auth::Admin;
use crate::error::AdminProblems;

/// The admin a token names.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionOut {
    /// The token's subject.
    subject: String,
    /// Its scopes, sorted.
    scopes: Vec<String>,
    /// When it expires, in Unix seconds.
    expires_at: Option<u64>,
}

/// Who the admin token is: subject, scopes and expiry.
#[utoipa::path(get, path = "/v1/admin/session", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = SessionOut), AdminProblems))]
pub(crate) async fn session(Admin(principal): Admin) -> Json<SessionOut> {
    let mut scopes: Vec<String> = principal.scopes.into_iter().collect();
    scopes.sort();
    Json(SessionOut {
        subject: principal.subject,
        scopes,
        expires_at: principal.expires_at,
    })
}
