//! `conveyor up` started again on the same data directory: the same admin token (sessions
//! survive), the builds of the last run kept and no new demo build; started where there
//! are no examples, it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common;
use crate::up::{Up, get};

const PRODUCT: &str = "product: again
triggers:
  - scm-event: {type: push, belts: [b]}
belts:
  - name: b
    jobs:
      - name: j
        commands: 'true'
";

/// `conveyor up` on `data` with `examples` and no admin token: the guard and what it
/// printed up to "Press Ctrl-C".
fn up(data: &std::path::Path, examples: &std::path::Path) -> (Up, Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["up", "--listen", "127.0.0.1:0", "--examples"])
        .arg(examples)
        .arg("--data-dir")
        .arg(data)
        .env_remove("CONVEYOR_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = Up(child);
    let mut printed = Vec::new();
    for line in BufReader::new(up.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    (up, printed)
}

fn token_of(printed: &[String]) -> String {
    let line = printed
        .iter()
        .find(|l| l.starts_with("  admin token: "))
        .unwrap();
    line["  admin token: ".len()..].to_string()
}

fn builds(printed: &[String]) -> usize {
    let addr = printed[0]
        .strip_prefix("conveyor is up at http://")
        .unwrap();
    let (code, body) = get(addr, "/api/v1/builds");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    v["builds"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_restarted_up_keeps_its_token_and_its_builds_and_starts_no_second_demo() {
    let dir = common::temp_dir("up-again");
    let examples = dir.join("examples");
    std::fs::create_dir_all(&examples).unwrap();
    std::fs::write(examples.join("again.yml"), PRODUCT).unwrap();
    let data = dir.join("data");
    let (first, printed) = up(&data, &examples);
    let token = token_of(&printed);
    assert!(token.len() >= 32, "{printed:?}");
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("  started again b #1")),
        "{printed:?}"
    );
    assert_eq!(builds(&printed), 1);
    drop(first);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("admin.token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let (_second, again) = up(&data, &examples);
    assert_eq!(token_of(&again), token, "a restart keeps the admin token");
    assert!(
        again.iter().any(|l| l.contains("no demo build started")),
        "{again:?}"
    );
    assert!(
        !again.iter().any(|l| l.starts_with("  started ")),
        "{again:?}"
    );
    assert_eq!(builds(&again), 1);
}

#[test]
fn up_without_examples_warns_that_nothing_is_registered() {
    let dir = common::temp_dir("up-empty");
    let (mut up, printed) = up(&dir.join("data"), &dir.join("no-examples-here"));
    assert!(
        !printed.iter().any(|l| l.contains("registered")),
        "{printed:?}"
    );
    let _ = up.0.kill();
    let mut stderr = String::new();
    up.0.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("warning: no example products (*.yml) under")
            && stderr.contains("nothing is registered"),
        "{stderr}"
    );
}
