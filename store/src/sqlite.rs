//! The SQLite backend: the embedded default. WAL, `synchronous=NORMAL`, a busy timeout,
//! and write transactions opened with `BEGIN IMMEDIATE` so writers queue instead of
//! failing halfway.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::PoolLimits;
use crate::error::{Result, db_err};
use crate::sql::conn::{Conn, Rec, Sql, all_on, exec_on, opt_on};
use crate::sql::{Backend, SqlStore};
use crate::types::PoolHandle;

pub(crate) struct SqliteBackend {
    pool: SqlitePool,
}

/// Opens (creating if missing) and migrates the database at `url` (`sqlite://PATH`).
pub(crate) async fn open(url: &str, limits: PoolLimits) -> Result<SqlStore<SqliteBackend>> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(db_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        // Negative: a size in KiB, not pages.
        .pragma("cache_size", format!("-{}", limits.sqlite_cache_kib));
    let pool = SqlitePoolOptions::new()
        .max_connections(limits.connections.unwrap_or(8).max(1))
        .connect_with(options)
        .await
        .map_err(db_err)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .map_err(db_err)?;
    Ok(SqlStore::new(SqliteBackend { pool }))
}

impl Backend for SqliteBackend {
    type Conn = SqliteConnection;
    type Tx = Transaction<'static, Sqlite>;
    type Pooled = PoolConnection<Sqlite>;

    async fn begin(&self) -> Result<Self::Tx> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        tx.commit().await.map_err(db_err)
    }

    async fn conn(&self) -> Result<Self::Pooled> {
        self.pool.acquire().await.map_err(db_err)
    }

    fn pool_handle(&self) -> PoolHandle {
        PoolHandle::Sqlite(self.pool.clone())
    }
}

impl Conn for SqliteConnection {
    // A write transaction (`BEGIN IMMEDIATE`) already holds the database's one write lock.
    const LOCK_BUILD: &'static str = "SELECT id FROM builds WHERE id = $1";
    const FOR_UPDATE: &'static str = "";

    async fn exec(&mut self, q: Sql) -> Result<u64> {
        exec_on(self, q, SqliteQueryResult::rows_affected).await
    }

    async fn all<T: Rec>(&mut self, q: Sql) -> Result<Vec<T>> {
        all_on(self, q).await
    }

    async fn opt<T: Rec>(&mut self, q: Sql) -> Result<Option<T>> {
        opt_on(self, q).await
    }
}
