//! `conveyor`: the orchestrator and command-line interface. Parses arguments only.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = conveyor::cmd::Cli::parse();
    conveyor::cmd::run(cli)
}
