//! `matrix:` through `conveyor run`: a 2×2 matrix is four jobs with their axis values in
//! the environment, each failing alone, and a job that needs the matrix waits for all four.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::run::{job, run_json, write};

fn product(dir: &std::path::Path) -> String {
    format!(
        r#"product: grid
belts:
  - name: b
    jobs:
      - name: test
        matrix: {{python: ["3.10", "3.11"], os: [linux, mac]}}
        env: {{DEST: '{dest}'}}
        commands: |
          sleep 0.2
          echo "$MATRIX_PYTHON/$MATRIX_OS" > "$DEST/$CONVEYOR_JOB.done"
          V="py$MATRIX_PYTHON-$MATRIX_OS"
          [ "$MATRIX_PYTHON/$MATRIX_OS" != "3.11/mac" ] || [ ! -e "$DEST/fail" ]
        outputs: [V]
      - name: report
        needs: [test]
        env: {{DEST: '{dest}'}}
        commands: |
          ls "$DEST" | grep -c '\.done$' > "$DEST/report.count"
          echo "${{test-3-10-mac.V}}" > "$DEST/report.one"
"#,
        dest = dir.display()
    )
}

#[test]
fn a_two_by_two_matrix_runs_four_jobs_and_its_dependent_waits_for_all() {
    let dir = common::temp_dir("matrix");
    let file = write(&dir, "grid.yml", &product(&dir));
    let (code, builds, stderr) = run_json(&[&file], "b");
    assert_eq!(code, 0, "{stderr}");
    let names: Vec<&str> = builds[0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    for name in [
        "test-3-10-linux",
        "test-3-10-mac",
        "test-3-11-linux",
        "test-3-11-mac",
    ] {
        assert!(names.contains(&name), "{names:?}");
        assert_eq!(job(&builds[0], name)["status"], "succeeded");
        let values = std::fs::read_to_string(dir.join(format!("{name}.done"))).unwrap();
        let (py, os) = values.trim().split_once('/').unwrap();
        assert_eq!(name, format!("test-{}-{os}", py.replace('.', "-")));
    }
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(
        job(&builds[0], "test-3-11-linux")["outputs"]["V"],
        "py3.11-linux"
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(
        read("report.count").trim(),
        "4",
        "report ran before every instance"
    );
    assert_eq!(read("report.one").trim(), "py3.10-mac");
}

#[test]
fn one_failing_instance_fails_alone_and_skips_what_needs_the_matrix() {
    let dir = common::temp_dir("matrix-fail");
    let file = write(&dir, "grid.yml", &product(&dir));
    std::fs::write(dir.join("fail"), "").unwrap();
    let (code, builds, _) = run_json(&[&file], "b");
    assert_eq!(code, 1);
    let b = &builds[0];
    assert_eq!(job(b, "test-3-11-mac")["status"], "failed");
    for name in ["test-3-10-linux", "test-3-10-mac", "test-3-11-linux"] {
        assert_eq!(job(b, name)["status"], "succeeded", "{name}");
    }
    assert_eq!(job(b, "report")["status"], "skipped");
}
