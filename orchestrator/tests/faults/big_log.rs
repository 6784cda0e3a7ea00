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
        log: Vec::new(),
        take_next: false,
    };
    store.complete(&done, "seed", 5).await.unwrap().unwrap();
    (build, job)
}

/// The bytes the log takes: on SQLite the whole file (the log is nearly all of it, the
/// write-ahead log checkpointed first), on Postgres the chunk table with its index and
/// TOAST.
async fn log_bytes(url: &str) -> u64 {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let checkpoint = sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)");
        checkpoint.execute(&pool).await.unwrap();
        pool.close().await;
        return std::fs::metadata(path).unwrap().len();
    }
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let size = sqlx::query_scalar("SELECT pg_total_relation_size('log_chunks')");
    let bytes: i64 = size.fetch_one(&pool).await.unwrap();
    pool.close().await;
    bytes as u64
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

/// How often each of `needles` occurs in the streamed body of `GET url`.
async fn count_in_stream(c: &Cluster, url: &str, needles: &[&[u8]]) -> Vec<usize> {
    let mut res = c.http.get(url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let longest = needles.iter().map(|n| n.len()).max().unwrap_or(1);
    let (mut counts, mut carry) = (vec![0; needles.len()], Vec::new());
    while let Some(chunk) = res.chunk().await.unwrap() {
        carry.extend_from_slice(&chunk);
        for (count, needle) in counts.iter_mut().zip(needles) {
            // Each occurrence is counted once: where it ends within this chunk.
            let seen = carry.len() - chunk.len();
            *count += carry
                .windows(needle.len())
                .enumerate()
                .filter(|(i, w)| w == needle && i + needle.len() > seen)
                .count();
        }
        let keep = carry.len().saturating_sub(longest - 1);
        carry.drain(..keep);
    }
    counts
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

/// Pages of 10,000 lines at ten places, and the tail.
async fn ranges(c: &Cluster, base: &str, job: &str, n: usize) {
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
}

/// Reads the log every way at once, checking what comes back; the server's peak memory
/// after.
async fn read_everything(
    c: &Cluster,
    serve: &Proc,
    base: &str,
    (build, job): &(String, String),
    n: usize,
) -> u64 {
    let txt = format!("{base}/jobs/{job}/log.txt");
    let compat = format!("{base}/logs?runid={build}");
    let (text, compat, found, ()) = tokio::join!(
        count_in_stream(c, &txt, &[b"\n", b"quick brown"]),
        count_in_stream(c, &compat, &[b"\"message\":"]),
        search_all(c, base, job),
        ranges(c, base, job, n),
    );
    assert_eq!((text, compat), (vec![n, n - n / 100_000], vec![n]));
    let needles: Vec<i64> = (0..n / 100_000).map(|k| (k * 100_000 + 7) as i64).collect();
    assert_eq!(found, needles);
    peak_mb(serve.0.id())
}

/// Seeds a log of `n` lines on SQLite or (`pg`) Postgres, serves it and reads it; the
/// server's peak memory.
async fn measure(n: usize, pg: bool) -> u64 {
    let dir = common::temp_dir("big-log");
    let url = if pg {
        common::fresh_pg_url().await
    } else {
        format!("sqlite://{}", dir.join("conveyor.db").display())
    };
    let started = Instant::now();
    let ids = seed(&url, n).await;
    let seeded = started.elapsed();
    let size = log_bytes(&url).await as f64 / 1e6;
    let c = Cluster {
        db: url,
        redis: "redis://127.0.0.1:6379".into(),
        prefix: format!("conveyor-big-{}", uuid::Uuid::now_v7().simple()),
        dir: dir.clone(),
        http: common::http(),
    };
    let port = common::free_port();
    let serve = c.serve_with(port, &["--public-ui"], &[]).await;
    let base = format!("http://127.0.0.1:{port}");
    let read = Instant::now();
    let peak = read_everything(&c, &serve, &base, &ids, n).await;
    eprintln!(
        "{} {n} lines: seeded in {:.1} s, log {size:.1} MB ({:.1} MB per 300k lines), \
         serve's peak RSS {peak} MB after reading it (read in {:.1} s)",
        if pg { "postgres" } else { "sqlite" },
        seeded.as_secs_f64(),
        size * 300_000.0 / n as f64,
        read.elapsed().as_secs_f64()
    );
    drop(serve);
    // The database is large; the server's log stays when the test fails.
    std::fs::remove_dir_all(&dir).unwrap();
    peak
}

/// The peak after a 1M-line log stays within [`GROWTH_MB`] of the peak after a 100k one.
async fn flat(pg: bool) {
    let small = measure(100_000, pg).await;
    let big = measure(1_000_000, pg).await;
    assert!(
        big <= small + GROWTH_MB,
        "serve's peak grew from {small} MB (100k lines) to {big} MB (1M lines)"
    );
}

#[tokio::test]
async fn a_million_line_log_is_served_every_way_with_flat_memory_on_sqlite() {
    flat(false).await;
}

#[tokio::test]
async fn a_million_line_log_is_served_every_way_with_flat_memory_on_postgres() {
    flat(true).await;
}
