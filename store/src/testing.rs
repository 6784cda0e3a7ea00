//! Helpers for tests of this crate and of the crates above it (feature `testing`): fresh
//! stores on SQLite and Postgres, each in a database of its own so tests run in parallel.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use crate::{ProductRecord, Store};

/// A store on a fresh SQLite file.
pub async fn sqlite() -> Arc<dyn Store> {
    let dir = temp_dir("store");
    crate::open(&format!("sqlite://{}/conveyor.db", dir.display()))
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
    crate::open(&fresh_pg_url().await)
        .await
        .expect("postgres store")
}

/// The URL of a fresh, empty Postgres database.
pub async fn fresh_pg_url() -> String {
    fresh_pg_url_on(&pg_admin_url()).await
}

/// The URL of a fresh, empty database on the server `admin` connects to.
pub async fn fresh_pg_url_on(admin: &str) -> String {
    use sqlx::Connection;
    let name = format!("conveyor_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("postgres reachable at 127.0.0.1:5432");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    format!("{base}/{name}")
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
        repo: None,
        ..ProductRecord::of(model, yaml.to_string())
    }
}
