//! The web dashboard: server-rendered pages (askama templates under `templates/`), live
//! updates over server-sent events, and the forms that act on builds. Every page works
//! without JavaScript; `assets/app.js` only adds live updates.

mod actions;
pub mod ansi;
mod assets;
mod build;
pub mod dag;
mod fleets;
mod job;
mod live;
mod overview;
mod product;
mod session;
mod view;

pub use session::signed_in;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::AppError;
use crate::state::SharedState;

/// The dashboard's routes, merged into the app's router.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/products/{name}", get(product::page))
        .route(
            "/products/{name}/belts/{belt}/builds",
            post(actions::start_build),
        )
        .route("/builds/{id}", get(build::page))
        .route("/builds/{id}/events", get(live::build_events))
        .route("/builds/{id}/rerun", post(actions::rerun))
        .route("/builds/{id}/cancel", post(actions::cancel_build))
        .route("/jobs/{id}", get(job::page))
        .route("/jobs/{id}/events", get(live::job_events))
        .route("/jobs/{id}/log.txt", get(job::download))
        .route("/jobs/{id}/approve", post(actions::approve))
        .route("/jobs/{id}/cancel", post(actions::cancel_job))
        .route("/fleets", get(fleets::page))
        .route("/events", get(live::changes))
        .route("/sign-in", get(session::page).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
}

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
            PageError::App(AppError::BadRequest(m)) => (StatusCode::BAD_REQUEST, m),
            PageError::App(AppError::InvalidConfig(errors)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, errors.join("\n"))
            }
            PageError::App(AppError::Unauthorized | AppError::BadSignature) => (
                StatusCode::UNAUTHORIZED,
                "Sign in with the admin token first.".into(),
            ),
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
