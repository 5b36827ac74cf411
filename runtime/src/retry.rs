//! Waiting out a dependency that cannot be reached, without outliving a shutdown.

use std::time::Duration;

use crate::Shutdown;

/// The first wait between two attempts; it doubles after each failure.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Runs `attempt` until it succeeds, fails with an error `transient` does not accept, or
/// `shutdown` is given (then `None`). Between failed attempts it waits 100 ms, doubling up
/// to 2 s, and logs what it waits for.
pub async fn retrying<T, E, F>(
    shutdown: &Shutdown,
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let mut delay = FIRST_DELAY;
    loop {
        if shutdown.is_stopping() {
            return None;
        }
        let outcome = tokio::select! {
            () = shutdown.wait() => return None,
            outcome = attempt() => outcome,
        };
        match outcome {
            Err(e) if transient(&e) => {
                tracing::warn!(error = %e, "{what}: unavailable; retrying");
                tokio::select! {
                    () = shutdown.wait() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_DELAY);
            }
            done => return Some(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stopper;

    #[tokio::test(start_paused = true)]
    async fn tries_again_while_transient_and_stops_on_a_lasting_error_or_a_shutdown() {
        let shutdown = Shutdown::never();
        let mut tries = 0;
        let done = retrying(
            &shutdown,
            "t",
            |e: &&str| *e == "busy",
            || {
                tries += 1;
                let n = tries;
                async move { if n < 4 { Err("busy") } else { Ok(n) } }
            },
        )
        .await;
        assert_eq!(done, Some(Ok(4)));

        let lasting = retrying(
            &shutdown,
            "t",
            |e: &&str| *e == "busy",
            || async { Err::<(), _>("broken") },
        )
        .await;
        assert_eq!(lasting, Some(Err("broken")));

        let (stopper, shutdown) = Stopper::new();
        let waiting = tokio::spawn(async move {
            retrying(
                &shutdown,
                "t",
                |_: &&str| true,
                || async { Err::<(), _>("busy") },
            )
            .await
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        stopper.stop();
        assert_eq!(waiting.await.expect("joins"), None);
    }
}
