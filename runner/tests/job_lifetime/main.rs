//! A job never outlives its end or its runner, whatever it started: stragglers in new
//! sessions are killed at a job's normal end, timeout and cancel; the worker's stop modes
//! drain or hand jobs back; and `conveyor-runner` killed outright, stopped with SIGTERM or
//! drained with SIGQUIT leaves no process of its jobs behind — also as a job user; and a job
//! cannot read its runner's credentials. Real bash, real processes, a fake orchestrator over
//! HTTP and the real Redis at 127.0.0.1:6379 (or a private one with a password).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
#[path = "../common/job_user.rs"]
mod common;
mod credentials;
mod ends;
mod fake;
mod stops;
mod traces;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use conveyor_core::protocol::{JobSpec, Lease};
use conveyor_runner::executor::ExecConfig;

/// A directory of the test's own, removed when the test ends.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "conveyor-lifetime-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("test dir");
        Self(dir)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    pub fn config(&self) -> ExecConfig {
        ExecConfig::new(self.path("work"))
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn spec(id: &str, script: &str) -> JobSpec {
    JobSpec {
        lease: Lease {
            job_run_id: id.to_string(),
            attempt: 1,
            lease_token: format!("token-{id}"),
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
