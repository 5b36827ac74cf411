//! The `laurel` binary: parses the command line (and a config file), sets up logging, and
//! hands each subcommand to the crate that owns it; `roles` puts the roles of a process
//! together from those crates and supervises them. Nothing else lives here.

// A binary: its modules' items are `pub` for their readers, reachable from nowhere else.
#![allow(unreachable_pub)]

mod cli;
mod roles;

use std::io::IsTerminal as _;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc: under load the server allocates many small, short-lived buffers from several
/// threads, where glibc's allocator spent a quarter of the time (profiled with perf); and
/// it gives memory back: at a million players the same run peaked at 272 MiB with jemalloc,
/// 416 MiB with glibc and 654 MiB with mimalloc (docs/performance.md, "Memory").
/// Built with `--features heap-profile`, the system allocator instead, so that a preloaded
/// heap profiler (jemalloc's, see docs/performance.md) sees every allocation.
#[cfg(not(feature = "heap-profile"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let args = match cli::config_file::with_config_file(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("laurel: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = cli::Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_env_filter(
            // The NATS client says each connection attempt at `info`; Laurel says what
            // matters of them itself (`laurel_log`).
            EnvFilter::try_from_env("LAUREL_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn")),
        )
        .with_writer(std::io::stderr)
        // Colour for people at a terminal; plain text in files and log collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    cli::run(cli)
}
