//! `laurel rebuild`: engine state and views rebuilt from the logs, for a data dir whose
//! derived stores are damaged (or suspected to be). The logs are the truth: the engine state
//! and views are dropped and folded again by the same engine and projector that `serve`
//! runs (the engine recovers silently what OUTPUT already holds, so nothing is emitted
//! twice), until the views hold every STATS entry there was when the rebuild began. Laurel
//! must not be running on this data dir meanwhile.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use laurel_derived::Store;
use laurel_engine::shell::{self, EngineMetrics, SharedDefs, ShellConfig};
use laurel_log::{LogError, StreamKind};
use laurel_projections::{ProjectorConfig, Views};
use laurel_runtime::{Stopper, Supervisor};

use super::serve::LogArgs;

/// `laurel rebuild`.
#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,
}

/// Drops the derived store at `path` (after checking no process holds it).
fn drop_store(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match Store::check_unused(path) {
        Ok(()) => {}
        Err(laurel_derived::StoreError::InUse(_)) => {
            bail!(
                "{} is in use: stop Laurel before rebuilding",
                path.display()
            )
        }
        // Damaged: what the rebuild is for.
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "dropping an unreadable store")
        }
    }
    std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    Ok(())
}

/// Rebuilds the data dir's engine state and views from the logs, showing progress.
pub async fn run(args: RebuildArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = &args.log.data_dir;
    let opened = match args.log.open().await {
        Err(e) if matches!(e.downcast_ref::<LogError>(), Some(LogError::Locked(_))) => {
            bail!(
                "the log in {} is in use: stop Laurel before rebuilding",
                data_dir.display()
            )
        }
        other => other?,
    };
    drop_store(&data_dir.join("engine"))?;
    drop_store(&data_dir.join("views"))?;
    let engine_db = Store::open_in(&opened, "engine").context("opening engine")?;
    let views_db = Store::open_in(&opened, "views").context("opening views")?;
    let log = opened.log;
    let views = Views::open(&views_db, &log)?;
    let partitions = log.config().partitions;
    let mut targets = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        targets.push(log.last_seq(StreamKind::Stats, p).await?);
    }
    let (stopper, shutdown) = Stopper::new();
    let (defs, follower) = SharedDefs::load(&log, "laurel-defs").await?;
    let mut tasks: Supervisor<anyhow::Error> = Supervisor::default();
    let following = follower.run(shutdown.clone());
    tasks.spawn("definitions follower", async move { Ok(following.await?) });
    let engine = shell::run(
        log.clone(),
        engine_db,
        defs,
        ShellConfig::all(partitions),
        Arc::new(EngineMetrics::default()),
        shutdown.clone(),
    );
    tasks.spawn("engine", async move { Ok(engine.await?) });
    let projector = laurel_projections::run(
        log.clone(),
        views.clone(),
        ProjectorConfig::all(partitions),
        shutdown.clone(),
    );
    tasks.spawn("projector", async move { Ok(projector.await?) });
    let running = tokio::spawn(tasks.join_all());
    let total: u64 = targets.iter().sum();
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "rebuild [{bar:30}] {pos}/{len} positions {per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut last_line = Instant::now();
    let done = || -> u64 {
        (0..partitions)
            .map(|p| views.checkpoint(p).min(targets[p as usize]))
            .sum()
    };
    loop {
        bar.set_position(done());
        if done() >= total {
            break;
        }
        if bar.is_hidden() && last_line.elapsed() >= Duration::from_secs(2) {
            eprintln!("rebuild: {}/{total} positions", done());
            last_line = Instant::now();
        }
        if running.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish();
    let reached = done();
    stopper.stop();
    running.await??;
    views_db.flush_async().await?;
    log.flush().await?;
    if reached < total {
        bail!("the rebuild stopped at {reached} of {total} positions");
    }
    let players: u64 = views.rarity()?.players;
    println!(
        "rebuilt engine state and views of {} from the log in {:.1} s: {total} STATS positions, {players} players",
        data_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
