//! The placeholder home page and the health check.

use axum::Json;
use axum::extract::State;
use axum::response::Html;
use serde_json::{Value, json};

use crate::error::AppResult;
use crate::state::SharedState;

/// Until the dashboard lands: the recent builds as a plain list.
pub async fn home(State(state): State<SharedState>) -> AppResult<Html<String>> {
    let builds = state.store.builds(&Default::default()).await?;
    let mut rows = String::new();
    for b in builds.iter().take(50) {
        rows.push_str(&format!(
            "<li><a href=\"/api/v1/builds/{id}\">{product} #{number}</a> {belt}: {status}</li>\n",
            id = escape(&b.id),
            product = escape(&b.product),
            number = b.number,
            belt = escape(&b.belt),
            status = escape(&b.status),
        ));
    }
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>conveyor</title></head>\n<body>\n<h1>conveyor</h1>\n<p>The dashboard is on its way; meanwhile, recent builds (JSON API under <code>/api/v1</code>):</p>\n<ul>\n{rows}</ul>\n</body></html>\n"
    )))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn health(State(state): State<SharedState>) -> AppResult<Json<Value>> {
    state.store.unfinished_builds().await?;
    Ok(Json(json!({ "status": "ok", "database": "ok" })))
}
