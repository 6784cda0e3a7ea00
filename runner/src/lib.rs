//! conveyor-runner: executes job runs — workspace, checkout, script, outputs, logs — for the
//! orchestrator (in-process) and for the runner binary; takes them from fleet queues and
//! speaks the runner protocol.

pub mod client;
pub mod credentials;
pub mod executor;
pub mod queue;
pub mod tls;
pub mod worker;

/// Makes this process non-dumpable, so that a job running as the same user can read neither
/// its environment (`/proc/<pid>/environ`: the token, the Redis URL) nor its memory
/// (`/proc/<pid>/mem`, ptrace), and it leaves no core dump. `conveyor-runner` and `conveyor`
/// call it first thing. The process cannot drop those variables from its own environment
/// instead: `std::env::remove_var` is unsafe, and unsafe code is forbidden here. Its command
/// line stays readable by everyone (`/proc/<pid>/cmdline`), so no secret may be in argv.
///
/// Jobs do not inherit it: it is reset when they exec.
pub fn harden() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!(
            "warning: cannot make this process non-dumpable ({e}): jobs running as its user \
             can read its environment and memory"
        );
    }
}
