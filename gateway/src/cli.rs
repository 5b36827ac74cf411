//! The `laurel` command line (SPEC section 5).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Laurel: an event-sourced achievements backend for games.
#[derive(Debug, Parser)]
#[command(name = "laurel", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The roles and tools of the `laurel` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: gateway, engine and projections.
    Serve,
    /// Run the HTTP gateway alone (scale-out on NATS).
    Gateway,
    /// Run the evaluation engine alone, for some partitions (scale-out on NATS).
    Engine,
    /// Run the projections alone (scale-out on NATS).
    Projector,
    /// Print a development token signed with the data dir's dev key.
    Token,
    /// Apply or export definitions as code.
    Defs,
    /// Re-fold the stats history against definitions and print the diff.
    Replay,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // The roles land one issue at a time; until then each says so plainly.
    eprintln!(
        "laurel: `{}` is not available in this build yet",
        format!("{:?}", cli.command).to_lowercase()
    );
    ExitCode::from(2)
}
