//! `conveyor trigger --wait` and `conveyor logs` print every line of a long log (past the
//! API's page of lines), then say what failed with the failed job's last lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::up::{cli, start_up_with};

const LONG: &str = "product: long
belts:
  - name: b
    jobs:
      - name: chatty
        commands: |
          seq 1 12500 | sed 's/^/line /'
          echo 'the real problem'
          exit 3
";

#[test]
fn a_long_log_is_printed_whole_and_a_failure_is_summed_up_at_the_end() {
    let dir = common::temp_dir("long-logs");
    let examples = dir.join("examples");
    std::fs::create_dir_all(&examples).unwrap();
    std::fs::write(examples.join("long.yml"), LONG).unwrap();
    let (_up, url, _) = start_up_with(&dir.join("data"), Some(&examples));
    let (code, out, err) = cli(
        &url,
        &[
            "trigger",
            "long",
            "b",
            "--wait",
            "--token",
            "t0ken-for-up-tests",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let printed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("[chatty] line "))
        .collect();
    assert_eq!(printed.len(), 12500, "every line, in order");
    assert_eq!(printed[0], "[chatty] line 1");
    assert_eq!(printed[12499], "[chatty] line 12500");
    assert!(err.contains("long b #1 failed"), "{err}");
    assert!(err.contains("  ✗ chatty: exit code 3"), "{err}");
    assert!(err.contains("      the real problem"), "{err}");

    // `conveyor logs` of the finished build: the same lines, the same summary.
    let started = out
        .lines()
        .find(|l| l.starts_with("started long b #1: "))
        .unwrap();
    let id = started.rsplit('/').next().unwrap();
    let (code, out, err) = cli(&url, &["logs", id]);
    assert_eq!(code, 1, "{err}");
    let again = out
        .lines()
        .filter(|l| l.starts_with("[chatty] line "))
        .count();
    assert_eq!(again, 12500);
    assert!(err.contains("  ✗ chatty: exit code 3"), "{err}");
}
