//! A manual job under `conveyor run` without a terminal: the run says what it waits for and
//! the command that decides it, and `conveyor decline` (a separate process, over HTTP) skips
//! the job with its reason while the build succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common;

const GATED: &str = "product: gated
belts:
  - name: b
    jobs:
      - name: first
        commands: 'true'
      - name: gate
        needs: [first]
        manual: true
        commands: 'true'
      - name: after
        needs: [gate]
        commands: 'true'
";

/// The line in which the run says it waits for approval of `gate`.
fn hint_of(child: &mut std::process::Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the run says it waits for approval");
        if line.starts_with("waiting for approval of job `gate` of gated #1") {
            return line;
        }
    }
}

#[test]
fn a_run_waiting_for_approval_says_how_to_decide_and_a_decline_skips_the_job() {
    let dir = common::temp_dir("approvals");
    let file = dir.join("gated.yml");
    std::fs::write(&file, GATED).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["run", "--json", "--belt", "b"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let hint = hint_of(&mut child);
    // `conveyor approve ID --server URL --token T`, as printed.
    let command = hint.split('`').nth(3).unwrap();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(&words[..2], &["conveyor", "approve"], "{hint}");
    assert!(hint.contains("/api/v1/job-runs/"), "{hint}");
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .arg("decline")
        .args(&words[2..])
        .args(["--reason", "not today", "--by", "tess"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("declined gate of gated #1: now skipped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "a declined job is no failure");
    let json: Value = serde_json::from_slice(&done.stdout).unwrap();
    let b = &json["builds"][0];
    assert_eq!(b["status"], "succeeded");
    let jobs: Vec<(&str, &str, &str)> = b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or("");
            (s("name"), s("status"), s("reason"))
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("first", "succeeded", ""),
            ("gate", "skipped", "declined by tess: not today"),
            ("after", "skipped", "its dependency `gate` was skipped"),
        ]
    );
}
