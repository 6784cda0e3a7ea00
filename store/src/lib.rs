//! conveyor-store: every use case the orchestrator has for its database (the [`Store`]
//! trait), on SQLite (the embedded default) and Postgres. The engine's SQL is written once
//! (`sql/`), over a small connection seam each backend implements; what differs between
//! the backends (connecting, migrations, opening a write transaction) lives in `sqlite.rs`
//! and `postgres.rs`. No sqlx type crosses this boundary.

mod api;
mod catalog;
mod error;
mod history;
mod logs;
mod postgres;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use api::Store;
pub use catalog::*;
pub use error::{Result, StoreError};
pub use history::*;
pub use logs::*;
pub use sql::{token, truncation_marker};
pub use types::*;

/// Opens the store a URL names: `sqlite://PATH` or `postgres://…`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    open_trusting(url, None).await
}

/// Opens the store a URL names. A Postgres URL's TLS settings are honoured — `sslmode`
/// (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert` — and
/// `ca_cert`, when given, is the CA file for a URL that names no `sslrootcert` of its own.
pub async fn open_trusting(
    url: &str,
    ca_cert: Option<&std::path::Path>,
) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(postgres::open(url, ca_cert).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database URL `{url}`: use sqlite://PATH or postgres://…"
        )))
    }
}
