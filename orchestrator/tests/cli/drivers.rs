//! `conveyor run --driver NAME=COMMAND`: a local Python driver (the SDK in sdk/python) runs
//! the example belt's driver job, and a driver job without its driver fails the run saying
//! why.

use std::process::Command;

use serde_json::Value;

fn job<'a>(build: &'a Value, name: &str) -> &'a Value {
    let jobs = build["jobs"].as_array().expect("jobs");
    jobs.iter().find(|j| j["name"] == name).expect("the job")
}

/// The Python with the SDK: CI's venv (`CONVEYOR_TEST_PYTHON`), else `python3` (the SDK is
/// put on `PYTHONPATH` either way).
fn python() -> String {
    std::env::var("CONVEYOR_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(extra: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args([
            "run",
            "--json",
            "--belt",
            "main",
            "examples/drivers/greetings.yml",
        ])
        .args(extra)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("conveyor runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: stderr {stderr}"));
    let builds = json["builds"].as_array().cloned().unwrap_or_default();
    (out.status.code().unwrap_or(-1), builds, stderr)
}

#[test]
fn a_run_with_a_local_driver_passes_its_output_to_the_bash_job_after_it() {
    let driver = format!(
        "greeter=PYTHONPATH=sdk/python exec {} examples/drivers/greeter.py",
        python()
    );
    let (code, builds, stderr) = run(&["--driver", &driver]);
    assert_eq!(code, 0, "{stderr}");
    let greet = job(&builds[0], "greet");
    assert_eq!(greet["outputs"]["GREETING"], "hello conveyor");
    assert_eq!(greet["driver"], "greeter");
    assert!(
        stderr.contains("[greetings/announce] hello conveyor, version 1.0."),
        "{stderr}"
    );
    assert!(
        stderr.contains("[greetings/greet] process: greeting conveyor"),
        "{stderr}"
    );
    // Stopped at the end by SIGTERM, cleanly.
    assert!(
        stderr.contains("conveyor_driver: driver greeter ("),
        "{stderr}"
    );
    assert!(stderr.contains(") stopped"), "{stderr}");
}

#[test]
fn a_run_whose_driver_is_not_given_fails_saying_no_driver_is_connected() {
    let (code, builds, stderr) = run(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error: job `greet` of greetings main #1 is waiting: no driver `greeter` is connected (start one with --driver greeter=COMMAND); cancelling the build"),
        "{stderr}"
    );
    assert_eq!(builds[0]["status"], "cancelled");
    assert_eq!(job(&builds[0], "greet")["status"], "cancelled");
    assert_eq!(job(&builds[0], "version")["status"], "succeeded");
}

#[test]
fn a_run_whose_driver_exits_fails_at_once_saying_so() {
    let started = std::time::Instant::now();
    let (code, builds, stderr) = run(&["--driver", "greeter=exit 3"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error: driver `greeter` exited (exit status: 3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no driver `greeter` is connected"),
        "{stderr}"
    );
    assert_eq!(builds[0]["status"], "cancelled");
    // Not after the grace a starting driver gets to connect.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{stderr}"
    );
}

#[test]
fn a_driver_flag_needs_a_name_and_a_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["run", "--belt", "main", "examples/drivers/greetings.yml"])
        .args(["--driver", "Greeter=x"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid driver name `Greeter`: expected NAME=COMMAND"),
        "{stderr}"
    );
}
