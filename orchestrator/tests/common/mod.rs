//! Shared test helpers: fresh stores on SQLite and Postgres, products from YAML.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod flow;
pub mod git;

use std::sync::Arc;

use conveyor::store::{self, ProductRecord, Store};

/// A store on a fresh SQLite file.
pub async fn sqlite() -> Arc<dyn Store> {
    let dir = temp_dir("store");
    store::open(&format!("sqlite://{}/conveyor.db", dir.display()))
        .await
        .expect("sqlite store")
}

/// The Postgres server tests use; `CONVEYOR_TEST_PG` overrides it.
pub fn pg_admin_url() -> String {
    std::env::var("CONVEYOR_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A store on a fresh Postgres database of its own.
pub async fn postgres() -> Arc<dyn Store> {
    store::open(&fresh_pg_url().await)
        .await
        .expect("postgres store")
}

/// The URL of a fresh, empty Postgres database.
pub async fn fresh_pg_url() -> String {
    let name = format!("conveyor_t_{}", uuid::Uuid::new_v4().simple());
    let admin = pg_admin_url();
    create_database(&admin, &name).await;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_string();
    format!("{base}/{name}")
}

async fn create_database(admin: &str, name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("postgres reachable at 127.0.0.1:5432");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
}

/// A unique temporary directory.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("conveyor-{tag}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A product record compiled from YAML; panics with the diagnostics if it is invalid.
pub fn product(yaml: &str) -> ProductRecord {
    let c = conveyor_core::compile::compile("test.yml", yaml);
    let model = c
        .product
        .unwrap_or_else(|| panic!("invalid test product: {:?}", c.diagnostics));
    ProductRecord {
        name: model.name.clone(),
        yaml: yaml.to_string(),
        model,
        repo: None,
        branch: None,
        webhook_secret: None,
        source_path: None,
        head_sha: None,
    }
}

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
    let state = conveyor::state::AppState::new(sqlite().await, queue, admin.into(), runner.into());
    let app = conveyor::routes::app(Arc::new(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
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
