//! `conveyor`: the orchestrator and command-line interface. Installs the TLS crypto
//! provider and parses arguments only.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before anything else: jobs of `up`'s local runners run as this process's user.
    conveyor_runner::harden();
    conveyor_runner::tls::install_crypto_provider();
    let cli = conveyor::cmd::Cli::parse();
    conveyor::cmd::run(cli)
}
