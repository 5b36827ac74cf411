//! The `laurel` binary: parses the command line, sets up logging, hands over to the library.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: under load the server allocates many small, short-lived buffers from several
/// threads, where glibc's allocator spent a quarter of the time (profiled with perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = laurel_gateway::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LAUREL_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    laurel_gateway::cli::run(cli)
}
