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
pub mod seed;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use api::{Held, Store};
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

/// What a store may hold in memory: its connections, and (SQLite) each one's page cache.
/// Both are fixed here, so neither grows with traffic nor with the history kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Connections at most (`None`: 8 on SQLite, 16 on Postgres). On SQLite one of them is
    /// the writer and the others read, so it has two at least.
    pub connections: Option<u32>,
    /// SQLite's page cache per connection, in KiB (its own default is 2,000).
    pub sqlite_cache_kib: u32,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            connections: None,
            sqlite_cache_kib: DEFAULT_SQLITE_CACHE_KIB,
        }
    }
}

/// SQLite's page cache per connection unless told otherwise, in KiB.
pub const DEFAULT_SQLITE_CACHE_KIB: u32 = 2_000;

/// Opens the store a URL names. A Postgres URL's TLS settings are honoured — `sslmode`
/// (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert` — and
/// `ca_cert`, when given, is the CA file for a URL that names no `sslrootcert` of its own.
pub async fn open_trusting(
    url: &str,
    ca_cert: Option<&std::path::Path>,
) -> Result<std::sync::Arc<dyn Store>> {
    open_with(url, ca_cert, PoolLimits::default()).await
}

/// [`open_trusting`] within `limits`.
pub async fn open_with(
    url: &str,
    ca_cert: Option<&std::path::Path>,
    limits: PoolLimits,
) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::open(url, limits).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(
            postgres::open(url, ca_cert, limits).await?,
        ))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database URL `{url}`: use sqlite://PATH or postgres://…"
        )))
    }
}
