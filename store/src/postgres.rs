//! The Postgres backend, for several orchestrators against one database.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Postgres, Transaction};

use crate::error::{Result, db_err};
use crate::sql::conn::{Conn, Rec, Sql, all_on, exec_on, opt_on};
use crate::sql::{Backend, SqlStore};
use crate::types::PoolHandle;

pub(crate) struct PgBackend {
    pool: PgPool,
}

/// Connects to and migrates the database at `url` (`postgres://…`).
pub(crate) async fn open(url: &str) -> Result<SqlStore<PgBackend>> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(db_err)?;
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .map_err(db_err)?;
    Ok(SqlStore::new(PgBackend { pool }))
}

impl Backend for PgBackend {
    type Conn = PgConnection;
    type Tx = Transaction<'static, Postgres>;
    type Pooled = PoolConnection<Postgres>;

    async fn begin(&self) -> Result<Self::Tx> {
        self.pool.begin().await.map_err(db_err)
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        tx.commit().await.map_err(db_err)
    }

    async fn conn(&self) -> Result<Self::Pooled> {
        self.pool.acquire().await.map_err(db_err)
    }

    fn pool_handle(&self) -> PoolHandle {
        PoolHandle::Postgres(self.pool.clone())
    }
}

impl Conn for PgConnection {
    const LOCK_BUILD: &'static str = "SELECT id FROM builds WHERE id = $1 FOR UPDATE";

    async fn exec(&mut self, q: Sql) -> Result<u64> {
        exec_on(self, q, PgQueryResult::rows_affected).await
    }

    async fn all<T: Rec>(&mut self, q: Sql) -> Result<Vec<T>> {
        all_on(self, q).await
    }

    async fn opt<T: Rec>(&mut self, q: Sql) -> Result<Option<T>> {
        opt_on(self, q).await
    }
}
