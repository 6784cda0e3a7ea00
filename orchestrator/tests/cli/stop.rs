//! Stopping `conveyor up` with Ctrl-C while a job runs: the job and everything it started
//! (a child in a new session among them) die at once, the job run is handed back, and the
//! next `up` on the same data directory runs it to completion, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;
use crate::up::{cli, get, start_up_with};

/// A job that writes `start`, starts a child in a new session that writes `child` later,
/// and writes `done` at its end — each with its attempt.
fn deploy_product(log: &Path, marker: &str) -> String {
    format!(
        "product: stopper\nbelts:\n  - name: b\n    jobs:\n      - name: deploy\n        env: {{LOG: '{}', STOPPER_MARK: '{marker}'}}\n        commands: |\n          echo \"start $CONVEYOR_ATTEMPT\" >> \"$LOG\"\n          setsid bash -c 'sleep 1.5; echo \"child $CONVEYOR_ATTEMPT\" >> \"$LOG\"' &\n          sleep 2\n          echo \"done $CONVEYOR_ATTEMPT\" >> \"$LOG\"\n",
        log.display()
    )
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Processes whose environment carries `marker`.
fn marked(marker: &str) -> Vec<String> {
    let needle = format!("STOPPER_MARK={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let env = std::fs::read(e.path().join("environ")).ok()?;
            let text = String::from_utf8_lossy(&env).into_owned();
            text.split('\0')
                .any(|kv| kv == needle)
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT to `up` and waits until it exits, cleanly and within a few seconds.
fn sigint_and_wait(up: &mut crate::up::Up) {
    let pid = up.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    wait_for("conveyor up exits", 10, || {
        up.0.try_wait().unwrap().is_some()
    });
    assert!(
        up.0.try_wait().unwrap().unwrap().success(),
        "up exits cleanly"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(6),
        "up took {:?} to stop",
        stopped.elapsed()
    );
}

#[test]
fn ctrl_c_on_up_during_a_job_with_a_child_leaves_nothing_behind_and_a_restart_runs_it_once() {
    let dir = common::temp_dir("stop");
    let (examples, data, log) = (dir.join("examples"), dir.join("data"), dir.join("log"));
    let marker = uuid::Uuid::now_v7().simple().to_string();
    std::fs::create_dir_all(&examples).unwrap();
    std::fs::write(examples.join("stopper.yml"), deploy_product(&log, &marker)).unwrap();

    let (mut up, url, _) = start_up_with(&data, Some(&examples));
    let (code, out, err) = cli(
        &url,
        &["trigger", "stopper", "b", "--token", "t0ken-for-up-tests"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = out.trim().rsplit('/').next().unwrap().to_string();
    wait_for("the job starts", 30, || {
        lines(&log).contains(&"start 1".into())
    });
    // An arbitrary moment within the job's first half second.
    std::thread::sleep(Duration::from_millis(
        u64::from(uuid::Uuid::now_v7().as_bytes()[15]) * 2,
    ));
    sigint_and_wait(&mut up);
    assert_eq!(
        marked(&marker),
        Vec::<String>::new(),
        "no process of the job is left"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(lines(&log), ["start 1"], "nothing of attempt 1 ran on");

    let (_up2, url2, _) = start_up_with(&data, Some(&examples));
    let mut build = Value::Null;
    wait_for("the handed-back job completes", 60, || {
        let (_, body) = get(&url2, &format!("/api/v1/builds/{id}"));
        build = serde_json::from_str(&body).unwrap_or(Value::Null);
        build["status"] != "running"
    });
    assert_eq!(build["status"], "succeeded", "{build}");
    assert_eq!(build["jobs"][0]["attempts"], 2, "{build}");
    assert_eq!(lines(&log), ["start 1", "start 2", "child 2", "done 2"]);
}
