//! `serve`'s and `up`'s credentials: read from the environment or files, warned about on the
//! command line, never shown by `--help`, and tokens anyone could guess refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::common;

const ADMIN: &str = "admin-token-of-16+";

/// Runs `conveyor ARGS` with only `env` of conveyor's variables.
fn conveyor(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CONVEYOR_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A file only its owner reads, holding `text`.
fn secret_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// `serve` on a fresh SQLite file and a Redis that is not there: it fails once it has read
/// and checked its credentials.
fn serve(args: &[&str], env: &[(&str, &str)]) -> Output {
    let db = format!("sqlite://{}/c.db", common::temp_dir("cred").display());
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--database-url", &db];
    all.extend(args);
    conveyor(&all, env)
}

#[test]
fn serve_refuses_an_admin_or_runner_token_anyone_could_guess() {
    let redis = ("CONVEYOR_REDIS_URL", "redis://127.0.0.1:1");
    let cases = [
        (
            ("CONVEYOR_ADMIN_TOKEN", "short"),
            "error: the admin token is 5 bytes long: give one of at least 16, e.g. from \
             `openssl rand -hex 32`\n",
        ),
        (
            ("CONVEYOR_RUNNER_TOKEN", "0123456789abcde"),
            "error: the runner token is 15 bytes long: give one of at least 16, e.g. from \
             `openssl rand -hex 32`\n",
        ),
        (
            ("CONVEYOR_RUNNER_TOKEN", "runner token with spaces"),
            "error: the runner token contains a space or a control character, which a bearer \
             token cannot carry: give one without, e.g. from `openssl rand -hex 32`\n",
        ),
    ];
    for ((var, value), expected) in cases {
        let mut env = vec![redis, ("CONVEYOR_ADMIN_TOKEN", ADMIN)];
        env.retain(|(k, _)| *k != var);
        env.push((var, value));
        let out = serve(&[], &env);
        assert_eq!(out.status.code(), Some(1), "{var}={value}");
        assert_eq!(stderr(&out), expected, "{var}={value}");
    }
    let out = serve(&["--admin-token", ""], &[redis]);
    assert!(
        stderr(&out).ends_with(
            "\nerror: the admin token is empty: give one of at least 16 bytes, e.g. from \
             `openssl rand -hex 32`\n"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn up_refuses_a_short_admin_token() {
    let out = conveyor(&["up"], &[("CONVEYOR_ADMIN_TOKEN", "t0ken")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: the admin token is 5 bytes long: give one of at least 16, e.g. from `openssl \
         rand -hex 32`\n"
    );
}

#[test]
fn help_never_prints_a_credential_from_the_environment() {
    let vars = [
        "CONVEYOR_DATABASE_URL",
        "CONVEYOR_REDIS_URL",
        "CONVEYOR_ADMIN_TOKEN",
        "CONVEYOR_RUNNER_TOKEN",
        "CONVEYOR_FLEET_TOKENS",
        "CONVEYOR_GITHUB_TOKEN",
        "CONVEYOR_GITLAB_TOKEN",
        "CONVEYOR_GITEA_TOKEN",
        "CONVEYOR_TOKEN",
    ];
    let env: Vec<(&str, String)> = vars.iter().map(|v| (*v, format!("SECRET-{v}"))).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for command in ["serve", "up", "builds", "trigger", "logs"] {
        let out = conveyor(&[command, "--help"], &env);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --help");
        assert!(
            !help.contains("SECRET-"),
            "conveyor {command} --help:\n{help}"
        );
    }
}

#[test]
fn credentials_on_serves_command_line_are_warned_about_and_those_in_files_are_not() {
    let dir = common::temp_dir("cred-files");
    let redis = "redis://:pw@127.0.0.1:1";
    let argv = serve(
        &["--admin-token", ADMIN, "--runner-token", ADMIN],
        &[("CONVEYOR_REDIS_URL", redis)],
    );
    let warning = |flag: &str, var: &str| {
        format!(
            "warning: {flag} on the command line can be read by every process on this machine, \
             jobs included; use {var} or {flag}-file\n"
        )
    };
    let reached_redis = "error: cannot reach Redis at redis://:***@127.0.0.1:1: ";
    assert_eq!(argv.status.code(), Some(1));
    let expected = warning("--admin-token", "CONVEYOR_ADMIN_TOKEN")
        + &warning("--runner-token", "CONVEYOR_RUNNER_TOKEN")
        + reached_redis;
    assert!(stderr(&argv).starts_with(&expected), "{}", stderr(&argv));

    let files = [
        (
            "--admin-token-file",
            secret_file(&dir, "admin", &format!("{ADMIN}\n")),
        ),
        ("--runner-token-file", secret_file(&dir, "runner", ADMIN)),
        ("--redis-url-file", secret_file(&dir, "redis", redis)),
        (
            "--fleet-token-file",
            secret_file(&dir, "fleets", "# deploys\ndeploy=fleet-token-of-16+\n"),
        ),
    ];
    let args: Vec<&str> = files.iter().flat_map(|(f, p)| [*f, p.as_str()]).collect();
    let from_files = serve(&args, &[]);
    assert!(
        stderr(&from_files).starts_with(reached_redis),
        "{}",
        stderr(&from_files)
    );
}

#[test]
fn a_credential_given_twice_or_a_bad_fleet_token_file_is_an_error_naming_it() {
    let dir = common::temp_dir("cred-twice");
    let admin = secret_file(&dir, "admin", ADMIN);
    let env = [
        ("CONVEYOR_ADMIN_TOKEN", ADMIN),
        ("CONVEYOR_REDIS_URL", "redis://r"),
    ];
    let twice = serve(&["--admin-token-file", &admin], &env);
    assert_eq!(
        stderr(&twice),
        "error: the admin token is given twice, directly (--admin-token or \
         CONVEYOR_ADMIN_TOKEN) and as a file (--admin-token-file or \
         CONVEYOR_ADMIN_TOKEN_FILE): give one of them\n"
    );
    let fleets = secret_file(&dir, "fleets", "deploy=fleet-token-of-16+\ngpu=short\n");
    let bad = serve(&["--fleet-token-file", &fleets], &env);
    assert_eq!(
        stderr(&bad),
        format!("error: {fleets}:2: a fleet token needs at least 16 characters\n")
    );
}
