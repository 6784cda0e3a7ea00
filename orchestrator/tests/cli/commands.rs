//! Logs that read well, end to end (`conveyor run`: compiler, store, claim, runner): each
//! command echoed as written (a quick quiet job's too), bash's messages and the failure
//! told against the user's file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::run::{job, run_json, write};

const YAML: &str = r#"product: cmds
belts:
  - name: b
    jobs:
      - name: make
        commands: |
          V="v-$((6 * 7))-value"
        outputs: [V]
      - name: use
        inputs: [make]
        commands: |
          echo "got ${make.V}"
          for i in $(seq 1000); do
            : "$i"
          done
          nosuchtool --now
"#;

#[test]
fn commands_are_echoed_as_written_and_a_failure_names_its_yaml_line() {
    let dir = common::temp_dir("commands");
    let file = write(&dir, "cmds.yml", YAML);
    let (code, builds, stderr) = run_json(&[&file], "b");
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(job(&builds[0], "make")["outputs"]["V"], "v-42-value");
    let commands: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("[cmds/use] $ "))
        .collect();
    // One line per top-level command; the loop's thousand rounds open none more.
    assert_eq!(
        commands,
        [
            "echo \"got ${make.V}\"",
            "for i in $(seq 1000); do",
            ": \"$i\"",
            "nosuchtool --now"
        ],
        "{stderr}"
    );
    assert!(stderr.contains("[cmds/use] got v-42-value"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "[cmds/use] {file}:16: nosuchtool: command not found"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "[cmds/use] ✗ `nosuchtool --now` failed with exit status 127 ({file}:16)"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("run.sh"), "{stderr}");
}

#[test]
fn a_quick_quiet_job_still_shows_its_commands() {
    let dir = common::temp_dir("quiet-commands");
    let yaml = "product: quiet\nbelts:\n  - name: b\n    jobs:\n      - name: t\n        commands: |\n          true\n";
    let file = write(&dir, "quiet.yml", yaml);
    let (code, builds, stderr) = run_json(&[&file], "b");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(job(&builds[0], "t")["status"], "succeeded", "{stderr}");
    // Held back as the job ended quietly, the line came with its completion.
    let commands: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("[quiet/t] "))
        .collect();
    assert_eq!(commands, ["$ true"], "{stderr}");
}
