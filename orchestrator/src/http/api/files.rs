//! Artifacts and caches over HTTP: the runner's file calls (each fenced by the lease in its
//! headers, bodies streamed both ways), a build's artifact list, and the download anyone who
//! may read builds can make.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use conveyor_core::protocol::{ArtifactRef, CacheLookup, LEASE_HEADERS, Lease, SHA256_HEADER};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::{ApiReader, RunnerAuth};
use crate::http::error::{AppError, AppResult};
use crate::services::{Services, files};

/// The lease a file call is made under, from [`LEASE_HEADERS`].
pub struct LeaseHeaders(pub Lease);

impl<S: Send + Sync> FromRequestParts<S> for LeaseHeaders {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let [run, attempt, token] = LEASE_HEADERS.map(|h| header_text(&parts.headers, h));
        let lease = match (run, attempt.and_then(|a| a.parse().ok()), token) {
            (Some(job_run_id), Some(attempt), Some(lease_token)) => Lease {
                job_run_id,
                attempt,
                lease_token,
            },
            _ => {
                return Err(AppError::BadRequest(format!(
                    "a file call carries its lease in the headers {}",
                    LEASE_HEADERS.join(", ")
                )));
            }
        };
        Ok(LeaseHeaders(lease))
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_string)
}

fn sha256_of(headers: &HeaderMap) -> AppResult<String> {
    header_text(headers, SHA256_HEADER)
        .ok_or_else(|| AppError::BadRequest(format!("send the file's SHA-256 in {SHA256_HEADER}")))
}

fn stream_of(body: Body) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    body.into_data_stream().map_err(std::io::Error::other)
}

/// Bytes out, with their length, SHA-256 and, for a person's download, a file name.
fn download(size: u64, sha256: &str, name: Option<&str>, body: files::Download) -> Response {
    let mut res = Body::from_stream(body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(sha256) {
        h.insert(SHA256_HEADER, v);
    }
    if let Some(name) = name {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    res
}

#[derive(Deserialize)]
pub struct PathQuery {
    path: String,
}

pub async fn upload_artifact(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    LeaseHeaders(lease): LeaseHeaders,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, Json<ArtifactRef>)> {
    let sha = sha256_of(&headers)?;
    let v =
        files::upload_artifact(&services, &lease, &owner, &q.path, &sha, stream_of(body)).await?;
    let r = ArtifactRef {
        id: v.id,
        path: v.path,
        size: v.size,
        sha256: v.sha256,
    };
    Ok((StatusCode::CREATED, Json(r)))
}

pub async fn runner_artifact(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    LeaseHeaders(lease): LeaseHeaders,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (v, body) = files::artifact_for_job(&services, &lease, &owner, &id).await?;
    Ok(download(v.size, &v.sha256, None, body))
}

pub async fn find_cache(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    body: Result<Json<CacheLookup>, JsonRejection>,
) -> AppResult<Response> {
    let Json(q) = body?;
    Ok(match files::find_cache(&services, &q, &owner).await? {
        Some(hit) => Json(hit).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

pub async fn runner_cache(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    LeaseHeaders(lease): LeaseHeaders,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (size, sha256, body) = files::cache_for_job(&services, &lease, &owner, &id).await?;
    Ok(download(size, &sha256, None, body))
}

#[derive(Deserialize)]
pub struct CacheQuery {
    name: String,
    key: String,
}

pub async fn save_cache(
    State(services): State<Arc<Services>>,
    RunnerAuth(owner): RunnerAuth,
    LeaseHeaders(lease): LeaseHeaders,
    Query(q): Query<CacheQuery>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<StatusCode> {
    let sha = sha256_of(&headers)?;
    let which = (q.name.as_str(), q.key.as_str(), sha.as_str());
    let saved = files::save_cache(&services, &lease, &owner, which, stream_of(body)).await?;
    Ok(if saved {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    })
}

/// `GET /api/v1/builds/{id}/artifacts`: each file with its job, path, size and SHA-256.
pub async fn list(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    if services.store.build(&id).await?.is_none() {
        return Err(AppError::NotFound(format!("no build `{id}`")));
    }
    let artifacts = services.store.build_artifacts(&id).await?;
    Ok(Json(json!({ "artifacts": artifacts })))
}

/// `GET /api/v1/artifacts/{id}`: the file.
pub async fn get(
    State(services): State<Arc<Services>>,
    _: ApiReader,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (v, body) = files::artifact(&services, &id).await?;
    let name = v.path.rsplit('/').next().unwrap_or(&v.path).to_string();
    Ok(download(v.size, &v.sha256, Some(&name), body))
}
