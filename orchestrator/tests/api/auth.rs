//! Who gets in: a dashboard session ends on every orchestrator when it signs out or the
//! admin token changes; failed sign-ins and wrong tokens are throttled per client address,
//! over HTTP and HTTPS, while other addresses (and runners' own tokens) still get in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::sync::Arc;

use conveyor::startup::ServerTls;
use conveyor_runner::tls::Trust;
use conveyor_runner::tls::testing::Pki;
use reqwest::redirect::Policy;

use super::*;

/// An orchestrator node over `store` with private reads; its base URL.
async fn node(store: Arc<dyn conveyor::store::Store>, admin: &str) -> String {
    let mut state = conveyor::http::AppState::new(
        store,
        Arc::new(LocalQueue::new()),
        admin.into(),
        RUNNER.into(),
    );
    state.public_ui = false;
    common::serve_app(conveyor::http::app(Arc::new(state))).await
}

fn client() -> reqwest::Client {
    common::http_builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in; the session cookie.
async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let res = form(
        http,
        &format!("{base}/sign-in"),
        None,
        &format!("token={ADMIN}"),
    )
    .await;
    assert_eq!(res.status(), 303);
    let set = res.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn form(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut req = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

/// Signs out with the form every page carries.
async fn sign_out(http: &reqwest::Client, base: &str, cookie: &str) -> reqwest::Response {
    let page = http.get(format!("{base}/")).header("cookie", cookie);
    let page = page.send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap();
    let csrf = csrf.split('"').next().unwrap();
    let url = format!("{base}/sign-out");
    form(http, &url, Some(cookie), &format!("csrf={csrf}")).await
}

async fn read(http: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    let res = http
        .get(format!("{base}/api/v1/builds"))
        .header("cookie", cookie);
    res.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn signing_out_on_one_orchestrator_ends_the_session_on_another_and_so_does_a_new_admin_token()
{
    let url = common::fresh_pg_url().await;
    let open = || async { conveyor::store::open(&url).await.unwrap() };
    let (a, b) = (
        node(open().await, ADMIN).await,
        node(open().await, ADMIN).await,
    );
    let rotated = node(open().await, "another-admin-token").await;
    let http = client();
    let wrong = form(&http, &format!("{a}/sign-in"), None, "token=nope").await;
    assert_eq!(wrong.status(), 401);
    let page = wrong.text().await.unwrap();
    assert!(
        page.contains(
            "That is not the admin token. `conveyor up` prints it when it starts; `conveyor \
             serve` takes it from CONVEYOR_ADMIN_TOKEN or --admin-token-file."
        ),
        "{page}"
    );
    let cookie = sign_in(&http, &a).await;
    assert_eq!(
        read(&http, &b, &cookie).await,
        200,
        "one session for every node"
    );
    assert_eq!(
        read(&http, &rotated, &cookie).await,
        401,
        "a new admin token ends it"
    );

    let out = sign_out(&http, &a, &cookie).await;
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The browser forgets the cookie; whoever copied it holds nothing now.
    assert_eq!(read(&http, &b, &cookie).await, 401);
    assert_eq!(read(&http, &a, &cookie).await, 401);
    let again = http
        .get(format!("{b}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["location"], "/sign-in?next=/");
}

/// A client whose connections come from `from` (any 127.0.0.0/8 address reaches the
/// server on loopback), trusting `ca` for HTTPS.
fn from(from: &str, ca: Option<&std::path::Path>) -> reqwest::Client {
    conveyor_runner::tls::install_crypto_provider();
    let builder = Trust::with_ca_file(ca).unwrap().http().unwrap();
    let ip: IpAddr = from.parse().unwrap();
    builder
        .local_address(ip)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Hammers `base` with wrong admin tokens from 127.0.0.2 until it answers 429, then checks
/// who still gets in.
async fn hammer(base: &str, ca: Option<&std::path::Path>) {
    let (guesser, other) = (from("127.0.0.2", ca), from("127.0.0.1", ca));
    let r1 = common::register_runner(&other, base, RUNNER, "r1", &["default"]).await;
    let guess = |http: &reqwest::Client, token: &str| {
        http.post(format!("{base}{PRODUCTS}"))
            .bearer_auth(token)
            .json(&json!({ "yaml": SHOP }))
            .send()
    };
    let mut tries = 0;
    let throttled = loop {
        tries += 1;
        let res = guess(&guesser, &format!("guess-{tries}")).await.unwrap();
        if res.status() != 401 {
            break res;
        }
        assert!(tries < 40, "still 401 after {tries} wrong tokens");
    };
    assert_eq!(throttled.status(), 429, "after {tries} wrong tokens");
    assert!(tries > 20, "a burst of 20 failures is allowed ({tries})");
    let wait: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&wait), "Retry-After: {wait}");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(
        body["error"],
        format!(
            "too many failed sign-ins or wrong tokens from your address: try again in {wait} s"
        )
    );
    // From the throttled address, a right guess looks like a wrong one …
    assert_eq!(guess(&guesser, ADMIN).await.unwrap().status(), 429);
    let sign_in = form(
        &guesser,
        &format!("{base}/sign-in"),
        None,
        &format!("token={ADMIN}"),
    )
    .await;
    assert_eq!(sign_in.status(), 429);
    assert!(sign_in.headers().contains_key("retry-after"));
    let register = guesser
        .post(format!("{base}/api/v1/runners/register"))
        .bearer_auth(RUNNER)
        .json(&json!({ "name": "r2", "fleets": ["default"] }));
    assert_eq!(register.send().await.unwrap().status(), 429);
    // … but a runner there keeps its jobs: its own token is never throttled.
    let beat = guesser
        .post(format!("{base}/api/v1/runners/heartbeat"))
        .bearer_auth(&r1);
    assert_eq!(beat.send().await.unwrap().status(), 204);
    // Another address signs in as ever.
    assert_eq!(guess(&other, ADMIN).await.unwrap().status(), 201);
    sign_in_from(&other, base).await;
}

async fn sign_in_from(http: &reqwest::Client, base: &str) {
    let res = form(
        http,
        &format!("{base}/sign-in"),
        None,
        &format!("token={ADMIN}"),
    )
    .await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn wrong_tokens_from_one_address_are_answered_429_while_another_address_still_gets_in() {
    let state = conveyor::http::AppState::new(
        common::sqlite().await,
        Arc::new(LocalQueue::new()),
        ADMIN.into(),
        RUNNER.into(),
    );
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    hammer(&base, None).await;
}

#[tokio::test]
async fn over_https_too_the_throttle_tells_addresses_apart() {
    let pki = Pki::generate(&common::temp_dir("throttle-tls"));
    let tls = ServerTls::load(&pki.cert, &pki.key).unwrap();
    let state = conveyor::http::AppState::new(
        common::sqlite().await,
        Arc::new(LocalQueue::new()),
        ADMIN.into(),
        RUNNER.into(),
    );
    let app = conveyor::http::app(Arc::new(state));
    let base = common::serve_app_over(app, Some(tls)).await;
    hammer(&base, Some(&pki.ca)).await;
}
