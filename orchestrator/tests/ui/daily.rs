//! The dashboard for daily use, in a real browser: retrying a build's failed jobs from its
//! page (and with `conveyor retry`), runs again only what failed and what it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::in_browser::ONE_BROWSER;
use crate::ui_support::{ADMIN, Browser, conveyor, sign_in};

/// `check` fails until the file `marker` exists; `after` needs it, `first` runs before.
fn flaky(marker: &std::path::Path) -> String {
    format!(
        "product: flaky
belts:
  - name: ci
    jobs:
      - name: first
        commands: 'true'
      - name: check
        needs: [first]
        commands: test -e '{}'
      - name: after
        needs: [check]
        commands: 'true'
",
        marker.display()
    )
}

/// The attempts column of the jobs table, in belt order.
async fn attempts(b: &Browser) -> serde_json::Value {
    b.exec(
        "return [...document.querySelectorAll('#jobs .job-attempts')].map(e => e.innerText);",
        json!([]),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_failed_jobs_by_clicking_runs_only_them_and_what_they_skipped() {
    let _one = ONE_BROWSER.lock().await;
    let dir = crate::common::temp_dir("retry");
    let marker = dir.join("ok");
    let c = conveyor(&[&flaky(&marker)]).await;
    let build = c.build("flaky", "ci").await;
    assert_eq!(c.until_finished(&build).await, "failed");
    let b = Browser::start().await;
    sign_in(&b, &c.url).await;
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    let skipped = b.text("#jobs tr:nth-child(3) .job-state").await;
    assert!(
        skipped.contains("skipped") && skipped.contains("its dependency `check` failed"),
        "a skipped job says why: {skipped}"
    );
    b.screenshot("desktop-build-failed-retryable").await;
    std::fs::write(&marker, "").unwrap();
    b.click("#retry-failed").await;
    b.wait_for(
        "the retried build to succeed on its page",
        "const s = document.querySelector('#build-state'); return s && s.innerText.includes('succeeded');",
    )
    .await;
    assert_eq!(c.view(&build).await.status, "succeeded");
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    assert_eq!(
        attempts(&b).await,
        json!(["1", "2", "2"]),
        "`first` is not run again"
    );
    assert_eq!(
        b.exec(
            "return document.querySelector('#retry-failed') === null;",
            json!([])
        )
        .await,
        json!(true),
        "nothing left to retry"
    );
    b.screenshot("desktop-build-retried").await;

    retry_with_the_cli(&c, &marker).await;
}

/// The same from the command line: `conveyor retry --wait` follows the build to success.
async fn retry_with_the_cli(c: &crate::ui_support::Conveyor, marker: &std::path::Path) {
    std::fs::remove_file(marker).unwrap();
    let again = c.build("flaky", "ci").await;
    assert_eq!(c.until_finished(&again).await, "failed");
    std::fs::write(marker, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args([
            "retry", &again, "--wait", "--server", &c.url, "--token", ADMIN,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("retrying 2 job(s) of flaky ci #2"),
        "{stdout}"
    );
    assert!(stdout.contains("flaky ci #2: succeeded"), "{stdout}");
}

/// A job that writes the time into `file` ten times a second until it is stopped.
fn beating(file: &std::path::Path) -> String {
    format!(
        "product: beat
belts:
  - name: ci
    jobs:
      - name: beat
        commands: while true; do date +%s%N > '{}'; sleep 0.1; done
",
        file.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_shows_at_once_and_stops_its_process_within_two_seconds() {
    let _one = ONE_BROWSER.lock().await;
    let dir = crate::common::temp_dir("cancel");
    let file = dir.join("beat");
    let c = conveyor(&[&beating(&file)]).await;
    let build = c.build("beat", "ci").await;
    c.until_job(&build, "beat", "running").await;
    let job = c.job(&build, "beat").await;
    let b = Browser::start().await;
    sign_in(&b, &c.url).await;
    b.goto(&format!("{}/jobs/{job}", c.url)).await;
    while !file.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.click("#cancel-job").await;
    let clicked = Instant::now();
    b.wait_for(
        "the job page to say it is cancelling, without the button",
        "const s = document.querySelector('#job-state'); return s && /cancel/.test(s.innerText) && document.querySelector('#cancel-job') === null;",
    )
    .await;
    assert!(
        clicked.elapsed() < Duration::from_secs(1),
        "the page reflects the cancel at once"
    );
    b.screenshot("desktop-job-cancelling").await;
    // The beat stops: the last change of the file comes within two seconds of the click.
    let (mut last, mut changed) = (std::fs::read(&file).unwrap(), clicked);
    while changed.elapsed() < Duration::from_secs(1) {
        assert!(
            clicked.elapsed() < Duration::from_secs(10),
            "the job never stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = std::fs::read(&file).unwrap();
        if now != last {
            (last, changed) = (now, Instant::now());
        }
    }
    let took = changed.duration_since(clicked);
    eprintln!("the job stopped {took:?} after the click");
    assert!(took < Duration::from_secs(2), "the job ran on for {took:?}");
    c.until_job(&build, "beat", "cancelled").await;
}

/// The text of `css` twice, `apart` apart.
async fn twice(b: &Browser, css: &str, apart: Duration) -> (String, String) {
    let first = b.text(css).await;
    tokio::time::sleep(apart).await;
    (first, b.text(css).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_timers_tick_on_the_build_overview_and_job_pages() {
    let _one = ONE_BROWSER.lock().await;
    let dir = crate::common::temp_dir("timers");
    let c = conveyor(&[&beating(&dir.join("beat"))]).await;
    let build = c.build("beat", "ci").await;
    c.until_job(&build, "beat", "running").await;
    let job = c.job(&build, "beat").await;
    let b = Browser::start().await;
    let pages = [
        (format!("{}/builds/{build}", c.url), "#build-took"),
        (format!("{}/builds/{build}", c.url), "#jobs .job-took"),
        (c.url.clone(), "#live-page td.took"),
        (format!("{}/jobs/{job}", c.url), "#job-took"),
    ];
    for (url, css) in pages {
        b.goto(&url).await;
        let (first, second) = twice(&b, css, Duration::from_millis(2200)).await;
        assert!(
            first.ends_with("so far") && second.ends_with("so far"),
            "{css}: {first} / {second}"
        );
        assert_ne!(first, second, "{css} on {url} does not tick");
    }
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    b.screenshot("desktop-build-ticking").await;
    c.state
        .store
        .cancel_build(&build, conveyor::clock::now_ms())
        .await
        .unwrap();
}

/// For every table on the page, whether its first two columns (a row's name and state)
/// are on screen without scrolling sideways; the offending header otherwise.
const NAME_AND_STATE_FIT: &str = "for (const t of document.querySelectorAll('main table')) { for (const c of t.querySelectorAll('tr > :nth-child(-n+2)')) { if (c.getBoundingClientRect().right > window.innerWidth) return t.querySelector('caption') ? t.querySelector('caption').innerText : 'a table'; } } return true;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dark_mode_follows_the_system_with_readable_contrast_and_tables_fit_a_phone() {
    use crate::ui_support::browser::{ACCESSIBILITY, FITS};
    let _one = ONE_BROWSER.lock().await;
    let dir = crate::common::temp_dir("dark");
    let c = conveyor(&[&flaky(&dir.join("ok"))]).await;
    let build = c.build("flaky", "ci").await;
    assert_eq!(c.until_finished(&build).await, "failed");
    let check = c.job(&build, "check").await;
    let b = Browser::start().await;
    b.prefer_dark().await;
    sign_in(&b, &c.url).await;
    let pages = [
        ("/".to_string(), "overview"),
        ("/products/flaky".into(), "product"),
        (format!("/builds/{build}"), "build"),
        (format!("/jobs/{check}"), "job"),
        ("/fleets".into(), "fleets"),
    ];
    for (path, name) in &pages {
        b.goto(&format!("{}{path}", c.url)).await;
        let ground = b
            .exec(
                "return getComputedStyle(document.body).backgroundColor;",
                json!([]),
            )
            .await;
        assert_eq!(ground, json!("rgb(15, 23, 32)"), "{path} is not dark");
        assert_eq!(b.exec(ACCESSIBILITY, json!([])).await, json!([]), "{path}");
        b.screenshot(&format!("dark-{name}")).await;
    }
    b.resize(390, 844).await;
    for (path, name) in &pages {
        b.goto(&format!("{}{path}", c.url)).await;
        assert_eq!(b.exec(FITS, json!([])).await, json!(true), "{path}");
        assert_eq!(
            b.exec(NAME_AND_STATE_FIT, json!([])).await,
            json!(true),
            "{path}: a row's name and state are off screen at 390px"
        );
        b.screenshot(&format!("phone-dark-{name}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_build_from_the_product_page_takes_a_ref() {
    let _one = ONE_BROWSER.lock().await;
    let dir = crate::common::temp_dir("start-ref");
    let c = conveyor(&[&flaky(&dir.join("ok"))]).await;
    let b = Browser::start().await;
    sign_in(&b, &c.url).await;
    b.goto(&format!("{}/products/flaky", c.url)).await;
    b.type_into("tr[data-belt=\"ci\"] input.ref", "refs/heads/topic")
        .await;
    b.click("tr[data-belt=\"ci\"] details.vars summary").await;
    b.type_into(
        "tr[data-belt=\"ci\"] textarea[name=variables]",
        "TARGET=staging\nNOTE=a b=c",
    )
    .await;
    b.click("tr[data-belt=\"ci\"] button.start").await;
    b.wait_for(
        "the started build's page",
        "const h = document.querySelector('h1'); return h && h.innerText.startsWith('flaky ci #1');",
    )
    .await;
    let id = b.url().await.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        c.view(&id).await.git_ref.as_deref(),
        Some("refs/heads/topic")
    );
    let page = b.text("main").await;
    assert!(page.contains("refs/heads/topic"), "{page}");
    assert!(page.contains("started by admin (dashboard)"), "{page}");
    let context = c.view(&id).await.context.unwrap();
    assert_eq!(
        context.variables,
        vec![
            ("TARGET".to_string(), "staging".to_string()),
            ("NOTE".to_string(), "a b=c".to_string())
        ]
    );
    assert!(b.text("#build-variables").await.contains("NOTE=a b=c"));

    // A line that is no variable is refused, naming it, and starts nothing.
    b.goto(&format!("{}/products/flaky", c.url)).await;
    b.click("tr[data-belt=\"ci\"] details.vars summary").await;
    b.type_into("tr[data-belt=\"ci\"] textarea[name=variables]", "oops")
        .await;
    b.click("tr[data-belt=\"ci\"] button.start").await;
    b.wait_for(
        "the refusal",
        "return document.body.innerText.includes('`oops` has no `=`');",
    )
    .await;
    assert_eq!(
        c.state
            .store
            .builds(&Default::default())
            .await
            .unwrap()
            .len(),
        1
    );
}
