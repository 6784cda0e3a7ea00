//! The one seam between the engine's SQL and a backend: a statement with its arguments
//! ([`Sql`]) and a connection that runs it ([`Conn`]). SQLite's and Postgres' connections
//! implement `Conn` through the small generic functions here, so the SQL the two backends
//! share is written once, as data, and rows decode with `FromRow` ([`Rec`]).

use std::borrow::Cow;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Arguments, AssertSqlSafe, Database, Encode, Executor, FromRow, IntoArguments, Type};

use crate::error::{Result, StoreError, db_err};

/// One bound value. The schema has only text, 64-bit integers and booleans.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_string))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// A statement and its arguments, in `$n` order.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    text: Cow<'static, str>,
    args: Vec<Arg>,
}

/// A statement written in the source.
pub(crate) fn sql(text: &'static str) -> Sql {
    Sql {
        text: Cow::Borrowed(text),
        args: Vec::new(),
    }
}

impl Sql {
    /// A statement put together from the source's own fragments (never from input).
    pub(crate) fn owned(text: String) -> Sql {
        Sql {
            text: Cow::Owned(text),
            args: Vec::new(),
        }
    }

    /// The same arguments in a statement that holds this one's text (`f` puts it in).
    pub(crate) fn wrap(self, f: impl FnOnce(&str) -> String) -> Sql {
        Sql {
            text: Cow::Owned(f(&self.text)),
            args: self.args,
        }
    }

    pub(crate) fn bind(mut self, value: impl Into<Arg>) -> Sql {
        self.args.push(value.into());
        self
    }

    /// `HEAD VALUES (…), (…) TAIL` with one placeholder per value: a multi-row insert,
    /// put together only from our own fragments and `$n` placeholders.
    pub(crate) fn values(head: &str, rows: Vec<Vec<Arg>>, tail: &str) -> Sql {
        let mut text = format!("{head} VALUES ");
        let mut args = Vec::new();
        for (r, row) in rows.into_iter().enumerate() {
            text.push_str(if r == 0 { "(" } else { ", (" });
            for (i, arg) in row.into_iter().enumerate() {
                args.push(arg);
                let sep = if i == 0 { "" } else { ", " };
                text.push_str(&format!("{sep}${}", args.len()));
            }
            text.push(')');
        }
        text.push_str(tail);
        Sql {
            text: Cow::Owned(text),
            args,
        }
    }
}

/// A backend that binds every kind of [`Arg`].
pub(crate) trait Binds: Database {
    fn arguments(args: Vec<Arg>) -> Result<Self::Arguments>;
}

impl<DB> Binds for DB
where
    DB: Database,
    Option<String>: for<'t> Encode<'t, DB> + Type<DB>,
    Option<i64>: for<'t> Encode<'t, DB> + Type<DB>,
    bool: for<'t> Encode<'t, DB> + Type<DB>,
{
    fn arguments(args: Vec<Arg>) -> Result<DB::Arguments> {
        let mut out = DB::Arguments::default();
        for arg in args {
            match arg {
                Arg::Text(v) => out.add(v),
                Arg::Int(v) => out.add(v),
                Arg::Bool(v) => out.add(v),
            }
            .map_err(db_err)?;
        }
        Ok(out)
    }
}

/// A row type that decodes from both backends' rows.
pub(crate) trait Rec:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Rec for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A connection (or a transaction's) that runs [`Sql`].
pub(crate) trait Conn: Send {
    /// Locks a build's row for the rest of the transaction (`$1`: its id). Every
    /// transaction that moves a build's job runs takes this lock first, so locks are taken
    /// in one order everywhere: the build, then its job runs, then products.
    const LOCK_BUILD: &'static str;
    /// What ends a `SELECT` that locks the rows it reads (`FOR UPDATE`; nothing where the
    /// write transaction already holds the only write lock).
    const FOR_UPDATE: &'static str;
    /// Whether a `WITH` may hold an `UPDATE … RETURNING` (Postgres), so that one statement
    /// can change rows and read what joins them.
    const WRITING_CTE: bool;

    /// Runs a statement; how many rows it changed.
    fn exec(&mut self, q: Sql) -> impl Future<Output = Result<u64>> + Send;
    fn all<T: Rec>(&mut self, q: Sql) -> impl Future<Output = Result<Vec<T>>> + Send;
    fn opt<T: Rec>(&mut self, q: Sql) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Exactly one row; none is an error.
    fn one<T: Rec>(&mut self, q: Sql) -> impl Future<Output = Result<T>> + Send {
        async move {
            self.opt(q)
                .await?
                .ok_or_else(|| StoreError::Database("a row the statement needs is missing".into()))
        }
    }
}

/// Runs `q` on a connection of `DB`; `affected` reads the backend's row count.
pub(crate) async fn exec_on<'c, DB, E>(
    conn: E,
    q: Sql,
    affected: fn(&DB::QueryResult) -> u64,
) -> Result<u64>
where
    DB: Binds,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
{
    let args = DB::arguments(q.args)?;
    let done = sqlx::query_with(AssertSqlSafe(q.text), args)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(affected(&done))
}

/// Every row `q` selects.
pub(crate) async fn all_on<'c, DB, E, T>(conn: E, q: Sql) -> Result<Vec<T>>
where
    DB: Binds,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    T: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
{
    let args = DB::arguments(q.args)?;
    let query = sqlx::query_as_with(AssertSqlSafe(q.text), args);
    query.fetch_all(conn).await.map_err(db_err)
}

/// The first row `q` selects, if any.
pub(crate) async fn opt_on<'c, DB, E, T>(conn: E, q: Sql) -> Result<Option<T>>
where
    DB: Binds,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    T: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
{
    let args = DB::arguments(q.args)?;
    let query = sqlx::query_as_with(AssertSqlSafe(q.text), args);
    query.fetch_optional(conn).await.map_err(db_err)
}

/// What a backend gives the engine: connections, and write transactions.
pub(crate) trait Backend: Send + Sync + 'static {
    type Conn: Conn;
    /// A write transaction; dropped without [`Backend::commit`], it rolls back.
    type Tx: std::ops::DerefMut<Target = Self::Conn> + Send;
    /// A connection from the pool, for reads and single statements.
    type Pooled: std::ops::DerefMut<Target = Self::Conn> + Send;
    /// A connection for writes of one statement each, committed one by one: on SQLite it
    /// holds the process's writer lock (see `sqlite.rs`), so the statement queues behind the
    /// write transactions instead of sleeping in SQLite's busy handler.
    type Writer: std::ops::DerefMut<Target = Self::Conn> + Send;
    /// A [`Backend::Writer`] for taking a job run: where writers queue (SQLite), it goes
    /// ahead of those waiting, since a runner's free slot waits for it.
    type Claimer: std::ops::DerefMut<Target = Self::Conn> + Send;

    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;
    fn commit(tx: Self::Tx) -> impl Future<Output = Result<()>> + Send;
    fn conn(&self) -> impl Future<Output = Result<Self::Pooled>> + Send;
    fn writer(&self) -> impl Future<Output = Result<Self::Writer>> + Send;
    fn claimer(&self) -> impl Future<Output = Result<Self::Claimer>> + Send;
    fn pool_handle(&self) -> crate::types::PoolHandle;
}
