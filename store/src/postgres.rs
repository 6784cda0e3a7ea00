//! The Postgres backend, for several orchestrators against one database.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, Postgres, Transaction};

use crate::PoolLimits;
use crate::error::{Result, db_err};
use crate::sql::conn::{Conn, Rec, Sql, all_on, exec_on, opt_on};
use crate::sql::{Backend, SqlStore};
use crate::types::PoolHandle;

/// How long a pooled connection may sit idle and still be handed out without a ping. Shorter
/// than any restart of the server (a shutdown, then a start): a connection idle across one
/// is pinged, and replaced when the ping fails. A busy orchestrator reuses its connections
/// within milliseconds and skips the pings; the price is that for 100 ms after the server
/// drops its connections (a fast shutdown, a crash), a connection put back just before is
/// handed out unpinged and fails its statement (docs/decisions.md).
const PING_AFTER_IDLE: Duration = Duration::from_millis(100);

pub(crate) struct PgBackend {
    pool: PgPool,
}

/// Connects to and migrates the database at `url` (`postgres://…`); `ca_cert` verifies the
/// server's certificate when the URL names no `sslrootcert`.
pub(crate) async fn open(
    url: &str,
    ca_cert: Option<&Path>,
    limits: PoolLimits,
) -> Result<SqlStore<PgBackend>> {
    let mut options = PgConnectOptions::from_str(url).map_err(db_err)?;
    if let Some(ca) = ca_cert
        && !url.contains("sslrootcert=")
    {
        options = options.ssl_root_cert(ca);
    }
    let pool = PgPoolOptions::new()
        .max_connections(limits.connections.unwrap_or(16).max(1))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out: one round trip more for every
        // transaction and read. A connection back in the pool for less than
        // `PING_AFTER_IDLE` is handed out as it is; one idle longer is pinged first.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .map_err(connect_err)?;
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .map_err(db_err)?;
    Ok(SqlStore::new(PgBackend { pool }))
}

/// A connection failure; one of TLS says what to check.
fn connect_err(e: sqlx::Error) -> crate::StoreError {
    let tls: &(dyn std::error::Error + 'static) = match &e {
        sqlx::Error::Tls(tls) => tls.as_ref(),
        sqlx::Error::Io(io) if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => io,
        _ => return db_err(e),
    };
    crate::StoreError::Database(format!(
        "TLS with the database failed: {}; check the URL's sslmode, and name the CA that \
         signed the server's certificate with sslrootcert=FILE (or --ca-cert)",
        chain(tls)
    ))
}

/// An error and its causes in one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

impl Backend for PgBackend {
    type Conn = PgConnection;
    type Tx = Transaction<'static, Postgres>;
    type Pooled = PoolConnection<Postgres>;
    type Writer = PoolConnection<Postgres>;
    type Claimer = PoolConnection<Postgres>;

    async fn begin(&self) -> Result<Self::Tx> {
        self.pool.begin().await.map_err(db_err)
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        tx.commit().await.map_err(db_err)
    }

    async fn conn(&self) -> Result<Self::Pooled> {
        self.pool.acquire().await.map_err(db_err)
    }

    async fn writer(&self) -> Result<Self::Writer> {
        self.conn().await
    }

    async fn claimer(&self) -> Result<Self::Claimer> {
        self.conn().await
    }

    fn pool_handle(&self) -> PoolHandle {
        PoolHandle::Postgres(self.pool.clone())
    }
}

impl Conn for PgConnection {
    const LOCK_BUILD: &'static str = "SELECT id FROM builds WHERE id = $1 FOR UPDATE";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const WRITING_CTE: bool = true;

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
