//! The tasks of a role, named, joined, and stopped together.

use std::time::Duration;

use tokio::task::JoinSet;

use crate::Shutdown;

/// A supervised task that panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("the {task} task failed: {reason}")]
pub struct TaskFailed {
    /// The task's name.
    pub task: &'static str,
    /// Its panic or cancellation, in words.
    pub reason: String,
}

/// The tasks of one role. Every task it spawns is joined by [`Supervisor::join_all`] or
/// [`Supervisor::serve`]; none is left running unseen.
pub struct Supervisor<E> {
    tasks: JoinSet<(&'static str, Result<(), E>)>,
    names: Vec<(tokio::task::Id, &'static str)>,
}

impl<E> Default for Supervisor<E> {
    fn default() -> Self {
        Self {
            tasks: JoinSet::new(),
            names: Vec::new(),
        }
    }
}

impl<E: Send + 'static> Supervisor<E> {
    /// Starts `task` under `name` (for logs and errors).
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let handle = self.tasks.spawn(async move { (name, task.await) });
        self.names.push((handle.id(), name));
    }

    /// How many tasks it was given.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether it was given no task.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn failed(&self, e: &tokio::task::JoinError) -> TaskFailed {
        let task = self
            .names
            .iter()
            .find(|(id, _)| *id == e.id())
            .map_or("unnamed", |(_, name)| name);
        TaskFailed {
            task,
            reason: e.to_string(),
        }
    }

    /// Waits for every task to end. The first that fails stops the others (they are
    /// aborted) and its error is the answer: workers of one role stand or fall together.
    pub async fn join_all(mut self) -> Result<(), E>
    where
        E: From<TaskFailed> + std::fmt::Display,
    {
        let mut result = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            let outcome = match joined {
                Ok((_, outcome)) => outcome,
                Err(e) => Err(E::from(self.failed(&e))),
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "a task failed; stopping the others");
                if result.is_ok() {
                    result = Err(e);
                }
                self.tasks.abort_all();
            }
        }
        result
    }
}

impl<E> Supervisor<E>
where
    E: std::fmt::Display + Send + 'static,
{
    /// Runs a process's roles: until `shutdown`, a task that ends at all is fatal (the
    /// process stops and a supervisor restarts it; it recovers from the log); once
    /// `shutdown` is given, the tasks get `drain` to finish, and whatever still runs then is
    /// left (it is done again on the next start).
    pub async fn serve(mut self, shutdown: &Shutdown, drain: Duration) -> Result<(), Stopped<E>> {
        let mut deadline = None;
        loop {
            let give_up = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = shutdown.wait(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + drain);
                }
                () = give_up => {
                    tracing::warn!(
                        timeout_secs = drain.as_secs(),
                        "shutdown timed out; exiting with work in flight (it is done again on the next start)"
                    );
                    return Ok(());
                }
                joined = self.tasks.join_next() => match joined {
                    None => return Ok(()),
                    Some(Ok((_, Ok(())))) if shutdown.is_stopping() => {}
                    Some(Ok((task, Ok(())))) => return Err(Stopped::Ended(task)),
                    Some(Ok((task, Err(error)))) => return Err(Stopped::Failed { task, error }),
                    Some(Err(e)) => return Err(Stopped::Panicked(self.failed(&e))),
                },
            }
        }
    }
}

/// Why [`Supervisor::serve`] stopped before a shutdown.
#[derive(Debug, thiserror::Error)]
pub enum Stopped<E: std::fmt::Display> {
    /// A task ended though no shutdown was asked for.
    #[error("the {0} stopped unexpectedly")]
    Ended(&'static str),
    /// A task failed.
    #[error("the {task} failed: {error}")]
    Failed {
        /// The task.
        task: &'static str,
        /// Its error.
        error: E,
    },
    /// A task panicked.
    #[error(transparent)]
    Panicked(TaskFailed),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stopper;

    #[derive(Debug, thiserror::Error)]
    enum Oops {
        #[error("oops")]
        Oops,
        #[error(transparent)]
        Task(#[from] TaskFailed),
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_failure_stops_the_others_and_is_the_answer() {
        let mut tasks = Supervisor::<Oops>::default();
        tasks.spawn("forever", async {
            std::future::pending::<()>().await;
            Ok(())
        });
        tasks.spawn("fails", async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err(Oops::Oops)
        });
        assert!(matches!(tasks.join_all().await, Err(Oops::Oops)));

        let mut tasks = Supervisor::<Oops>::default();
        tasks.spawn("panics", async { panic!("boom") });
        match tasks.join_all().await {
            Err(Oops::Task(failed)) => assert_eq!(failed.task, "panics"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn serving_a_task_that_ends_before_shutdown_is_fatal_and_after_it_drains() {
        let (stopper, shutdown) = Stopper::new();
        let mut tasks = Supervisor::<Oops>::default();
        tasks.spawn("server", async { Ok(()) });
        let stopped = tasks.serve(&shutdown, Duration::from_secs(1)).await;
        assert!(matches!(stopped, Err(Stopped::Ended("server"))));

        let mut tasks = Supervisor::<Oops>::default();
        let s = shutdown.clone();
        tasks.spawn("quick", async move {
            s.wait().await;
            Ok(())
        });
        tasks.spawn("stuck", async {
            std::future::pending::<()>().await;
            Ok(())
        });
        stopper.stop();
        let started = tokio::time::Instant::now();
        tasks
            .serve(&shutdown, Duration::from_secs(3))
            .await
            .expect("drains");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
