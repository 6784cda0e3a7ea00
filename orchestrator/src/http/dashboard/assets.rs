//! The dashboard's stylesheet and script, compiled into the binary: no external assets.

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../../../../templates/assets/app.css");
const JS: &str = include_str!("../../../../templates/assets/app.js");
const LOG_JS: &str = include_str!("../../../../templates/assets/log.js");
/// Assets change only with the binary; a day of caching keeps pages fast and upgrades visible.
const CACHE: &str = "public, max-age=86400";

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        CSS,
    )
}

pub async fn js() -> impl IntoResponse {
    script(JS)
}

/// The job page's log viewer.
pub async fn log_js() -> impl IntoResponse {
    script(LOG_JS)
}

fn script(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        body,
    )
}
