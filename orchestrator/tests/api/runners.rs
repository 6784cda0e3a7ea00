//! Runner registration: the fleet token buys a runner a token of its own; the list shows who
//! is online.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};

use crate::common;

async fn serve() -> (String, reqwest::Client) {
    let queue = Arc::new(conveyor_runner::queue::LocalQueue::new());
    let base = common::serve_router(queue, "admin", "fleet-secret").await;
    (base, crate::common::http())
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_registered_runner_uses_its_own_token_and_is_listed_online() {
    let (base, http) = serve().await;
    let (code, body) = post(
        &http,
        format!("{base}/api/v1/runners/register"),
        "fleet-secret",
        json!({"name": "r1", "fleets": ["default", "gpu"]}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    let (code, _) = post(
        &http,
        format!("{base}/api/v1/runners/heartbeat"),
        &token,
        Value::Null,
    )
    .await;
    assert_eq!(code, 204);
    let claim = json!({"job_run_id": "nope", "attempt": 1, "runner": "r1"});
    let (code, body) = post(
        &http,
        format!("{base}/api/v1/runner/claim"),
        &token,
        claim.clone(),
    )
    .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (
            409,
            Some("this job run is not yours: it was taken, or your lease is gone")
        )
    );
    let (code, _) = post(
        &http,
        format!("{base}/api/v1/runner/claim"),
        "made-up",
        claim,
    )
    .await;
    assert_eq!(code, 401);
    let list: Value = http
        .get(format!("{base}/api/v1/runners"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = &list["runners"][0];
    assert_eq!(
        (r["name"].as_str(), r["online"].as_bool()),
        (Some("r1"), Some(true))
    );
    assert_eq!(r["fleets"], json!(["default", "gpu"]));
    assert!(
        r.get("token").is_none() && r.get("token_hash").is_none(),
        "tokens are never shown"
    );
}

#[tokio::test]
async fn registering_again_replaces_the_old_token() {
    let (base, http) = serve().await;
    let url = format!("{base}/api/v1/runners/register");
    let body = json!({"name": "r1", "fleets": ["default"]});
    let first = post(&http, url.clone(), "fleet-secret", body.clone())
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let second = post(&http, url, "fleet-secret", body).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    let hb = format!("{base}/api/v1/runners/heartbeat");
    assert_eq!(post(&http, hb.clone(), &first, Value::Null).await.0, 401);
    assert_eq!(post(&http, hb, &second, Value::Null).await.0, 204);
}

#[tokio::test]
async fn registration_needs_the_fleet_token_a_name_and_valid_fleets() {
    let (base, http) = serve().await;
    let url = format!("{base}/api/v1/runners/register");
    let ok = json!({"name": "r", "fleets": ["default"]});
    assert_eq!(post(&http, url.clone(), "wrong", ok.clone()).await.0, 401);
    let refusals = [
        (
            json!({"name": "r", "fleets": ["GPU"]}),
            "invalid fleet name `GPU`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit",
            "fleets",
        ),
        (
            json!({"name": " ", "fleets": ["default"]}),
            "a runner needs a `name` of 1 to 100 printable characters",
            "name",
        ),
        (
            json!({"name": "r", "fleets": []}),
            "a runner needs at least one fleet in `fleets`",
            "fleets",
        ),
    ];
    for (body, error, field) in refusals {
        let (code, reply) = post(&http, url.clone(), "fleet-secret", body).await;
        assert_eq!(
            (code, reply),
            (422, json!({ "error": error, "field": field }))
        );
    }
    let list: Value = http
        .get(format!("{base}/api/v1/runners"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["runners"],
        json!([]),
        "nothing registered by refused calls"
    );
}

#[tokio::test]
async fn a_fleet_token_registers_runners_of_its_fleets_only() {
    let queue = Arc::new(conveyor_runner::queue::LocalQueue::new());
    let store = common::sqlite().await;
    let mut state = conveyor::http::AppState::new(store, queue, "admin".into(), "any".into());
    state.fleet_tokens = vec!["default,docker=token-for-default-1234".parse().unwrap()];
    let base = common::serve_app(conveyor::http::app(Arc::new(state))).await;
    let http = crate::common::http();
    let url = format!("{base}/api/v1/runners/register");
    let token = "token-for-default-1234";
    let deploy = json!({"name": "sneaky", "fleets": ["default", "deploy"]});
    let (code, body) = post(&http, url.clone(), token, deploy).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (
            403,
            Some(
                "this registration token is for fleets default, docker; it cannot register a runner for fleet `deploy`"
            )
        )
    );
    // A runner of `deploy`, registered with the admin token, cannot be taken over by name.
    let real = json!({"name": "deploy-1", "fleets": ["deploy"]});
    assert_eq!(post(&http, url.clone(), "admin", real).await.0, 201);
    let takeover = json!({"name": "deploy-1", "fleets": ["default"]});
    let (code, body) = post(&http, url.clone(), token, takeover).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (
            403,
            Some(
                "runner `deploy-1` is registered for fleets this token does not cover; choose another name"
            )
        )
    );
    let ok = json!({"name": "builder", "fleets": ["default", "docker"]});
    assert_eq!(post(&http, url, token, ok).await.0, 201);
    assert!(
        "deploy=short"
            .parse::<conveyor::http::FleetToken>()
            .is_err()
    );
}
