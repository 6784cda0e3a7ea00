//! A job's log in chunks: lines numbered across attempts, read back by range across chunk
//! borders, a batch sent twice stored once, the cap's marker numbered like any line, a
//! bounded search continued by its `next` cursor; and the migration that moves lines stored
//! one row each into chunks; the lines a completion carries stored with it, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conveyor_core::protocol::{JobSpec, LogBatch, LogLine, Outcome, Stream};
use conveyor_store::{LogSearch, SEARCH_SCAN_LINES, Store, truncation_marker};

use crate::flow::*;

fn line(text: String) -> LogLine {
    LogLine {
        stream: Stream::Stdout,
        text,
        at: None,
        labels: Default::default(),
    }
}

/// Batch `seq` of lines `prefix N` for `ns`.
fn batch(spec: &JobSpec, seq: u64, prefix: &str, ns: std::ops::Range<usize>) -> LogBatch {
    LogBatch {
        lease: spec.lease.clone(),
        seq,
        lines: ns.map(|n| line(format!("{prefix} {n}"))).collect(),
    }
}

async fn append(store: &Arc<dyn Store>, b: &LogBatch, cap: u64) {
    assert!(store.append_logs(b, RUNNER, cap, 11).await.unwrap());
}

fn texts(rows: &[conveyor_store::LogRow]) -> Vec<(i64, String)> {
    rows.iter().map(|r| (r.id, r.text.clone())).collect()
}

/// A job run of a fresh `shop` build, claimed at attempt 1.
async fn claimed(store: &Arc<dyn Store>) -> (String, JobSpec) {
    setup(store).await;
    let (b, _) = store.create_build(&manual("shop", "ci"), 5).await.unwrap();
    let id = run_id(store, &b, "lint").await;
    let spec = claim(store, &id, 1).await.unwrap();
    (id, spec)
}

pub async fn log_lines_are_numbered_across_attempts_and_read_by_range_across_chunks(
    store: Arc<dyn Store>,
) {
    let (id, spec) = claimed(&store).await;
    assert_eq!(store.log_total(&id).await.unwrap(), 0);
    assert!(store.logs(&id, 0, 10).await.unwrap().is_empty());
    assert!(store.log_tail(&id, None, 10).await.unwrap().is_empty());
    // 2,500 lines in one batch: chunks of 1,000, 1,000 and 500.
    let big = batch(&spec, 0, "a", 1..2501);
    append(&store, &big, NO_CAP).await;
    append(&store, &big, NO_CAP).await;
    assert_eq!(store.log_total(&id).await.unwrap(), 2500, "stored once");
    let mut with_time = batch(&spec, 1, "b", 1..3);
    with_time.lines[0].at = Some(1234);
    append(&store, &with_time, NO_CAP).await;
    let across = store.logs(&id, 998, 5).await.unwrap();
    let want: Vec<_> = (999..=1003).map(|n| (n, format!("a {n}"))).collect();
    assert_eq!(texts(&across), want, "across a chunk border");
    let to_end = store.logs(&id, 2499, 10).await.unwrap();
    assert_eq!(
        texts(&to_end),
        [
            (2500, "a 2500".into()),
            (2501, "b 1".into()),
            (2502, "b 2".into())
        ]
    );
    assert_eq!(
        (to_end[1].at, to_end[2].at),
        (1234, 11),
        "its own time, else now"
    );
    let tail = store.log_tail(&id, Some(2002), 3).await.unwrap();
    assert_eq!(
        texts(&tail),
        [
            (1999, "a 1999".into()),
            (2000, "a 2000".into()),
            (2001, "a 2001".into())
        ]
    );
    let last = store.log_tail(&id, Some(1_000_000), 2).await.unwrap();
    assert_eq!(texts(&last), [(2501, "b 1".into()), (2502, "b 2".into())]);
    assert!(store.logs(&id, 2502, 10).await.unwrap().is_empty());
    assert_eq!(store.log_tail(&id, Some(1), 10).await.unwrap().len(), 0);
    assert_eq!(store.logs(&id, 0, 10_000).await.unwrap().len(), 2502);
    a_retry_continues_the_numbering(&store, &id, &spec).await;
}

/// After 2,502 lines of attempt 1: a retry's lines continue the numbering; its log (and
/// cap) is its own.
async fn a_retry_continues_the_numbering(store: &Arc<dyn Store>, id: &str, spec: &JobSpec) {
    let (store, id) = (store.clone(), id.to_string());
    store.release(&spec.lease, RUNNER, 3, 12).await.unwrap();
    let again = claim(&store, &id, 2).await.unwrap();
    append(&store, &batch(&again, 0, "c", 1..4), 8).await;
    let second = store.logs(&id, 2502, 10).await.unwrap();
    assert_eq!(
        second
            .iter()
            .map(|r| (r.id, r.attempt, r.text.as_str()))
            .collect::<Vec<_>>(),
        [
            (2503, 2, "c 1"),
            (2504, 2, "c 2"),
            (2505, 2, truncation_marker(8).as_str())
        ],
        "the marker is a line of its own"
    );
    append(&store, &batch(&again, 1, "d", 1..3), 8).await;
    assert_eq!(store.log_total(&id).await.unwrap(), 2505, "past the cap");
    assert_eq!(store.log_total("nope").await.unwrap(), 0);
}

/// A search for `text`/`kind` after `after`, `limit` matches at most.
fn search(text: Option<&str>, kind: Option<&str>, after: i64, limit: u32) -> LogSearch {
    LogSearch {
        text: text.map(str::to_string),
        kind: kind.map(str::to_string),
        after,
        limit,
    }
}

/// `size` lines `hay N`, but for needles at lines 10, 20 and just past the first stretch a
/// search reads; line 20 is labelled an error.
async fn needles(store: &Arc<dyn Store>, spec: &JobSpec, size: usize) {
    let scan = SEARCH_SCAN_LINES as usize;
    for (seq, from) in (1..=size).step_by(2000).enumerate() {
        let mut b = batch(spec, seq as u64, "hay", from..(from + 2000).min(size + 1));
        for l in &mut b.lines {
            let n: usize = l.text[4..].parse().unwrap();
            if n == 10 || n == 20 || n == scan + 7 {
                l.text = format!("a NeEdLe at {n}");
            }
            if n == 20 {
                l.labels.insert("kind".into(), "error".into());
            }
        }
        append(store, &b, NO_CAP).await;
    }
}

pub async fn a_completions_lines_are_stored_with_it_once_and_not_when_fenced(
    store: Arc<dyn Store>,
) {
    let (id, spec) = claimed(&store).await;
    append(&store, &batch(&spec, 0, "a", 1..2), 12).await;
    let mut c = done(&spec, Outcome::Succeeded, &[]);
    c.log = vec![line("$ true".into()), line("$ : quiet".into())];
    let fenced = store.complete_logged(&c, "thief", 12, 12).await.unwrap();
    assert!(fenced.is_none());
    assert_eq!(
        store.log_total(&id).await.unwrap(),
        1,
        "fenced: nothing stored"
    );
    let done_once = store.complete_logged(&c, RUNNER, 12, 13).await.unwrap();
    assert!(done_once.is_some());
    let again = store.complete_logged(&c, RUNNER, 12, 14).await.unwrap();
    assert!(again.is_none(), "a retried completion is fenced");
    let rows = store.logs(&id, 0, 10).await.unwrap();
    assert_eq!(
        texts(&rows),
        [
            (1, "a 1".into()),
            (2, "$ true".into()),
            (3, truncation_marker(12))
        ],
        "after the shipped lines, once, within the attempt's cap"
    );
    let view = store.build(&spec.build_id).await.unwrap().unwrap();
    let lint = view.jobs.iter().find(|j| j.id == id).unwrap();
    assert_eq!(lint.status, "succeeded");
}

/// A late completion of an attempt that was handed back, its lines in hand, after the next
/// attempt stored lines of its own: fenced out, with nothing of it stored and no error.
pub async fn a_lost_attempts_late_completion_with_lines_is_fenced_out(store: Arc<dyn Store>) {
    let (id, spec) = claimed(&store).await;
    append(&store, &batch(&spec, 0, "a", 1..3), NO_CAP).await;
    store.release(&spec.lease, RUNNER, 3, 12).await.unwrap();
    let again = claim(&store, &id, 2).await.unwrap();
    append(&store, &batch(&again, 0, "b", 1..4), NO_CAP).await;
    let mut late = done(&spec, Outcome::Succeeded, &[]);
    late.log = vec![line("$ late".into())];
    let fenced = store.complete_logged(&late, RUNNER, NO_CAP, 13).await;
    assert!(fenced.unwrap().is_none());
    let rows = store.logs(&id, 0, 10).await.unwrap();
    let want: Vec<(i64, String)> = [(1, "a 1"), (2, "a 2"), (3, "b 1"), (4, "b 2"), (5, "b 3")]
        .map(|(n, t)| (n, t.to_string()))
        .into();
    assert_eq!(texts(&rows), want);
}

pub async fn a_search_reads_a_bounded_stretch_and_continues_from_its_next_line(
    store: Arc<dyn Store>,
) {
    let (id, spec) = claimed(&store).await;
    let scan = SEARCH_SCAN_LINES as usize;
    let size = scan + scan / 2;
    needles(&store, &spec, size).await;
    let found = store
        .search_log(&id, &search(Some("needle"), None, 0, 100))
        .await
        .unwrap();
    let ids: Vec<_> = found.matches.iter().map(|m| m.id).collect();
    assert_eq!(ids, [10, 20], "ignoring case, within the first stretch");
    assert_eq!(found.matches[0].text, "a NeEdLe at 10");
    let next = found.next.expect("more to read");
    assert!(next >= SEARCH_SCAN_LINES && next < size as i64);
    let rest = store
        .search_log(&id, &search(Some("NEEDLE"), None, next, 100))
        .await
        .unwrap();
    let ids: Vec<_> = rest.matches.iter().map(|m| m.id).collect();
    assert_eq!(
        (ids, rest.next),
        (vec![scan as i64 + 7], None),
        "to the end"
    );
    let one = store
        .search_log(&id, &search(Some("needle"), None, 0, 1))
        .await
        .unwrap();
    assert_eq!((one.matches.len(), one.next), (1, Some(10)), "a full page");
    let errors = store
        .search_log(&id, &search(None, Some("error"), 10, 100))
        .await
        .unwrap();
    assert_eq!(
        errors.matches.iter().map(|m| m.id).collect::<Vec<_>>(),
        [20]
    );
    let both = store
        .search_log(&id, &search(Some("at 1"), Some("error"), 0, 100))
        .await
        .unwrap();
    assert!(both.matches.is_empty(), "text and kind must both match");
    let past = store
        .search_log(&id, &search(Some("hay"), None, size as i64 + 5, 100))
        .await
        .unwrap();
    assert_eq!((past.matches.len(), past.next), (0, None));
}

/// Lines stored one row each, as the schema before 0015 did: two job runs, two attempts,
/// batches whose rows have consecutive ids.
const OLD_ROWS: &str = "INSERT INTO log_lines \
    (job_run_id, attempt, seq, line_no, stream, text, at, labels) VALUES \
    ('j1', 1, 0, 0, 'stdout', 'one', 100, NULL), \
    ('j1', 1, 0, 1, 'stderr', 'two', 101, '{\"kind\":\"command\"}'), \
    ('j2', 1, 0, 0, 'stdout', 'other job', 102, NULL), \
    ('j1', 1, 1, 0, 'stdout', 'three', 103, NULL), \
    ('j1', 2, 0, 0, 'system', 'again', 104, NULL)";

/// The migrations before 0015 of `backend`.
async fn old_migrations(backend: &str) -> sqlx::migrate::Migrator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut old = sqlx::migrate::Migrator::new(path).await.unwrap();
    let before: Vec<_> = old
        .migrations
        .iter()
        .filter(|m| m.version < 15)
        .cloned()
        .collect();
    old.migrations = before.into();
    old
}

/// The lines of one job run, as the old rows had them, numbered from 1.
async fn moved_into_chunks(store: Arc<dyn Store>) {
    let rows = store.logs("j1", 0, 100).await.unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.id, r.attempt, r.stream.as_str(), r.text.as_str(), r.at))
        .collect();
    assert_eq!(
        got,
        [
            (1, 1, "stdout", "one", 100),
            (2, 1, "stderr", "two", 101),
            (3, 1, "stdout", "three", 103),
            (4, 2, "system", "again", 104)
        ]
    );
    assert_eq!(rows[1].labels["kind"], "command");
    assert!(rows[0].labels.is_empty());
    assert_eq!(store.log_total("j2").await.unwrap(), 1);
    assert_eq!(
        store.log_tail("j1", Some(3), 1).await.unwrap()[0].text,
        "two"
    );
}

#[tokio::test]
async fn sqlite_lines_stored_one_row_each_move_into_chunks() {
    let dir = conveyor_store::testing::temp_dir("migrate");
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    old_migrations("sqlite").await.run(&pool).await.unwrap();
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(OLD_ROWS));
    rows.execute(&pool).await.unwrap();
    pool.close().await;
    moved_into_chunks(conveyor_store::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_lines_stored_one_row_each_move_into_chunks() {
    let url = conveyor_store::testing::fresh_pg_url().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    old_migrations("postgres").await.run(&pool).await.unwrap();
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(OLD_ROWS));
    rows.execute(&pool).await.unwrap();
    pool.close().await;
    moved_into_chunks(conveyor_store::open(&url).await.unwrap()).await;
}

/// A size row from before the line counter (migration 0019) has none: the next batch reads
/// the last chunk instead, and numbers its lines after it; the row keeps the count from then.
async fn a_size_row_without_the_line_counter(store: Arc<dyn Store>, forget: &str) -> Vec<i64> {
    let (id, spec) = claimed(&store).await;
    append(&store, &batch(&spec, 0, "a", 1..4), NO_CAP).await;
    forget_counters(forget).await;
    append(&store, &batch(&spec, 1, "b", 1..3), NO_CAP).await;
    append(&store, &batch(&spec, 2, "c", 1..2), NO_CAP).await;
    let rows = store.logs(&id, 0, 100).await.unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["a 1", "a 2", "a 3", "b 1", "b 2", "c 1"]);
    rows.iter().map(|r| r.id).collect()
}

/// Empties every size row's line counter in the database at `url`.
async fn forget_counters(url: &str) {
    let forget = sqlx::raw_sql("UPDATE log_sizes SET last_line = NULL");
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        assert_eq!(forget.execute(&pool).await.unwrap().rows_affected(), 1);
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        assert_eq!(forget.execute(&pool).await.unwrap().rows_affected(), 1);
    }
}

#[tokio::test]
async fn sqlite_a_size_row_without_the_line_counter_numbers_after_the_last_line() {
    let dir = conveyor_store::testing::temp_dir("counter");
    let url = format!("sqlite://{}/c.db", dir.display());
    let store = conveyor_store::open(&url).await.unwrap();
    let ids = a_size_row_without_the_line_counter(store, &url).await;
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn postgres_a_size_row_without_the_line_counter_numbers_after_the_last_line() {
    let url = conveyor_store::testing::fresh_pg_url().await;
    let store = conveyor_store::open(&url).await.unwrap();
    let ids = a_size_row_without_the_line_counter(store, &url).await;
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
}
