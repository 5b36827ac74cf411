//! `laurel engine`: the evaluation engine as a process of its own, on NATS.
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

use anyhow::{Context, bail};
use async_nats::jetstream::{kv, object_store};
use clap::Args;
use futures::TryStreamExt;
use laurel_engine::shell::{
    EngineMetrics, Lease, Share, SharedDefs, ShellConfig, ShellError, Workers,
};
use laurel_log::Log;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::serve::LogArgs;

/// `laurel engine`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,
    /// How long, in seconds, a lease outlives its holder's last renewal: the longest a
    /// dead engine's partitions wait for another engine.
    #[arg(long, env = "LAUREL_LEASE_TTL_SECS", default_value_t = 10)]
    pub lease_ttl_secs: u64,
    /// How often, in milliseconds, the engine writes its state to disk (see `serve`).
    #[arg(long, env = "LAUREL_CHECKPOINT_INTERVAL_MS", default_value_t = 5000)]
    pub checkpoint_interval_ms: u64,
    /// Player states kept in memory, over all partitions.
    #[arg(long, env = "LAUREL_CACHED_PLAYERS", default_value_t = 100_000)]
    pub cached_players: usize,
    /// How often, in seconds, each partition's state is shared in the object store
    /// `{STREAM_PREFIX}_SNAPSHOTS`, for the engine that takes the partition after a crash
    /// (a hand-over always shares it): bounds what that engine re-folds.
    #[arg(long, env = "LAUREL_SNAPSHOT_INTERVAL_SECS", default_value_t = 60)]
    pub snapshot_interval_secs: u64,
}

/// A partition this engine holds.
struct Held {
    /// The lease's revision, as its renewer last wrote it.
    revision: Arc<AtomicU64>,
    lease: Arc<Lease>,
    stop: Arc<watch::Sender<bool>>,
    worker: JoinHandle<Result<(), ShellError>>,
    renewer: JoinHandle<()>,
    /// Being handed over: the worker was told to stop; the lease goes once it has.
    releasing: bool,
}

/// Runs the engine role until `shutdown` turns true: keeps this engine's fair share of the
/// partitions, folding each one it holds.
pub async fn run(args: EngineArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    if args.log.nats.is_none() {
        bail!("`laurel engine` runs on NATS (--nats URLS); on the embedded log run `laurel serve`");
    }
    let ttl = Duration::from_secs(args.lease_ttl_secs.max(3));
    let opened = args.log.open().await?;
    let store = opened.store("engine")?;
    let Log::Nats(nats) = &opened.log else {
        bail!("`laurel engine` runs on NATS");
    };
    let config = nats.config();
    let leases = lease_bucket(
        nats.jetstream(),
        &config.stream_prefix,
        config.replicas,
        ttl,
    )
    .await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let partitions = config.partitions;
    let shell_config = ShellConfig {
        persist_interval: Duration::from_millis(args.checkpoint_interval_ms),
        cache_players: (args.cached_players / partitions as usize).max(1),
        // This engine's own consumers: a partition's former owner may still have its own.
        consumer: format!("engine-{}", &id[..12]),
        ..ShellConfig::all(partitions)
    };
    let log = opened.log.clone();
    let defs_consumer = format!("{}-defs", shell_config.consumer);
    let loaded = SharedDefs::load_retrying(&log, &defs_consumer, &shutdown).await;
    let Some(loaded) = loaded else {
        return Ok(());
    };
    let (defs, follower) = loaded.context("loading definitions")?;
    let following = tokio::spawn(follower.run(shutdown.clone()));
    let snapshots =
        snapshot_bucket(nats.jetstream(), &config.stream_prefix, config.replicas).await?;
    let mut engine = Engine {
        js: nats.jetstream().clone(),
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
            metrics: Arc::new(EngineMetrics::default()),
            share: Some(Share {
                every: Duration::from_secs(args.snapshot_interval_secs.max(1)),
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
    let result = engine.keep_share(shutdown.clone()).await;
    engine.stop_all().await;
    following.abort();
    result
}

struct Engine {
    js: async_nats::jetstream::Context,
    leases: kv::Store,
    /// Partition snapshots handed from engine to engine (`{STREAM_PREFIX}_SNAPSHOTS`).
    snapshots: object_store::ObjectStore,
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
    async fn keep_share(&mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let tick = (self.ttl / 10).max(Duration::from_millis(100));
        while !*shutdown.borrow() {
            self.heartbeat().await;
            self.collect().await?;
            match tokio::time::timeout(self.ttl / 3, self.rebalance()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "reading the leases; trying again"),
                Err(_) => tracing::warn!("reading the leases timed out; trying again"),
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
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
        let put = self
            .leases
            .put(self.member_key(), self.holder.clone().into());
        match tokio::time::timeout(self.ttl / 3, put).await {
            Ok(Ok(_)) => self.member_renewed = Some(Instant::now()),
            Ok(Err(e)) => tracing::warn!(error = %e, "saying this engine is alive"),
            Err(_) => tracing::warn!("saying this engine is alive timed out"),
        }
    }

    /// Collects the workers that stopped: a handed-over partition's lease is deleted; a
    /// fenced worker whose lease still holds starts again (through recovery); a worker that
    /// failed otherwise fails the engine.
    async fn collect(&mut self) -> anyhow::Result<()> {
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
                .map_err(|e| ShellError::Task(e.to_string()))
                .and_then(|r| r);
            let still_held = held.lease.held() && !*held.stop.borrow();
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
                    return Err(e).with_context(|| format!("engine partition {p}"));
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
    async fn members(&self) -> anyhow::Result<BTreeSet<String>> {
        let bucket = self.leases.name.clone();
        let stream = self.js.get_stream(format!("KV_{bucket}")).await?;
        let mut subjects = stream
            .info_with_subjects(format!("$KV.{bucket}.member.*"))
            .await?;
        let mut members = BTreeSet::from([self.id.clone()]);
        while let Some(subject) = subjects.try_next().await? {
            let key = subject.0.trim_start_matches(&format!("$KV.{bucket}."));
            if let Some(id) = key.strip_prefix("member.")
                && self.leases.get(key).await?.is_some()
            {
                members.insert(id.to_string());
            }
        }
        Ok(members)
    }

    /// Takes free partitions below the fair share; hands over the extra ones above it.
    async fn rebalance(&mut self) -> anyhow::Result<()> {
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
                held.stop.send_replace(true);
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
            if self.held.contains_key(&p) || self.leases.get(partition_key(p)).await?.is_some() {
                continue;
            }
            let sent = Instant::now();
            match self
                .leases
                .create(partition_key(p), self.holder.clone().into())
                .await
            {
                Ok(revision) => {
                    tracing::info!(partition = p, engines = count, "took the partition");
                    self.take(p, revision, sent);
                    wanted -= 1;
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
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
        let stop = Arc::new(watch::channel(false).0);
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
        stop: &watch::Sender<bool>,
    ) -> JoinHandle<Result<(), ShellError>> {
        let (workers, snapshots, ttl) = (self.workers.clone(), self.snapshots.clone(), self.ttl);
        let (lease, stop) = (lease.clone(), stop.subscribe());
        tokio::spawn(async move {
            // Two tries: a NATS node that just died may hold up the first.
            let mut fetched = tokio::time::timeout(ttl, fetch_snapshot(&snapshots, p)).await;
            if !matches!(fetched, Ok(Ok(_))) {
                fetched = tokio::time::timeout(ttl, fetch_snapshot(&snapshots, p)).await;
            }
            match fetched {
                Ok(Ok(Some(blob))) => {
                    let imported = {
                        let workers = workers.clone();
                        tokio::task::spawn_blocking(move || workers.import(p, &blob))
                            .await
                            .map_err(|e| ShellError::Task(e.to_string()))?
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
        let blob = match tokio::task::spawn_blocking(move || workers.export(p)).await {
            Ok(Ok(blob)) => blob,
            Ok(Err(e)) => return tracing::warn!(partition = p, error = %e, "exporting a snapshot"),
            Err(e) => return tracing::warn!(partition = p, error = %e, "exporting a snapshot"),
        };
        upload_snapshot(self.snapshots.clone(), p, blob, self.ttl).await;
    }

    /// Deletes a lease this engine still holds, for another engine to take at once.
    async fn release(&self, p: u32, held: &Held) {
        let revision = held.revision.load(Ordering::SeqCst);
        let delete = self
            .leases
            .delete_expect_revision(partition_key(p), Some(revision));
        match tokio::time::timeout(self.ttl / 3, delete).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(partition = p, error = %e, "releasing a lease"),
            Err(_) => tracing::warn!(partition = p, "releasing a lease timed out"),
        }
    }

    /// Stops every worker (each stores its state), then hands every lease over.
    async fn stop_all(&mut self) {
        for held in self.held.values() {
            held.stop.send_replace(true);
        }
        for (p, held) in std::mem::take(&mut self.held) {
            let outcome = held.worker.await;
            if matches!(outcome, Ok(Ok(()))) && held.lease.held() {
                self.share_snapshot(p).await;
            }
            held.renewer.abort();
            if held.lease.held() {
                let revision = held.revision.load(Ordering::SeqCst);
                if let Err(e) = self
                    .leases
                    .delete_expect_revision(partition_key(p), Some(revision))
                    .await
                {
                    tracing::warn!(partition = p, error = %e, "releasing a lease");
                }
            }
            if let Ok(Err(e)) = outcome {
                tracing::warn!(partition = p, error = %e, "engine partition stopped");
            }
        }
        if let Err(e) = self.leases.delete(self.member_key()).await {
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
    leases: kv::Store,
    key: String,
    holder: String,
    ttl: Duration,
    revision: Arc<AtomicU64>,
    lease: Arc<Lease>,
    stop: Arc<watch::Sender<bool>>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let sent = Instant::now();
        let update = leases.update(&key, holder.clone().into(), revision.load(Ordering::SeqCst));
        match tokio::time::timeout(ttl / 3, update).await {
            Ok(Ok(next)) => {
                revision.store(next, Ordering::SeqCst);
                lease.extend(sent + ttl * 2 / 3);
                renewed = sent;
                continue;
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
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
        stop.send_replace(true);
        return;
    }
}

/// Shares partition `p`'s state (`blob`) in the snapshot bucket, within `ttl`.
async fn upload_snapshot(
    snapshots: object_store::ObjectStore,
    p: u32,
    blob: Vec<u8>,
    ttl: Duration,
) {
    let size = blob.len();
    let put = async {
        let mut reader: &[u8] = &blob;
        snapshots.put(snapshot_name(p).as_str(), &mut reader).await
    };
    match tokio::time::timeout(ttl, put).await {
        Ok(Ok(_)) => tracing::info!(
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

/// The deployment's bucket of partition snapshots, created on first use.
async fn snapshot_bucket(
    js: &async_nats::jetstream::Context,
    prefix: &str,
    replicas: usize,
) -> anyhow::Result<object_store::ObjectStore> {
    let name = format!("{prefix}_SNAPSHOTS");
    if let Ok(bucket) = js.get_object_store(&name).await {
        return Ok(bucket);
    }
    js.create_object_store(object_store::Config {
        bucket: name.clone(),
        description: Some("laurel engine partition snapshots".into()),
        num_replicas: replicas.max(1),
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating the snapshot bucket {name}"))
}

/// Partition `p`'s shared snapshot, if one was shared.
async fn fetch_snapshot(
    snapshots: &object_store::ObjectStore,
    p: u32,
) -> anyhow::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut object = match snapshots.get(snapshot_name(p).as_str()).await {
        Ok(object) => object,
        Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut blob = Vec::with_capacity(object.info().size);
    object.read_to_end(&mut blob).await?;
    Ok(Some(blob))
}

/// The deployment's lease bucket, created on first use.
async fn lease_bucket(
    js: &async_nats::jetstream::Context,
    prefix: &str,
    replicas: usize,
    ttl: Duration,
) -> anyhow::Result<kv::Store> {
    let bucket = format!("{prefix}_LEASES");
    if let Ok(store) = js.get_key_value(&bucket).await {
        return Ok(store);
    }
    // The bucket's stream made directly: async-nats's `create_key_value` asks for settings
    // that nats-server 2.9 (Debian's) does not know.
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        description: Some("laurel leases".into()),
        max_messages_per_subject: 1,
        max_age: ttl,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: async_nats::jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating the lease bucket {bucket}"))?;
    js.get_key_value(&bucket)
        .await
        .with_context(|| format!("opening the lease bucket {bucket}"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into())
}
