//! The web dashboard: server-rendered pages (askama templates under `templates/`), live
//! updates over server-sent events, and the forms that act on builds (through `services`,
//! like the API). Every page works without JavaScript; `assets/app.js` adds live updates
//! and `assets/log.js` the job page's log viewer (`log`). Its routes are listed with the others in `http/mod.rs`.

pub mod actions;
pub mod ansi;
pub mod assets;
pub mod build;
pub mod dag;
pub mod fleets;
pub mod job;
pub mod links;
pub mod live;
pub mod log;
pub mod overview;
pub mod product;
pub mod secrets;
pub mod session;
pub mod view;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::AppError;

/// What a page handler fails with: the app's error, shown as an HTML page.
pub enum PageError {
    App(AppError),
    /// An action without a session or without the session's CSRF token.
    Forbidden(String),
}

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError::App(e.into())
    }
}

pub type PageResult<T> = Result<T, PageError>;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            PageError::Forbidden(m) | PageError::App(AppError::Forbidden(m)) => {
                (StatusCode::FORBIDDEN, m)
            }
            PageError::App(AppError::NotFound(m)) => (StatusCode::NOT_FOUND, m),
            PageError::App(AppError::Conflict(m)) => (StatusCode::CONFLICT, m),
            PageError::App(AppError::Unavailable(m)) => (StatusCode::SERVICE_UNAVAILABLE, m),
            PageError::App(AppError::BadRequest(m)) => (StatusCode::BAD_REQUEST, m),
            PageError::App(AppError::InvalidField { message, .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            PageError::App(AppError::InvalidConfig(errors)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, errors.join("\n"))
            }
            PageError::App(AppError::Unauthorized | AppError::BadSignature) => (
                StatusCode::UNAUTHORIZED,
                "Sign in with the admin token first.".into(),
            ),
            PageError::App(AppError::TooManyAttempts(secs)) => {
                let mut page = view::error_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    crate::http::error::too_many(secs),
                );
                page.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(secs),
                );
                return page;
            }
            PageError::App(AppError::TooLarge) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request is too large.".into(),
            ),
            PageError::App(AppError::Internal(detail)) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the server; its log says what.".into(),
                )
            }
        };
        view::error_page(status, message)
    }
}

/// What a path no route serves answers: the error page with a way back for a browser, a
/// JSON error naming the path for the API and for clients that do not ask for HTML.
pub async fn not_found(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let path = uri.path();
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let api = ["/api/", "/hooks/", "/logs", "/health", "/metrics"]
        .iter()
        .any(|p| path.starts_with(p));
    if wants_html && !api {
        return view::error_page(
            StatusCode::NOT_FOUND,
            format!("There is no page at {path}."),
        );
    }
    let body = serde_json::json!({ "error": format!("no route for {method} {path}") });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
