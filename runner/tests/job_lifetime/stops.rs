//! The worker's stop modes, with the worker in this process (as `conveyor up` embeds it):
//! a hand-back kills the running job's whole tree at once, releases its lease and reports
//! no completion; a drain lets the running job finish and takes no new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor_core::protocol::{Outcome, QueueMessage};
use conveyor_runner::client::Client;
use conveyor_runner::queue::{LocalQueue, Queue};
use conveyor_runner::worker::{Stop, Worker};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::TestDir;
use crate::fake::Fake;
use crate::traces::{Scatter, now_us};

/// How soon a hand-back must return: "within a few seconds".
const HAND_BACK_WITHIN: Duration = Duration::from_secs(3);

struct Running {
    queue: Arc<LocalQueue>,
    stop: watch::Sender<Option<Stop>>,
    run: JoinHandle<()>,
}

fn start(fake: &Fake, dir: &TestDir) -> Running {
    let queue = Arc::new(LocalQueue::new());
    let worker = Arc::new(Worker {
        name: "in-process".into(),
        fleets: vec!["default".into()],
        concurrency: 2,
        client: Arc::new(Client::new(vec![fake.url.clone()], "runner-token".into())),
        queue: queue.clone(),
        exec: dir.config(),
    });
    let (stop, stop_rx) = watch::channel(None);
    let run = tokio::spawn(worker.run(stop_rx));
    Running { queue, stop, run }
}

async fn push(queue: &LocalQueue, fake: &Fake, id: &str, script: &str) {
    fake.add_job(id, script);
    let msg = QueueMessage {
        job_run_id: id.into(),
        attempt: 1,
    };
    queue.push("default", &msg).await.unwrap();
}

fn claimed(id: &'static str) -> impl Fn(&crate::fake::Seen) -> bool {
    move |s| s.claims.iter().any(|c| c == id)
}

#[tokio::test]
async fn handing_back_kills_the_job_tree_releases_its_lease_and_returns_within_seconds() {
    let dir = TestDir::new("hand-back");
    let fake = Fake::start().await;
    let w = start(&fake, &dir);
    let cgroups = dir.config().isolation() == conveyor_runner::executor::Isolation::Cgroup;
    let scatter = Scatter::new(&dir.path("trace"), cgroups);
    push(
        &w.queue,
        &fake,
        "j1",
        &format!("{}sleep 30", scatter.script()),
    )
    .await;
    scatter.wait_beating(Duration::from_secs(10)).await;
    let (asked, asked_us) = (Instant::now(), now_us());
    w.stop.send(Some(Stop::HandBack)).unwrap();
    tokio::time::timeout(HAND_BACK_WITHIN, w.run)
        .await
        .expect("the worker returns within seconds of a hand-back")
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.releases.len(), 1, "{seen:?}");
    assert_eq!(seen.releases[0], crate::spec("j1", "").lease);
    assert!(
        seen.completions.is_empty(),
        "a handed-back job completed: {seen:?}"
    );
    assert!(asked.elapsed() < HAND_BACK_WITHIN);
    scatter.assert_all_gone_since(asked_us, "handed back").await;
}

#[tokio::test]
async fn draining_lets_the_running_job_finish_and_takes_no_new_one() {
    let dir = TestDir::new("drain");
    let fake = Fake::start().await;
    let w = start(&fake, &dir);
    let done = dir.path("done");
    let script = format!("sleep 0.5\necho finished > {}", done.display());
    push(&w.queue, &fake, "j1", &script).await;
    fake.until("j1 claimed", Duration::from_secs(10), claimed("j1"))
        .await;
    w.stop.send(Some(Stop::Drain)).unwrap();
    push(&w.queue, &fake, "j2", "true").await;
    tokio::time::timeout(Duration::from_secs(10), w.run)
        .await
        .expect("the drained worker returns once its job is done")
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.claims, ["j1"], "a draining worker took a new job");
    assert_eq!(seen.completions.len(), 1, "{seen:?}");
    assert_eq!(seen.completions[0].outcome, Outcome::Succeeded);
    assert!(seen.releases.is_empty(), "{seen:?}");
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "finished\n");
    assert_eq!(
        w.queue.depth("default").await.unwrap(),
        1,
        "j2 is still queued"
    );
}

#[tokio::test]
async fn a_drain_turned_into_a_hand_back_kills_and_releases_the_job() {
    let dir = TestDir::new("drain-then-hand-back");
    let fake = Fake::start().await;
    let w = start(&fake, &dir);
    let scatter = Scatter::new(&dir.path("trace"), false);
    push(
        &w.queue,
        &fake,
        "j1",
        &format!("{}sleep 30", scatter.script()),
    )
    .await;
    scatter.wait_beating(Duration::from_secs(10)).await;
    w.stop.send(Some(Stop::Drain)).unwrap();
    // Draining waits for the job: it keeps beating, unreported.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        scatter.all_alive(),
        "the drain killed the job: {:?}",
        scatter.alive()
    );
    let asked_us = now_us();
    w.stop.send(Some(Stop::HandBack)).unwrap();
    tokio::time::timeout(HAND_BACK_WITHIN, w.run)
        .await
        .expect("the worker returns within seconds of a hand-back")
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.releases.len(), 1, "{seen:?}");
    assert!(seen.completions.is_empty(), "{seen:?}");
    scatter
        .assert_all_gone_since(asked_us, "drain, then hand back")
        .await;
}

/// With its other slot waiting on the queue, a runner's completion asks for the next job,
/// and a job that comes back runs at once in the same slot, unclaimed; once the runner is
/// draining, a completion asks for none.
#[tokio::test]
async fn a_job_a_completion_brings_back_runs_without_a_claim_until_a_drain() {
    let dir = TestDir::new("take-next");
    let fake = Fake::start().await;
    let w = start(&fake, &dir);
    let go = dir.path("go");
    let wait_for_go = format!("while [ ! -e '{}' ]; do sleep 0.01; done", go.display());
    fake.add_next("j1", "j2", "echo two");
    fake.add_next("j2", "j3", &wait_for_go);
    fake.add_next("j3", "j4", "true");
    push(&w.queue, &fake, "j1", "true").await;
    let within = Duration::from_secs(10);
    // j2's completion brings j3 back, which runs until the drain has come.
    fake.until("j2 completes", within, |s| s.completions.len() == 2)
        .await;
    w.stop.send(Some(Stop::Drain)).unwrap();
    std::fs::write(&go, "").unwrap();
    tokio::time::timeout(within, w.run)
        .await
        .expect("the drain ends")
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.claims, ["j1"], "{seen:?}");
    let ended: Vec<(&str, Outcome, bool)> = seen
        .completions
        .iter()
        .map(|c| (c.lease.job_run_id.as_str(), c.outcome, c.take_next))
        .collect();
    assert_eq!(
        ended,
        [
            ("j1", Outcome::Succeeded, true),
            ("j2", Outcome::Succeeded, true),
            ("j3", Outcome::Succeeded, false),
        ]
    );
}

/// A job a completion brings back as the runner begins handing its jobs back is handed
/// straight back, never run.
#[tokio::test]
async fn a_job_a_completion_brings_back_during_a_hand_back_is_handed_back_unrun() {
    let dir = TestDir::new("take-next-hand-back");
    let fake = Fake::start().await;
    let w = start(&fake, &dir);
    let ran = dir.path("ran");
    fake.add_next("j1", "j2", &format!("touch '{}'", ran.display()));
    fake.hold_completions(true);
    push(&w.queue, &fake, "j1", "true").await;
    let within = Duration::from_secs(10);
    fake.until("j1 completes", within, |s| s.completions.len() == 1)
        .await;
    w.stop.send(Some(Stop::HandBack)).unwrap();
    fake.hold_completions(false);
    tokio::time::timeout(HAND_BACK_WITHIN, w.run)
        .await
        .expect("the worker returns within seconds of a hand-back")
        .unwrap();
    let seen = fake.seen();
    assert!(seen.completions[0].take_next, "{seen:?}");
    assert_eq!(seen.releases, [crate::spec("j2", "").lease], "{seen:?}");
    assert_eq!(seen.completions.len(), 1, "{seen:?}");
    assert!(!ran.exists(), "j2 never ran");
}
