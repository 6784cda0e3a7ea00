//! A million-line log with flat memory. The lines are stored straight through the store, as
//! a runner's batches would be (1,000 a batch), on SQLite; then a real `conveyor serve` reads
//! the log every way there is — `log.txt`, Conveyor CI's `/logs?runid=`, a search followed
//! to its end, four of those at once, then ranges both ways — and its peak resident memory
//! (VmHWM) is read from `/proc`. After a 1,000,000-line log it must stay within a bound of
//! the peak after a 100,000-line one: the 900,000 lines between them are over 50 MB of text,
//! so a read that held the log would pass it.

use std::collections::BTreeMap;
use std::time::Instant;

use conveyor_core::protocol::{
    ClaimRequest, Completion, Lease, LogBatch, LogLine, Outcome, Stream,
};
use conveyor_store::{BuildTrigger, NewBuild, Owner};
use serde_json::Value;

use crate::common::{self, Proc};
use crate::{ADMIN, Cluster};

/// How much the peak may grow from the small log to the big one, in MB.
const GROWTH_MB: u64 = 30;

const ONE_JOB: &str =
    "product: big\nbelts:\n  - name: b\n    jobs:\n      - name: talk\n        commands: 'true'\n";

/// Line `n`: about 55 bytes, one in 100,000 with a needle.
fn text(n: usize) -> String {
    if n % 100_000 == 7 {
        format!("line {n}: a NEEDLE in the log")
    } else {
        format!("line {n}: the quick brown fox jumps over the lazy dog")
    }
}

/// Lines `1 ..= lines` under `lease`, 1,000 a batch.
async fn append(store: &dyn conveyor_store::Store, lease: &Lease, lines: usize) {
    for (seq, from) in (1..=lines).step_by(1000).enumerate() {
        let lines = (from..from + 1000)
            .map(|n| LogLine {
                stream: Stream::Stdout,
                text: text(n),
                at: Some(1_000 + n as i64),
                labels: Default::default(),
            })
            .collect();
        let batch = LogBatch {
            lease: lease.clone(),
            seq: seq as u64,
            lines,
        };
        assert!(
            store
                .append_logs(&batch, "seed", u64::MAX, 4)
                .await
                .unwrap()
        );
    }
}

/// Stores a finished build of one job whose log has `lines` lines; its build and job run.
async fn seed(url: &str, lines: usize) -> (String, String) {
    let store = conveyor_store::open(url).await.unwrap();
    store
        .put_product(&common::product(ONE_JOB), 1)
        .await
        .unwrap();
    let new = NewBuild {
        product: "big".into(),
        belt: "b".into(),
        trigger: BuildTrigger::Manual,
        git_ref: None,
        sha: None,
        model: None,
        resource: None,
        context: None,
    };
    let (build, _) = store.create_build(&new, 2).await.unwrap();
    let job = store.build(&build).await.unwrap().unwrap().jobs[0]
        .id
        .clone();
    let owner = Owner {
        name: "seed".into(),
        fleets: vec!["default".into()],
    };
    let req = ClaimRequest {
        job_run_id: job.clone(),
        attempt: 1,
        runner: "seed".into(),
    };
    let lease = store
        .claim(&req, &owner, 3_600_000, 3)
        .await
        .unwrap()
        .unwrap()
        .spec
        .lease;
    append(&*store, &lease, lines).await;
    let done = Completion {
        lease,
        outcome: Outcome::Succeeded,
        exit_code: Some(0),
        outputs: BTreeMap::new(),
        error: None,
    };
    store.complete(&done, "seed", 5).await.unwrap().unwrap();
    (build, job)
}

/// The bytes of a database file and its write-ahead log.
fn db_bytes(path: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// A process's peak resident memory, in MB.
fn peak_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

/// How often `needle` occurs in the streamed body of `GET url`.
async fn count_in_stream(c: &Cluster, url: &str, needle: &[u8]) -> usize {
    let mut res = c.http.get(url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let (mut count, mut carry) = (0, Vec::new());
    while let Some(chunk) = res.chunk().await.unwrap() {
        carry.extend_from_slice(&chunk);
        count += carry.windows(needle.len()).filter(|w| *w == needle).count();
        let keep = carry.len().saturating_sub(needle.len() - 1);
        carry.drain(..keep);
    }
    count
}

async fn get(c: &Cluster, url: &str) -> Value {
    let res = c.http.get(url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.json().await.unwrap()
}

/// Follows a search for the needle from the start to its end; the lines it found.
async fn search_all(c: &Cluster, base: &str, job: &str) -> Vec<i64> {
    let (mut found, mut after) = (Vec::new(), 0);
    loop {
        let url = format!("{base}/api/v1/job-runs/{job}/logs/search?q=needle&after={after}");
        let page = get(c, &url).await;
        found.extend(
            page["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_i64().unwrap()),
        );
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => return found,
        }
    }
}

/// Reads the log every way, checking what comes back; the server's peak memory after.
async fn read_everything(
    c: &Cluster,
    serve: &Proc,
    base: &str,
    ids: &(String, String),
    n: usize,
) -> u64 {
    let (build, job) = ids;
    let txt = format!("{base}/jobs/{job}/log.txt");
    let compat = format!("{base}/logs?runid={build}");
    let (a, b, d, found) = tokio::join!(
        count_in_stream(c, &txt, b"\n"),
        count_in_stream(c, &txt, b"quick brown"),
        count_in_stream(c, &compat, b"\"message\":"),
        search_all(c, base, job),
    );
    assert_eq!((a, b, d), (n, n - n / 100_000, n));
    let needles: Vec<i64> = (0..n / 100_000).map(|k| (k * 100_000 + 7) as i64).collect();
    assert_eq!(found, needles);
    let logs = format!("{base}/api/v1/job-runs/{job}/logs");
    for after in (0..n).step_by(n / 10) {
        let page = get(c, &format!("{logs}?after={after}&limit=10000")).await;
        assert_eq!(page["total"], n);
        assert_eq!(page["lines"][0]["id"], after + 1);
        assert_eq!(page["lines"][9999]["text"], text(after + 10_000));
    }
    let tail = get(c, &format!("{logs}?before={}&limit=10000", n + 100)).await;
    assert_eq!(tail["lines"][9999]["id"], n);
    assert_eq!(tail["lines"][9999]["at"], 1_000 + n);
    peak_mb(serve.0.id())
}

/// Seeds a log of `n` lines, serves it and reads it; the peak memory and the database's
/// size.
async fn measure(n: usize) -> (u64, u64) {
    let dir = common::temp_dir("big-log");
    let path = dir.join("conveyor.db");
    let url = format!("sqlite://{}", path.display());
    let started = Instant::now();
    let ids = seed(&url, n).await;
    let seeded = started.elapsed();
    let size = db_bytes(&path);
    let c = Cluster {
        db: url,
        redis: "redis://127.0.0.1:6379".into(),
        prefix: format!("conveyor-big-{}", uuid::Uuid::now_v7().simple()),
        dir,
        http: common::http(),
    };
    let port = common::free_port();
    let serve = c.serve_with(port, &["--public-ui"], &[]).await;
    let base = format!("http://127.0.0.1:{port}");
    let peak = read_everything(&c, &serve, &base, &ids, n).await;
    eprintln!(
        "{n} lines: seeded in {:.1} s, database {:.1} MB ({:.1} MB per 300k lines), serve's peak RSS {peak} MB after reading it (read in {:.1} s)",
        seeded.as_secs_f64(),
        size as f64 / 1e6,
        size as f64 / 1e6 * 300_000.0 / n as f64,
        (started.elapsed() - seeded).as_secs_f64()
    );
    (peak, size)
}

#[tokio::test]
async fn a_million_line_log_is_served_every_way_with_flat_memory() {
    let (small, _) = measure(100_000).await;
    let (big, _) = measure(1_000_000).await;
    assert!(
        big <= small + GROWTH_MB,
        "serve's peak grew from {small} MB (100k lines) to {big} MB (1M lines)"
    );
}
