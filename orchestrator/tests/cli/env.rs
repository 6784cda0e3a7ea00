//! `env:` values expand `$VAR` against the job's environment and take references' values
//! as data (`conveyor run`, the real runner).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::run::{HOSTILE, job, run_json, write};

#[test]
fn env_values_expand_variables_and_take_outputs_as_data() {
    let dir = common::temp_dir("env-expand");
    let value_file = dir.join("value");
    std::fs::write(&value_file, HOSTILE).unwrap();
    let yaml = format!(
        r#"product: envx
env: {{TOOL_HOME: /opt/tool}}
belts:
  - name: b
    jobs:
      - name: make
        env: {{SRC: '{src}'}}
        commands: |
          V="$(cat "$SRC")"
        outputs: [V]
      - name: use
        env:
          PATH: "$TOOL_HOME/bin:$PATH"
          V: "${{make.V}}"
          W: "<{{{{ make.V }}}}>$$HOME"
          U: "${{V}}+${{NOPE}}"
          DEST: '{dest}'
        commands: |
          cd "$DEST"
          printf '%s' "$PATH" > path.out
          printf '%s' "$V" > v.out
          printf '%s' "$W" > w.out
          printf '%s' "$U" > u.out
"#,
        src = value_file.display(),
        dest = dir.display()
    );
    let file = write(&dir, "envx.yml", &yaml);
    let (code, builds, stderr) = run_json(&[&file], "b");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(job(&builds[0], "make")["outputs"]["V"], HOSTILE);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let path = std::env::var("PATH").unwrap();
    assert_eq!(read("path.out"), format!("/opt/tool/bin:{path}"));
    assert_eq!(read("v.out"), HOSTILE);
    assert_eq!(read("w.out"), format!("<{HOSTILE}>$HOME"));
    assert_eq!(read("u.out"), format!("{HOSTILE}+"));
    assert!(
        !dir.join("PWNED").exists() && !dir.join("PWNED2").exists(),
        "the value was executed"
    );
}

#[test]
fn a_reference_in_env_to_an_undeclared_output_is_a_located_error() {
    let dir = common::temp_dir("env-bad-ref");
    let yaml = "product: envy\nbelts:\n  - name: b\n    jobs:\n      - name: make\n        commands: V=1\n        outputs: [V]\n      - name: use\n        env: {V: \"${make.W}\"}\n        commands: echo \"$V\"\n";
    let file = write(&dir, "envy.yml", yaml);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["run", "--belt", "b", &file])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`${make.W}` names output `W`, which job `make` does not declare"),
        "{stderr}"
    );
    assert!(stderr.contains("envy.yml:8"), "{stderr}");
}
