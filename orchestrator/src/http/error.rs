//! The one error type the API's handlers return, and how a service's error answers over
//! HTTP. A 500 never carries internal text: the detail goes to the log and the body says
//! only that something failed.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::services::ServiceError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum AppError {
    BadRequest(String),
    /// One field of the request is unusable: 422, naming it.
    InvalidField {
        field: String,
        message: String,
    },
    /// The request body is over the limit.
    TooLarge,
    Unauthorized,
    /// Too many failed sign-ins or wrong tokens from the client's address: try again in
    /// this many seconds.
    TooManyAttempts(u64),
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
            StoreError::Conflict(what) => AppError::Conflict(what),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => AppError::BadRequest(m),
            ServiceError::InvalidField { field, message } => {
                AppError::InvalidField { field, message }
            }
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

impl From<super::throttle::Wait> for AppError {
    fn from(w: super::throttle::Wait) -> Self {
        AppError::TooManyAttempts(w.0)
    }
}

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        AppError::BadRequest(format!("invalid query: {}", e.body_text()))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let retry_after = match self {
            AppError::TooManyAttempts(secs) => Some(secs),
            _ => None,
        };
        let (status, body) = match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "error": m })),
            AppError::InvalidField { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": message, "field": field }),
            ),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": format!("the request body is over the {} MiB limit", super::MAX_BODY_BYTES >> 20) }),
            ),
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "missing or wrong token: send `Authorization: Bearer <token>`" }),
            ),
            AppError::TooManyAttempts(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "error": too_many(secs) }),
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
        let mut res = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// What a throttled client is told.
pub fn too_many(secs: u64) -> String {
    format!("too many failed sign-ins or wrong tokens from your address: try again in {secs} s")
}

pub type AppResult<T> = Result<T, AppError>;
