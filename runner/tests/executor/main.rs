//! The executor against real bash, real git and real processes: outputs, environment, exit
//! statuses, timeout and cancel, logs, sources and workspace cleanup; secrets masked and
//! refused in outputs; jobs run as another user; each command in the log, located in the
//! user's file.

mod commands;
#[path = "../common/job_user.rs"]
mod common;
mod job_user;
mod script;
mod secrets;
mod sources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conveyor_core::model::Output;
use conveyor_core::protocol::{JobSpec, Lease, LogLine, Stream};
use conveyor_runner::executor::{ExecConfig, ExecResult, execute};
use tokio::sync::{mpsc, watch};

/// A directory of the test's own, removed when the test ends.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "conveyor-runner-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("test dir");
        Self(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn config(&self) -> ExecConfig {
        ExecConfig::new(self.path("work"))
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec(script: &str) -> JobSpec {
    JobSpec {
        lease: Lease {
            job_run_id: "run1".to_string(),
            attempt: 1,
            lease_token: "token".to_string(),
        },
        lease_secs: 60,
        product: "p".to_string(),
        belt: "main".to_string(),
        job: "j".to_string(),
        build_id: "b".to_string(),
        build_number: 1,
        script: script.to_string(),
        env: Vec::new(),
        outputs: Vec::new(),
        timeout_secs: None,
        source: None,
        git_inputs: Vec::new(),
        secrets: Vec::new(),
        input_artifacts: Vec::new(),
        artifact_paths: Vec::new(),
        artifacts_always: false,
        caches: Vec::new(),
        caches_writable: false,
        expand_env: Vec::new(),
        script_source: None,
    }
}

fn output(name: &str, word: Option<&str>) -> Output {
    Output {
        name: name.to_string(),
        word: word.map(str::to_string),
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    env(pairs).into_iter().collect()
}

async fn run(spec: &JobSpec, cfg: &ExecConfig) -> (ExecResult, Vec<LogLine>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_cancel_tx, cancel_rx) = watch::channel(false);
    let result = execute(spec, cfg, tx, cancel_rx).await;
    let mut lines = Vec::new();
    while let Some(line) = rx.recv().await {
        lines.push(line);
    }
    (result, lines)
}

/// The texts of `stream`'s lines, but the commands' lines (see `commands.rs`).
fn texts(lines: &[LogLine], stream: Stream) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.stream == stream && !l.labels.contains_key("kind"))
        .map(|l| l.text.as_str())
        .collect()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8 from git")
        .trim()
        .to_string()
}

/// A process is gone once it no longer exists or is a zombie nobody has reaped yet.
fn is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X'])),
    }
}

fn assert_gone_soon(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}
