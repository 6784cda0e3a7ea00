//! Whatever a job started dies with it: at its normal end, its timeout and its cancel, with
//! cgroups (where this machine allows them) and with the environment cookie alone.

use std::time::Duration;

use conveyor_core::protocol::{LogLine, Outcome};
use conveyor_runner::executor::{ExecConfig, ExecResult, Isolation, execute};
use tokio::sync::{mpsc, watch};

use crate::traces::{Scatter, now_us};
use crate::{TestDir, spec};

/// Each way this machine can contain jobs: the cookie always, a cgroup where possible.
fn isolations(dir: &TestDir) -> Vec<ExecConfig> {
    let mut cookie = dir.config();
    cookie.job_cgroups = false;
    let cgroup = dir.config();
    match cgroup.isolation() {
        Isolation::Cgroup => vec![cookie, cgroup],
        Isolation::Cookie => vec![cookie],
    }
}

async fn run(s: conveyor_core::protocol::JobSpec, cfg: &ExecConfig) -> (ExecResult, u64) {
    let (tx, mut rx) = mpsc::unbounded_channel::<LogLine>();
    let (_cancel, cancel_rx) = watch::channel(false);
    let result = execute(&s, cfg, tx, cancel_rx).await;
    let ended = now_us();
    while rx.recv().await.is_some() {}
    (result, ended)
}

#[tokio::test]
async fn stragglers_in_new_sessions_die_when_the_job_ends_normally() {
    let dir = TestDir::new("end");
    for (i, cfg) in isolations(&dir).iter().enumerate() {
        let mode = cfg.isolation();
        let scatter = Scatter::new(&dir.path(&format!("trace{i}")), mode == Isolation::Cgroup);
        let (result, ended) = run(spec("end", &scatter.script()), cfg).await;
        assert_eq!(result.outcome, Outcome::Succeeded, "{mode:?}: {result:?}");
        scatter
            .assert_all_gone_since(ended, &format!("{mode:?}, at the job's end"))
            .await;
    }
}

#[tokio::test]
async fn stragglers_in_new_sessions_die_when_the_job_times_out() {
    let dir = TestDir::new("timeout");
    for (i, cfg) in isolations(&dir).iter().enumerate() {
        let mode = cfg.isolation();
        let scatter = Scatter::new(&dir.path(&format!("trace{i}")), mode == Isolation::Cgroup);
        let mut s = spec("timeout", &format!("{}sleep 30", scatter.script()));
        s.timeout_secs = Some(2);
        let (result, ended) = run(s, cfg).await;
        assert_eq!(result.outcome, Outcome::TimedOut, "{mode:?}: {result:?}");
        assert!(
            scatter.all_beating(),
            "{mode:?}: the job timed out before it scattered"
        );
        scatter
            .assert_all_gone_since(ended, &format!("{mode:?}, at the timeout"))
            .await;
    }
}

#[tokio::test]
async fn stragglers_in_new_sessions_die_when_the_job_is_cancelled() {
    let dir = TestDir::new("cancel");
    for (i, cfg) in isolations(&dir).iter().enumerate() {
        let mode = cfg.isolation();
        let scatter = Scatter::new(&dir.path(&format!("trace{i}")), mode == Isolation::Cgroup);
        let s = spec("cancel", &format!("{}sleep 30", scatter.script()));
        let (tx, mut rx) = mpsc::unbounded_channel::<LogLine>();
        let (cancel, cancel_rx) = watch::channel(false);
        let job_cfg = cfg.clone();
        let job = tokio::spawn(async move { execute(&s, &job_cfg, tx, cancel_rx).await });
        scatter.wait_beating(Duration::from_secs(10)).await;
        let cancelled = now_us();
        cancel.send(true).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), job)
            .await
            .expect("the cancelled job ends at once")
            .unwrap();
        while rx.recv().await.is_some() {}
        assert_eq!(result.outcome, Outcome::Cancelled, "{mode:?}: {result:?}");
        scatter
            .assert_all_gone_since(cancelled, &format!("{mode:?}, at the cancel"))
            .await;
    }
}
