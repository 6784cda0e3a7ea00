//! `conveyor-runner` itself, against the fake orchestrator and a queue prefix of its own in
//! the real Redis: killed outright at random moments, its jobs die with it within
//! milliseconds; SIGTERM hands the job back and exits; SIGQUIT drains.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conveyor_core::protocol::{Outcome, QueueMessage};
use conveyor_runner::executor::Isolation;
use conveyor_runner::queue::{Queue, RedisQueue};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::TestDir;
use crate::fake::{Fake, Seen};
use crate::traces::{Scatter, now_us, random_below};

const REDIS: &str = "redis://127.0.0.1:6379";

/// A runner process with a Redis key prefix of its own, both gone when the test ends.
pub(crate) struct Runner {
    pub child: Child,
    prefix: String,
    redis: String,
    queue: RedisQueue,
    log: std::path::PathBuf,
}

/// How a test starts `conveyor-runner`, beyond what every test gives it.
#[derive(Default)]
pub(crate) struct Launch {
    /// Flags after the common ones.
    pub args: Vec<String>,
    /// Variables added to the environment the runner inherits from the test.
    pub env: Vec<(String, String)>,
    /// The Redis URL the runner is given (by `credentials`) and the test pushes to; the
    /// shared Redis when `None`.
    pub redis: Option<String>,
    /// How the runner gets its token and Redis URL: `--redis-url <redis> --token t` when
    /// `None`.
    pub credentials: Option<Vec<String>>,
    /// Run the runner as this uid and gid instead of the test's.
    pub user: Option<(u32, u32)>,
}

impl Runner {
    pub(crate) async fn start(fake: &Fake, dir: &TestDir, extra: &[&str]) -> Runner {
        let args = extra.iter().map(|a| a.to_string()).collect();
        Self::launch(
            fake,
            dir,
            Launch {
                args,
                ..Launch::default()
            },
        )
        .await
    }

    pub(crate) async fn launch(fake: &Fake, dir: &TestDir, launch: Launch) -> Runner {
        use std::os::unix::process::CommandExt as _;
        let prefix = format!("conveyor-lifetime-{}-{}", std::process::id(), now_us());
        let log = dir.path("runner.log");
        let redis = launch.redis.unwrap_or_else(|| REDIS.to_string());
        let credentials = launch.credentials.unwrap_or_else(|| {
            ["--redis-url", &redis, "--token", "t"]
                .map(String::from)
                .to_vec()
        });
        let mut command = Command::new(env!("CARGO_BIN_EXE_conveyor-runner"));
        command
            .args(["--server", &fake.url])
            .args(credentials)
            .args(["--queue-prefix", &prefix, "--concurrency", "2"])
            .args(["--name", &prefix, "--fleet", "default"])
            .arg("--work-dir")
            .arg(dir.path("work"))
            .args(launch.args)
            .envs(launch.env)
            .env("CONVEYOR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("runner log"));
        if let Some((uid, gid)) = launch.user {
            command.uid(uid).gid(gid);
        }
        let child = command.spawn().expect("conveyor-runner starts");
        let queue = RedisQueue::connect(&redis, &prefix)
            .await
            .expect("Redis runs");
        Runner {
            child,
            prefix,
            redis,
            queue,
            log,
        }
    }

    pub(crate) async fn push(&self, fake: &Fake, id: &str, script: &str) {
        fake.add_job(id, script);
        let msg = QueueMessage {
            job_run_id: id.into(),
            attempt: 1,
        };
        self.queue.push("default", &msg).await.expect("pushed");
    }

    pub(crate) fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, sig).expect("the runner is there to signal");
    }

    /// Waits for the runner to exit; panics with its log after `within`.
    pub(crate) async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!("the runner did not exit within {within:?}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the runner's log says `what` (how a test knows a signal was taken in).
    async fn logged(&self, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(what) {
            assert!(
                Instant::now() < deadline,
                "the runner never logged {what:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let Ok(mut conn) =
            redis::Client::open(self.redis.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

pub(crate) fn claimed(id: &'static str) -> impl Fn(&Seen) -> bool {
    move |s| s.claims.iter().any(|c| c == id)
}

pub(crate) fn cgroups() -> bool {
    TestDir::new("probe").config().isolation() == Isolation::Cgroup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_outright_at_any_moment_leaves_no_process_of_its_job() {
    for round in 0..10 {
        // Every other round without cgroups: the guard then finds the job by its cookie.
        let with_cgroups = cgroups() && round % 2 == 0;
        let flags: &[&str] = if with_cgroups {
            &[]
        } else {
            &["--no-job-cgroups"]
        };
        let dir = TestDir::new("sigkill");
        let fake = Fake::start().await;
        let mut runner = Runner::start(&fake, &dir, flags).await;
        let scatter = Scatter::new(&dir.path("trace"), with_cgroups);
        let script = format!("{}sleep 30", scatter.script());
        runner.push(&fake, "j1", &script).await;
        fake.until("j1 claimed", Duration::from_secs(20), claimed("j1"))
            .await;
        // From before the job's bash exists to long after it scattered.
        let delay = random_below(300);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let killed = now_us();
        runner.signal(Signal::SIGKILL);
        runner.exited(Duration::from_secs(5)).await;
        let context =
            format!("round {round} (cgroups: {with_cgroups}): SIGKILL {delay} ms after the claim");
        scatter.assert_all_gone_since(killed, &context).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_the_running_job_back_and_the_runner_exits_within_seconds() {
    let dir = TestDir::new("sigterm");
    let fake = Fake::start().await;
    let mut runner = Runner::start(&fake, &dir, &[]).await;
    let scatter = Scatter::new(&dir.path("trace"), cgroups());
    runner
        .push(&fake, "j1", &format!("{}sleep 30", scatter.script()))
        .await;
    scatter.wait_beating(Duration::from_secs(20)).await;
    let asked = now_us();
    runner.signal(Signal::SIGTERM);
    let status = runner.exited(Duration::from_secs(3)).await;
    assert!(status.success(), "{status}:\n{}", runner.log());
    let seen = fake.seen();
    assert_eq!(seen.releases.len(), 1, "{seen:?}\n{}", runner.log());
    assert_eq!(seen.releases[0], crate::spec("j1", "").lease);
    assert!(seen.completions.is_empty(), "{seen:?}");
    scatter.assert_all_gone_since(asked, "SIGTERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_drains_the_runner_its_job_finishes_and_no_new_job_is_taken() {
    let dir = TestDir::new("sigquit");
    let fake = Fake::start().await;
    let mut runner = Runner::start(&fake, &dir, &[]).await;
    runner.push(&fake, "j1", "sleep 1; echo finished").await;
    fake.until("j1 claimed", Duration::from_secs(20), claimed("j1"))
        .await;
    runner.signal(Signal::SIGQUIT);
    // Only a message pushed after the runner took the signal in must stay unclaimed.
    runner.logged("stopping", Duration::from_secs(5)).await;
    runner.push(&fake, "j2", "true").await;
    let status = runner.exited(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}:\n{}", runner.log());
    let seen = fake.seen();
    assert_eq!(seen.claims, ["j1"], "a draining runner took a new job");
    assert_eq!(seen.completions.len(), 1, "{seen:?}\n{}", runner.log());
    assert_eq!(seen.completions[0].outcome, Outcome::Succeeded);
    assert!(seen.releases.is_empty(), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_term_drain_sigterm_drains_and_a_second_sigterm_hands_back() {
    let dir = TestDir::new("on-term-drain");
    let fake = Fake::start().await;
    let mut runner = Runner::start(&fake, &dir, &["--on-term", "drain"]).await;
    let scatter = Scatter::new(&dir.path("trace"), false);
    runner
        .push(&fake, "j1", &format!("{}sleep 30", scatter.script()))
        .await;
    scatter.wait_beating(Duration::from_secs(20)).await;
    runner.signal(Signal::SIGTERM);
    // Draining: the job lives on and nothing is reported.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        scatter.all_alive(),
        "{:?}\n{}",
        scatter.alive(),
        runner.log()
    );
    assert!(
        runner.child.try_wait().unwrap().is_none(),
        "{}",
        runner.log()
    );
    let asked = now_us();
    runner.signal(Signal::SIGTERM);
    let status = runner.exited(Duration::from_secs(3)).await;
    assert!(status.success(), "{status}:\n{}", runner.log());
    let seen = fake.seen();
    assert_eq!(seen.releases.len(), 1, "{seen:?}");
    assert!(seen.completions.is_empty(), "{seen:?}");
    scatter
        .assert_all_gone_since(asked, "a second SIGTERM")
        .await;
}
