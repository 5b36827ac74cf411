//! The roles a process runs, put together from the crates that own them and supervised as
//! one: `serve` (gateway, engine and projections), `gateway` (with its own views) and
//! `engine` (leased partitions, on NATS).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use laurel_app::App;
use laurel_derived::Store;
use laurel_engine::shell::{self, EngineMetrics, SharedDefs, ShellConfig, ShellError};
use laurel_gateway::AppState;
use laurel_gateway::metrics::Metrics;
use laurel_gateway::notify::Hub;
use laurel_log::{Handoff, Log};
use laurel_projections::{ProjectorConfig, Views};
use laurel_runtime::{Shutdown, Stopped, Supervisor, retrying};
use tokio::net::TcpListener;

use crate::cli::keys::paging_secret;
use crate::cli::serve::{EngineArgs, ServeArgs};

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// Gateway, engine and projections (`laurel serve`).
    All,
    /// The gateway with its own replica of the views, folded from OUTPUT and DEFS; the
    /// engine runs elsewhere (`laurel gateway`, on NATS).
    Gateway,
}

/// Runs `roles_run` until `shutdown`.
pub async fn serve(
    args: ServeArgs,
    roles_run: Roles,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    if roles_run == Roles::Gateway && args.log.nats.is_none() {
        anyhow::bail!(
            "`laurel gateway` runs on NATS (--nats URLS), beside `laurel engine`; on the embedded log run `laurel serve`"
        );
    }
    // What the flags name is read before anything starts: a bad path stops the start with
    // one line naming it and its flag.
    args.log.make_data_dir()?;
    let data_dir = &args.log.data_dir;
    let auth = args.auth.config(data_dir).await?;
    let tls = match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(cert), Some(key)) => {
            let files = laurel_gateway::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            Some(
                laurel_gateway::tls::acceptor(files)
                    .context("the TLS certificate and key (--tls-cert, --tls-key)")?,
            )
        }
        _ => None,
    };
    let gamekit_config = args.gamekit.config(&paging_secret(data_dir)?)?;
    // Checked now, used when the router is made.
    laurel_gateway::cors::check(&args.cors_origins)
        .context("--cors-origins, LAUREL_CORS_ORIGINS")?;
    let opened = args.log.open().await?;
    let engine_db = match roles_run {
        Roles::All => Some(Store::open_in(&opened, "engine").context("opening engine")?),
        Roles::Gateway => None,
    };
    let views_db = Store::open_in(&opened, "views").context("opening views")?;
    let log = opened.log;
    let partitions = log.config().partitions;
    let views = Views::open(&views_db, &log)?;
    let icons = args.icons.open(data_dir, &log).await?;
    let metrics = Arc::new(EngineMetrics::default());
    let mut roles: Supervisor<anyhow::Error> = Supervisor::default();
    // One compiled copy of the definitions for the whole process, following DEFS.
    let loaded = retrying(
        &shutdown,
        "loading definitions",
        ShellError::is_transient,
        || SharedDefs::load(&log, "laurel-defs"),
    )
    .await;
    let Some(loaded) = loaded else {
        return Ok(());
    };
    let (defs, follower) = loaded.context("loading definitions")?;
    let following = follower
        .lagging(Duration::from_millis(args.defs_lag_ms))
        .run(shutdown.clone());
    roles.spawn("definitions follower", async move { Ok(following.await?) });
    // By default (`--handoff`), on JetStream, the gateway hands what it appends to STATS to the
    // engine beside it, and the engine what it appends to OUTPUT to the projector, each
    // applying it without waiting for the broker's delivery (two trips less on an unlock's
    // way to the player; see `laurel_log::follow`). The embedded log delivers in the
    // process already.
    let handing = args.handoff && engine_db.is_some() && matches!(log, Log::Nats(_));
    let stats_handoff = handing.then(|| Arc::new(Handoff::new(partitions)));
    let output_handoff = handing.then(|| Arc::new(Handoff::new(partitions)));
    if let Some(engine_db) = engine_db {
        let engine = shell::run(
            log.clone(),
            engine_db,
            defs.clone(),
            ShellConfig {
                persist_interval: Duration::from_millis(args.checkpoint_interval_ms),
                cache_players: (args.cached_players / partitions as usize).max(1),
                output_handoff: output_handoff.clone(),
                stats_handoff: stats_handoff.clone(),
                ..ShellConfig::all(partitions)
            },
            metrics.clone(),
            shutdown.clone(),
        );
        roles.spawn("engine", async move { Ok(engine.await?) });
    }
    let mut projector_config = ProjectorConfig {
        flush_interval: Duration::from_millis(args.checkpoint_interval_ms),
        handoff: output_handoff,
        ..ProjectorConfig::all(partitions)
    };
    if roles_run == Roles::Gateway {
        // Each gateway folds its own replica: a reader of its own on the server (the
        // positions it reads from are in its views).
        projector_config.consumer = format!("views-{}", uuid::Uuid::new_v4().simple());
    }
    let projector = laurel_projections::run(
        log.clone(),
        views.clone(),
        projector_config,
        shutdown.clone(),
    );
    roles.spawn("projector", async move { Ok(projector.await?) });
    let mut app = App::new(
        log.clone(),
        views.clone(),
        defs.clone(),
        args.limits.limits(),
        icons.clone(),
    );
    if let Some(handoff) = stats_handoff {
        app = app.handing_stats(handoff);
    }
    if let Some(quota) = app.player_quota.clone() {
        // Forget players whose quota is full again, so memory follows active players.
        let stop = shutdown.clone();
        roles.spawn("player quota", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = stop.wait() => return Ok(()),
                    _ = tick.tick() => {
                        quota.retain_recent();
                        quota.shrink_to_fit();
                    }
                }
            }
        });
    }
    // Community goals: told to every partition's engine once the total reaches them.
    let watching =
        laurel_app::community::watch(app.clone(), Duration::from_secs(1), shutdown.clone());
    roles.spawn("community goals", async move {
        watching.await;
        Ok(())
    });
    let collecting = icons.clone().collect_every(
        defs.clone(),
        Duration::from_secs(args.icons.icons_grace_secs),
        Duration::from_secs(args.icons.icons_collect_every_secs.max(1)),
        shutdown.clone(),
    );
    roles.spawn("icon collection", async move {
        collecting.await;
        Ok(())
    });
    let hub = Hub::default();
    let notifying = hub.clone().run(views.clone(), shutdown.clone());
    roles.spawn("notification hub", async move {
        notifying.await;
        Ok(())
    });
    let engine_metrics = (roles_run == Roles::All).then_some(metrics);
    let metrics = Metrics::new(engine_metrics, views.clone(), hub.clone());
    let auth = Arc::new(auth);
    let gamekit = gamekit_config.map(|config| {
        laurel_gamekit::router(laurel_gamekit::GameKit {
            app: app.clone(),
            auth: auth.clone(),
            config,
        })
    });
    let state = AppState {
        app,
        auth,
        hub,
        metrics,
        shutdown: shutdown.clone(),
    };
    let tls = tls.map(|(acceptor, reloading)| {
        let watching = reloading.watch(
            Duration::from_secs(args.tls.tls_reload_secs.max(1)),
            shutdown.clone(),
        );
        roles.spawn("TLS reload", async move {
            watching.await;
            Ok(())
        });
        acceptor
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let addr = listener.local_addr()?;
    let backend = if args.log.nats.is_some() {
        "nats"
    } else {
        "embedded"
    };
    tracing::info!(%addr, backend, data_dir = %data_dir.display(), "laurel ready on {scheme}://{addr}");
    let connections = laurel_gateway::listen::ConnectionLimits {
        header_timeout: Duration::from_secs(args.limits.header_timeout_secs.max(1)),
        max_connections: args.limits.max_connections,
    };
    let server = laurel_gateway::listen::serve(
        listener,
        laurel_gateway::cors::with_cors(laurel_gateway::app(state, gamekit), &args.cors_origins)?,
        connections,
        tls,
        shutdown.clone(),
    );
    roles.spawn("HTTP server", async move { Ok(server.await?) });
    roles
        .serve(&shutdown, Duration::from_secs(args.shutdown_timeout_secs))
        .await
        .map_err(|stopped| match stopped {
            Stopped::Failed { task, error } => error.context(format!("the {task} failed")),
            other => anyhow::anyhow!("{other}"),
        })?;
    views_db.flush_async().await?;
    log.flush().await?;
    tracing::info!("laurel stopped");
    Ok(())
}

/// Runs the engine role (`laurel engine`) until `shutdown`: keeps this engine's fair share
/// of the partitions, folding each one it holds; serves its metrics on `metrics`, if given.
pub async fn engine(
    args: EngineArgs,
    metrics: Option<TcpListener>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    if args.log.nats.is_none() {
        anyhow::bail!(
            "`laurel engine` runs on NATS (--nats URLS); on the embedded log run `laurel serve`"
        );
    }
    let opened = args.log.open().await?;
    let store = Store::open_in(&opened, "engine").context("opening engine")?;
    let engine_metrics = Arc::new(EngineMetrics::default());
    let mut roles = Supervisor::default();
    if let Some(listener) = metrics {
        tracing::info!(addr = %listener.local_addr()?, "engine metrics at /metrics");
        let served = serve_engine_metrics(listener, engine_metrics.clone(), shutdown.clone());
        roles.spawn("engine metrics", served);
    }
    let role = laurel_engine::role::run(opened.log, store, args.config(), engine_metrics, shutdown);
    roles.spawn("engine", async move { Ok(role.await?) });
    roles.join_all().await
}

/// `GET /metrics` (the engine's, in OpenMetrics text) and `GET /healthz` of an engine role.
async fn serve_engine_metrics(
    listener: TcpListener,
    metrics: Arc<EngineMetrics>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    use axum::http::header;
    let registry = Arc::new(laurel_gateway::metrics::EngineCollector::registry(metrics));
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || async move {
                let mut text = String::new();
                prometheus_client::encoding::text::encode(&mut text, &registry)
                    .expect("writing to a String does not fail");
                let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(header::CONTENT_TYPE, kind)], text)
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    Ok(())
}
