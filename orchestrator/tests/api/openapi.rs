//! The OpenAPI document and the router agree: every API route in `http/mod.rs` is
//! described, and every described operation reaches a handler (not the router's 404/405).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use conveyor_runner::queue::LocalQueue;
use serde_json::Value;

use crate::common;

/// The paths `http/mod.rs` routes, outside the dashboard's pages.
fn routed_paths() -> BTreeSet<String> {
    let source = include_str!("../../src/http/mod.rs");
    source
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .filter(|p| {
            [
                "/api/",
                "/hooks/",
                "/logs",
                "/health",
                "/metrics",
                "/resource-definitions",
                "/resources",
                "/pipelines",
            ]
            .iter()
            .any(|k| p.starts_with(k))
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_route_is_described_and_every_described_operation_is_routed() {
    let base = common::serve_router(Arc::new(LocalQueue::new()), "admin", "runner").await;
    let http = crate::common::http();
    let doc: Value = http
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let described: BTreeSet<String> = paths.keys().cloned().collect();
    let routed = routed_paths();
    assert!(routed.len() > 15, "the route scan found {routed:?}");
    let missing: Vec<_> = routed.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes without a description: {missing:?}"
    );

    for (path, item) in paths {
        let url = format!("{base}{}", path.replace(['{', '}'], ""));
        for method in ["get", "post"] {
            if item.get(method).is_none() {
                continue;
            }
            let req = match method {
                "get" => http.get(&url),
                _ => http
                    .post(&url)
                    .bearer_auth("admin")
                    .json(&serde_json::json!({})),
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            // A handler's 404 says what is missing; the router's has no body.
            let routed_here = status != 405 && (status != 404 || body.contains("\"error\""));
            assert!(
                routed_here,
                "{} {path} is described but not routed ({status})",
                method.to_uppercase()
            );
        }
    }
}
