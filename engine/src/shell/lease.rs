//! A partition lease as the worker holding it sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Until when an engine surely holds a partition's lease, by its own monotonic clock: the
/// lease's owner extends it at each renewal (from when the renewal was sent, short of the
/// lease's TTL), and revokes it when a renewal fails. The worker checks it before every
/// append, so a worker whose lease lapsed (its process stalled past the deadline, its
/// renewals lost) appends nothing more; the log's fence (see
/// [`Log::append_fenced`](laurel_log::Log::append_fenced)) catches what this clock cannot.
#[derive(Debug)]
pub struct Lease {
    base: Instant,
    /// One more than the deadline's milliseconds after `base`; 0 once revoked.
    until: AtomicU64,
}

impl Lease {
    /// A lease held until `until`.
    pub fn new(until: Instant) -> Self {
        let lease = Self {
            base: Instant::now(),
            until: AtomicU64::new(0),
        };
        lease.extend(until);
        lease
    }

    /// Holds the lease until `until`, if later than now.
    pub fn extend(&self, until: Instant) {
        let ms = until.saturating_duration_since(self.base).as_millis() as u64;
        self.until.fetch_max(ms + 1, Ordering::SeqCst);
    }

    /// The lease is lost: nothing more is appended under it.
    pub fn revoke(&self) {
        self.until.store(0, Ordering::SeqCst);
    }

    /// Whether the lease is still surely held.
    pub fn held(&self) -> bool {
        let until = self.until.load(Ordering::SeqCst);
        until > 0 && self.base + Duration::from_millis(until - 1) > Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_held_until_its_deadline_and_never_after_a_revocation() {
        let lease = Lease::new(Instant::now() + Duration::from_secs(60));
        assert!(lease.held());
        lease.extend(Instant::now());
        assert!(
            lease.held(),
            "an earlier deadline does not shorten the lease"
        );
        lease.revoke();
        assert!(!lease.held());
        let lapsed = Lease::new(Instant::now());
        assert!(!lapsed.held());
    }
}
