//! The fault scenarios one at a time: a runner killed mid-job, duplicated messages, an
//! orchestrator of two killed, Redis restarted empty, Postgres restarted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{self, Proc};
use crate::{Cluster, SERIAL, job, lines, slow_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_runner_is_killed_finishes_exactly_once_elsewhere() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (_serve, url) = c.serve().await;
    c.product(&url, &slow_job("p", &c.count(), 3)).await;
    let mut doomed = c.runner("doomed", &[&url]);
    let id = c.build(&url, "p", "b").await;
    c.until("the job runs", || async {
        c.get_build(&url, &id)
            .await
            .is_some_and(|b| job(&b, "work")["status"] == "running")
    })
    .await;
    doomed.0.kill().unwrap();
    let _ = doomed.0.wait();
    let _survivor = c.runner("survivor", &[&url]);
    let b = c.finished(&url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(
        job(&b, "work")["attempts"],
        2,
        "the lost attempt was re-queued once"
    );
    tokio::time::sleep(Duration::from_secs(1)).await; // anything still running of the dead runner would write now
    assert_eq!(lines(&c.count()), 1, "the job finished exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_queue_message_runs_the_job_once() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (_serve, url) = c.serve().await;
    c.product(&url, &slow_job("p", &c.count(), 1)).await;
    let id = c.build(&url, "p", "b").await;
    let b = c.get_build(&url, &id).await.unwrap();
    let msg = conveyor_core::protocol::QueueMessage {
        job_run_id: job(&b, "work")["id"].as_str().unwrap().into(),
        attempt: 1,
    };
    use conveyor_runner::queue::Queue;
    let queue = conveyor_runner::queue::RedisQueue::connect(&c.redis, &c.prefix)
        .await
        .unwrap();
    for _ in 0..3 {
        queue.push("default", &msg).await.unwrap();
    }
    let (_r1, _r2) = (c.runner("one", &[&url]), c.runner("two", &[&url]));
    let b = c.finished(&url, &id).await;
    assert_eq!(
        (b["status"].as_str(), job(&b, "work")["attempts"].as_u64()),
        (Some("succeeded"), Some(1))
    );
    assert_eq!(lines(&c.count()), 1, "four messages, one execution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_completes_when_one_of_two_orchestrators_is_killed() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new("redis://127.0.0.1:6379").await;
    let (mut first, a) = c.serve().await;
    let (_second, b_url) = c.serve().await;
    let chain = format!(
        "product: chain\nbelts:\n  - name: b\n    jobs:\n      - name: one\n        env: {{COUNT: '{n}'}}\n        commands: sleep 1; echo one >> \"$COUNT\"; V=1\n        outputs: [V]\n      - name: two\n        env: {{COUNT: '{n}'}}\n        commands: sleep 1; echo two ${{one.V}} >> \"$COUNT\"\n      - name: three\n        needs: [two]\n        env: {{COUNT: '{n}'}}\n        commands: echo three >> \"$COUNT\"\n",
        n = c.count().display()
    );
    c.product(&a, &chain).await;
    let _runner = c.runner("r", &[&a, &b_url]);
    let id = c.build(&a, "chain", "b").await;
    c.until("the first job runs", || async {
        c.get_build(&a, &id)
            .await
            .is_some_and(|b| job(&b, "one")["status"] == "running")
    })
    .await;
    first.0.kill().unwrap();
    let _ = first.0.wait();
    let b = c.finished(&b_url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(
        std::fs::read_to_string(c.count()).unwrap(),
        "one\ntwo 1\nthree\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_work_resumes_after_redis_restarts_empty() {
    let _serial = SERIAL.lock().await;
    let port = common::free_port();
    let start_redis = || Proc(common::start_redis(port));
    let mut redis = start_redis();
    let c = Cluster::new(&format!("redis://127.0.0.1:{port}")).await;
    let (_serve, url) = c.serve().await;
    let three = format!(
        "product: p\nbelts:\n  - name: b\n    jobs:\n{}",
        ["a", "b", "c"].map(|j| format!("      - name: {j}\n        env: {{COUNT: '{}'}}\n        commands: echo {j} >> \"$COUNT\"\n", c.count().display())).concat()
    );
    c.product(&url, &three).await;
    let id = c.build(&url, "p", "b").await;
    redis.0.kill().unwrap();
    let _ = redis.0.wait();
    let _redis = start_redis();
    let _runner = c.runner("r", &[&url]);
    let b = c.finished(&url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    let mut got: Vec<String> = std::fs::read_to_string(c.count())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_reconnects_after_postgres_restarts_and_nothing_is_lost() {
    let _serial = SERIAL.lock().await;
    let pg = crate::pg::PrivatePg::start();
    let mut c = Cluster::new("redis://127.0.0.1:6379").await;
    c.db = pg.fresh_db().await;
    let (_serve, url) = c.serve().await;
    c.product(&url, &slow_job("p", &c.count(), 4)).await;
    let _runner = c.runner("r", &[&url]);
    let id = c.build(&url, "p", "b").await;
    c.until("the job runs", || async {
        c.get_build(&url, &id)
            .await
            .is_some_and(|b| job(&b, "work")["status"] == "running")
    })
    .await;
    pg.ctl("restart");
    let b = c.finished(&url, &id).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(lines(&c.count()), 1);
}
