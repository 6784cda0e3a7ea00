//! The local runners' way to the router of their own process (see
//! [`conveyor_runner::client::InProcess`]): the same routes, authentication and JSON as a
//! remote runner's requests, without a TCP connection and HTTP/1's framing in between.

use std::net::{Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use conveyor_runner::client::InProcess;
use futures_util::FutureExt as _;
use tower::ServiceExt as _;

use crate::http::ClientAddr;

pub(super) struct Router(pub axum::Router);

#[async_trait::async_trait]
impl InProcess for Router {
    async fn post(&self, path: &str, token: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        // From the loopback address, as the same call over HTTP comes: a wrong token counts
        // against it as it would there.
        let from = ConnectInfo(ClientAddr(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
        let req = Request::post(format!("/api/v1/{path}"))
            .extension(from)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|e| e.to_string())?;
        // A handler's panic fails this call, not the runner's task that made it (over HTTP
        // it ends the connection's task); dropped, the call drops the handler, as hyper
        // does when its client goes away.
        let called = AssertUnwindSafe(self.0.clone().oneshot(req)).catch_unwind();
        let resp = match called.await {
            Ok(Ok(resp)) => resp,
            Ok(Err(never)) => match never {},
            Err(_) => return Err("the server's handler panicked".into()),
        };
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, body.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    use super::*;

    async fn buggy() -> StatusCode {
        panic!("a bug")
    }

    #[tokio::test]
    async fn a_call_reaches_the_route_with_the_token_and_a_panic_fails_only_the_call() {
        let echo = |from: ConnectInfo<ClientAddr>, headers: HeaderMap, body: String| async move {
            let auth = headers[header::AUTHORIZATION].to_str().unwrap().to_string();
            let ip = from.0.0.ip();
            (StatusCode::CREATED, format!("{ip} {auth} {body}"))
        };
        let app = axum::Router::new()
            .route("/api/v1/runner/logs", post(echo))
            .route("/api/v1/runner/claim", post(buggy));
        let router = Router(app);
        let (status, body) = router
            .post("runner/logs", "t", b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(
            (status, body.as_slice()),
            (201, b"127.0.0.1 Bearer t {}".as_slice())
        );
        let err = router
            .post("runner/claim", "t", Vec::new())
            .await
            .unwrap_err();
        assert_eq!(err, "the server's handler panicked");
        let (status, _) = router
            .post("runner/nowhere", "t", Vec::new())
            .await
            .unwrap();
        assert_eq!(status, 404);
    }
}
