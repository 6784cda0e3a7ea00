//! The one error type the API's handlers return, and how a service's error answers over
//! HTTP. A 500 never carries internal text: the detail goes to the log and the body says
//! only that something failed.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::services::ServiceError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum AppError {
    BadRequest(String),
    /// The request body is over the limit.
    TooLarge,
    Unauthorized,
    /// A webhook without a valid signature.
    BadSignature,
    /// Authenticated, but not allowed to do this.
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    /// A dependency is down for now; try again later.
    Unavailable(String),
    /// A config that does not compile: every located message.
    InvalidConfig(Vec<String>),
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => AppError::BadRequest(m),
            ServiceError::NotFound(m) => AppError::NotFound(m),
            ServiceError::Conflict(m) => AppError::Conflict(m),
            ServiceError::Forbidden(m) => AppError::Forbidden(m),
            ServiceError::Unavailable(m) => AppError::Unavailable(m),
            ServiceError::InvalidConfig(errors) => AppError::InvalidConfig(errors),
            ServiceError::BadSignature => AppError::BadSignature,
            ServiceError::Store(e) => e.into(),
            ServiceError::Internal(m) => AppError::Internal(m),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for AppError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        match e {
            axum::extract::rejection::JsonRejection::BytesRejection(b) => {
                if b.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge
                } else {
                    AppError::BadRequest(b.body_text())
                }
            }
            other => AppError::BadRequest(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "error": m })),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": format!("the request body is over the {} MiB limit", super::MAX_BODY_BYTES >> 20) }),
            ),
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "missing or wrong token: send `Authorization: Bearer <token>`" }),
            ),
            AppError::BadSignature => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "the signature is missing or wrong for every product of this repository" }),
            ),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "error": m })),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "error": m })),
            AppError::Conflict(m) => (StatusCode::CONFLICT, json!({ "error": m })),
            AppError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": m })),
            AppError::InvalidConfig(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": "the config has errors", "errors": errors }),
            ),
            AppError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error; see the server log" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

pub type AppResult<T> = Result<T, AppError>;
