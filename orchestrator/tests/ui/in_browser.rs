//! The dashboard in a real browser: Debian's headless Chromium driven over WebDriver
//! against a conveyor with local runners. Screenshots land in `target/ui-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::ui_support;
use crate::ui_support::browser::{ACCESSIBILITY, FITS};
use crate::ui_support::{Browser, QUICK, SHIP, SLOW, conveyor, sign_in};

/// One browser at a time: two cores run one Chromium and the jobs it watches well, several
/// badly.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_with_its_content_and_passes_the_accessibility_check() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[QUICK, SHIP]).await;
    let build = c.build("quick", "ci").await;
    assert_eq!(c.until_finished(&build).await, "succeeded");
    let compile = c.job(&build, "compile").await;
    let b = Browser::start().await;
    let pages = [
        ("/", "Overview", "quick"),
        ("/products/quick", "Product quick", "Build history"),
        (
            &format!("/builds/{build}") as &str,
            "quick ci #1",
            "Chain of builds",
        ),
        (
            &format!("/jobs/{compile}"),
            "Job compile",
            "compiled <b>not bold</b>",
        ),
        ("/fleets", "Runners and fleets", "default"),
        ("/sign-in", "Sign in", "Admin token"),
    ];
    for (path, h1, content) in pages {
        b.goto(&format!("{}{path}", c.url)).await;
        let heading = b.text("h1").await;
        assert!(heading.starts_with(h1), "{path}: h1 is {heading:?}");
        let body = b.text("main").await;
        assert!(
            body.contains(content),
            "{path} does not show {content:?}:\n{body}"
        );
        let problems = b.exec(ACCESSIBILITY, json!([])).await;
        assert_eq!(problems, json!([]), "{path}");
        let name = if path == "/" {
            "overview".to_string()
        } else {
            path.trim_start_matches('/')
                .split('/')
                .next()
                .unwrap()
                .to_string()
        };
        b.screenshot(&format!("desktop-{name}")).await;
    }
    // The product page draws its downstream product, the job page its outputs and ANSI.
    b.goto(&format!("{}/products/quick", c.url)).await;
    let nodes = b.exec("return [...document.querySelectorAll('#products-graph .node')].map(n => n.dataset.name);", json!([])).await;
    assert_eq!(nodes, json!(["quick", "ship"]));
    b.goto(&format!("{}/jobs/{compile}", c.url)).await;
    let version = b
        .exec(
            "const r = [...document.querySelectorAll('#outputs tr')].find(r => r.querySelector('th').innerText === 'VERSION'); return r ? r.querySelector('td').innerText : null;",
            json!([]),
        )
        .await;
    assert_eq!(version, json!("2.0"));
    assert_eq!(b.text("#log .ansi-bold.ansi-fg-2").await, "compiled");
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#log b').length;",
            json!([])
        )
        .await,
        json!(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_shows_one_node_per_job_with_its_state_in_words() {
    let _one = ONE_BROWSER.lock().await;
    // `package` runs until the test lets it finish, however slowly the page loads.
    let gate = crate::common::temp_dir("graph-gate").join("go");
    let quick = QUICK.replace(
        "sleep 2; echo packaged",
        &format!(
            "while [ ! -e '{}' ]; do sleep 0.05; done; echo packaged",
            gate.display()
        ),
    );
    let c = conveyor(&[&quick, SHIP]).await;
    let b = Browser::start().await;
    let build = c.build("quick", "ci").await;
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    // Live: the nodes change state without a reload.
    b.exec("window.stayed = true;", json!([])).await;
    b.wait_for(
        "compile to succeed and package to run, on the same page",
        "const s = n => document.querySelector('#dag .node[data-name=\"' + n + '\"]').dataset.state; \
         return window.stayed === true && s('compile') === 'succeeded' && s('package') === 'running';",
    )
    .await;
    assert_eq!(b.text("#jobs tr:last-child .job-state").await, "▶ running");
    std::fs::write(&gate, "").unwrap();
    // Once the build ends the page reloads once, with its final states.
    b.wait_for(
        "the page to reload with every node succeeded",
        "return window.stayed === undefined && [...document.querySelectorAll('#dag .node')].every(n => n.dataset.state === 'succeeded');",
    )
    .await;
    let nodes: Value = b
        .exec(
            "return [...document.querySelectorAll('#dag .node')].map(n => [n.dataset.name, n.querySelector('text.state').textContent, n.querySelector('title').textContent]);",
            json!([]),
        )
        .await;
    assert_eq!(
        nodes,
        json!([
            ["compile", "✓ succeeded", "compile: succeeded"],
            ["test", "✓ succeeded", "test: succeeded"],
            ["docs", "✓ succeeded", "docs: succeeded"],
            ["package", "✓ succeeded", "package: succeeded"]
        ])
    );
    let edges = b
        .exec(
            "return document.querySelectorAll('#dag path.edge').length;",
            json!([]),
        )
        .await;
    assert_eq!(
        edges,
        json!(c.state.store.job_edges(&build).await.unwrap().len())
    );
    // Layered left to right: package sits right of docs, which sits right of compile.
    let x = |name: &str| {
        format!(
            "return Number(document.querySelector('#dag .node[data-name=\"{name}\"] rect').getAttribute('x'));"
        )
    };
    let (cx, dx, px) = (
        b.exec(&x("compile"), json!([])).await,
        b.exec(&x("docs"), json!([])).await,
        b.exec(&x("package"), json!([])).await,
    );
    assert!(
        cx.as_i64() < dx.as_i64() && dx.as_i64() < px.as_i64(),
        "{cx} {dx} {px}"
    );
    b.screenshot("desktop-build-graph").await;
    // The downstream build it fired is in the chain.
    let fired = b.text("#downstream").await;
    assert!(fired.contains("ship deploy #1"), "{fired}");
    b.click("#dag .node[data-name=\"docs\"]").await;
    b.wait_for(
        "the docs job page",
        "return document.querySelector('h1').innerText.startsWith('Job docs');",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_jobs_log_grows_on_screen_without_a_reload() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[SLOW]).await;
    let build = c.build("slow", "ci").await;
    let stream = c.job(&build, "stream").await;
    let b = Browser::start().await;
    c.until_job(&build, "stream", "running").await;
    b.goto(&format!("{}/jobs/{stream}", c.url)).await;
    b.exec("window.stayed = true;", json!([])).await;
    let first = b
        .wait_for(
            "a first few lines",
            "const n = document.querySelectorAll('#log .line').length; return n >= 3 ? n : 0;",
        )
        .await;
    let grown = b
        .wait_for(
            "the log to grow",
            &format!("const n = document.querySelectorAll('#log .line').length; return window.stayed && n >= {} ? n : 0;", first.as_u64().unwrap() + 8),
        )
        .await;
    assert!(grown.as_u64() > first.as_u64());
    assert_eq!(
        b.exec("return window.stayed === true;", json!([])).await,
        json!(true),
        "no reload while running"
    );
    assert_eq!(b.text("#job-state").await, "▶ running");
    let took = b.text("#job-took").await;
    assert!(took.ends_with(" so far"), "{took}");
    b.wait_for(
        "the running time to tick",
        &format!(
            "return document.querySelector('#job-took').innerText !== {};",
            json!(took)
        ),
    )
    .await;
    let green = b.text("#log .line:last-child .ansi-fg-2").await;
    assert!(green.starts_with("line "), "{green:?}");
    b.screenshot("desktop-job-live-log").await;
    // When it ends the page shows the final state.
    b.wait_for("the job to succeed on screen", "return document.querySelector('#job-state') && document.querySelector('#job-state').innerText.includes('succeeded');").await;
    // The command's line (`$ for i in …`) and the 60 it printed.
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#log .line').length;",
            json!([])
        )
        .await,
        json!(61)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_cancel_cancels_the_build_and_re_run_and_start_begin_new_ones() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[SLOW]).await;
    let build = c.build("slow", "ci").await;
    c.until_job(&build, "stream", "running").await;
    let b = Browser::start().await;
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    assert_eq!(b.exec("return document.querySelector('#cancel-build') === null && document.querySelector('#rerun') === null;", json!([])).await, json!(true), "no buttons before signing in");
    // The fleets page shows the running job and a registered runner.
    c.state
        .store
        .register_runner(
            "runner-a",
            &["default".into()],
            "hash-a",
            conveyor::clock::now_ms(),
        )
        .await
        .unwrap();
    b.goto(&format!("{}/fleets", c.url)).await;
    let running = b.text("#running").await;
    assert!(
        running.contains("stream") && running.contains("slow ci #1"),
        "{running}"
    );
    let runners = b.text("#runners").await;
    assert!(
        runners.contains("runner-a") && runners.contains("local-") && runners.contains("online"),
        "{runners}"
    );
    // The registered runner and the embedded one.
    assert_eq!(
        b.text("#fleet-table tr[data-fleet=\"default\"] td:nth-child(5)")
            .await,
        "2"
    );
    b.screenshot("desktop-fleets-busy").await;
    sign_in(&b, &c.url).await;
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    b.click("#cancel-build").await;
    b.wait_for("the build to show as cancelled", "return document.querySelector('#build-state') && document.querySelector('#build-state').innerText.includes('cancelled');").await;
    assert_eq!(c.view(&build).await.status, "cancelled");
    b.screenshot("desktop-build-cancelled").await;

    b.click("#rerun").await;
    b.wait_for("the re-run's page", "return document.querySelector('h1') && document.querySelector('h1').innerText.startsWith('slow ci #2');").await;
    let url = b.url().await;
    let again = url.rsplit('/').next().unwrap().to_string();
    assert_ne!(again, build);
    let view = c.view(&again).await;
    assert_eq!(view.number, 2);
    assert!(b.text("main").await.contains("re-run of #1"));
    // A build started from the product page is the third.
    b.goto(&format!("{}/products/slow", c.url)).await;
    b.click("tr[data-belt=\"ci\"] button.start").await;
    b.wait_for(
        "the started build's page",
        "const h = document.querySelector('h1'); return h && h.innerText.startsWith('slow ci #3');",
    )
    .await;
    // Cancel one job of the re-run from its row.
    c.until_job(&again, "stream", "running").await;
    b.goto(&format!("{}/builds/{again}", c.url)).await;
    b.click(&format!(
        "#jobs tr[data-job=\"{}\"] .cancel-job",
        c.job(&again, "stream").await
    ))
    .await;
    b.wait_for(
        "the job page after cancelling",
        "return document.querySelector('#job') !== null;",
    )
    .await;
    c.until_job(&again, "stream", "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_builds_start_and_finish_without_a_reload() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[QUICK]).await;
    let b = Browser::start().await;
    b.goto(&c.url).await;
    let content = "return document.getElementById('live-page').innerText;";
    let before = b.exec(content, json!([])).await;
    assert!(!before.as_str().unwrap().contains("ci #1"), "{before}");
    // A mark that a reload would wipe.
    b.exec("window.stayed = true; return true;", json!([]))
        .await;
    let build = c.build("quick", "ci").await;
    b.wait_for(
        "the new build on the overview",
        "return document.getElementById('live-page').innerText.includes('ci #1');",
    )
    .await;
    assert_eq!(c.until_finished(&build).await, "succeeded");
    b.wait_for(
        "the build's success on the overview",
        "return document.querySelector('#live-page td [data-state=\"succeeded\"]') !== null;",
    )
    .await;
    assert_eq!(
        b.exec("return window.stayed === true;", json!([])).await,
        json!(true),
        "the page was updated in place, not reloaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_manual_job_by_clicking_runs_it() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[QUICK, SHIP]).await;
    let build = c.build("ship", "deploy").await;
    c.until_job(&build, "approve", "waiting").await;
    let b = Browser::start().await;
    sign_in(&b, &c.url).await;
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    assert_eq!(
        b.text("#dag .node[data-name=\"approve\"] text.state").await,
        "‖ waiting for approval"
    );
    b.screenshot("desktop-build-waiting").await;
    b.click("#jobs .approve").await;
    b.wait_for(
        "the approved job to succeed",
        "const n = document.querySelector('#dag .node[data-name=\"approve\"]'); return n && n.dataset.state === 'succeeded';",
    )
    .await;
    assert_eq!(c.until_finished(&build).await, "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_a_manual_job_by_clicking_skips_it_with_the_reason() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[QUICK, SHIP]).await;
    let build = c.build("ship", "deploy").await;
    c.until_job(&build, "approve", "waiting").await;
    let job = c.job(&build, "approve").await;
    let b = Browser::start().await;
    sign_in(&b, &c.url).await;
    b.goto(&format!("{}/jobs/{job}", c.url)).await;
    assert_eq!(b.text("#job-note").await, "waits for approval");
    b.type_into("#decline-reason", "not on a Friday").await;
    b.click("#decline").await;
    assert_eq!(
        c.until_finished(&build).await,
        "succeeded",
        "a decline is no failure"
    );
    // The job's page, read afresh, says who declined, why and when.
    b.goto(&format!("{}/jobs/{job}", c.url)).await;
    b.wait_for(
        "the job page to show the decline",
        "const n = document.getElementById('job-note'); return n !== null && n.innerText.startsWith('declined');",
    )
    .await;
    let note = b.text("#job-note").await;
    assert!(
        note.starts_with("declined by admin (dashboard): not on a Friday (at 20")
            && note.ends_with(" UTC)"),
        "who, why and when: {note}"
    );
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    let row_note = b.text("#jobs tr[data-job] .job-note").await;
    assert_eq!(row_note, note, "the build's row says the same");
    let view = c.view(&build).await;
    let declined = view.jobs.iter().find(|j| j.name == "approve").unwrap();
    assert_eq!(declined.status, "skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layout_holds_at_a_phones_width() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[QUICK, SHIP]).await;
    let build = c.build("quick", "ci").await;
    assert_eq!(c.until_finished(&build).await, "succeeded");
    let compile = c.job(&build, "compile").await;
    let b = Browser::start().await;
    sign_in(&b, &c.url).await;
    b.resize(390, 844).await;
    let width = b.exec("return window.innerWidth;", json!([])).await;
    assert!(width.as_u64().unwrap() <= 400, "the window is {width} wide");
    for (path, name) in [
        ("/".to_string(), "overview"),
        ("/products/quick".into(), "product"),
        (format!("/builds/{build}"), "build"),
        (format!("/jobs/{compile}"), "job"),
        ("/fleets".into(), "fleets"),
        ("/sign-in".into(), "sign-in"),
    ] {
        b.goto(&format!("{}{path}", c.url)).await;
        assert_eq!(
            b.exec(FITS, json!([])).await,
            json!(true),
            "{path} overflows at 390px"
        );
        b.screenshot(&format!("phone-{name}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_opens_conveyor_up_watches_the_demo_and_re_runs_it() {
    let _one = ONE_BROWSER.lock().await;
    let up = tokio::task::spawn_blocking(|| ui_support::conveyor_up("newcomer-token-0001"))
        .await
        .unwrap();
    let text = up.printed.join("\n");
    assert!(
        text.contains(&format!(
            "  dashboard:   {}/ (sign in at {}/sign-in",
            up.url, up.url
        )),
        "{text}"
    );
    let started = up
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("  started demo build #1: "))
        .unwrap_or_else(|| panic!("{text}"));
    let build = started.rsplit('/').next().unwrap().to_string();
    assert_eq!(started, format!("{}/builds/{build}", up.url));

    let b = Browser::start().await;
    b.goto(&up.url).await;
    let products = b.text("#products").await;
    assert!(
        products.contains("demo") && products.contains("demo-deploy"),
        "{products}"
    );
    b.click(&format!("#products a[href=\"/builds/{build}\"]"))
        .await;
    b.wait_for(
        "the demo build's graph",
        "return document.querySelectorAll('#dag .node').length === 5;",
    )
    .await;
    b.wait_for(
        "the demo build to succeed",
        "return [...document.querySelectorAll('#dag .node')].every(n => n.dataset.state === 'succeeded') && document.querySelector('#build-state').innerText.includes('succeeded');",
    )
    .await;
    b.click("#sign-in-link").await;
    b.type_into("#token", "newcomer-token-0001").await;
    b.click(".sign-in button[type=submit]").await;
    b.wait_for(
        "the build page again, signed in",
        "return document.querySelector('#rerun') !== null;",
    )
    .await;
    b.click("#rerun").await;
    b.wait_for("the re-run's page", "const h = document.querySelector('h1'); return h && h.innerText.startsWith('demo build #2');").await;
    // The graph of the re-run follows its jobs live to the end.
    b.wait_for(
        "the re-run's jobs to succeed on the graph",
        "const n = [...document.querySelectorAll('#dag .node')]; return n.length === 5 && n.every(x => x.dataset.state === 'succeeded');",
    )
    .await;
    b.screenshot("desktop-newcomer-rerun").await;
    b.click("#dag .node[data-name=\"unit-tests\"]").await;
    b.wait_for(
        "the unit-tests log",
        "const l = document.querySelector('#log'); return l && l.innerText.includes('test 5 ok');",
    )
    .await;
    b.screenshot("desktop-newcomer-job").await;
}
