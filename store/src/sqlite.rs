//! The SQLite backend: the embedded default. WAL, `synchronous=NORMAL`, a busy timeout,
//! and write transactions opened with `BEGIN IMMEDIATE` so writers queue instead of
//! failing halfway.
//!
//! SQLite has one writer at a time, and a writer that finds the lock taken sleeps in its
//! busy handler (1 ms, then 2, 5, 10 … ms) rather than being woken when it is free. So the
//! process's own write transactions queue on an async lock first and take SQLite's lock
//! only when it is theirs: handed over at once, in order. The busy timeout remains for
//! other processes on the same file (a CLI command beside `serve`).

use std::str::FromStr;
use std::sync::Arc;
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
    /// Held for the whole of each of this process's write transactions.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction, holding the process's writer lock until it ends. The transaction
/// is declared first, so it is dropped (rolled back) before the lock is released.
pub(crate) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    _writer: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
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
        // No ping before each use: a connection to a file does not go stale, and the ping
        // is a trip to the connection's thread and back for every transaction and read.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(db_err)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .map_err(db_err)?;
    Ok(SqlStore::new(SqliteBackend {
        pool,
        writer: Arc::default(),
    }))
}

impl Backend for SqliteBackend {
    type Conn = SqliteConnection;
    type Tx = SqliteTx;
    type Pooled = PoolConnection<Sqlite>;

    async fn begin(&self) -> Result<Self::Tx> {
        let writer = self.writer.clone().lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        Ok(SqliteTx {
            tx,
            _writer: writer,
        })
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        tx.tx.commit().await.map_err(db_err)
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
    const WRITING_CTE: bool = false;

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
