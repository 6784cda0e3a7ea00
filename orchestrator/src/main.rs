//! `conveyor`: the orchestrator and command-line interface. Installs the TLS crypto
//! provider and parses arguments only.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // Before anything else: jobs of `up`'s local runners run as this process's user.
    conveyor_runner::harden();
    conveyor_runner::tls::install_crypto_provider();
    let matches = conveyor::cmd::Cli::command().get_matches();
    let cli = conveyor::cmd::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    conveyor::cmd::warn_about_argv(&matches);
    conveyor::cmd::run(cli)
}
