//! `conveyor secret`: a value goes in on standard input and never comes out; names list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common;
use crate::up::{cli, start_up_with};

#[test]
fn secret_set_reads_stdin_list_shows_names_only_and_rm_removes() {
    let (_up, url, _) = start_up_with(&common::temp_dir("secret-cli"), None);
    let mut set = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args([
            "secret",
            "set",
            "--product",
            "demo",
            "DEPLOY_KEY",
            "--token",
            "t0ken-for-up-tests",
        ])
        .env("CONVEYOR_SERVER", format!("http://{url}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-value\n")
        .unwrap();
    let out = set.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "set DEPLOY_KEY\n");
    let list = [
        "secret",
        "list",
        "--product",
        "demo",
        "--token",
        "t0ken-for-up-tests",
    ];
    let (code, out, err) = cli(&url, &list);
    assert_eq!((code, out.as_str()), (0, "DEPLOY_KEY\n"), "{err}");
    let (code, _, err) = cli(&url, &["secret", "list", "--product", "demo"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "error: missing or wrong token: send `Authorization: Bearer <token>` (401 Unauthorized)\n"
        )
    );
    let rm = [
        "secret",
        "rm",
        "--product",
        "demo",
        "DEPLOY_KEY",
        "--token",
        "t0ken-for-up-tests",
    ];
    assert_eq!(cli(&url, &rm).1, "removed DEPLOY_KEY\n");
    assert_eq!(cli(&url, &list).1, "");
}
