//! Times the executor alone on `true` jobs: where a job's time goes outside the engine.
//! `cargo run --release -p conveyor-runner --example exec_timing [RUNS]`; with
//! `CONVEYOR_NO_JOB_CGROUPS=1` jobs are contained by cookie and group only.

use std::time::Instant;

use conveyor_core::protocol::{JobSpec, Lease};
use conveyor_runner::executor::{ExecConfig, execute};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut cfg = ExecConfig::new(std::env::temp_dir().join("conveyor-exec-timing"));
    cfg.job_cgroups = std::env::var_os("CONVEYOR_NO_JOB_CGROUPS").is_none();
    let mut spec = JobSpec {
        lease: Lease {
            job_run_id: String::new(),
            attempt: 1,
            lease_token: "t".into(),
        },
        lease_secs: 30,
        product: "p".into(),
        belt: "b".into(),
        job: "j".into(),
        build_id: "b".into(),
        build_number: 1,
        script: "true".into(),
        env: vec![],
        outputs: vec![],
        timeout_secs: None,
        source: None,
        git_inputs: vec![],
        secrets: vec![],
        input_artifacts: Vec::new(),
        artifact_paths: Vec::new(),
        artifacts_always: false,
        caches: Vec::new(),
        caches_writable: false,
        expand_env: Vec::new(),
        script_source: None,
    };
    let start = Instant::now();
    for i in 0..runs {
        spec.lease.job_run_id = format!("run-{i}");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (_c, cancel) = tokio::sync::watch::channel(false);
        let r = execute(&spec, &cfg, tx, cancel).await;
        while rx.try_recv().is_ok() {}
        assert_eq!(r.outcome, conveyor_core::protocol::Outcome::Succeeded);
    }
    let per = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    let isolation = cfg.isolation();
    println!("executor ({isolation:?}): {runs} runs of `true`, {per:.2} ms each");
}
