//! The local runners' way to the router of their own process (see
//! [`conveyor_runner::client::InProcess`]): the same routes, authentication and JSON as a
//! remote runner's requests, without a TCP connection and HTTP/1's framing in between.

use axum::body::Body;
use axum::http::{Request, header};
use conveyor_runner::client::InProcess;
use tower::ServiceExt as _;

/// The most an answer to a protocol call may hold (a claimed job's spec is the largest).
const MAX_ANSWER_BYTES: usize = 64 << 20;

pub(super) struct Router(pub axum::Router);

#[async_trait::async_trait]
impl InProcess for Router {
    async fn post(&self, path: &str, token: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        let req = Request::post(format!("/api/v1/{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|e| e.to_string())?;
        // On a task of its own, as a connection's requests are: a handler's panic fails this
        // call (the runner tries again), not the runner's task that made it.
        let resp = match tokio::spawn(self.0.clone().oneshot(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(never)) => match never {},
            Err(e) => return Err(format!("the server's handler failed: {e}")),
        };
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, body.to_vec()))
    }
}
