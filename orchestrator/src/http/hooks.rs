//! The forges' webhooks: `/hooks/github`, `/hooks/gitlab`, `/hooks/gitea`. Each hands the
//! delivery to `services::webhooks` and says what it did: 201 with the builds it started,
//! 200 when it started none (a replay, a ping, an ignored change), 401 when no product of
//! the repository signed it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::error::AppResult;
use crate::forges::{Forge, Headers};
use crate::services::Services;
use crate::services::webhooks::{self, Built, Delivery};

type Answer = AppResult<(StatusCode, Json<Value>)>;

pub async fn github(s: State<Arc<Services>>, h: HeaderMap, body: Bytes) -> Answer {
    handle(s, Forge::GitHub, h, body).await
}

pub async fn gitlab(s: State<Arc<Services>>, h: HeaderMap, body: Bytes) -> Answer {
    handle(s, Forge::GitLab, h, body).await
}

pub async fn gitea(s: State<Arc<Services>>, h: HeaderMap, body: Bytes) -> Answer {
    handle(s, Forge::Gitea, h, body).await
}

async fn handle(
    State(services): State<Arc<Services>>,
    forge: Forge,
    h: HeaderMap,
    body: Bytes,
) -> Answer {
    let delivery = webhooks::handle(&services, forge, &headers(&h), &body).await?;
    Ok(match delivery {
        Delivery::Duplicate => (
            StatusCode::OK,
            Json(json!({ "builds": [], "duplicate": true })),
        ),
        Delivery::Ping => (StatusCode::OK, Json(json!({ "builds": [], "pong": true }))),
        Delivery::Ignored(why) => (
            StatusCode::OK,
            Json(json!({ "builds": [], "ignored": why })),
        ),
        Delivery::Built(built) => built_answer(built),
    })
}

fn built_answer(built: Built) -> (StatusCode, Json<Value>) {
    let builds: Vec<Value> = built
        .builds
        .iter()
        .map(|b| match b.number {
            None => {
                json!({ "id": b.id, "product": b.product, "belt": b.belt, "status": "config_error", "sha": b.sha })
            }
            Some(number) => {
                json!({ "id": b.id, "product": b.product, "belt": b.belt, "number": number, "sha": b.sha })
            }
        })
        .collect();
    let errors: Vec<Value> = built
        .errors
        .iter()
        .map(|e| json!({ "product": e.product, "error": e.error }))
        .collect();
    let status = if builds.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(json!({ "builds": builds, "errors": errors })))
}

/// The request's headers as the forges' parsers read them: the first value of each, when
/// it is text.
fn headers(h: &HeaderMap) -> Headers {
    let mut out = Headers::new();
    for name in h.keys() {
        if let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) {
            out.insert(name.as_str(), v.to_string());
        }
    }
    out
}
