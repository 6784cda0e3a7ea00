//! The job page's log viewer in a real browser, on a 100,000-line log written straight
//! through the runner protocol's services (a `driver: feed` job this test claims): it opens
//! at the tail, scrolls and jumps a range at a time with a bounded number of lines in the
//! page, searches on the server, links to a line, jumps to the first error, folds command
//! sections with their durations and remembers the times toggle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use conveyor::http::dashboard::log::WINDOW_LINES;
use conveyor::services::runs;
use conveyor::store::Owner;
use conveyor_core::protocol::{ClaimRequest, Completion, LogBatch, LogLine, Outcome, Stream};
use serde_json::{Value, json};

use crate::in_browser::ONE_BROWSER;
use crate::ui_support::browser::{ACCESSIBILITY, FITS};
use crate::ui_support::{Browser, Conveyor, conveyor};

/// Lines in the long log.
const LINES: i64 = 100_000;
/// A command starts a section every this many lines.
const SECTION: i64 = 10_000;
/// The line that holds the searched text, and the failing line.
const NEEDLE: i64 = 42_000;
const FAILURE: i64 = LINES - 1;

const FED: &str = "product: fed
belts:
  - name: ci
    jobs:
      - name: huge
        driver: feed
";

/// Line `n` of a log with a command every `section` lines, 10 ms apart from `base`.
fn line(n: i64, section: i64, base: i64) -> LogLine {
    let mut labels = BTreeMap::new();
    let (stream, text) = if n % section == 1 {
        let part = n / section;
        labels.insert("kind".to_string(), "command".to_string());
        labels.insert("source".to_string(), format!(".conveyor.yml:{}", 10 + part));
        (Stream::System, format!("$ make part-{part}"))
    } else if n == FAILURE {
        labels.insert("kind".to_string(), "error".to_string());
        labels.insert("source".to_string(), ".conveyor.yml:19".to_string());
        (
            Stream::System,
            "✗ `make part-9` failed with exit status 2 (.conveyor.yml:19)".to_string(),
        )
    } else if n == NEEDLE {
        (Stream::Stdout, format!("found the Needle-{n} here"))
    } else {
        (Stream::Stdout, format!("output line {n}"))
    };
    LogLine {
        stream,
        text,
        labels,
        at: Some(base + n * 10),
    }
}

/// Starts the `fed` build, claims its job as a driver would and writes `count` lines to it
/// (a command every `section`), then fails it; the job run's id.
async fn failed_job(c: &Conveyor, count: i64, section: i64) -> String {
    let build = c.build("fed", "ci").await;
    let job = c.job(&build, "huge").await;
    let base = conveyor::clock::now_ms() - count * 10;
    let lines: Vec<LogLine> = (1..=count).map(|n| line(n, section, base)).collect();
    attempt(c, &build, 1, &lines).await;
    job
}

/// Claims attempt `n` of the build's `huge` job as a driver would, writes `lines` and fails it.
async fn attempt(c: &Conveyor, build: &str, n: u32, lines: &[LogLine]) {
    c.until_job(build, "huge", "queued").await;
    let owner = Owner {
        name: "feeder".into(),
        fleets: vec!["driver:feed".into()],
    };
    let req = ClaimRequest {
        job_run_id: c.job(build, "huge").await,
        attempt: n,
        runner: "feeder".into(),
    };
    let spec = runs::claim(&c.state, &req, &owner).await.unwrap();
    for (seq, chunk) in lines.chunks(5000).enumerate() {
        let batch = LogBatch {
            lease: spec.lease.clone(),
            seq: seq as u64 + 1,
            lines: chunk.to_vec(),
        };
        runs::append_logs(&c.state, batch, &owner).await.unwrap();
    }
    let done = Completion {
        lease: spec.lease.clone(),
        outcome: Outcome::Failed,
        exit_code: Some(2),
        outputs: BTreeMap::new(),
        error: None,
        log: Vec::new(),
        take_next: false,
    };
    runs::complete(&c.state, &done, &owner).await.unwrap();
    c.until_job(build, "huge", "failed").await;
}

/// How many lines the page holds, and the first and last line numbers.
async fn window(b: &Browser) -> (u64, i64, i64) {
    let v = b
        .exec(
            "const l = document.querySelectorAll('#log .line[id]'); return [l.length, Number(l[0].id.slice(1)), Number(l[l.length - 1].id.slice(1))];",
            json!([]),
        )
        .await;
    let n = v[0].as_u64().unwrap();
    assert!(
        n <= u64::from(WINDOW_LINES),
        "the page holds {n} lines, more than {WINDOW_LINES}"
    );
    (n, v[1].as_i64().unwrap(), v[2].as_i64().unwrap())
}

/// Waits until line `n` is in the page with class `cls` and inside the log's box on screen.
async fn until_shown(b: &Browser, n: i64, cls: &str) {
    b.wait_for(
        &format!("line {n} shown as {cls}"),
        &format!(
            "const el = document.getElementById('L{n}'); if (!el || !el.classList.contains('{cls}')) return false; \
             const r = el.getBoundingClientRect(), box = document.getElementById('log').getBoundingClientRect(); \
             return r.top >= box.top && r.bottom <= box.bottom + 1;"
        ),
    )
    .await;
    window(b).await;
}

/// Scrolls the log's box to its top (or bottom) and waits for lines to arrive there.
async fn scroll(b: &Browser, to_top: bool) -> (u64, i64, i64) {
    let (_, first, last) = window(b).await;
    let (script, grown) = if to_top {
        (
            "const l = document.getElementById('log'); l.scrollTop = 0;",
            format!("return document.querySelector('#log .line[id]').id !== 'L{first}';"),
        )
    } else {
        (
            "const l = document.getElementById('log'); l.scrollTop = l.scrollHeight;",
            format!(
                "const a = document.querySelectorAll('#log .line[id]'); return a[a.length - 1].id !== 'L{last}';"
            ),
        )
    };
    b.exec(script, json!([])).await;
    b.wait_for("more lines on scrolling", &grown).await;
    window(b).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_line_log_opens_at_its_tail_scrolls_jumps_and_searches_with_few_lines_in_the_page() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[FED]).await;
    let job = failed_job(&c, LINES, SECTION).await;
    let b = Browser::start().await;
    open_viewer(&b, &format!("{}/jobs/{job}", c.url)).await;
    let (_, _, last) = window(&b).await;
    assert_eq!(last, LINES, "the page opens at the tail");
    let at_bottom = b
        .exec("const l = document.getElementById('log'); return l.scrollTop + l.clientHeight >= l.scrollHeight - 2;", json!([]))
        .await;
    assert_eq!(at_bottom, json!(true), "the box shows the last line");
    b.screenshot("desktop-log-tail").await;
    scroll_both_ways(&b).await;
    search_and_jump(&b).await;
}

/// Scrolling up reads older lines and drops the newest, so the page stays small; from the
/// start, scrolling down does the same the other way.
async fn scroll_both_ways(b: &Browser) {
    let mut first = i64::MAX;
    for _ in 0..6 {
        let (_, f, l) = scroll(b, true).await;
        assert!(f < first, "{f} after {first}");
        first = f;
        assert!(l - f < i64::from(WINDOW_LINES) + 10, "{f}..{l}");
    }
    let (_, _, last) = window(b).await;
    assert!(
        last < LINES,
        "the far end was dropped: the last line is {last}"
    );
    b.click("#log-start").await;
    b.wait_for("the log's start", "return document.querySelector('#log .line[id]').id === 'L1' && document.getElementById('log').scrollTop === 0;").await;
    assert_eq!(b.text("#L1 .tx").await, "$ make part-0");
    let mut last = 0;
    for _ in 0..6 {
        let (_, _, l) = scroll(b, false).await;
        assert!(l > last);
        last = l;
    }
    let (_, first, _) = window(b).await;
    assert!(first > 1, "the start was dropped");
}

/// Search: the server finds line 42,000; the page goes there and marks it. Then a line
/// by number, and the end.
async fn search_and_jump(b: &Browser) {
    b.type_into("#log-q", "needle-42000").await;
    b.click("#log-next").await;
    until_shown(b, NEEDLE, "current").await;
    assert_eq!(b.text(&format!("#L{NEEDLE} mark")).await, "Needle-42000");
    b.wait_for(
        "the count of matches",
        "return document.getElementById('log-found').innerText === 'Match 1 of 1';",
    )
    .await;
    b.screenshot("desktop-log-search").await;
    b.type_into("#log-line", "77777").await;
    b.click("#log-goto button").await;
    until_shown(b, 77_777, "selected").await;
    assert!(b.url().await.ends_with("#L77777"));
    b.click("#log-end").await;
    b.wait_for(
        "the end",
        &format!("return document.getElementById('L{LINES}') !== null;"),
    )
    .await;
    window(b).await;
}

/// Whether the times of the first line in view are shown, and what they say.
async fn times(b: &Browser) -> Value {
    b.exec("const t = document.querySelector('#log .line[id] .ts'); return [getComputedStyle(t).display !== 'none', t.innerText];", json!([])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_link_the_first_error_sections_and_the_times_toggle_work_in_light_and_dark() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[FED]).await;
    let job = failed_job(&c, LINES, SECTION).await;
    let b = Browser::start().await;
    let page = format!("{}/jobs/{job}", c.url);
    // A link to a line opens the log there, the line marked.
    b.goto(&format!("{page}#L123")).await;
    until_shown(&b, 123, "selected").await;
    // The first error, one click away, is marked as the failure.
    b.wait_for(
        "the first-error link",
        "const a = document.getElementById('first-error'); return a && !a.hidden && a.innerText.includes('line 99999');",
    )
    .await;
    b.click("#first-error").await;
    until_shown(&b, FAILURE, "selected").await;
    let failing =
        format!("return document.getElementById('L{FAILURE}').classList.contains('fail');");
    assert_eq!(b.exec(&failing, json!([])).await, json!(true));
    b.screenshot("desktop-log-first-error").await;
    sections(&b, &page).await;
    times_toggle(&b, &page).await;
    dark_and_phone(&b, &page).await;
}

/// A command's section shows how long it took, folds and unfolds.
async fn sections(b: &Browser, page: &str) {
    b.goto(&format!("{page}#L80001")).await;
    until_shown(b, 80_001, "selected").await;
    assert_eq!(b.text("#L80001 .took").await, "1 min 40 s");
    b.click("#L80001 button.fold").await;
    b.wait_for(
        "the section folded, the next command after it",
        "const h = document.getElementById('L80001'); const n = h.nextElementSibling; \
         return h.querySelector('.fold').getAttribute('aria-expanded') === 'false' && n && n.id === 'L90001' && !document.getElementById('L80002');",
    )
    .await;
    window(b).await;
    b.screenshot("desktop-log-folded").await;
    b.click("#L80001 button.fold").await;
    b.wait_for(
        "the section unfolded",
        "const n = document.getElementById('L80001').nextElementSibling; return n && n.id === 'L80002';",
    )
    .await;
}

/// Times: hidden, shown by the toggle, remembered after a reload.
async fn times_toggle(b: &Browser, page: &str) {
    assert_eq!(times(b).await[0], json!(false));
    b.click("#show-times").await;
    let shown = times(b).await;
    assert_eq!(shown[0], json!(true));
    let t = shown[1].as_str().unwrap();
    assert!(
        t.len() == 12 && t.as_bytes()[2] == b':' && t.as_bytes()[8] == b'.',
        "{t:?}"
    );
    open_viewer(b, page).await;
    assert_eq!(times(b).await[0], json!(true), "the toggle is remembered");
    b.screenshot("desktop-log-times").await;
    b.click("#show-times").await;
    assert_eq!(times(b).await[0], json!(false));
}

/// Accessible, in the dark too, and at a phone's width.
async fn dark_and_phone(b: &Browser, page: &str) {
    assert_eq!(b.exec(ACCESSIBILITY, json!([])).await, json!([]));
    b.prefer_dark().await;
    b.goto(&format!("{page}#L{NEEDLE}")).await;
    until_shown(b, NEEDLE, "selected").await;
    assert_eq!(b.exec(ACCESSIBILITY, json!([])).await, json!([]));
    b.screenshot("dark-log").await;
    b.resize(390, 844).await;
    b.goto(&format!("{page}#L{FAILURE}")).await;
    until_shown(b, FAILURE, "selected").await;
    assert_eq!(b.exec(FITS, json!([])).await, json!(true));
    b.screenshot("phone-dark-log").await;
}

/// Opens the job page at `page` and waits for its log viewer.
async fn open_viewer(b: &Browser, page: &str) {
    b.goto(page).await;
    b.wait_for(
        "the viewer",
        "return document.querySelector('#log.viewer') !== null;",
    )
    .await;
}

/// Without a browser: the viewer's ranges are the page's markup as JSON.
#[tokio::test]
async fn the_viewer_reads_ranges_of_lines_either_way() {
    let c = conveyor(&[FED]).await;
    let job = failed_job(&c, 30, 10).await;
    let get = async |q: &str| range(&c, &job, q).await;
    let (status, head) = get("after=0&limit=5").await;
    assert_eq!(status, 200);
    assert_eq!(
        [&head["count"], &head["first"], &head["last"]],
        [&json!(5), &json!(1), &json!(5)]
    );
    let html = head["html"].as_str().unwrap();
    assert!(
        html.contains(r##"id="L1" data-end="11"><a class="ln" href="#L1""##),
        "{html}"
    );
    assert!(html.contains("$ make part-0"), "{html}");
    let (_, tail) = get("before=1000000&limit=3").await;
    assert_eq!([&tail["first"], &tail["last"]], [&json!(28), &json!(30)]);
    let (_, before) = get("before=12&limit=2").await;
    assert_eq!(
        [&before["first"], &before["last"]],
        [&json!(10), &json!(11)]
    );
    assert!(
        before["html"]
            .as_str()
            .unwrap()
            .contains(r#"class="line cmd" id="L11""#)
    );
    assert_eq!(get("after=1&before=5").await.0, 400);
    retried(&c, &job).await;
}

/// `/jobs/{job}/lines?{q}`: the status and the JSON.
async fn range(c: &Conveyor, job: &str, q: &str) -> (u16, Value) {
    let res = crate::common::http()
        .get(format!("{}/jobs/{job}/lines?{q}", c.url))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

/// A retry's lines continue the numbers; a range that starts with them shows its mark.
async fn retried(c: &Conveyor, job: &str) {
    let get = async |q: &str| range(c, job, q).await;
    let build = c.state.store.build_of_job_run(job).await.unwrap().unwrap();
    conveyor::services::builds::retry(&c.state, &build)
        .await
        .unwrap();
    let again: Vec<LogLine> = (1..=5).map(|n| line(n + 1, 10, 0)).collect();
    attempt(c, &build, 2, &again).await;
    for q in ["after=30&limit=2", "before=32&limit=1"] {
        let (_, range) = get(q).await;
        let html = range["html"].as_str().unwrap();
        assert!(
            html.starts_with(
                r#"<span class="line mark">— attempt 2 —</span><span class="line" id="L31">"#
            ),
            "{q}: {html}"
        );
    }
    let (_, within) = get("after=31&limit=2").await;
    assert!(
        !within["html"].as_str().unwrap().contains("attempt"),
        "{within}"
    );
}

/// A job that prints 4,000 lines over about ten seconds.
const CHATTY: &str = "product: chatty
belts:
  - name: ci
    jobs:
      - name: talk
        commands: for i in $(seq 1 40); do seq 1 100; sleep 0.25; done
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_running_jobs_tail_keeps_the_page_within_the_window() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[CHATTY]).await;
    let build = c.build("chatty", "ci").await;
    c.until_job(&build, "talk", "running").await;
    let job = c.job(&build, "talk").await;
    let b = Browser::start().await;
    open_viewer(&b, &format!("{}/jobs/{job}", c.url)).await;
    b.exec("window.stayed = true;", json!([])).await;
    let enough = format!(
        "const a = document.querySelectorAll('#log .line[id]'); return window.stayed === true && a.length > 0 && Number(a[a.length - 1].id.slice(1)) > {} && a.length;",
        WINDOW_LINES + 1000
    );
    b.wait_for("the tail to pass the window's size", &enough)
        .await;
    let (n, first, last) = window(&b).await;
    assert!(
        first > 1,
        "the oldest lines were dropped: {n} lines {first}..{last}"
    );
    let followed = b
        .exec("const l = document.getElementById('log'); return l.scrollTop + l.clientHeight >= l.scrollHeight - 40;", json!([]))
        .await;
    assert_eq!(followed, json!(true), "the box follows the tail");
    c.state
        .store
        .cancel_build(&build, conveyor::clock::now_ms())
        .await
        .unwrap();
}
