//! `conveyor`: the orchestrator and command-line interface. Parses arguments only.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = conveyor::cli::Cli::parse();
    conveyor::cli::run(cli)
}
