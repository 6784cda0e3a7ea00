//! The conveyor runner binary; not yet wired to a queue, so it refuses to start.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("conveyor-runner: not yet wired");
    ExitCode::from(2)
}
