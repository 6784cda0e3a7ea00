//! Git for tests: bare repositories reached by `file://` URLs, commits pushed to them, and
//! webhook signatures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository `<name>.git` whose default branch is `main`, and a clone `<name>` to
/// commit from; returns its URL and the clone.
pub fn bare_repo(dir: &Path, name: &str) -> (String, PathBuf) {
    let (origin, work) = (dir.join(format!("{name}.git")), dir.join(name));
    git(
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap(),
        ],
    );
    git(
        dir,
        &[
            "clone",
            "--quiet",
            origin.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    (format!("file://{}", origin.display()), work)
}

/// Commits everything in `work` and pushes it to `main`; returns the commit.
pub fn commit_and_push(work: &Path, message: &str) -> String {
    git(work, &["add", "."]);
    git(
        work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            message,
        ],
    );
    git(work, &["push", "--quiet", "origin", "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"])
}

/// The hooked product's repository with two commits on `main` (version 1.0, then 2.0);
/// returns its URL and both commits.
/// The hex HMAC-SHA256 of `body` under `secret`, as GitHub and Gitea sign deliveries.
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
