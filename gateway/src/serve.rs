//! `laurel serve`: gateway, engine and projections in one process.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use laurel_engine::shell::{self, EngineMetrics, SharedDefs, ShellConfig, ShellError};
use laurel_log::derived::Store;
use laurel_log::retry::retrying;
use laurel_log::seal::{DataKey, Sealer};
use laurel_log::{EmbeddedLog, Log, LogConfig, NatsLog};
use laurel_projections::{ProjectorConfig, Views};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{AuthConfig, Claims, JwksSource, RefetchPolicy};
use crate::metrics::Metrics;
use crate::notify::Hub;
use crate::state::{AppState, Limits};

/// Where the logs are and how they are laid out.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Directory for the embedded log, engine state and views.
    #[arg(long, env = "LAUREL_DATA_DIR", default_value = "./laurel-data")]
    pub data_dir: PathBuf,
    /// NATS server URLs, comma-separated (`nats://user:password@host:4222`,
    /// `nats://token@host:4222` for credentials); without them, the embedded log in the data
    /// dir is used.
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
    /// Prefix of the stream names and, lowercased, of their subjects (`LAUREL` gives
    /// `LAUREL_STATS` on `laurel.stats.*`): deployments with different prefixes share a NATS
    /// without seeing each other. Letters, digits, `_` and `-`.
    #[arg(long, env = "LAUREL_STREAM_PREFIX", default_value = "LAUREL", value_parser = stream_prefix)]
    pub stream_prefix: String,
    /// Largest number of entries a stream holds before appends are refused (503).
    #[arg(long, env = "LAUREL_MAX_ENTRIES")]
    pub max_entries: Option<u64>,
    /// The CA certificate (PEM) that signed the NATS servers' certificates: TLS to NATS
    /// (as `tls://` URLs also ask), never plain text instead.
    #[arg(long, env = "LAUREL_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// A client certificate (PEM) for NATS servers that verify clients (mutual TLS).
    #[arg(long, env = "LAUREL_NATS_CERT", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, env = "LAUREL_NATS_KEY", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
    /// The data key (32 bytes: raw, base64 or hex; e.g. `openssl rand -base64 32`): encrypts
    /// everything written to the data dir (embedded log, engine state, views). An encrypted
    /// data dir does not open without it.
    #[arg(long, env = "LAUREL_DATA_KEY_FILE")]
    pub data_key_file: Option<PathBuf>,
    /// The previous data key, while rotating: the data dir is rewrapped to `--data-key-file`
    /// at start, after which this key no longer opens it.
    #[arg(long, env = "LAUREL_DATA_OLD_KEY_FILE", requires = "data_key_file")]
    pub data_old_key_file: Option<PathBuf>,
}

/// A stream prefix: a NATS stream name's start and, lowercased, a subject token.
fn stream_prefix(value: &str) -> Result<String, String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if value.is_empty() || value.len() > 32 || !value.chars().all(fits) {
        return Err("1 to 32 letters, digits, `_` or `-`".into());
    }
    Ok(value.to_string())
}

/// An opened log, and what seals the data dir's derived state.
pub struct Opened {
    /// The log.
    pub log: Log,
    /// The data dir's sealer, when it is encrypted.
    pub seal: Option<Arc<Sealer>>,
    data_dir: PathBuf,
}

impl Opened {
    /// The derived-state store `name` in the data dir (engine state, views), sealed as the
    /// data dir is.
    pub fn store(&self, name: &str) -> anyhow::Result<Store> {
        let db =
            open_store(&self.data_dir.join(name)).with_context(|| format!("opening {name}"))?;
        Ok(Store::new(db, self.seal.clone()))
    }
}

impl LogArgs {
    /// The data dir's sealer: `None` in clear; refused when the keys given do not open it.
    fn unlock(&self) -> anyhow::Result<Option<Arc<Sealer>>> {
        let key = self
            .data_key_file
            .as_deref()
            .map(DataKey::from_file)
            .transpose()?;
        let old = self
            .data_old_key_file
            .as_deref()
            .map(DataKey::from_file)
            .transpose()?;
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        let seal = laurel_log::seal::unlock(&self.data_dir, key.as_ref(), old.as_slice())?;
        Ok(seal.map(Arc::new))
    }

    /// Opens the log these arguments name, and the data dir's sealer.
    pub async fn open(&self) -> anyhow::Result<Opened> {
        let seal = self.unlock()?;
        let log = self.open_log(seal.clone()).await?;
        Ok(Opened {
            log,
            seal,
            data_dir: self.data_dir.clone(),
        })
    }

    async fn open_log(&self, seal: Option<Arc<Sealer>>) -> anyhow::Result<Log> {
        let config = LogConfig {
            partitions: self.partitions,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            stream_prefix: self.stream_prefix.clone(),
            subject_prefix: self.stream_prefix.to_lowercase(),
            replicas: self.replicas,
            max_entries: self.max_entries,
        };
        Ok(match &self.nats {
            Some(url) => {
                let tls = laurel_log::NatsTls {
                    ca: self.nats_ca.clone(),
                    cert: self.nats_cert.clone(),
                    key: self.nats_key.clone(),
                };
                Log::Nats(
                    NatsLog::connect_with(url, config, &tls)
                        .await
                        .with_context(|| format!("connecting to {url}"))?,
                )
            }
            None => Log::Embedded(EmbeddedLog::open_sealed(
                &self.data_dir.join("log"),
                config,
                seal,
            )?),
        })
    }
}

/// How tokens are checked.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// JSON Web Key Set file with the RS256, ES256 or EdDSA public keys of the identity
    /// provider, read at start.
    #[arg(long, env = "LAUREL_JWKS_FILE", conflicts_with = "jwks_url")]
    pub jwks_file: Option<PathBuf>,
    /// JSON Web Key Set URL (for Cognito:
    /// `https://cognito-idp.REGION.amazonaws.com/POOL_ID/.well-known/jwks.json`), cached and
    /// fetched again when a token names an unknown key.
    #[arg(long, env = "LAUREL_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Shortest time between two fetches of `--jwks-url`, in seconds.
    #[arg(long, env = "LAUREL_JWKS_MIN_REFETCH_SECS", default_value_t = 30)]
    pub jwks_min_refetch_secs: u64,
    /// HS256 shared secret (development only). With no key configured at all, the data dir's
    /// dev key is used (and created).
    #[arg(long, env = "LAUREL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Required `iss` claim.
    #[arg(long, env = "LAUREL_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "LAUREL_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Required `client_id` claim, with `token_use` `access` (Amazon Cognito access tokens,
    /// which carry no `aud`).
    #[arg(long, env = "LAUREL_JWT_CLIENT_ID")]
    pub jwt_client_id: Option<String>,
    /// The claim naming the player.
    #[arg(long, env = "LAUREL_SUBJECT_CLAIM", default_value = "sub")]
    pub subject_claim: String,
}

impl AuthArgs {
    /// Builds the token checks; with no key configured, the data dir's dev key (created if
    /// missing).
    pub async fn config(&self, data_dir: &Path) -> anyhow::Result<AuthConfig> {
        let claims = Claims {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            client_id: self.jwt_client_id.clone(),
            subject_claim: self.subject_claim.clone(),
        };
        let source = match (&self.jwks_file, &self.jwks_url) {
            (Some(path), _) => Some(JwksSource::File(path.clone())),
            (None, Some(url)) => Some(JwksSource::Url(url.clone())),
            (None, None) => None,
        };
        let secret = self.jwt_secret.as_ref().map(|s| s.as_bytes().to_vec());
        Ok(match source {
            Some(source) => {
                let policy = RefetchPolicy {
                    min_interval: Duration::from_secs(self.jwks_min_refetch_secs),
                    ..RefetchPolicy::default()
                };
                AuthConfig::with_jwks(source, policy, secret.as_deref(), claims)
                    .await
                    .context("loading the JSON Web Key Set")?
            }
            None => {
                let secret = match secret {
                    Some(secret) => secret,
                    None => dev_key(data_dir, true)?,
                };
                AuthConfig::hs256(&secret, claims)
            }
        })
    }
}

/// Request limits.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest request body in bytes (413 past it).
    #[arg(long, env = "LAUREL_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most events in one ingest batch (413 past it).
    #[arg(long, env = "LAUREL_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,
    /// Events a player token may send per minute, sustained (429 past it); 0 turns the
    /// limit off. Server and admin tokens are not limited.
    #[arg(long, env = "LAUREL_PLAYER_EVENTS_PER_MINUTE", default_value_t = 6000)]
    pub player_events_per_minute: u32,
    /// Events a player token may send at once before the per-minute rate applies (at least
    /// `--max-batch`).
    #[arg(long, env = "LAUREL_PLAYER_EVENTS_BURST", default_value_t = 2000)]
    pub player_events_burst: u32,
    /// Longest `?wait_for=` wait of a read, in milliseconds.
    #[arg(long, env = "LAUREL_MAX_WAIT_MS", default_value_t = 5000)]
    pub max_wait_ms: u64,
    /// Longest time, in seconds, a request body may take to arrive (408 past it).
    #[arg(long, env = "LAUREL_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Longest time, in seconds, to receive a request's headers, counted from when the
    /// connection is ready for the next request: closes slow senders and idle keep-alive
    /// connections alike.
    #[arg(long, env = "LAUREL_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    pub header_timeout_secs: u64,
    /// Live notification streams one player may have open at once (429 past it).
    #[arg(long, env = "LAUREL_MAX_STREAMS_PER_PLAYER", default_value_t = 8)]
    pub max_streams_per_player: usize,
    /// Grants a replay's apply appends per second, at most: a rebalancing that grants
    /// millions does not crowd out live traffic.
    #[arg(
        long,
        env = "LAUREL_REPLAY_GRANTS_PER_SECOND",
        default_value_t = 20_000
    )]
    pub replay_grants_per_second: u32,
    /// Most HTTP connections open at once (live notification streams included); past it
    /// new connections are closed as soon as they are accepted.
    #[arg(long, env = "LAUREL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
}

impl LimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> Limits {
        let burst = self.player_events_burst.max(self.max_batch as u32).max(1);
        Limits {
            max_body: self.max_body_bytes,
            max_batch: self.max_batch,
            max_wait: Duration::from_millis(self.max_wait_ms),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            max_streams_per_player: self.max_streams_per_player.max(1),
            replay_grants_per_second: self.replay_grants_per_second.max(1),
            player_events_per_minute: NonZeroU32::new(self.player_events_per_minute),
            player_events_burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// The AWS GameKit drop-in (docs/gamekit.md).
#[derive(Debug, Clone, Args)]
pub struct GameKitArgs {
    /// The path GameKit's achievements routes are served under: a game's achievements base
    /// URL is this server's URL with it (`https://laurel.example.com/gamekit/achievements`).
    /// Empty: not served.
    #[arg(
        long,
        env = "LAUREL_GAMEKIT_BASE",
        default_value = "/gamekit/achievements"
    )]
    pub gamekit_base: String,
    /// The ID token claim naming the player on GameKit routes (GameKit's Cognito user
    /// pools put it in `custom:gk_user_id`).
    #[arg(
        long,
        env = "LAUREL_GAMEKIT_PLAYER_CLAIM",
        default_value = "custom:gk_user_id"
    )]
    pub gamekit_player_claim: String,
    /// A file of AWS key pairs (`ACCESS_KEY_ID SECRET_ACCESS_KEY` per line, owner-readable
    /// only) whose SigV4 signatures GameKit's admin routes take. Without it, every admin
    /// call is refused.
    #[arg(long, env = "LAUREL_GAMEKIT_ADMIN_KEYS")]
    pub gamekit_admin_keys: Option<PathBuf>,
}

impl GameKitArgs {
    /// The routes' settings (`None`: not served); paging tokens are signed with a key
    /// derived from `secret`.
    pub fn config(
        &self,
        secret: &[u8],
    ) -> anyhow::Result<Option<Arc<crate::gamekit::GameKitConfig>>> {
        let base = self.gamekit_base.trim().trim_end_matches('/');
        if base.is_empty() {
            return Ok(None);
        }
        let admin_keys = match &self.gamekit_admin_keys {
            None => crate::gamekit::SigV4Keys::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                crate::gamekit::SigV4Keys::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
        };
        Ok(Some(Arc::new(crate::gamekit::GameKitConfig {
            base: if base.starts_with('/') {
                base.to_string()
            } else {
                format!("/{base}")
            },
            player_claim: self.gamekit_player_claim.clone(),
            paging: crate::gamekit::PagingKey::derive(secret),
            admin_keys,
        })))
    }
}

/// HTTPS (SPEC 4b, docs/data-protection.md).
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// The certificate chain (PEM, leaf first): with `--tls-key`, serve HTTPS (TLS 1.2 and
    /// 1.3) instead of HTTP. The files are read again when they change.
    #[arg(long, env = "LAUREL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "LAUREL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often, in seconds, the certificate files are looked at for a renewal.
    #[arg(long, env = "LAUREL_TLS_RELOAD_SECS", default_value_t = 10)]
    pub tls_reload_secs: u64,
}

/// Achievement icons (SPEC 4b, docs/data-protection.md).
#[derive(Debug, Clone, Args)]
pub struct IconArgs {
    /// Where uploaded icons are kept: `dir:PATH`, `nats` (the JetStream object store
    /// `{STREAM_PREFIX}_ICONS`, so every gateway serves every icon) or `s3://BUCKET/PREFIX`
    /// (configured by the usual `AWS_*` variables). Default: `dir:` the data dir's `icons`.
    #[arg(long, env = "LAUREL_ICONS_STORE")]
    pub icons_store: Option<String>,
    /// Where players' clients fetch icons: a CDN in front of this server's `/v1/icons`
    /// (`https://cdn.example.com/v1/icons`); an icon's URL is this plus `/DIGEST`. Default:
    /// this server's `/v1/icons`.
    #[arg(long, env = "LAUREL_ICONS_BASE_URL")]
    pub icons_base_url: Option<String>,
    /// The side, in pixels, of the square every uploaded icon is redrawn to.
    #[arg(long, env = "LAUREL_ICON_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(16..=1024))]
    pub icon_size: u32,
    /// How long, in seconds, an icon no definition references is kept before it is
    /// removed.
    #[arg(long, env = "LAUREL_ICONS_GRACE_SECS", default_value_t = 86_400)]
    pub icons_grace_secs: u64,
    /// How often, in seconds, unreferenced icons are looked for.
    #[arg(long, env = "LAUREL_ICONS_COLLECT_EVERY_SECS", default_value_t = 3_600)]
    pub icons_collect_every_secs: u64,
}

impl IconArgs {
    /// Opens the icon store these flags name.
    pub async fn open(&self, data_dir: &Path, log: &Log) -> anyhow::Result<crate::icons::Icons> {
        let spec = match &self.icons_store {
            Some(spec) => spec.clone(),
            None => format!("dir:{}", data_dir.join("icons").display()),
        };
        let nats = match log {
            Log::Nats(l) => Some((
                l.jetstream(),
                l.config().stream_prefix.as_str(),
                l.config().replicas,
            )),
            Log::Embedded(_) => None,
        };
        let store = crate::icons::store::open(&spec, nats)
            .await
            .with_context(|| format!("opening the icon store {spec}"))?;
        let base_url = self
            .icons_base_url
            .as_deref()
            .map(|b| b.trim_end_matches('/').to_string())
            .filter(|b| !b.is_empty());
        Ok(crate::icons::Icons::new(store, self.icon_size, base_url))
    }
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
    #[command(flatten)]
    #[allow(missing_docs)]
    pub limits: LimitArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub gamekit: GameKitArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub icons: IconArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
    /// Longest time, in seconds, that a shutdown (SIGTERM, ctrl-c) waits for in-flight work
    /// before the process exits anyway; whatever was not stored is folded again on the next
    /// start.
    #[arg(long, env = "LAUREL_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
    /// How often, in milliseconds, the engine and the views write their state to disk. In
    /// between it lives in memory; after a crash the log since the last write is folded
    /// again, so this bounds the work of a recovery, never what can be lost.
    #[arg(long, env = "LAUREL_CHECKPOINT_INTERVAL_MS", default_value_t = 5000)]
    pub checkpoint_interval_ms: u64,
    /// Player states the engine keeps in memory, over all partitions; the others are read
    /// from disk when their player reports again.
    #[arg(long, env = "LAUREL_CACHED_PLAYERS", default_value_t = 100_000)]
    pub cached_players: usize,
    /// Fault injection for tests: hold each batch of definitions read from DEFS this many
    /// milliseconds before applying it, so that this process lags behind the log (as a
    /// gateway behind a load balancer may).
    #[arg(long, env = "LAUREL_DEFS_LAG_MS", default_value_t = 0, hide = true)]
    pub defs_lag_ms: u64,
}

/// The file holding the development signing key.
pub fn dev_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-signing-key")
}

/// Reads the data dir's development key, creating it if `create` and it is missing. The
/// file is readable by its owner only (one found readable by others is made so, with a
/// warning).
pub fn dev_key(data_dir: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
    let (key, created) = secret_file(&dev_key_path(data_dir), create)
        .with_context(|| format!("the dev key in {}", data_dir.display()))?;
    if created {
        tracing::warn!(path = %dev_key_path(data_dir).display(), "created a development signing key: use `laurel token` for tokens; configure real keys for production");
    }
    Ok(key)
}

/// The secret that signs GameKit paging tokens, created in the data dir when missing.
fn paging_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    Ok(secret_file(&data_dir.join("gamekit-paging-key"), true)?.0)
}

/// A random secret kept in a file readable by its owner only: read, or created if `create`
/// (and whether it was).
fn secret_file(path: &Path, create: bool) -> anyhow::Result<(Vec<u8>, bool)> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::read_to_string(path) {
        Ok(key) => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "a secret was readable by others; making it owner-only");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok((key.trim().as_bytes().to_vec(), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let bytes: [u8; 32] = rand::random();
            let key = crate::hex(&bytes);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(key.as_bytes())?;
            file.sync_all()?;
            Ok((key.into_bytes(), true))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// sled's page cache per derived store (engine state, views); sled's default is 1 GiB each.
const STORE_CACHE_BYTES: u64 = 64 << 20;

/// Opens a derived sled store with a bounded page cache.
pub(crate) fn open_store(path: &Path) -> Result<sled::Db, sled::Error> {
    sled::Config::new()
        .path(path)
        .cache_capacity(STORE_CACHE_BYTES)
        .open()
}

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// Gateway, engine and projections (`laurel serve`).
    All,
    /// The gateway with its own replica of the views, folded from OUTPUT and DEFS; the
    /// engine runs elsewhere (`laurel gateway`, on NATS).
    Gateway,
}

/// Runs gateway, engine and projections until `shutdown` turns true.
pub async fn run(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_roles(args, Roles::All, listener, shutdown).await
}

/// Runs `roles` until `shutdown` turns true.
pub async fn run_roles(
    args: ServeArgs,
    roles_run: Roles,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if roles_run == Roles::Gateway && args.log.nats.is_none() {
        anyhow::bail!(
            "`laurel gateway` runs on NATS (--nats URLS), beside `laurel engine`; on the embedded log run `laurel serve`"
        );
    }
    let data_dir = &args.log.data_dir;
    let auth = args.auth.config(data_dir).await?;
    let opened = args.log.open().await?;
    let engine_db = match roles_run {
        Roles::All => Some(opened.store("engine")?),
        Roles::Gateway => None,
    };
    let views_db = opened.store("views")?;
    let log = opened.log;
    let partitions = log.config().partitions;
    let views = Views::open(&views_db, &log)?;
    let metrics = Arc::new(EngineMetrics::default());
    let mut roles = tokio::task::JoinSet::new();
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
    roles.spawn(async move {
        let done = following.await.map_err(anyhow::Error::from);
        ("definitions follower", done)
    });
    if let Some(engine_db) = engine_db {
        let engine = shell::run(
            log.clone(),
            engine_db,
            defs.clone(),
            ShellConfig {
                persist_interval: Duration::from_millis(args.checkpoint_interval_ms),
                cache_players: (args.cached_players / partitions as usize).max(1),
                ..ShellConfig::all(partitions)
            },
            metrics.clone(),
            shutdown.clone(),
        );
        roles.spawn(async move { ("engine", engine.await.map_err(anyhow::Error::from)) });
    }
    let mut projector_config = ProjectorConfig {
        flush_interval: Duration::from_millis(args.checkpoint_interval_ms),
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
    roles.spawn(async move { ("projector", projector.await.map_err(anyhow::Error::from)) });
    let limits = args.limits.limits();
    let player_quota = limits.player_quota();
    if let Some(quota) = player_quota.clone() {
        // Forget players whose quota is full again, so memory follows active players.
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tick.tick() => {
                        quota.retain_recent();
                        quota.shrink_to_fit();
                    }
                }
            }
        });
    }
    let icons = args.icons.open(data_dir, &log).await?;
    tokio::spawn(icons.clone().collect_every(
        defs.clone(),
        Duration::from_secs(args.icons.icons_grace_secs),
        Duration::from_secs(args.icons.icons_collect_every_secs.max(1)),
        shutdown.clone(),
    ));
    let hub = Hub::default();
    tokio::spawn(hub.clone().run(views.clone(), shutdown.clone()));
    let engine_metrics = (roles_run == Roles::All).then_some(metrics);
    let metrics = Metrics::new(engine_metrics, views.clone(), hub.clone());
    let state = AppState {
        log: log.clone(),
        views,
        defs,
        auth: Arc::new(auth),
        limits,
        player_quota,
        admin: Arc::new(tokio::sync::Mutex::new(())),
        replay: Arc::new(tokio::sync::Mutex::new(())),
        hub,
        metrics,
        shutdown: shutdown.clone(),
        icons,
        gamekit: args.gamekit.config(&paging_secret(data_dir)?)?,
    };
    let tls = match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(cert), Some(key)) => {
            let files = crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            let (acceptor, reloading) =
                crate::tls::acceptor(files).context("loading the TLS certificate")?;
            tokio::spawn(reloading.watch(
                Duration::from_secs(args.tls.tls_reload_secs.max(1)),
                shutdown.clone(),
            ));
            Some(acceptor)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let addr = listener.local_addr()?;
    let backend = if args.log.nats.is_some() {
        "nats"
    } else {
        "embedded"
    };
    tracing::info!(%addr, backend, data_dir = %data_dir.display(), "laurel ready on {scheme}://{addr}");
    let connections = crate::listen::ConnectionLimits {
        header_timeout: Duration::from_secs(args.limits.header_timeout_secs.max(1)),
        max_connections: args.limits.max_connections,
    };
    let server = crate::listen::serve(
        listener,
        crate::app(state),
        connections,
        tls,
        shutdown.clone(),
    );
    roles.spawn(async move { ("HTTP server", server.await.map_err(anyhow::Error::from)) });
    supervise(
        roles,
        shutdown,
        Duration::from_secs(args.shutdown_timeout_secs),
    )
    .await?;
    views_db.flush_async().await?;
    if let Log::Embedded(l) = &log {
        l.flush().await?;
    }
    tracing::info!("laurel stopped");
    Ok(())
}

/// Waits for the roles: until shutdown, one that ends is fatal (a supervisor restarts the
/// process, which recovers from the log); after it, they get `drain` to finish, and what is
/// still running then is left (it is folded again on the next start).
async fn supervise(
    mut roles: tokio::task::JoinSet<(&'static str, anyhow::Result<()>)>,
    shutdown: watch::Receiver<bool>,
    drain: Duration,
) -> anyhow::Result<()> {
    let mut stop = shutdown.clone();
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
            _ = stop.wait_for(|s| *s), if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + drain);
            }
            () = give_up => {
                tracing::warn!(
                    timeout_secs = drain.as_secs(),
                    "shutdown timed out; exiting with work in flight (it is folded again on the next start)"
                );
                return Ok(());
            }
            joined = roles.join_next() => match joined {
                None => return Ok(()),
                Some(Ok((_, Ok(())))) if *shutdown.borrow() => {}
                Some(Ok((role, Ok(())))) => anyhow::bail!("the {role} stopped unexpectedly"),
                Some(Ok((role, Err(e)))) => return Err(e.context(format!("the {role} failed"))),
                Some(Err(e)) => anyhow::bail!("a role's task failed: {e}"),
            },
        }
    }
}
