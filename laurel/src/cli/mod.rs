//! The `laurel` command line (SPEC section 5): each subcommand parses its flags (`serve`
//! holds the roles' flags) and hands over to the crate that owns it, through
//! [`crate::roles`] for the roles; the tools that talk to a running Laurel (`defs`,
//! `replay`) and `rebuild` live here.

pub mod config_file;
pub mod defs;
pub mod keys;
pub mod rebuild;
pub mod replay;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use laurel_runtime::{Shutdown, Stopper};

use crate::roles::Roles;
use defs::DefsCommand;
use keys::DevKeyArgs;
use laurel_gateway::auth::{ADMIN_SCOPE, SERVER_SCOPE, mint_dev_token};
use rebuild::RebuildArgs;
use replay::ReplayArgs;
use serve::{EngineArgs, ServeArgs};

/// Laurel: an event-sourced achievements backend for games.
#[derive(Debug, Parser)]
#[command(
    name = "laurel",
    version = env!("LAUREL_LONG_VERSION"),
    about = "Laurel: an event-sourced achievements backend for games",
    long_about = None
)]
pub struct Cli {
    /// A TOML file of settings (flag names as keys) for any command; a flag or its
    /// environment variable wins over the file.
    #[arg(long, global = true, env = "LAUREL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The roles and tools of the `laurel` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: gateway, engine and projections.
    Serve(Box<ServeArgs>),
    /// Run the HTTP gateway alone, with its own replica of the views (scale-out on NATS).
    Gateway(Box<ServeArgs>),
    /// Run the evaluation engine alone, sharing the partitions with the other engines
    /// (scale-out on NATS).
    #[command(mut_arg("nats", |a| a.required(true).help(
        "NATS server URLs, comma-separated (`nats://user:password@host:4222`, \
         `nats://token@host:4222` for credentials): an engine runs on NATS only",
    )))]
    Engine(EngineArgs),
    /// Not a role of its own: each `laurel gateway` folds its own views (docs/deploy.md).
    Projector,
    /// Print a development token signed with the data dir's dev key.
    Token(TokenArgs),
    /// Apply or export definitions as code.
    #[command(subcommand)]
    Defs(DefsCommand),
    /// Rebuild engine state and views from the logs (Laurel stopped).
    Rebuild(RebuildArgs),
    /// Re-fold the stats history against definitions, print who would gain, and with
    /// `--apply` apply them and grant the gains.
    Replay(ReplayArgs),
    /// Tools for studios moving from AWS GameKit (docs/gamekit.md).
    #[command(subcommand)]
    Gamekit(GameKitCommand),
}

/// `laurel gamekit`.
#[derive(Debug, Subcommand)]
pub enum GameKitCommand {
    /// Turn GameKit's achievement definitions (the JSON its admin API lists,
    /// `{"data": {"achievements": [...]}}` or `{"achievements": [...]}`) into a Laurel
    /// definitions file on stdout, for `laurel defs apply`.
    Import {
        /// The GameKit JSON (`-` for stdin).
        file: PathBuf,
    },
}

/// `laurel token`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["player", "admin", "server"])))]
pub struct TokenArgs {
    /// The data dir whose dev key signs the token.
    #[arg(long, env = "LAUREL_DATA_DIR", default_value = "./laurel-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub dev_key: DevKeyArgs,
    /// A player token for this player id.
    #[arg(long, env = "LAUREL_TOKEN_PLAYER")]
    pub player: Option<String>,
    /// An admin token (`laurel:admin`).
    #[arg(long, env = "LAUREL_TOKEN_ADMIN")]
    pub admin: bool,
    /// A game-server token (`laurel:server`).
    #[arg(long, env = "LAUREL_TOKEN_SERVER")]
    pub server: bool,
    /// Lifetime in seconds.
    #[arg(long, env = "LAUREL_TOKEN_TTL", default_value_t = 86_400)]
    pub ttl: u64,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(*args, Roles::All),
        Command::Gateway(args) => serve(*args, Roles::Gateway),
        Command::Engine(args) => engine(args),
        Command::Token(args) => token(args),
        Command::Defs(command) => defs(command),
        Command::Rebuild(args) => block_on(
            tokio::runtime::Builder::new_multi_thread(),
            rebuild::run(args),
        ),
        Command::Replay(args) => block_on(
            tokio::runtime::Builder::new_current_thread(),
            replay::run(args),
        ),
        Command::Gamekit(GameKitCommand::Import { file }) => match laurel_gamekit::import(&file) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("laurel: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Projector => {
            eprintln!(
                "laurel: there is no separate projector: each `laurel gateway` folds its own views (docs/deploy.md)"
            );
            ExitCode::from(2)
        }
    }
}

fn token(args: TokenArgs) -> ExitCode {
    let key = match args.dev_key.key(&args.data_dir, false) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("laurel: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let (subject, scope) = match (&args.player, args.admin, args.server) {
        (Some(player), _, _) => (player.clone(), String::new()),
        (None, true, _) => ("admin".to_string(), ADMIN_SCOPE.to_string()),
        (None, false, _) => ("server".to_string(), SERVER_SCOPE.to_string()),
    };
    println!("{}", mint_dev_token(&key, &subject, &scope, args.ttl));
    ExitCode::SUCCESS
}

fn defs(command: DefsCommand) -> ExitCode {
    block_on(
        tokio::runtime::Builder::new_current_thread(),
        defs::run(command),
    )
}

/// Runs `work` on a runtime from `builder`, reporting its error.
fn block_on(
    mut builder: tokio::runtime::Builder,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let result = builder
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            let result = runtime.block_on(work);
            // Tasks still waiting on a broker do not hold the process.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Said once, for people; the log lines before it tell operators the rest.
            eprintln!("laurel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs, roles: Roles) -> ExitCode {
    let work = async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (--listen, LAUREL_LISTEN): is another server there?",
                    args.listen
                )
            })?;
        crate::roles::serve(args, roles, listener, shutdown_on_signal()).await
    };
    block_on(tokio::runtime::Builder::new_multi_thread(), work)
}

fn engine(args: EngineArgs) -> ExitCode {
    let work = async move {
        let metrics = match args.metrics_listen {
            None => None,
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!(
                    "cannot listen on {addr} (--metrics-listen, LAUREL_METRICS_LISTEN): is another server there?"
                )
            })?),
        };
        crate::roles::engine(args, metrics, shutdown_on_signal()).await
    };
    block_on(tokio::runtime::Builder::new_multi_thread(), work)
}

/// The process's shutdown, given on SIGTERM or ctrl-c.
fn shutdown_on_signal() -> Shutdown {
    let (stopper, shutdown) = Stopper::new();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stopper.stop();
    });
    shutdown
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
