//! The soak: two orchestrators, three runners, builds of many short jobs (0.1–0.5 s, some
//! finishing in a child in a new session), while runners and orchestrators are killed with
//! SIGKILL at random moments and Redis restarts empty. Every job writes `start` and `done`
//! lines with its attempt, its runner's workspace and the time; afterwards every job must
//! have succeeded, no `done` may come from an attempt more than 250 ms after its runner was
//! killed, and a job may finish twice only if the runner of its first finish was killed.
//! `SOAK_SEED` replays a run; `SOAK_SECS` sets how long the faults go on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{self, Proc};
use crate::{Cluster, now_ms};

/// How long after its runner's death an attempt may still write `done`.
const GRACE_MS: i64 = 250;

/// A small, seedable generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The product: `jobs` jobs of 100–500 ms; every third finishes in a child started in a
/// new session, every fourth in a `bash -c` child; later jobs wait for earlier ones.
fn soak_product(log: &Path, jobs: usize, rng: &mut Rng) -> String {
    let mut yaml = format!(
        "product: soak\nenv: {{LOG: '{}'}}\nbelts:\n  - name: b\n    jobs:\n",
        log.display()
    );
    let line = |what: &str| {
        format!(
            "echo \"{what} $CONVEYOR_JOB_RUN_ID $CONVEYOR_ATTEMPT $CONVEYOR_WORKSPACE $(date +%s%3N)\" >> \"$LOG\""
        )
    };
    for i in 0..jobs {
        let secs = format!("0.{}", 1 + rng.below(5));
        let finish = match i % 4 {
            0 => format!("setsid bash -c 'sleep {secs}; {}' & wait", line("done")),
            1 => format!("bash -c 'sleep {secs}; {}'", line("done")),
            _ => format!("sleep {secs}\n{}", line("done")),
        };
        yaml.push_str(&format!("      - name: j{i}\n"));
        if i >= 3 {
            yaml.push_str(&format!("        needs: [j{}]\n", i - 3));
        }
        yaml.push_str("        commands: |\n");
        for l in [line("start"), finish].join("\n").lines() {
            yaml.push_str(&format!("          {l}\n"));
        }
    }
    yaml
}

/// One line a job wrote.
#[derive(Debug, Clone)]
struct Mark {
    done: bool,
    run: String,
    attempt: u32,
    /// The workspace, under the directory of the runner instance that ran the attempt.
    workspace: String,
    at: i64,
}

fn marks(log: &Path) -> Vec<Mark> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some(Mark {
                done: *f.first()? == "done",
                run: f.get(1)?.to_string(),
                attempt: f.get(2)?.parse().ok()?,
                workspace: f.get(3)?.to_string(),
                at: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}

/// Runners as they come and go: each instance has a work directory of its own, so a
/// job's workspace says which instance ran it.
struct Runners {
    live: Vec<(PathBuf, Proc)>,
    /// Work directory of each killed instance → when it was killed (ms).
    killed: HashMap<String, i64>,
    made: usize,
}

impl Runners {
    fn start(&mut self, c: &Cluster, servers: &[&str]) {
        self.made += 1;
        let name = format!("soak-{}", self.made);
        let work = c.dir.join(format!("work-{name}"));
        self.live.push((work, c.runner(&name, servers)));
    }

    fn kill(&mut self, i: usize) {
        let (work, mut proc) = self.live.remove(i);
        proc.0.kill().expect("kill runner");
        let at = now_ms();
        let _ = proc.0.wait();
        self.killed.insert(work.display().to_string(), at);
    }

    fn killed_at(&self, workspace: &str) -> Option<i64> {
        self.killed
            .iter()
            .find(|(dir, _)| workspace.starts_with(&format!("{dir}/")))
            .map(|(_, at)| *at)
    }
}

/// The violations among the marks: late `done`s of killed runners' attempts, and second
/// `done`s whose first was not a killed runner's.
fn violations(all: &[Mark], runners: &Runners) -> Vec<String> {
    let mut out = Vec::new();
    let mut dones: HashMap<&str, Vec<&Mark>> = HashMap::new();
    for m in all.iter().filter(|m| m.done) {
        if let Some(killed) = runners.killed_at(&m.workspace)
            && m.at > killed + GRACE_MS
        {
            out.push(format!(
                "{} attempt {} wrote done {} ms after its runner was killed",
                m.run,
                m.attempt,
                m.at - killed
            ));
        }
        dones.entry(&m.run).or_default().push(m);
    }
    for (run, mut list) in dones {
        list.sort_by_key(|m| m.at);
        for pair in list.windows(2) {
            if runners.killed_at(&pair[0].workspace).is_none() {
                out.push(format!(
                    "{run} finished twice (attempts {} and {}) though the first's runner lived",
                    pair[0].attempt, pair[1].attempt
                ));
            }
        }
    }
    out
}

/// A number from the environment, else `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The soak's cluster as it runs: Redis, two orchestrators on fixed ports, the runners.
struct Soak {
    c: Cluster,
    redis_port: u16,
    redis: Proc,
    ports: [u16; 2],
    nodes: Vec<Proc>,
    urls: Vec<String>,
    runners: Runners,
}

impl Soak {
    async fn start() -> Soak {
        let redis_port = common::free_port();
        let redis = Proc(common::start_redis(redis_port));
        let c = Cluster::new(&format!("redis://127.0.0.1:{redis_port}")).await;
        let ports = [common::free_port(), common::free_port()];
        let mut nodes = Vec::new();
        for port in ports {
            nodes.push(c.serve_on(port).await);
        }
        let urls = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let runners = Runners {
            live: Vec::new(),
            killed: HashMap::new(),
            made: 0,
        };
        let mut soak = Soak {
            c,
            redis_port,
            redis,
            ports,
            nodes,
            urls,
            runners,
        };
        for _ in 0..3 {
            soak.start_runner();
        }
        soak
    }

    fn start_runner(&mut self) {
        let servers: Vec<&str> = self.urls.iter().map(String::as_str).collect();
        self.runners.start(&self.c, &servers);
    }

    /// One fault, chosen at random: a runner (most often), an orchestrator, or Redis.
    async fn fault(&mut self, rng: &mut Rng) -> &'static str {
        match rng.below(10) {
            0..=5 => {
                let i = rng.below(self.runners.live.len() as u64) as usize;
                self.runners.kill(i);
                self.start_runner();
                "runner"
            }
            6..=7 => {
                let i = rng.below(2) as usize;
                self.nodes[i].0.kill().expect("kill orchestrator");
                let _ = self.nodes[i].0.wait();
                tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
                self.nodes[i] = self.c.serve_on(self.ports[i]).await;
                "orchestrator"
            }
            _ => {
                self.redis.0.kill().expect("kill redis");
                let _ = self.redis.0.wait();
                self.redis = Proc(common::start_redis(self.redis_port));
                "redis"
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_of_short_jobs_under_random_kills_runs_every_job_exactly_once() {
    let _serial = crate::SERIAL.lock().await;
    let seed = env_or("SOAK_SEED", now_ms() as u64 | 1);
    let secs = env_or("SOAK_SECS", 40);
    eprintln!("soak seed {seed} (replay with SOAK_SEED={seed}), faults for {secs} s");
    let mut rng = Rng(seed);
    let mut soak = Soak::start().await;
    let log = soak.c.dir.join("marks");
    let first = soak.urls[0].clone();
    soak.c
        .product(&first, &soak_product(&log, 12, &mut rng))
        .await;
    let mut builds = Vec::new();
    for _ in 0..8 {
        builds.push(soak.c.build(&first, "soak", "b").await);
    }
    let faults_end = Instant::now() + Duration::from_secs(secs);
    let mut faults = Vec::new();
    while Instant::now() < faults_end {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1300))).await;
        faults.push(soak.fault(&mut rng).await);
        if rng.below(4) == 0 {
            builds.push(soak.c.build(&first, "soak", "b").await);
        }
    }
    eprintln!(
        "soak: {} faults: {faults:?}; {} builds",
        faults.len(),
        builds.len()
    );
    check(&soak, &builds, &log, seed).await;
}

/// Every build succeeded, every job finished, and no attempt broke the rules.
async fn check(soak: &Soak, builds: &[String], log: &Path, seed: u64) {
    let dir = soak.c.dir.display();
    for id in builds {
        let limit = Duration::from_secs(180);
        let b = soak.c.finished_within(&soak.urls[1], id, limit).await;
        assert_eq!(b["status"], "succeeded", "seed {seed}: {b}\nlogs in {dir}");
    }
    // Anything a dead runner left running would write now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = marks(log);
    let finished: std::collections::HashSet<&str> = all
        .iter()
        .filter(|m| m.done)
        .map(|m| m.run.as_str())
        .collect();
    assert_eq!(
        finished.len(),
        builds.len() * 12,
        "seed {seed}: every job finished"
    );
    let bad = violations(&all, &soak.runners);
    assert!(
        bad.is_empty(),
        "seed {seed}: {} violations:\n{}\nlogs in {dir}",
        bad.len(),
        bad.join("\n")
    );
}
