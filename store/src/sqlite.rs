//! The SQLite backend: the embedded default. WAL, `synchronous=NORMAL`, a busy timeout,
//! and write transactions opened with `BEGIN IMMEDIATE` so writers queue instead of
//! failing halfway.
//!
//! SQLite has one writer at a time, so the engine's writes (write transactions, claims,
//! lease renewals) go through one connection of its own (a pool of one), and its writers
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
use sqlx::{Sqlite, Transaction};

use crate::PoolLimits;
use crate::error::{Result, db_err};
use crate::sql::conn::{Conn, Rec, Sql, all_on, exec_on, opt_on};
use crate::sql::{Backend, SqlStore};
use crate::types::PoolHandle;

pub(crate) struct SqliteBackend {
    /// The connections reads use.
    pool: SqlitePool,
    /// The one connection this process writes through.
    writer: SqlitePool,
    /// Where writes other than claims queue before they queue for the writer.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction, holding the gate until it ends. The transaction is declared first,
/// so it is dropped (rolled back) before the gate opens.
pub(crate) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

/// The writer connection for single statements, holding the gate while it is used.
pub(crate) struct SqliteWriter {
    conn: PoolConnection<Sqlite>,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

macro_rules! to_connection {
    ($t:ty, $field:ident) => {
        impl std::ops::Deref for $t {
            type Target = SqliteConnection;

            fn deref(&self) -> &SqliteConnection {
                &self.$field
            }
        }

        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut SqliteConnection {
                &mut self.$field
            }
        }
    };
}

to_connection!(SqliteTx, tx);
to_connection!(SqliteWriter, conn);

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
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(WRITER_WAIT)
        .connect_with(options)
        .await
        .map_err(db_err)?;
    Ok(SqliteBackend {
        pool,
        writer,
        gate: Arc::default(),
    })
}

impl Backend for SqliteBackend {
    type Conn = SqliteConnection;
    type Tx = SqliteTx;
    type Pooled = PoolConnection<Sqlite>;
    type Writer = SqliteWriter;
    type Claimer = PoolConnection<Sqlite>;

    async fn begin(&self) -> Result<Self::Tx> {
        let gate = self.gate.clone().lock_owned().await;
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        Ok(SqliteTx { tx, _gate: gate })
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        tx.tx.commit().await.map_err(db_err)
    }

    async fn conn(&self) -> Result<Self::Pooled> {
        self.pool.acquire().await.map_err(db_err)
    }

    async fn writer(&self) -> Result<Self::Writer> {
        let gate = self.gate.clone().lock_owned().await;
        let conn = self.writer.acquire().await.map_err(db_err)?;
        Ok(SqliteWriter { conn, _gate: gate })
    }

    async fn claimer(&self) -> Result<Self::Claimer> {
        self.writer.acquire().await.map_err(db_err)
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
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use crate::sql::Backend;

    /// Lets the tasks spawned on this (single-threaded) runtime run until they wait.
    async fn let_others_run() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// A claim queued after a write still gets the writer first, once the transaction that
    /// holds it ends.
    #[tokio::test]
    async fn a_claim_goes_ahead_of_the_writes_waiting_their_turn() {
        let dir = crate::testing::temp_dir("claimer");
        let url = format!("sqlite://{}/c.db", dir.display());
        let backend = Arc::new(super::backend(&url, Default::default()).await.unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        let tx = backend.begin().await.unwrap();
        let (b, o) = (backend.clone(), order.clone());
        let write = tokio::spawn(async move {
            let _w = b.writer().await.unwrap();
            o.lock().unwrap().push("write");
        });
        let_others_run().await;
        let (b, o) = (backend.clone(), order.clone());
        let claim = tokio::spawn(async move {
            let _c = b.claimer().await.unwrap();
            o.lock().unwrap().push("claim");
        });
        let_others_run().await;
        assert!(
            order.lock().unwrap().is_empty(),
            "both wait for the transaction"
        );
        drop(tx);
        write.await.unwrap();
        claim.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["claim", "write"]);
    }

    /// A product whose job `two` needs `one`, and a build of it.
    fn two_jobs_one_after_the_other() -> (crate::ProductRecord, crate::NewBuild) {
        let yaml = "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: one\n        \
                    commands: 'true'\n      - name: two\n        needs: [one]\n        \
                    commands: 'true'\n";
        let new = crate::NewBuild {
            product: "p".into(),
            belt: "b".into(),
            trigger: crate::BuildTrigger::Manual,
            git_ref: None,
            sha: None,
            model: None,
            resource: None,
            context: None,
        };
        (crate::testing::product(yaml), new)
    }

    /// A job run taken for a runner by a completion, whose answer could not be made, goes
    /// back to its queue at the same attempt, once (the lease fences a second try), and is
    /// claimed again at that attempt.
    #[tokio::test]
    async fn a_taken_job_run_put_back_is_queued_again_at_its_attempt_once() {
        use crate::Store;
        use conveyor_core::protocol::{ClaimRequest, Completion, Outcome};
        let dir = crate::testing::temp_dir("untake");
        let url = format!("sqlite://{}/u.db", dir.display());
        let store =
            crate::sql::SqlStore::new(super::backend(&url, Default::default()).await.unwrap());
        let (product, new) = two_jobs_one_after_the_other();
        store.put_product(&product, 1).await.unwrap();
        let (_, created) = store.create_build(&new, 2).await.unwrap();
        let owner = crate::Owner {
            name: "r1".into(),
            fleets: vec!["default".into()],
        };
        let req = |id: &str| ClaimRequest {
            job_run_id: id.into(),
            attempt: 1,
            runner: "r1".into(),
        };
        let one = &created.dispatch[0].msg.job_run_id;
        let claim = store
            .claim(&req(one), &owner, 30_000, 3)
            .await
            .unwrap()
            .unwrap();
        let done = Completion {
            lease: claim.spec.lease,
            outcome: Outcome::Succeeded,
            exit_code: Some(0),
            outputs: Default::default(),
            error: None,
            log: Vec::new(),
            take_next: true,
        };
        let (_, next) = store
            .complete_taking(&done, &owner, u64::MAX, 30_000, 4)
            .await
            .unwrap()
            .unwrap();
        let lease = next.unwrap().spec.lease;
        let back = store.untake(lease.clone(), "r1").await.unwrap();
        assert_eq!(
            (&back.msg.job_run_id, back.msg.attempt),
            (&lease.job_run_id, 1)
        );
        assert!(store.untake(lease.clone(), "r1").await.is_none(), "fenced");
        let again = store
            .claim(&req(&lease.job_run_id), &owner, 30_000, 5)
            .await;
        assert!(again.unwrap().is_some(), "claimable again at its attempt");
    }
}
