//! Blocking work off the async runtime's threads.

/// Runs `work` on tokio's blocking pool and returns its result; a panic in `work` goes on in
/// the caller, as if it had run there.
pub async fn blocking<T, F>(work: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Blocking tasks are not cancelled; only a runtime shutting down drops one.
        Err(e) => panic!("blocking work was dropped: {e}"),
    }
}

/// Runs `work`, which blocks (on disk), in place, without holding up the other tasks of
/// this runtime thread: on a multi-thread runtime they move to another thread meanwhile.
/// For work that borrows from the caller; [`blocking`] for work that can move.
pub fn block_here<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn answers_what_the_work_returns_and_passes_panics_on() {
        let thread = std::thread::current().id();
        let elsewhere = super::blocking(move || std::thread::current().id() != thread).await;
        assert!(elsewhere);
        let panicked = tokio::spawn(super::blocking(|| panic!("boom"))).await;
        assert!(panicked.expect_err("panics").is_panic());
    }
}
