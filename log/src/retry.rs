//! Waiting out a log that cannot be reached, without outliving a shutdown.

use std::time::Duration;

use tokio::sync::watch;

/// Runs `attempt` until it succeeds, fails with an error `transient` does not accept, or
/// `shutdown` turns true (then `None`). Between failed attempts it waits 100 ms, doubling up
/// to 2 s, and logs what it waits for.
pub async fn retrying<T, E, F>(
    shutdown: &watch::Receiver<bool>,
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(100);
    let mut stop = shutdown.clone();
    loop {
        if *stop.borrow() {
            return None;
        }
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            outcome = attempt() => outcome,
        };
        match outcome {
            Err(e) if transient(&e) => {
                tracing::warn!(error = %e, "{what}: log unavailable; retrying");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return None,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            done => return Some(done),
        }
    }
}
