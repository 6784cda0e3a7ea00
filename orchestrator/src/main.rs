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
/// and keeps what is freed in each: a 10,000-job build peaked at 105–113 MB; with few
/// arenas, returning freed memory above 128 KiB, 55–59 MB at the same speed. Too few, and
/// threads queue for them: with 2 on 2 cores, a node under 16 readers at 100,000 builds
/// spent a fifth of its time on arena locks (build list p99 25.5–28.5 ms; 22–24 ms with 4).
/// So two per core (docs/decisions.md). Both can only be set before the process starts
/// (or with unsafe code, which this crate forbids), so the program starts itself again,
/// once, with them set. An environment that sets either is left as it is; if the restart
/// cannot happen, the program runs as it is.
fn with_few_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let arenas = (2 * cores).to_string();
    let tuning = [
        ("MALLOC_ARENA_MAX", arenas.as_str()),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
    ];
    if tuning
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
        .envs(tuning)
        .exec();
}
