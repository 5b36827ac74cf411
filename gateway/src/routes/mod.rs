//! The HTTP routes (SPEC section 4).

pub(crate) mod admin;
pub(crate) mod icons;
pub(crate) mod ingest;
pub(crate) mod notifications;
pub(crate) mod ops;
pub(crate) mod players;
pub(crate) mod replay;

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
