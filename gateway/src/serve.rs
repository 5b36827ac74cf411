//! `laurel serve`: gateway, engine and projections in one process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use laurel_engine::shell::{self, EngineMetrics, ShellConfig};
use laurel_log::{EmbeddedLog, Log, LogConfig, NatsLog};
use laurel_projections::{ProjectorConfig, Views};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::AuthConfig;
use crate::state::{AppState, Limits};

/// Where the logs are and how they are laid out.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Directory for the embedded log, engine state and views.
    #[arg(long, env = "LAUREL_DATA_DIR", default_value = "./laurel-data")]
    pub data_dir: PathBuf,
    /// NATS server URL; without it the embedded log in the data dir is used.
    #[arg(long, env = "LAUREL_NATS")]
    pub nats: Option<String>,
    /// Partitions of STATS and OUTPUT, fixed when the streams are created.
    #[arg(long, env = "LAUREL_PARTITIONS", default_value_t = 16)]
    pub partitions: u32,
    /// JetStream replicas of each stream (3 in production clusters).
    #[arg(long, env = "LAUREL_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// How long an event id is remembered for deduplication, in seconds.
    #[arg(long, env = "LAUREL_DUPLICATE_WINDOW_SECS", default_value_t = 120)]
    pub duplicate_window_secs: u64,
    /// Prefix of the stream names (`LAUREL` gives `LAUREL_STATS`).
    #[arg(long, env = "LAUREL_STREAM_PREFIX", default_value = "LAUREL")]
    pub stream_prefix: String,
    /// Largest number of entries a stream holds before appends are refused (503).
    #[arg(long, env = "LAUREL_MAX_ENTRIES")]
    pub max_entries: Option<u64>,
}

impl LogArgs {
    /// Opens the log these arguments name.
    pub async fn open(&self) -> anyhow::Result<Log> {
        let config = LogConfig {
            partitions: self.partitions,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            stream_prefix: self.stream_prefix.clone(),
            subject_prefix: "laurel".into(),
            replicas: self.replicas,
            max_entries: self.max_entries,
        };
        Ok(match &self.nats {
            Some(url) => Log::Nats(
                NatsLog::connect(url, config)
                    .await
                    .with_context(|| format!("connecting to {url}"))?,
            ),
            None => {
                std::fs::create_dir_all(&self.data_dir)?;
                Log::Embedded(EmbeddedLog::open(&self.data_dir.join("log"), config)?)
            }
        })
    }
}

/// How tokens are checked.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// HS256 shared secret (development only); without it, the data dir's dev key.
    #[arg(long, env = "LAUREL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Required `iss` claim.
    #[arg(long, env = "LAUREL_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "LAUREL_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The claim naming the player.
    #[arg(long, env = "LAUREL_SUBJECT_CLAIM", default_value = "sub")]
    pub subject_claim: String,
}

/// `laurel serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LAUREL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthArgs,
}

/// The file holding the development signing key.
pub fn dev_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-signing-key")
}

/// Reads the data dir's development key, creating it if `create` and it is missing.
pub fn dev_key(data_dir: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
    let path = dev_key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(key) => Ok(key.trim().as_bytes().to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            std::fs::create_dir_all(data_dir)?;
            let bytes: [u8; 32] = rand::random();
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(&path, &key)?;
            tracing::warn!(path = %path.display(), "created a development signing key: use `laurel token` for tokens; configure real keys for production");
            Ok(key.into_bytes())
        }
        Err(e) => Err(e).with_context(|| format!("reading the dev key at {}", path.display())),
    }
}

/// sled's page cache per derived store (engine state, views); sled's default is 1 GiB each.
const STORE_CACHE_BYTES: u64 = 128 << 20;

/// Opens a derived sled store with a bounded page cache.
fn open_store(path: &Path) -> Result<sled::Db, sled::Error> {
    sled::Config::new()
        .path(path)
        .cache_capacity(STORE_CACHE_BYTES)
        .open()
}

/// Runs gateway, engine and projections until `shutdown` turns true.
pub async fn run(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let data_dir = &args.log.data_dir;
    let secret = match &args.auth.jwt_secret {
        Some(s) => s.as_bytes().to_vec(),
        None => dev_key(data_dir, true)?,
    };
    let auth = AuthConfig::hs256(
        &secret,
        args.auth.jwt_issuer.as_deref(),
        args.auth.jwt_audience.as_deref(),
        &args.auth.subject_claim,
    );
    let log = args.log.open().await?;
    std::fs::create_dir_all(data_dir)?;
    let engine_db = open_store(&data_dir.join("engine")).context("opening engine state")?;
    let views_db = open_store(&data_dir.join("views")).context("opening views")?;
    let partitions = log.config().partitions;
    let views = Views::open(&views_db, partitions)?;
    let metrics = Arc::new(EngineMetrics::default());
    let engine = tokio::spawn(shell::run(
        log.clone(),
        engine_db,
        ShellConfig::all(partitions),
        metrics,
        shutdown.clone(),
    ));
    let projector = tokio::spawn(laurel_projections::run(
        log.clone(),
        views.clone(),
        ProjectorConfig::all(partitions),
        shutdown.clone(),
    ));
    let state = AppState {
        log: log.clone(),
        views,
        auth: Arc::new(auth),
        limits: Limits::default(),
        admin: Arc::new(tokio::sync::Mutex::new(())),
    };
    let addr = listener.local_addr()?;
    let backend = if args.log.nats.is_some() {
        "nats"
    } else {
        "embedded"
    };
    tracing::info!(%addr, backend, data_dir = %data_dir.display(), "laurel ready on http://{addr}");
    let mut stop = shutdown.clone();
    axum::serve(listener, crate::app(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    engine.await??;
    projector.await??;
    views_db.flush_async().await?;
    if let Log::Embedded(l) = &log {
        l.flush().await?;
    }
    tracing::info!("laurel stopped");
    Ok(())
}
