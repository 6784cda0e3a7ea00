//! Command-line arguments and dispatch to the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "conveyor",
    version,
    about = "A CI/CD platform: belts of jobs, chained products."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check .conveyor.yml files; several files are checked across products.
    Validate {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Measure conveyor's performance.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time validating a generated belt.
    Validate {
        /// Jobs in the generated belt.
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        /// How many times to validate it.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Write the generated file here instead of only timing it.
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { files } => crate::validate::run(&files),
        Command::Bench { what } => match what {
            BenchCommand::Validate {
                jobs,
                runs,
                json,
                write,
            } => crate::bench::validate(jobs, runs, json, write.as_deref()),
        },
    }
}
