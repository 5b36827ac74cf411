//! What a service can refuse with, by kind: each surface answers a kind its own way (the
//! HTTP API with a problem document, GameKit with its envelope).

use laurel_schemas::{Reason, ValidationError};
use serde::Serialize;

/// One refused event of a batch, or one refused field.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ItemError {
    /// The event's index in the batch (absent for a field of a single body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// Why, as a code and its data.
    pub code: Reason,
}

impl ItemError {
    /// A refused event of a batch.
    pub fn event(index: usize, field: Option<&str>, reason: Reason) -> Self {
        Self {
            index: Some(index),
            field: field.map(str::to_string),
            reason: reason.to_string(),
            code: reason,
        }
    }
}

impl From<ValidationError> for ItemError {
    fn from(e: ValidationError) -> Self {
        Self {
            index: None,
            field: Some(e.field),
            reason: e.reason.to_string(),
            code: e.reason,
        }
    }
}

/// Why a service did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is not in the form asked for (a read token that is not one).
    #[error("{0}")]
    Malformed(String),
    /// The caller may not do this, with the items to blame.
    #[error("{0}")]
    Forbidden(String, Vec<ItemError>),
    /// Nothing by that name.
    #[error("{0}")]
    NotFound(String),
    /// The change would contradict what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The version the caller expected is not the current one.
    #[error("{0}")]
    VersionMismatch(String),
    /// Too much at once (a batch past the limit).
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed but refused, with the reasons.
    #[error("{0}")]
    Invalid(String, Vec<ItemError>),
    /// The caller sends faster than its quota: retry after this many seconds.
    #[error("{0}")]
    Throttled(String, u64),
    /// The log or a store cannot take this now; trying again may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: a defect or a broken store.
    #[error("{0}")]
    Internal(String),
}

impl From<laurel_derived::StoreError> for AppError {
    fn from(e: laurel_derived::StoreError) -> Self {
        AppError::Internal(format!("views: {e}"))
    }
}

impl From<laurel_log::AppendError> for AppError {
    fn from(e: laurel_log::AppendError) -> Self {
        match e {
            laurel_log::AppendError::Invalid(detail) => AppError::Internal(detail),
            other => AppError::Unavailable(other.to_string()),
        }
    }
}

impl From<laurel_log::LogError> for AppError {
    fn from(e: laurel_log::LogError) -> Self {
        AppError::Unavailable(e.to_string())
    }
}
