//! The SQLite backend: the embedded default. WAL, `synchronous=NORMAL`, a busy timeout,
//! and write transactions opened with `BEGIN IMMEDIATE` so writers queue instead of
//! failing halfway.
//!
//! SQLite has one writer at a time, so the engine's writes (write transactions, claims,
//! lease renewals) go through one connection of its own (behind a mutex), and its writers
//! queue for it: handed over at once, in order, rather than sleeping in SQLite's busy
//! handler (1 ms, then 2, 5, 10 … ms) for a lock another of our connections holds. That
//! connection's page cache stays valid from one write to the next, where a write through
//! any of several connections empties the others' (each re-reads the pages it needs). The
//! lone writes off the engine's path (a runner seen, a cache used, a session ended, a secret
//! or product stored) queue for it too; reads go to the other connections. The busy timeout
//! serves other processes on the same file (a CLI command beside `serve`).
//!
//! A claim goes ahead of the writes waiting their turn ([`Backend::claimer`]): the other
//! writers first queue one at a time at a gate, so a claim waits for the write under way
//! and at most one more, not for every completion queued.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite};

use crate::PoolLimits;
use crate::error::{Result, db_err};
use crate::sql::conn::{Conn, Rec, Sql, all_on, exec_on, opt_on};
use crate::sql::{Backend, SqlStore};
use crate::types::PoolHandle;

pub(crate) struct SqliteBackend {
    /// The connections reads use.
    pool: SqlitePool,
    /// The one connection this process writes through.
    writer: Arc<tokio::sync::Mutex<WriterConn>>,
    /// Where writes other than claims queue before they queue for the writer.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// The writer connection, held by a mutex rather than a pool of one: a pool pings each
/// connection put back, a trip to its thread that the next write waited for. `open` says a
/// transaction may be open on it: set before `BEGIN IMMEDIATE`, cleared by its `COMMIT` or
/// `ROLLBACK`, so one whose holder went away before either is rolled back before the
/// connection's next use.
struct WriterConn {
    conn: SqliteConnection,
    open: bool,
}

/// The writer connection, held. Let go with a transaction possibly open (a transaction
/// dropped uncommitted, a `COMMIT` that failed, a `BEGIN` whose caller went away), it has
/// that transaction rolled back at once, by a task that holds the writer until it is; should
/// no task run (the runtime shutting down), `open` has the next holder roll it back first.
struct WriterGuard(Option<tokio::sync::OwnedMutexGuard<WriterConn>>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let Some(mut guard) = self.0.take().filter(|g| g.open) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = end(&mut guard, "ROLLBACK").await {
                    tracing::warn!("the writer's next use rolls back instead: {e}");
                }
            });
        }
    }
}

impl std::ops::Deref for WriterGuard {
    type Target = WriterConn;

    fn deref(&self) -> &WriterConn {
        self.0.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for WriterGuard {
    fn deref_mut(&mut self) -> &mut WriterConn {
        self.0.as_mut().expect("held until dropped")
    }
}

/// The writer connection for a write transaction or single statements, holding the gate
/// while it is used.
pub(crate) struct SqliteWriter {
    held: WriterGuard,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

/// The writer connection for a claim, which does not queue at the gate.
pub(crate) struct SqliteClaimer {
    held: WriterGuard,
}

macro_rules! to_connection {
    ($t:ty) => {
        impl std::ops::Deref for $t {
            type Target = SqliteConnection;

            fn deref(&self) -> &SqliteConnection {
                &self.held.conn
            }
        }

        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut SqliteConnection {
                &mut self.held.conn
            }
        }
    };
}

to_connection!(SqliteWriter);
to_connection!(SqliteClaimer);

/// Ends the writer's transaction by `COMMIT` or `ROLLBACK`. A `ROLLBACK` with no transaction
/// open (its `BEGIN` never ran or failed, its `COMMIT` went through, or SQLite rolled it back
/// itself after an error) ends nothing and is not an error; on any other failure `open`
/// stays set.
async fn end(held: &mut WriterConn, how: &'static str) -> Result<()> {
    match sqlx::query(how).execute(&mut held.conn).await {
        Ok(_) => {}
        Err(e) if how == "ROLLBACK" && e.to_string().contains("no transaction is active") => {}
        Err(e) => return Err(db_err(e)),
    }
    held.open = false;
    Ok(())
}

/// How long a write waits for the writer connection before it fails: far longer than any
/// queue of write transactions takes.
const WRITER_WAIT: Duration = Duration::from_secs(300);

/// Opens (creating if missing) and migrates the database at `url` (`sqlite://PATH`).
pub(crate) async fn open(url: &str, limits: PoolLimits) -> Result<SqlStore<SqliteBackend>> {
    backend(url, limits).await.map(SqlStore::new)
}

/// The connections of [`open`], the database migrated.
async fn backend(url: &str, limits: PoolLimits) -> Result<SqliteBackend> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(db_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        // Negative: a size in KiB, not pages.
        .pragma("cache_size", format!("-{}", limits.sqlite_cache_kib));
    // One of the connections is the writer; the others read.
    let readers = limits.connections.unwrap_or(8).max(2) - 1;
    let pool = SqlitePoolOptions::new()
        .max_connections(readers)
        // No ping before each use: a connection to a file does not go stale, and the ping
        // is a trip to the connection's thread and back for every transaction and read.
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await
        .map_err(db_err)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .map_err(db_err)?;
    let conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(db_err)?;
    Ok(SqliteBackend {
        pool,
        writer: Arc::new(tokio::sync::Mutex::new(WriterConn { conn, open: false })),
        gate: Arc::default(),
    })
}

impl SqliteBackend {
    /// The writer connection, once a transaction left open on it is rolled back.
    async fn hold(&self) -> Result<WriterGuard> {
        let lock = self.writer.clone().lock_owned();
        let held = tokio::time::timeout(WRITER_WAIT, lock).await.map_err(|_| {
            crate::StoreError::Database(format!(
                "the database's writer was busy for {} s",
                WRITER_WAIT.as_secs()
            ))
        })?;
        let mut held = WriterGuard(Some(held));
        if held.open {
            end(&mut held, "ROLLBACK").await?;
        }
        Ok(held)
    }
}

impl Backend for SqliteBackend {
    type Conn = SqliteConnection;
    type Tx = SqliteWriter;
    type Pooled = PoolConnection<Sqlite>;
    type Writer = SqliteWriter;
    type Claimer = SqliteClaimer;

    async fn begin(&self) -> Result<Self::Tx> {
        let gate = self.gate.clone().lock_owned().await;
        let mut held = self.hold().await?;
        held.open = true;
        let begin = sqlx::query("BEGIN IMMEDIATE").execute(&mut held.conn);
        begin.await.map_err(db_err)?;
        Ok(SqliteWriter { held, _gate: gate })
    }

    async fn commit(mut tx: Self::Tx) -> Result<()> {
        end(&mut tx.held, "COMMIT").await
    }

    async fn conn(&self) -> Result<Self::Pooled> {
        self.pool.acquire().await.map_err(db_err)
    }

    async fn writer(&self) -> Result<Self::Writer> {
        let gate = self.gate.clone().lock_owned().await;
        let held = self.hold().await?;
        Ok(SqliteWriter { held, _gate: gate })
    }

    async fn claimer(&self) -> Result<Self::Claimer> {
        Ok(SqliteClaimer {
            held: self.hold().await?,
        })
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

#[cfg(test)]
mod tests;
