//! The engine role (`laurel engine`): the evaluation engine as a process of its own, on
//! NATS, sharing the partitions with the other engines of the deployment.
//!
//! Engines of one deployment share the partitions through leases in the NATS KV bucket
//! `{STREAM_PREFIX}_LEASES`:
//! - each engine says it is alive under `member.<id>`, renewed every third of the TTL
//!   (`--lease-ttl-secs`); the bucket forgets every key the TTL after its last write, so a
//!   dead engine's keys vanish by themselves;
//! - each partition has a lease `partition.<p>`, created by the engine that takes it and
//!   renewed by it, each renewal conditional on the revision it wrote last (a lease that
//!   went elsewhere can never be renewed);
//! - every engine aims at its fair share of the partitions (the live members sorted by id:
//!   the first `partitions % members` take one more): below it, it takes free partitions;
//!   above it (an engine joined), it stops the extra workers, still renewing their leases
//!   until they have stopped, then deletes the leases for the others to take.
//!
//! A partition's worker starts from the partition's shared snapshot (the object store
//! `{STREAM_PREFIX}_SNAPSHOTS`, written at each hand-over and every
//! `--snapshot-interval-secs` by the partition's owner) or from this engine's data dir,
//! whichever is ahead, brings that state up to what OUTPUT holds (re-folding the STATS
//! events after it, silently), and folds on. Every append it makes is
//! fenced twice: by the lease's deadline on the engine's own clock (renewal sent + two
//! thirds of the TTL, so a stalled engine stops before its lease can expire), and by
//! JetStream, which refuses an append unless the partition's OUTPUT still ends where the
//! worker last saw it. A fenced worker stops; if its lease still holds (a stalled former
//! owner appended), it starts again through recovery, else the partition is gone.
//!
//! Definitions are loaded once and followed from DEFS, one compiled copy shared by all the
//! workers of the process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::shell::{EngineMetrics, Lease, Share, SharedDefs, ShellConfig, ShellError, Workers};
use laurel_log::Log;
use laurel_log::coord::{Blobs, CoordError, Leases};
use laurel_runtime::{Shutdown, Stopper, TaskFailed};
use tokio::task::JoinHandle;

/// How an engine runs.
#[derive(Debug, Clone)]
pub struct RoleConfig {
    /// How long a lease outlives its holder's last renewal: the longest a dead engine's
    /// partitions wait for another engine (at least 3 s).
    pub lease_ttl: Duration,
    /// How often the engine writes its state to disk.
    pub checkpoint_interval: Duration,
    /// Player states kept in memory, over all partitions.
    pub cached_players: usize,
    /// How often each partition's state is shared in the snapshot bucket, for the engine
    /// that takes the partition after a crash (a hand-over always shares it).
    pub snapshot_interval: Duration,
}

/// The engine role stopped.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// The leases or snapshots could not be opened (or the log is the embedded one).
    #[error(transparent)]
    Coord(#[from] CoordError),
    /// Loading the definitions failed.
    #[error("loading definitions: {0}")]
    Definitions(#[source] ShellError),
    /// A partition's worker failed otherwise than by losing its lease.
    #[error("engine partition {partition}: {source}")]
    Partition {
        /// The partition.
        partition: u32,
        /// Why.
        #[source]
        source: ShellError,
    },
}

/// A partition this engine holds.
struct Held {
    /// The lease's revision, as its renewer last wrote it.
    revision: Arc<AtomicU64>,
    lease: Arc<Lease>,
    stop: Arc<Stopper>,
    worker: JoinHandle<Result<(), ShellError>>,
    renewer: JoinHandle<()>,
    /// Being handed over: the worker was told to stop; the lease goes once it has.
    releasing: bool,
}

/// Runs the engine role until `shutdown` turns true: keeps this engine's fair share of the
/// partitions, folding each one it holds.
pub async fn run(
    log: Log,
    store: laurel_derived::Store,
    config: RoleConfig,
    metrics: Arc<EngineMetrics>,
    shutdown: Shutdown,
) -> Result<(), RoleError> {
    let ttl = config.lease_ttl.max(Duration::from_secs(3));
    let leases = log.leases(ttl).await?;
    let snapshots = log
        .blobs("SNAPSHOTS", "laurel engine partition snapshots")
        .await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let partitions = log.config().partitions;
    let shell_config = ShellConfig {
        persist_interval: config.checkpoint_interval,
        cache_players: (config.cached_players / partitions as usize).max(1),
        // This engine's own consumers: a partition's former owner may still have its own.
        consumer: format!("engine-{}", &id[..12]),
        ..ShellConfig::all(partitions)
    };
    let defs_consumer = format!("{}-defs", shell_config.consumer);
    let loaded = SharedDefs::load_retrying(&log, &defs_consumer, &shutdown).await;
    let Some(loaded) = loaded else {
        return Ok(());
    };
    let (defs, follower) = loaded.map_err(RoleError::Definitions)?;
    let following = tokio::spawn(follower.run(shutdown.clone()));
    let mut engine = Engine {
        leases,
        snapshots: snapshots.clone(),
        id: id.clone(),
        holder: format!("{id} (pid {} on {})", std::process::id(), hostname()),
        ttl,
        partitions,
        held: BTreeMap::new(),
        workers: Workers {
            log,
            db: store,
            defs,
            config: shell_config,
            metrics,
            share: Some(Share {
                every: config.snapshot_interval.max(Duration::from_secs(1)),
                sink: {
                    let snapshots = snapshots.clone();
                    Arc::new(move |p, blob| {
                        tokio::spawn(upload_snapshot(snapshots.clone(), p, blob, ttl));
                    })
                },
            }),
        },
        member_renewed: None,
    };
    tracing::info!(engine = %engine.holder, partitions, "engine ready: sharing the partitions");
    let result = engine.keep_share(&shutdown).await;
    engine.stop_all().await;
    following.abort();
    result
}

struct Engine {
    leases: Leases,
    /// Partition snapshots handed from engine to engine (`{STREAM_PREFIX}_SNAPSHOTS`).
    snapshots: Blobs,
    id: String,
    holder: String,
    ttl: Duration,
    partitions: u32,
    held: BTreeMap<u32, Held>,
    workers: Workers,
    member_renewed: Option<Instant>,
}

impl Engine {
    /// Every tick: says it is alive, collects stopped workers, and takes or hands over
    /// partitions toward its fair share. Leases are renewed beside, each by a task of its
    /// own, so a slow NATS answer here delays no renewal. Every request is bounded by a
    /// third of the TTL.
    async fn keep_share(&mut self, shutdown: &Shutdown) -> Result<(), RoleError> {
        let tick = (self.ttl / 10).max(Duration::from_millis(100));
        while !shutdown.is_stopping() {
            self.heartbeat().await;
            self.collect().await?;
            match tokio::time::timeout(self.ttl / 3, self.rebalance()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "reading the leases; trying again"),
                Err(_) => tracing::warn!("reading the leases timed out; trying again"),
            }
            tokio::select! {
                () = shutdown.wait() => {}
                () = tokio::time::sleep(tick) => {}
            }
        }
        Ok(())
    }

    fn member_key(&self) -> String {
        format!("member.{}", self.id)
    }

    async fn heartbeat(&mut self) {
        if self
            .member_renewed
            .is_some_and(|at| at.elapsed() < self.ttl / 3)
        {
            return;
        }
        let key = self.member_key();
        let put = self.leases.put(&key, &self.holder);
        match tokio::time::timeout(self.ttl / 3, put).await {
            Ok(Ok(_)) => self.member_renewed = Some(Instant::now()),
            Ok(Err(e)) => tracing::warn!(error = %e, "saying this engine is alive"),
            Err(_) => tracing::warn!("saying this engine is alive timed out"),
        }
    }

    /// Collects the workers that stopped: a handed-over partition's lease is deleted; a
    /// fenced worker whose lease still holds starts again (through recovery); a worker that
    /// failed otherwise fails the engine.
    async fn collect(&mut self) -> Result<(), RoleError> {
        let stopped: Vec<u32> = self
            .held
            .iter()
            .filter(|(_, h)| h.worker.is_finished())
            .map(|(&p, _)| p)
            .collect();
        for p in stopped {
            let mut held = self.held.remove(&p).expect("listed");
            let outcome = (&mut held.worker)
                .await
                .map_err(|e| {
                    ShellError::Task(TaskFailed {
                        task: "partition worker",
                        reason: e.to_string(),
                    })
                })
                .and_then(|r| r);
            let still_held = held.lease.held() && !held.stop.is_stopping();
            match outcome {
                Err(ShellError::Fenced(_)) if still_held => {
                    tracing::warn!(
                        partition = p,
                        "another engine appended to the partition; recovering it"
                    );
                    held.worker = self.spawn_worker(p, &held.lease, &held.stop);
                    self.held.insert(p, held);
                    continue;
                }
                Ok(()) if held.releasing && held.lease.held() => self.share_snapshot(p).await,
                Ok(()) if held.releasing => {}
                Ok(()) | Err(ShellError::Fenced(_)) => {
                    tracing::warn!(partition = p, "partition lost: its worker stopped");
                }
                Err(e) => {
                    held.renewer.abort();
                    self.release(p, &held).await;
                    return Err(RoleError::Partition {
                        partition: p,
                        source: e,
                    });
                }
            }
            held.renewer.abort();
            if held.lease.held() {
                self.release(p, &held).await;
            }
        }
        Ok(())
    }

    /// The live engines' ids, this one's included: the `member.` keys not deleted.
    async fn members(&self) -> Result<BTreeSet<String>, CoordError> {
        let mut members: BTreeSet<String> = self
            .leases
            .held_under("member.")
            .await?
            .into_iter()
            .collect();
        members.insert(self.id.clone());
        Ok(members)
    }

    /// Takes free partitions below the fair share; hands over the extra ones above it.
    async fn rebalance(&mut self) -> Result<(), CoordError> {
        let members = self.members().await?;
        let rank = members
            .iter()
            .position(|m| *m == self.id)
            .expect("inserted") as u32;
        let count = members.len() as u32;
        let share = self.partitions / count + u32::from(rank < self.partitions % count);
        let keeping: Vec<u32> = self
            .held
            .iter()
            .filter(|(_, h)| !h.releasing)
            .map(|(&p, _)| p)
            .collect();
        if keeping.len() as u32 > share {
            for &p in keeping.iter().rev().take(keeping.len() - share as usize) {
                tracing::info!(partition = p, engines = count, "handing the partition over");
                let held = self.held.get_mut(&p).expect("held");
                held.releasing = true;
                held.stop.stop();
            }
            return Ok(());
        }
        let mut wanted = share as usize - keeping.len();
        // Each engine looks from its own place, so engines starting together rarely race.
        let offset = rank * self.partitions / count;
        for i in 0..self.partitions {
            let p = (offset + i) % self.partitions;
            if wanted == 0 {
                break;
            }
            if self.held.contains_key(&p) || self.leases.is_held(&partition_key(p)).await? {
                continue;
            }
            let sent = Instant::now();
            match self.leases.create(&partition_key(p), &self.holder).await {
                Ok(revision) => {
                    tracing::info!(partition = p, engines = count, "took the partition");
                    self.take(p, revision, sent);
                    wanted -= 1;
                }
                Err(CoordError::Taken(_)) => {}
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "taking a partition");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Starts folding a partition whose lease this engine just wrote (at `sent`).
    fn take(&mut self, p: u32, revision: u64, sent: Instant) {
        let lease = Arc::new(Lease::new(sent + self.ttl * 2 / 3));
        let stop = Arc::new(Stopper::new().0);
        let revision = Arc::new(AtomicU64::new(revision));
        let renewer = tokio::spawn(renew(
            self.leases.clone(),
            partition_key(p),
            self.holder.clone(),
            self.ttl,
            revision.clone(),
            lease.clone(),
            stop.clone(),
        ));
        let worker = self.spawn_worker(p, &lease, &stop);
        self.held.insert(
            p,
            Held {
                revision,
                lease,
                stop,
                worker,
                renewer,
                releasing: false,
            },
        );
    }

    /// Runs partition `p`'s worker, first taking the partition's shared snapshot when it is
    /// ahead of this engine's own state.
    fn spawn_worker(
        &self,
        p: u32,
        lease: &Arc<Lease>,
        stop: &Stopper,
    ) -> JoinHandle<Result<(), ShellError>> {
        let (workers, snapshots, ttl) = (self.workers.clone(), self.snapshots.clone(), self.ttl);
        let (lease, stop) = (lease.clone(), stop.shutdown());
        tokio::spawn(async move {
            // Two tries: a NATS node that just died may hold up the first.
            let name = snapshot_name(p);
            let mut fetched = tokio::time::timeout(ttl, snapshots.get(&name)).await;
            if !matches!(fetched, Ok(Ok(_))) {
                fetched = tokio::time::timeout(ttl, snapshots.get(&name)).await;
            }
            match fetched {
                Ok(Ok(Some(blob))) => {
                    let imported = {
                        let workers = workers.clone();
                        laurel_runtime::blocking(move || workers.import(p, &blob)).await
                    };
                    match imported {
                        Ok(Some(position)) => tracing::info!(
                            partition = p,
                            position,
                            "restored the partition from its shared snapshot"
                        ),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(partition = p, error = %e, "a shared snapshot was not taken")
                        }
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(partition = p, error = %e, "reading a shared snapshot")
                }
                Err(_) => tracing::warn!(partition = p, "reading a shared snapshot timed out"),
            }
            workers.run_partition(p, lease, stop).await
        })
    }

    /// Shares partition `p`'s stored state, after its worker stopped, for the engine that
    /// takes the partition next.
    async fn share_snapshot(&self, p: u32) {
        let workers = self.workers.clone();
        let blob = match laurel_runtime::blocking(move || workers.export(p)).await {
            Ok(blob) => blob,
            Err(e) => return tracing::warn!(partition = p, error = %e, "exporting a snapshot"),
        };
        upload_snapshot(self.snapshots.clone(), p, blob, self.ttl).await;
    }

    /// Deletes a lease this engine still holds, for another engine to take at once.
    async fn release(&self, p: u32, held: &Held) {
        let revision = held.revision.load(Ordering::SeqCst);
        let key = partition_key(p);
        let delete = self.leases.release(&key, Some(revision));
        match tokio::time::timeout(self.ttl / 3, delete).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(partition = p, error = %e, "releasing a lease"),
            Err(_) => tracing::warn!(partition = p, "releasing a lease timed out"),
        }
    }

    /// Stops every worker (each stores its state), then hands every lease over.
    async fn stop_all(&mut self) {
        for held in self.held.values() {
            held.stop.stop();
        }
        for (p, held) in std::mem::take(&mut self.held) {
            let outcome = held.worker.await;
            if matches!(outcome, Ok(Ok(()))) && held.lease.held() {
                self.share_snapshot(p).await;
            }
            held.renewer.abort();
            if held.lease.held() {
                let revision = held.revision.load(Ordering::SeqCst);
                if let Err(e) = self.leases.release(&partition_key(p), Some(revision)).await {
                    tracing::warn!(partition = p, error = %e, "releasing a lease");
                }
            }
            if let Ok(Err(e)) = outcome {
                tracing::warn!(partition = p, error = %e, "engine partition stopped");
            }
        }
        if let Err(e) = self.leases.release(&self.member_key(), None).await {
            tracing::warn!(error = %e, "leaving the engines");
        }
        tracing::info!("engine stopped");
    }
}

/// Renews a partition's lease every third of `ttl`, each time on the revision written last;
/// extends `lease` from when each renewal was sent. When the lease went to another engine,
/// or no renewal succeeded for two thirds of the TTL (another engine may hold it by the
/// time this one would notice), revokes `lease` and stops the worker.
async fn renew(
    leases: Leases,
    key: String,
    holder: String,
    ttl: Duration,
    revision: Arc<AtomicU64>,
    lease: Arc<Lease>,
    stop: Arc<Stopper>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let sent = Instant::now();
        let update = leases.renew(&key, &holder, revision.load(Ordering::SeqCst));
        match tokio::time::timeout(ttl / 3, update).await {
            Ok(Ok(next)) => {
                revision.store(next, Ordering::SeqCst);
                lease.extend(sent + ttl * 2 / 3);
                renewed = sent;
                continue;
            }
            Ok(Err(CoordError::Lost(_))) => {
                tracing::error!(lease = key, "the lease went to another engine");
            }
            other => {
                tracing::warn!(lease = key, outcome = ?other.err(), "renewing a lease failed; trying again");
                if renewed.elapsed() < ttl * 2 / 3 {
                    continue;
                }
            }
        }
        lease.revoke();
        stop.stop();
        return;
    }
}

/// Shares partition `p`'s state (`blob`) in the snapshot bucket, within `ttl`.
async fn upload_snapshot(snapshots: Blobs, p: u32, blob: Vec<u8>, ttl: Duration) {
    let size = blob.len();
    match tokio::time::timeout(ttl, snapshots.put(&snapshot_name(p), &blob)).await {
        Ok(Ok(())) => tracing::info!(
            partition = p,
            bytes = size,
            "shared the partition's snapshot"
        ),
        Ok(Err(e)) => tracing::warn!(partition = p, error = %e, "sharing a snapshot"),
        Err(_) => tracing::warn!(partition = p, "sharing a snapshot timed out"),
    }
}

fn partition_key(p: u32) -> String {
    format!("partition.{p}")
}

fn snapshot_name(p: u32) -> String {
    format!("partition-{p}")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into())
}
