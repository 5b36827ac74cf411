//! The application layer: one service per operation, which the HTTP routes (`routes/`), the
//! GameKit routes (`gamekit/`) and the console all call; no route module calls another's
//! handler. A service takes the shared state and plain values and answers with plain values
//! or an [`ApiError`](crate::ApiError) kind; it knows nothing of requests and responses.
//!
//! - [`definitions`]: every change to stats and achievements (one DEFS append path).
//! - [`ingest`]: stat events and grants (one STATS append path).
//! - [`players`]: a player's view of the achievements.

pub(crate) mod definitions;
pub(crate) mod ingest;
pub(crate) mod players;

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A time in milliseconds since the epoch as RFC 3339.
pub(crate) fn rfc3339(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}
