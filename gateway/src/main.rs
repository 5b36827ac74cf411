//! The `laurel` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = laurel_gateway::cli::Cli::parse();
    laurel_gateway::cli::run(cli)
}
