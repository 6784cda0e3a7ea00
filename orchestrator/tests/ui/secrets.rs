//! The product page's secrets over HTTP: a signed-in viewer sets, sees by name and removes a
//! secret and lets pull requests have them; the value is never on a page; strangers see no
//! secrets section and cannot post to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::ui_support::{ADMIN, QUICK, conveyor};

fn client() -> reqwest::Client {
    crate::common::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn signed_in_cookie(url: &str) -> String {
    let res = client()
        .post(format!("{url}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN}&next=/"))
        .send()
        .await
        .unwrap();
    let set = res.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn page(url: &str, cookie: Option<&str>) -> String {
    let mut req = client().get(format!("{url}/products/quick"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap().text().await.unwrap()
}

async fn post(url: &str, path: &str, cookie: &str, body: &str) -> u16 {
    let res = client()
        .post(format!("{url}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

#[tokio::test]
async fn a_signed_in_viewer_sets_lists_and_removes_secrets_whose_values_no_page_shows() {
    let c = conveyor(&[QUICK]).await;
    assert!(
        !page(&c.url, None).await.contains("secrets-h"),
        "strangers see no secrets"
    );
    assert_eq!(
        post(
            &c.url,
            "/products/quick/secrets",
            "",
            "csrf=x&name=A_B&value=abcd"
        )
        .await,
        403
    );
    let cookie = signed_in_cookie(&c.url).await;
    let html = page(&c.url, Some(&cookie)).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let set = format!("csrf={csrf}&name=DEPLOY_KEY&value=hunter2-very-secret");
    assert_eq!(
        post(&c.url, "/products/quick/secrets", &cookie, &set).await,
        303
    );
    assert_eq!(
        post(
            &c.url,
            "/products/quick/pr-secrets",
            &cookie,
            &format!("csrf={csrf}&allowed=on")
        )
        .await,
        303
    );
    let html = page(&c.url, Some(&cookie)).await;
    assert!(html.contains("<tr data-secret=\"DEPLOY_KEY\">"), "{html}");
    assert!(!html.contains("hunter2"), "the value is never shown");
    assert!(
        html.contains("id=\"pr-allowed\" name=\"allowed\" checked"),
        "{html}"
    );
    let remove = "/products/quick/secrets/DEPLOY_KEY/remove";
    assert_eq!(
        post(&c.url, remove, &cookie, &format!("csrf={csrf}")).await,
        303
    );
    assert!(
        !page(&c.url, Some(&cookie))
            .await
            .contains("data-secret=\"DEPLOY_KEY\"")
    );
}
