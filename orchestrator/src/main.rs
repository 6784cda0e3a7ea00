//! `conveyor`: the orchestrator and command-line interface. Installs the TLS crypto
//! provider and parses arguments only.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    with_few_malloc_arenas();
    // Before anything else: jobs of `up`'s local runners run as this process's user.
    conveyor_runner::harden();
    conveyor_runner::tls::install_crypto_provider();
    let matches = conveyor::cmd::Cli::command().get_matches();
    let cli = conveyor::cmd::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    conveyor::cmd::warn_about_argv(&matches);
    conveyor::cmd::run(cli)
}

/// glibc's malloc gives each thread that allocates an arena of its own (up to 8 per core)
/// and keeps what is freed in each: a 10,000-job build peaked at 105–113 MB; with two
/// arenas, returning freed memory above 128 KiB, 53 MB at the same speed
/// (docs/decisions.md). Both can only be set before the process starts (or with unsafe
/// code, which this crate forbids), so the program starts itself again, once, with them
/// set. An environment that sets either is left as it is; if the restart cannot happen,
/// the program runs as it is.
fn with_few_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    const TUNING: [(&str, &str); 2] = [
        ("MALLOC_ARENA_MAX", "2"),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
    ];
    if TUNING
        .iter()
        .any(|(var, _)| std::env::var_os(var).is_some())
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // `exec` returns only if it failed.
    let _ = std::process::Command::new(exe)
        .arg0(argv0)
        .args(args)
        .envs(TUNING)
        .exec();
}
