//! `conveyor validate` as a user runs it: exit codes, stdout summaries, stderr messages.

use std::process::{Command, Output};

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .arg("validate")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("conveyor runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn valid_products_exit_zero_with_one_summary_line_each() {
    let out = validate(&["examples/demo/demo.yml", "examples/demo/demo-deploy.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "examples/demo/demo.yml: demo: 2 belts, 6 jobs, 7 edges\nexamples/demo/demo-deploy.yml: demo-deploy: 1 belt, 2 jobs, 1 edge\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn the_seed_examples_exit_one_with_located_errors_on_stderr() {
    let out = validate(&[
        "examples/seed/ror-api-backend.yml",
        "examples/seed/ami.yml",
        "examples/seed/terraform.yml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "examples/seed/terraform.yml:5:20: error: unknown belt `build-gem` in product `ami` (`upstream-build` trigger)\n\
         examples/seed/terraform.yml:7:9: error: trigger names unknown belt `build-ror-ami`\n\
         validation failed: 2 errors, 0 warnings\n"
    );
}

#[test]
fn warnings_are_printed_but_do_not_fail_validation() {
    let out = validate(&["examples/seed/ami.yml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "examples/seed/ami.yml: ami: 1 belt, 1 job, 0 edges\n"
    );
    assert_eq!(
        text(&out.stderr),
        "examples/seed/ami.yml:9:13: warning: unknown product `ror-api-backend` in input `ror-api-backend.build-gem`: it is neither among the files given nor registered, so this is not checked\n\
         examples/seed/ami.yml:11:24: warning: unknown product `ror-api-backend` in reference `${ror-api-backend.build-gem.PACKER_FILE}`: it is neither among the files given nor registered, so this is not checked\n"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let out = validate(&["examples/nope.yml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "examples/nope.yml:1:1: error: cannot read the file: No such file or directory (os error 2)\nvalidation failed: 1 error, 0 warnings\n"
    );
}

#[test]
fn no_file_at_all_is_a_usage_error() {
    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("<FILES>..."),
        "{}",
        text(&out.stderr)
    );
}
