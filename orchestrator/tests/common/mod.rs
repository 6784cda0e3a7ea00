//! Shared test helpers: fresh stores on SQLite and Postgres, products from YAML.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod git;
pub mod moto;

use std::sync::Arc;

#[allow(unused_imports)]
pub use conveyor_store::testing::{
    fresh_pg_url, pg_admin_url, postgres, product, sqlite, temp_dir,
};

/// A private, empty Redis on `port` (no persistence), for tests that stop and restart it.
pub fn start_redis(port: u16) -> std::process::Child {
    std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed")
}

/// An HTTP client for tests. It installs the process's TLS provider first: reqwest is built
/// without one of its own, as in the binaries.
pub fn http() -> reqwest::Client {
    http_builder().build().unwrap()
}

/// An HTTP client builder for tests (see [`http`]).
pub fn http_builder() -> reqwest::ClientBuilder {
    conveyor_runner::tls::install_crypto_provider();
    reqwest::Client::builder()
}

/// A TCP port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real router over a fresh SQLite store and `queue`, on a random port; its base URL.
pub async fn serve_router(
    queue: Arc<dyn conveyor_runner::queue::Queue>,
    admin: &str,
    runner: &str,
) -> String {
    let state = conveyor::http::AppState::new(sqlite().await, queue, admin.into(), runner.into());
    serve_app(conveyor::http::app(Arc::new(state))).await
}

/// A router on a random port, served as `serve` and `up` serve it (each request knowing
/// its client's address); its base URL.
pub async fn serve_app(app: axum::Router) -> String {
    serve_app_over(app, None).await
}

/// A router on a random port, over HTTPS with `tls`; its base URL.
pub async fn serve_app_over(
    app: axum::Router,
    tls: Option<conveyor::startup::ServerTls>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let forever = std::future::pending();
        conveyor::startup::serve_http(listener, tls.as_ref(), app, forever)
            .await
            .unwrap()
    });
    base
}

/// A child process killed when dropped.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary of the workspace, beside `conveyor` (`conveyor-runner` is built by
/// `cargo test --workspace`).
pub fn bin(name: &str) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_BIN_EXE_conveyor")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p conveyor-runner` (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// Registers a runner with a registration token; its own token.
pub async fn register_runner(
    http: &reqwest::Client,
    base: &str,
    registration: &str,
    name: &str,
    fleets: &[&str],
) -> String {
    let res = http
        .post(format!("{base}/api/v1/runners/register"))
        .bearer_auth(registration)
        .json(&serde_json::json!({ "name": name, "fleets": fleets }))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status().as_u16(), 201, "registering {name}");
    let body: serde_json::Value = res.json().await.expect("JSON");
    body["token"].as_str().expect("a token").to_string()
}
