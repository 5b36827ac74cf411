//! `laurel engine`: the evaluation engine as a process of its own, on NATS.
//!
//! Engines of one deployment share the work through a lease in the NATS KV bucket
//! `{STREAM_PREFIX}_LEASES`: the engine holding key `engine` folds every partition; the
//! others wait as standbys and take over when the lease expires (`--lease-ttl-secs` after
//! the holder last renewed it, as when it was killed). The holder renews every third of the
//! TTL, each renewal conditional on the revision it last wrote, so a holder that lost the
//! lease can never renew it again; it stops folding at once. Folding is deterministic and
//! every output's id derives from its causes, so the short overlap a stalled holder may
//! have with its successor appends nothing twice (the dedup window drops the copies).
//!
//! A new holder restores its state from its own data dir and folds the log since (a standby
//! with an empty data dir folds the whole history silently first; see
//! docs/deploy.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::kv;
use clap::Args;
use laurel_engine::shell::{self, EngineMetrics, ShellConfig};
use laurel_log::Log;
use tokio::sync::watch;

use crate::serve::LogArgs;

/// The lease key of the engine role.
const ENGINE_LEASE: &str = "engine";

/// `laurel engine`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,
    /// How long, in seconds, the engine lease outlives its holder's last renewal: the
    /// longest a standby waits after the holder dies.
    #[arg(long, env = "LAUREL_LEASE_TTL_SECS", default_value_t = 10)]
    pub lease_ttl_secs: u64,
    /// How often, in milliseconds, the engine writes its state to disk (see `serve`).
    #[arg(long, env = "LAUREL_CHECKPOINT_INTERVAL_MS", default_value_t = 5000)]
    pub checkpoint_interval_ms: u64,
    /// Player states kept in memory, over all partitions.
    #[arg(long, env = "LAUREL_CACHED_PLAYERS", default_value_t = 100_000)]
    pub cached_players: usize,
}

/// Runs the engine role until `shutdown` turns true: waits for the lease, folds while it
/// holds it, and waits again when it loses it.
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
    let holder = format!(
        "pid {} on {} ({})",
        std::process::id(),
        hostname(),
        uuid::Uuid::new_v4().simple()
    );
    let partitions = config.partitions;
    let shell_config = ShellConfig {
        persist_interval: Duration::from_millis(args.checkpoint_interval_ms),
        cache_players: (args.cached_players / partitions as usize).max(1),
        ..ShellConfig::all(partitions)
    };
    tracing::info!(%holder, "engine ready: waiting for the engine lease");
    let mut stop = shutdown.clone();
    loop {
        let Some(revision) = acquire(&leases, &holder, ttl, &mut stop).await? else {
            return Ok(());
        };
        tracing::info!(%holder, "holding the engine lease: folding every partition");
        let (lost_tx, lost) = watch::channel(false);
        let held = Arc::new(AtomicU64::new(revision));
        let renewing = tokio::spawn(renew(
            leases.clone(),
            holder.clone(),
            held.clone(),
            ttl,
            lost_tx,
        ));
        // The engine stops on shutdown or when the lease is lost, whichever comes first.
        let (engine_stop, engine_shutdown) = watch::channel(false);
        let relay = {
            let (mut stop, mut lost) = (shutdown.clone(), lost.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    _ = lost.wait_for(|l| *l) => {}
                }
                engine_stop.send_replace(true);
            })
        };
        let result = shell::run_standalone(
            opened.log.clone(),
            store.clone(),
            shell_config.clone(),
            Arc::new(EngineMetrics::default()),
            engine_shutdown,
        )
        .await;
        relay.abort();
        renewing.abort();
        let still_held = !*lost.borrow();
        if still_held {
            // Handing over at once instead of after the TTL; a newer holder is left alone.
            let revision = held.load(Ordering::SeqCst);
            if let Err(e) = leases
                .delete_expect_revision(ENGINE_LEASE, Some(revision))
                .await
            {
                tracing::warn!(error = %e, "releasing the engine lease");
            }
        }
        result.context("engine")?;
        if *shutdown.borrow() {
            tracing::info!("engine stopped");
            return Ok(());
        }
        tracing::warn!(%holder, "lost the engine lease: folding stopped; waiting as a standby");
    }
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

/// Waits until this engine holds the lease (its revision), or `None` on shutdown.
async fn acquire(
    leases: &kv::Store,
    holder: &str,
    ttl: Duration,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<u64>> {
    let mut waiting_since = None;
    loop {
        match leases.create(ENGINE_LEASE, holder.to_string().into()).await {
            Ok(revision) => {
                if let Some(since) = waiting_since {
                    tracing::warn!(
                        waited_ms = Instant::now().duration_since(since).as_millis() as u64,
                        "took over the engine lease"
                    );
                }
                return Ok(Some(revision));
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                waiting_since.get_or_insert_with(Instant::now);
            }
            Err(e) => tracing::warn!(error = %e, "asking for the engine lease"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(None),
            () = tokio::time::sleep(ttl / 10) => {}
        }
    }
}

/// Renews the lease every third of `ttl`, each time on the revision written last (kept in
/// `held`); says
/// `lost` when a renewal fails or the lease would expire before one succeeds.
async fn renew(
    leases: kv::Store,
    holder: String,
    held: Arc<AtomicU64>,
    ttl: Duration,
    lost: watch::Sender<bool>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let attempt = tokio::time::timeout(
            ttl / 3,
            leases.update(
                ENGINE_LEASE,
                holder.clone().into(),
                held.load(Ordering::SeqCst),
            ),
        )
        .await;
        match attempt {
            Ok(Ok(next)) => {
                held.store(next, Ordering::SeqCst);
                renewed = Instant::now();
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                tracing::error!(error = %e, "the engine lease went to another engine");
                lost.send_replace(true);
                return;
            }
            other => {
                tracing::warn!(outcome = ?other.err(), "renewing the engine lease failed; trying again");
                // Stop before the lease can expire: past two thirds of the TTL without a
                // renewal, another engine may hold it by the time this one notices.
                if renewed.elapsed() >= ttl * 2 / 3 {
                    lost.send_replace(true);
                    return;
                }
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into())
}
