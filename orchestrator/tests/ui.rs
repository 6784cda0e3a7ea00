//! The dashboard in a real browser: Debian's headless Chromium driven over WebDriver
//! against a conveyor with local runners. Screenshots land in `target/ui-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ui_support;

use serde_json::{Value, json};
use ui_support::{ACCESSIBILITY, ADMIN, Browser, FITS, conveyor, sign_in};

/// One browser at a time: two cores run one Chromium and the jobs it watches well, several
/// badly.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const QUICK: &str = "product: quick
belts:
  - name: ci
    jobs:
      - name: compile
        commands: |
          printf '\\033[1;32mcompiled\\033[0m <b>not bold</b>\\n'
          sleep 1
          VERSION=2.0
        outputs: [VERSION]
      - name: test
        commands: echo testing ${compile.VERSION}
      - name: docs
        needs: [compile]
        commands: echo docs
      - name: package
        needs: [test, docs]
        commands: sleep 2; echo packaged
        downstreams:
          - downstream-product: ship
            belts: [deploy]
";

const SHIP: &str = "product: ship
belts:
  - name: deploy
    jobs:
      - name: deploy
        commands: echo deploying ${quick.compile.VERSION}
      - name: approve
        needs: [deploy]
        manual: true
        commands: echo approved
";

const SLOW: &str = "product: slow
belts:
  - name: ci
    jobs:
      - name: prepare
        commands: echo preparing
      - name: stream
        needs: [prepare]
        commands: |
          for i in $(seq 1 60); do printf '\\033[32mline %s\\033[0m\\n' \"$i\"; sleep 0.25; done
";

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
    let c = conveyor(&[QUICK, SHIP]).await;
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
    let green = b.text("#log .line:last-child .ansi-fg-2").await;
    assert!(green.starts_with("line "), "{green:?}");
    b.screenshot("desktop-job-live-log").await;
    // When it ends the page shows the final state.
    b.wait_for("the job to succeed on screen", "return document.querySelector('#job-state') && document.querySelector('#job-state').innerText.includes('succeeded');").await;
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#log .line').length;",
            json!([])
        )
        .await,
        json!(60)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_cancel_cancels_the_build_and_re_run_starts_the_next_one() {
    let _one = ONE_BROWSER.lock().await;
    let c = conveyor(&[SLOW]).await;
    let build = c.build("slow", "ci").await;
    c.until_job(&build, "stream", "running").await;
    let b = Browser::start().await;
    b.goto(&format!("{}/builds/{build}", c.url)).await;
    assert_eq!(b.exec("return document.querySelector('#cancel-build') === null && document.querySelector('#rerun') === null;", json!([])).await, json!(true), "no buttons before signing in");
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
        "⏸ waiting for approval"
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

/// A form post with an optional session cookie; the status and the `Location`.
async fn post_form(url: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> (u16, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = req.send().await.unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (res.status().as_u16(), location)
}

#[tokio::test]
async fn actions_need_a_session_and_its_csrf_token() {
    let c = conveyor(&[QUICK, SHIP]).await;
    let build = c.build("quick", "ci").await;
    let rerun = format!("{}/builds/{build}/rerun", c.url);
    assert_eq!(
        post_form(&rerun, None, &[("csrf", "x")]).await.0,
        403,
        "no session"
    );

    assert_eq!(
        post_form(&format!("{}/sign-in", c.url), None, &[("token", "wrong")])
            .await
            .0,
        401
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .post(format!("{}/sign-in", c.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN}&next=/builds/{build}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("/builds/{build}").as_str()
    );
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();

    assert_eq!(
        post_form(&rerun, Some(&cookie), &[]).await.0,
        403,
        "no CSRF token"
    );
    assert_eq!(
        post_form(&rerun, Some(&cookie), &[("csrf", "forged")])
            .await
            .0,
        403,
        "a wrong CSRF token"
    );
    let page = http
        .get(format!("{}/builds/{build}", c.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let (status, location) = post_form(&rerun, Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(
        location.starts_with("/builds/") && !location.ends_with(&build),
        "{location}"
    );
    // A forged cookie is no session.
    let forged = format!("conveyor_session=9999999999.{}", "0".repeat(64));
    assert_eq!(
        post_form(&rerun, Some(&forged), &[("csrf", &csrf)]).await.0,
        403
    );
}

#[tokio::test]
async fn private_pages_send_strangers_to_sign_in_and_long_logs_are_paged_and_downloaded_whole() {
    const LONG: &str = "product: long
belts:
  - name: ci
    jobs:
      - name: talk
        commands: seq 1 1200
";
    let c = conveyor(&[LONG]).await;
    let build = c.build("long", "ci").await;
    assert_eq!(c.until_finished(&build).await, "succeeded");
    let talk = c.job(&build, "talk").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let page = http
        .get(format!("{}/jobs/{talk}", c.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        page.matches("class=\"line\"").count(),
        500,
        "one page of lines"
    );
    assert!(page.contains(">1200</span>") && !page.contains(">700</span>"));
    let older = page
        .split("id=\"older\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let older = older.replace("&amp;", "&");
    let before = http
        .get(format!("{}{older}", c.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        before.contains(">700</span>")
            && before.contains(">201</span>")
            && !before.contains(">200</span>"),
        "{older}"
    );
    assert!(before.contains("id=\"newer\""));

    let res = http
        .get(format!("{}/jobs/{talk}/log.txt", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = res.text().await.unwrap();
    let want: String = (1..=1200).map(|n| format!("{n}\n")).collect();
    assert_eq!(text, want);

    // With read-only pages private (`serve` without --public-ui), a stranger is sent to
    // sign in, and comes back after.
    let mut private = conveyor::state::AppState::new(
        c.state.store.clone(),
        c.state.queue.clone(),
        ADMIN.into(),
        "runner".into(),
    );
    private.public_ui = false;
    let app = conveyor::routes::app(std::sync::Arc::new(private));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let get = |path: String| http.get(format!("{url}{path}")).send();
    let res = get(format!("/builds/{build}")).await.unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("/sign-in?next=/builds/{build}").as_str()
    );
    for (path, status) in [
        ("/sign-in".to_string(), 200),
        ("/assets/app.css".into(), 200),
        (format!("/jobs/{talk}/log.txt"), 303),
        (format!("/jobs/{talk}/events"), 303),
        ("/".into(), 303),
    ] {
        assert_eq!(
            get(path.clone()).await.unwrap().status().as_u16(),
            status,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_opens_conveyor_up_watches_the_demo_and_re_runs_it() {
    let _one = ONE_BROWSER.lock().await;
    let up = tokio::task::spawn_blocking(|| ui_support::conveyor_up("newcomer-token"))
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
    b.type_into("#token", "newcomer-token").await;
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
