//! The flags of the roles (`laurel serve`, `gateway`, `engine`): each group turns into the
//! configuration of the crate that owns it.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use laurel_app::Limits;
use laurel_gateway::auth::{AuthConfig, Claims, JwksSource, RefetchPolicy};
use laurel_log::open::{Location, Opened};
use laurel_log::{Log, LogConfig, NatsTls};

use super::keys::DevKeyArgs;

/// Where the logs are and how they are laid out.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "The log")]
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
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_DUPLICATE_WINDOW_SECS",
        default_value_t = 120
    )]
    pub duplicate_window_secs: u64,
    /// Prefix of the stream names and, lowercased, of their subjects (`LAUREL` gives
    /// `LAUREL_STATS` on `laurel.stats.*`): deployments with different prefixes share a NATS
    /// without seeing each other. Letters, digits, `_` and `-`.
    #[arg(hide_short_help = true, long, env = "LAUREL_STREAM_PREFIX", default_value = "LAUREL", value_parser = stream_prefix)]
    pub stream_prefix: String,
    /// Largest number of entries a stream holds before appends are refused (503).
    #[arg(hide_short_help = true, long, env = "LAUREL_MAX_ENTRIES")]
    pub max_entries: Option<u64>,
    /// The CA certificate (PEM) that signed the NATS servers' certificates: TLS to NATS
    /// (as `tls://` URLs also ask), never plain text instead.
    #[arg(hide_short_help = true, long, env = "LAUREL_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// A client certificate (PEM) for NATS servers that verify clients (mutual TLS).
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_NATS_CERT",
        requires = "nats_key"
    )]
    pub nats_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_NATS_KEY",
        requires = "nats_cert"
    )]
    pub nats_key: Option<PathBuf>,
    /// The data key (32 bytes: raw, base64 or hex; e.g. `openssl rand -base64 32`): encrypts
    /// everything written to the data dir (embedded log, engine state, views). An encrypted
    /// data dir does not open without it.
    #[arg(long, env = "LAUREL_DATA_KEY_FILE")]
    pub data_key_file: Option<PathBuf>,
    /// The previous data key, while rotating: the data dir is rewrapped to `--data-key-file`
    /// at start, after which this key no longer opens it.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_DATA_OLD_KEY_FILE",
        requires = "data_key_file"
    )]
    pub data_old_key_file: Option<PathBuf>,
    /// MiB of block cache for each derived store (engine state, views), beside its
    /// in-memory table (4 MiB). More serves players not in the engine's memory faster.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_STORE_CACHE_MIB",
        default_value_t = laurel_log::open::STORE_CACHE_BYTES >> 20
    )]
    pub store_cache_mib: u64,
}

/// A stream prefix: a NATS stream name's start and, lowercased, a subject token.
fn stream_prefix(value: &str) -> Result<String, String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if value.is_empty() || value.len() > 32 || !value.chars().all(fits) {
        return Err("1 to 32 letters, digits, `_` or `-`".into());
    }
    Ok(value.to_string())
}

impl LogArgs {
    /// Where the log and the data dir are.
    pub fn location(&self) -> Location {
        Location {
            data_dir: self.data_dir.clone(),
            nats: self.nats.clone(),
            nats_tls: NatsTls {
                ca: self.nats_ca.clone(),
                cert: self.nats_cert.clone(),
                key: self.nats_key.clone(),
            },
            data_key_file: self.data_key_file.clone(),
            data_old_key_file: self.data_old_key_file.clone(),
            store_cache_bytes: Some(self.store_cache_mib << 20),
        }
    }

    /// How the streams are laid out.
    pub fn config(&self) -> LogConfig {
        LogConfig {
            partitions: self.partitions,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            stream_prefix: self.stream_prefix.clone(),
            subject_prefix: self.stream_prefix.to_lowercase(),
            replicas: self.replicas,
            max_entries: self.max_entries,
        }
    }

    /// Makes the data dir if it is missing; an error names the path and the flag.
    pub fn make_data_dir(&self) -> anyhow::Result<()> {
        let dir = &self.data_dir;
        let why = match std::fs::create_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(_) if dir.is_file() => "it is a file".to_string(),
            Err(e) => e.to_string(),
        };
        anyhow::bail!(
            "cannot use {} as the data dir (--data-dir, LAUREL_DATA_DIR): {why}",
            dir.display()
        )
    }

    /// Opens the log these arguments name, and the data dir's sealer; an error names the
    /// flag that set what failed.
    pub async fn open(&self) -> anyhow::Result<Opened> {
        self.make_data_dir()?;
        let flags = match (&self.nats, &self.data_key_file) {
            (Some(_), _) => "--nats, LAUREL_NATS",
            (None, Some(_)) => "--data-dir, --data-key-file",
            (None, None) => "--data-dir, LAUREL_DATA_DIR",
        };
        self.location()
            .open(self.config())
            .await
            .with_context(|| format!("the log ({flags})"))
    }
}

/// How tokens are checked.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tokens")]
pub struct AuthArgs {
    /// JSON Web Key Set file with the RS256, ES256 or EdDSA public keys of the identity
    /// provider, read at start.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_JWKS_FILE",
        conflicts_with = "jwks_url"
    )]
    pub jwks_file: Option<PathBuf>,
    /// JSON Web Key Set URL (for Cognito:
    /// `https://cognito-idp.REGION.amazonaws.com/POOL_ID/.well-known/jwks.json`), cached and
    /// fetched again when a token names an unknown key.
    #[arg(long, env = "LAUREL_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Shortest time between two fetches of `--jwks-url`, in seconds.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_JWKS_MIN_REFETCH_SECS",
        default_value_t = 30
    )]
    pub jwks_min_refetch_secs: u64,
    /// HS256 shared secret (development only). With no key configured at all, the dev key
    /// (`--dev-key-file`) is used, and created when missing.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub dev_key: DevKeyArgs,
    /// Required `iss` claim.
    #[arg(long, env = "LAUREL_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(hide_short_help = true, long, env = "LAUREL_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Required `client_id` claim, with `token_use` `access` (Amazon Cognito access tokens,
    /// which carry no `aud`).
    #[arg(hide_short_help = true, long, env = "LAUREL_JWT_CLIENT_ID")]
    pub jwt_client_id: Option<String>,
    /// The claim naming the player.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_SUBJECT_CLAIM",
        default_value = "sub"
    )]
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
                    .context("loading the JSON Web Key Set (--jwks-file, --jwks-url)")?
            }
            None => {
                let secret = match secret {
                    Some(secret) => secret,
                    None => self.dev_key.key(data_dir, true)?,
                };
                AuthConfig::hs256(&secret, claims)
            }
        })
    }
}

/// Request limits.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Largest request body in bytes (413 past it).
    #[arg(hide_short_help = true, long, env = "LAUREL_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most events in one ingest batch (413 past it).
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_MAX_BATCH",
        default_value_t = 1000
    )]
    pub max_batch: usize,
    /// Events a player token may send per minute, sustained (429 past it); 0 turns the
    /// limit off. Server and admin tokens are not limited.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_PLAYER_EVENTS_PER_MINUTE",
        default_value_t = 6000
    )]
    pub player_events_per_minute: u32,
    /// Events a player token may send at once before the per-minute rate applies (at least
    /// `--max-batch`).
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_PLAYER_EVENTS_BURST",
        default_value_t = 2000
    )]
    pub player_events_burst: u32,
    /// Longest `?wait_for=` wait of a read, in milliseconds.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_MAX_WAIT_MS",
        default_value_t = 5000
    )]
    pub max_wait_ms: u64,
    /// Longest time, in seconds, a request body may take to arrive (408 past it).
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_BODY_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub body_timeout_secs: u64,
    /// Longest time, in seconds, to receive a request's headers, counted from when the
    /// connection is ready for the next request: closes slow senders and idle keep-alive
    /// connections alike.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_HEADER_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub header_timeout_secs: u64,
    /// Live notification streams one player may have open at once (429 past it).
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_MAX_STREAMS_PER_PLAYER",
        default_value_t = 8
    )]
    pub max_streams_per_player: usize,
    /// Grants a replay's apply appends per second, at most: a rebalancing that grants
    /// millions does not crowd out live traffic.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_REPLAY_GRANTS_PER_SECOND",
        default_value_t = 20_000
    )]
    pub replay_grants_per_second: u32,
    /// Most HTTP connections open at once (live notification streams included); past it
    /// new connections are closed as soon as they are accepted.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,
    /// How far in the past an event's `ts` may lie when it counts (a game server's, or a
    /// player's own for a `client_time` stat): play recorded offline and sent later
    /// (`7d`, `36h`, `90m`; 422 naming `ts` past it).
    #[arg(hide_short_help = true, long, env = "LAUREL_MAX_EVENT_AGE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub max_event_age: Duration,
    /// Test players an admin may reset (`POST /v1/admin/players/{id}/reset`): patterns of
    /// player ids where `*` stands for any characters and `?` for one (`qa-*`,
    /// `*@test.example`), comma-separated or the flag given again. None by default: no
    /// player can be reset.
    #[arg(long, env = "LAUREL_TEST_PLAYERS", value_delimiter = ',')]
    pub test_players: Vec<String>,
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
            max_event_age: self.max_event_age,
            test_players: self.test_players.clone(),
        }
    }
}

/// The AWS GameKit drop-in (docs/gamekit.md).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "AWS GameKit drop-in")]
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
        hide_short_help = true,
        long,
        env = "LAUREL_GAMEKIT_PLAYER_CLAIM",
        default_value = "custom:gk_user_id"
    )]
    pub gamekit_player_claim: String,
    /// A file of AWS key pairs (`ACCESS_KEY_ID SECRET_ACCESS_KEY` per line, owner-readable
    /// only) whose SigV4 signatures GameKit's admin routes take. Without it, every admin
    /// call is refused.
    #[arg(hide_short_help = true, long, env = "LAUREL_GAMEKIT_ADMIN_KEYS")]
    pub gamekit_admin_keys: Option<PathBuf>,
}

impl GameKitArgs {
    /// The routes' settings (`None`: not served); paging tokens are signed with a key
    /// derived from `secret`.
    pub fn config(
        &self,
        secret: &[u8],
    ) -> anyhow::Result<Option<Arc<laurel_gamekit::GameKitConfig>>> {
        let base = self.gamekit_base.trim().trim_end_matches('/');
        if base.is_empty() {
            return Ok(None);
        }
        let admin_keys = match &self.gamekit_admin_keys {
            None => laurel_gamekit::SigV4Keys::default(),
            Some(path) => {
                let flag = "--gamekit-admin-keys, LAUREL_GAMEKIT_ADMIN_KEYS";
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {} ({flag})", path.display()))?;
                laurel_gamekit::SigV4Keys::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{} ({flag}): {e}", path.display()))?
            }
        };
        Ok(Some(Arc::new(laurel_gamekit::GameKitConfig {
            base: if base.starts_with('/') {
                base.to_string()
            } else {
                format!("/{base}")
            },
            player_claim: self.gamekit_player_claim.clone(),
            paging: laurel_gamekit::PagingKey::derive(secret),
            admin_keys,
        })))
    }
}

/// HTTPS (SPEC 4b, docs/data-protection.md).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTPS")]
pub struct TlsArgs {
    /// The certificate chain (PEM, leaf first): with `--tls-key`, serve HTTPS (TLS 1.2 and
    /// 1.3) instead of HTTP. The files are read again when they change.
    #[arg(long, env = "LAUREL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "LAUREL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often, in seconds, the certificate files are looked at for a renewal.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_TLS_RELOAD_SECS",
        default_value_t = 10
    )]
    pub tls_reload_secs: u64,
}

/// Achievement icons (SPEC 4b, docs/data-protection.md).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Icons")]
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
    #[arg(hide_short_help = true, long, env = "LAUREL_ICON_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(16..=1024))]
    pub icon_size: u32,
    /// How long, in seconds, an icon no definition references is kept before it is
    /// removed.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_ICONS_GRACE_SECS",
        default_value_t = 86_400
    )]
    pub icons_grace_secs: u64,
    /// How often, in seconds, unreferenced icons are looked for.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_ICONS_COLLECT_EVERY_SECS",
        default_value_t = 3_600
    )]
    pub icons_collect_every_secs: u64,
}

impl IconArgs {
    /// Opens the icon store these flags name.
    pub async fn open(
        &self,
        data_dir: &Path,
        log: &Log,
    ) -> anyhow::Result<laurel_app::icons::Icons> {
        let spec = match &self.icons_store {
            Some(spec) => spec.clone(),
            None => format!("dir:{}", data_dir.join("icons").display()),
        };
        let store = laurel_app::icons::store::open(&spec, log)
            .await
            .with_context(|| {
                format!("opening the icon store {spec} (--icons-store, LAUREL_ICONS_STORE)")
            })?;
        let base_url = self
            .icons_base_url
            .as_deref()
            .map(|b| b.trim_end_matches('/').to_string())
            .filter(|b| !b.is_empty());
        Ok(laurel_app::icons::Icons::new(
            store,
            self.icon_size,
            base_url,
        ))
    }
}

/// `laurel serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "LAUREL_LISTEN",
        default_value = "127.0.0.1:8080",
        help_heading = "Listening"
    )]
    pub listen: SocketAddr,
    /// Origins whose web pages may call the API (CORS): a browser game served from
    /// `https://game.example.com` needs its origin here; comma-separated, `*` for any.
    /// None by default: same-origin pages only.
    #[arg(
        long,
        env = "LAUREL_CORS_ORIGINS",
        value_delimiter = ',',
        help_heading = "Listening"
    )]
    pub cors_origins: Vec<String>,
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
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_SHUTDOWN_TIMEOUT_SECS",
        help_heading = "State and shutdown",
        default_value_t = 10
    )]
    pub shutdown_timeout_secs: u64,
    /// How often, in milliseconds, the engine and the views write their state to disk. In
    /// between it lives in memory; after a crash the log since the last write is folded
    /// again, so this bounds the work of a recovery, never what can be lost.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_CHECKPOINT_INTERVAL_MS",
        help_heading = "State and shutdown",
        default_value_t = 5000
    )]
    pub checkpoint_interval_ms: u64,
    /// Player states the engine keeps in memory, over all partitions; the others are read
    /// from disk when their player reports again.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_CACHED_PLAYERS",
        help_heading = "State and shutdown",
        default_value_t = 25_000
    )]
    pub cached_players: usize,
    /// On NATS: hand what the gateway appends to STATS to the engine of this process, and
    /// what the engine appends to OUTPUT to its projector, instead of waiting for the broker
    /// to deliver it (about half the broker's messages per event; docs/performance.md,
    /// cause 5). `--handoff=false` reads everything from the broker: entries that other
    /// processes (a `laurel gateway`, a tool) append to the same streams are otherwise
    /// folded up to about two seconds late.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_HANDOFF",
        help_heading = "State and shutdown",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub handoff: bool,
    /// Fault injection for tests: hold each batch of definitions read from DEFS this many
    /// milliseconds before applying it, so that this process lags behind the log (as a
    /// gateway behind a load balancer may).
    #[arg(long, env = "LAUREL_DEFS_LAG_MS", default_value_t = 0, hide = true)]
    pub defs_lag_ms: u64,
}

/// `laurel engine`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,
    /// How long, in seconds, a lease outlives its holder's last renewal: the longest a
    /// dead engine's partitions wait for another engine.
    #[arg(
        long,
        env = "LAUREL_LEASE_TTL_SECS",
        help_heading = "Engine",
        default_value_t = 10
    )]
    pub lease_ttl_secs: u64,
    /// How often, in milliseconds, the engine writes its state to disk (see `serve`).
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_CHECKPOINT_INTERVAL_MS",
        help_heading = "Engine",
        default_value_t = 5000
    )]
    pub checkpoint_interval_ms: u64,
    /// Player states kept in memory, over all partitions.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_CACHED_PLAYERS",
        help_heading = "Engine",
        default_value_t = 25_000
    )]
    pub cached_players: usize,
    /// How often, in seconds, each partition's state is shared in the object store
    /// `{STREAM_PREFIX}_SNAPSHOTS`, for the engine that takes the partition after a crash
    /// (a hand-over always shares it): bounds what that engine re-folds.
    #[arg(
        hide_short_help = true,
        long,
        env = "LAUREL_SNAPSHOT_INTERVAL_SECS",
        help_heading = "Engine",
        default_value_t = 60
    )]
    pub snapshot_interval_secs: u64,
    /// Address to serve the engine's `/metrics` (and `/healthz`) on, in Prometheus text:
    /// lag per partition, fold and write timings, cache hits. None: not served.
    #[arg(long, env = "LAUREL_METRICS_LISTEN", help_heading = "Engine")]
    pub metrics_listen: Option<SocketAddr>,
}

impl EngineArgs {
    /// The engine role's configuration.
    pub fn config(&self) -> laurel_engine::role::RoleConfig {
        laurel_engine::role::RoleConfig {
            lease_ttl: Duration::from_secs(self.lease_ttl_secs),
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
            cached_players: self.cached_players,
            snapshot_interval: Duration::from_secs(self.snapshot_interval_secs),
        }
    }
}
