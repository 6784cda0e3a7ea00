//! The dashboard over plain HTTP: what a browser test cannot see well — sessions, CSRF
//! tokens, private pages, log paging and the downloaded log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::ui_support::{ADMIN, QUICK, SHIP, conveyor};

/// A form post with an optional session cookie; the status and the `Location`.
async fn post_form(url: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> (u16, String) {
    let http = crate::common::http_builder()
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
    let http = crate::common::http_builder()
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
    // Over plain HTTP a `Secure` cookie would never come back.
    assert!(!set.contains("Secure"), "{set}");
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
    let page = c.page(&format!("/builds/{build}"), Some(&cookie)).await;
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
    let http = crate::common::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let page = c.page(&format!("/jobs/{talk}"), None).await;
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
    let before = c.page(&older, None).await;
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
    // The command's line, then what it printed.
    let want: String = std::iter::once("$ seq 1 1200\n".to_string())
        .chain((1..=1200).map(|n| format!("{n}\n")))
        .collect();
    assert_eq!(text, want);

    // With read-only pages private (`serve` without --public-ui), a stranger is sent to
    // sign in, and comes back after.
    let mut private = conveyor::http::AppState::new(
        c.state.store.clone(),
        c.state.queue.clone(),
        ADMIN.into(),
        "runner".into(),
    );
    private.public_ui = false;
    let app = conveyor::http::app(std::sync::Arc::new(private));
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
    // The API's reads are private too: the admin token reads them, nobody else; health
    // and metrics stay open for probes and scrapers.
    for path in [
        format!("/api/v1/builds/{build}"),
        "/api/v1/builds".to_string(),
        "/api/v1/products".into(),
        "/api/v1/runners".into(),
        format!("/api/v1/job-runs/{talk}/logs"),
        format!("/logs?runid={build}"),
    ] {
        let res = get(path.clone()).await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
        let res = http
            .get(format!("{url}{path}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path} with the admin token");
    }
    for path in ["/health", "/metrics", "/api/openapi.json"] {
        assert_eq!(
            get(path.into()).await.unwrap().status().as_u16(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_build_whose_config_has_errors_shows_them_and_no_graph() {
    let c = conveyor(&[QUICK]).await;
    let new = conveyor::store::NewBuild {
        resource: None,
        product: "quick".into(),
        belt: "ci".into(),
        trigger: conveyor::store::BuildTrigger::Manual,
        git_ref: Some("refs/heads/main".into()),
        sha: None,
        model: None,
        context: None,
    };
    let error = ".conveyor.yml:3:5: error: <unknown> job `x`";
    let delivery = conveyor::store::Delivery {
        forge: "github".into(),
        id: "d-1".into(),
        heads: vec![],
        builds: vec![conveyor::store::PlannedBuild::ConfigError {
            build: new,
            error: error.into(),
        }],
    };
    let (ids, _) = c
        .state
        .store
        .accept_delivery(&delivery, conveyor::clock::now_ms())
        .await
        .unwrap()
        .unwrap();
    let id = &ids[0];
    let page = c.page(&format!("/builds/{id}"), None).await;
    assert!(page.contains("⚠</span> config error"), "{page}");
    assert!(
        page.contains(".conveyor.yml:3:5: error: &#60;unknown&#62; job `x`"),
        "{page}"
    );
    assert!(
        page.contains("id=\"no-jobs\"") && !page.contains("<svg"),
        "{page}"
    );
}

const FILES: &str = "product: files
belts:
  - name: ci
    jobs:
      - name: pack
        commands: mkdir -p dist && printf 'hello artifacts' > dist/app.txt
        artifacts: [dist/]
";

#[tokio::test]
async fn the_build_and_job_pages_list_artifacts_with_size_and_a_download_link() {
    let c = conveyor(&[FILES]).await;
    let build = c.build("files", "ci").await;
    assert_eq!(c.until_finished(&build).await, "succeeded");
    let job = c.job(&build, "pack").await;
    let http = crate::common::http();
    let page = |path: String| {
        let http = http.clone();
        async move { http.get(path).send().await.unwrap().text().await.unwrap() }
    };
    for html in [
        page(format!("{}/builds/{build}", c.url)).await,
        page(format!("{}/jobs/{job}", c.url)).await,
    ] {
        assert!(html.contains("id=\"artifacts\""), "{html}");
        assert!(
            html.contains("dist/app.txt") && html.contains("15 bytes"),
            "{html}"
        );
        let href = html
            .split("href=\"/api/v1/artifacts/")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a download link");
        let res = http
            .get(format!("{}/api/v1/artifacts/{href}", c.url))
            .send()
            .await
            .unwrap();
        let disposition = res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(disposition, "attachment; filename=\"app.txt\"");
        assert_eq!(res.text().await.unwrap(), "hello artifacts");
    }
}

/// Two builds whose job shares a concurrency group: the second's job says what it waits for,
/// in its row, its badge and on its own page.
#[tokio::test]
async fn a_job_waiting_for_its_concurrency_group_says_which_and_who_holds_it() {
    const HELD: &str = "product: held
belts:
  - name: go
    jobs:
      - name: deploy
        concurrency: staging
        commands: sleep 30
";
    let c = conveyor(&[HELD]).await;
    let first = c.build("held", "go").await;
    c.until_job(&first, "deploy", "running").await;
    let second = c.build("held", "go").await;
    c.until_job(&second, "deploy", "waiting").await;
    let page = |path: String| async move {
        crate::common::http()
            .get(path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let html = page(format!("{}/builds/{second}", c.url)).await;
    assert!(
        html.contains("waits for concurrency group `staging`, held by build #1"),
        "{html}"
    );
    assert!(html.contains("waiting for its concurrency group"), "{html}");
    assert!(!html.contains("class=\"approve\""), "nothing to approve");
    let job = c.job(&second, "deploy").await;
    let html = page(format!("{}/jobs/{job}", c.url)).await;
    assert!(
        html.contains("<p class=\"note\" id=\"job-note\">waits for concurrency group `staging`, held by build #1</p>"),
        "{html}"
    );
    for b in [&second, &first] {
        conveyor::services::builds::cancel(&c.state, b)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_builds_commit_links_to_its_forge_when_the_product_is_a_repository_there() {
    let c = conveyor(&[QUICK]).await;
    let store = &c.state.store;
    let mut quick = store.product("quick").await.unwrap().unwrap();
    quick.repo = Some("git@github.com:acme/quick.git".into());
    store
        .put_product(&quick, conveyor::clock::now_ms())
        .await
        .unwrap();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let new = conveyor::store::NewBuild {
        resource: None,
        product: "quick".into(),
        belt: "ci".into(),
        trigger: conveyor::store::BuildTrigger::Manual,
        git_ref: Some("refs/heads/main".into()),
        sha: Some(sha.into()),
        model: None,
        context: None,
    };
    let id = conveyor::services::builds::start(&c.state, &new)
        .await
        .unwrap()
        .id;
    let page = c.page(&format!("/builds/{id}"), None).await;
    let link = format!(
        "<a href=\"https://github.com/acme/quick/commit/{sha}\" id=\"commit-link\" title=\"{sha}\"><code>{}</code></a>",
        &sha[..12]
    );
    assert!(page.contains(&link), "{page}");
}
