//! What the benchmarks share: percentiles, a process's memory from `/proc`, and a fresh
//! database on the chosen backend.

use serde_json::{Value, json};

/// The `p`-th percentile (0.0–1.0) of sorted samples, nearest rank; 0 when there are none.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Latency samples in ms as `{n, p50_ms, p99_ms, max_ms}`.
pub fn summary(samples: &mut [f64]) -> Value {
    samples.sort_by(f64::total_cmp);
    let round = |v: f64| (v * 100.0).round() / 100.0;
    json!({
        "n": samples.len(),
        "p50_ms": round(percentile(samples, 0.5)),
        "p99_ms": round(percentile(samples, 0.99)),
        "max_ms": round(samples.last().copied().unwrap_or(0.0)),
    })
}

/// A process's resident memory now and at its peak (VmRSS, VmHWM), and what is resident
/// now of its own (anonymous: heap, stacks) and of files it maps (its program's code), in
/// KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub anon_kb: u64,
    pub file_kb: u64,
}

impl Mem {
    /// `pid`'s (`None`: this process's), or zeros when `/proc` cannot tell.
    pub fn of(pid: Option<u32>) -> Mem {
        let path = pid.map_or("/proc/self/status".to_string(), |p| {
            format!("/proc/{p}/status")
        });
        std::fs::read_to_string(path).map_or(Mem::default(), |s| Mem::parse(&s))
    }

    /// From the text of `/proc/PID/status`.
    pub fn parse(status: &str) -> Mem {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
                .unwrap_or(0)
        };
        Mem {
            rss_kb: field("VmRSS:"),
            hwm_kb: field("VmHWM:"),
            anon_kb: field("RssAnon:"),
            file_kb: field("RssFile:"),
        }
    }

    pub fn anon_mb(self) -> f64 {
        (self.anon_kb as f64 / 102.4).round() / 10.0
    }

    pub fn file_mb(self) -> f64 {
        (self.file_kb as f64 / 102.4).round() / 10.0
    }

    pub fn rss_mb(self) -> f64 {
        (self.rss_kb as f64 / 102.4).round() / 10.0
    }

    pub fn hwm_mb(self) -> f64 {
        (self.hwm_kb as f64 / 102.4).round() / 10.0
    }
}

/// A fresh database for a benchmark: a SQLite file in `dir` (`embedded`), or a new
/// database on the Postgres server `database_url` names (`postgres`), dropped by
/// [`Fresh::drop_database`].
pub struct Fresh {
    pub url: String,
    /// The server's URL and the database's name, for a Postgres one.
    pg: Option<(String, String)>,
}

impl Fresh {
    pub async fn create(
        backend: &str,
        database_url: Option<&str>,
        dir: &std::path::Path,
    ) -> Result<Fresh, String> {
        match backend {
            "embedded" | "sqlite" => Ok(Fresh {
                url: format!("sqlite://{}", dir.join("conveyor.db").display()),
                pg: None,
            }),
            "postgres" => {
                let server = database_url
                    .ok_or("--database-url is needed for the postgres backend")?
                    .to_string();
                let name = format!("conveyor_bench_{}", uuid::Uuid::now_v7().simple());
                pg_exec(&server, &format!("CREATE DATABASE {name}")).await?;
                let base = server.split('?').next().unwrap_or(&server);
                let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
                Ok(Fresh {
                    url: format!("{base}/{name}"),
                    pg: Some((server, name)),
                })
            }
            other => Err(format!(
                "unknown backend `{other}`: use embedded or postgres"
            )),
        }
    }

    /// The database's size in bytes: the SQLite file (with its WAL), or
    /// `pg_database_size`.
    pub async fn size(&self) -> Result<u64, String> {
        match &self.pg {
            None => {
                let path = self.url.trim_start_matches("sqlite://");
                let len = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
                Ok(len(path.to_string()) + len(format!("{path}-wal")))
            }
            Some((server, name)) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(server)
                    .await
                    .map_err(|e| e.to_string())?;
                let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size($1)::BIGINT")
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(size.max(0) as u64)
            }
        }
    }

    /// One number a statement of our own selects, on a connection of its own.
    pub async fn scalar(&self, statement: &'static str) -> Result<i64, String> {
        use sqlx::Connection;
        let err = |e: sqlx::Error| format!("{statement}: {e}");
        let (n,): (i64,) = if self.pg.is_some() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.map_err(err)?;
            sqlx::query_as(statement)
                .fetch_one(&mut conn)
                .await
                .map_err(err)?
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url)
                .await
                .map_err(err)?;
            sqlx::query_as(statement)
                .fetch_one(&mut conn)
                .await
                .map_err(err)?
        };
        Ok(n)
    }

    /// How many builds the database holds.
    pub async fn builds(&self) -> Result<i64, String> {
        self.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM builds")
            .await
    }

    /// SQLite's free pages (reused by later inserts); 0 on Postgres.
    pub async fn free_pages(&self) -> Result<i64, String> {
        match self.pg {
            None => {
                self.scalar("SELECT freelist_count FROM pragma_freelist_count()")
                    .await
            }
            Some(_) => Ok(0),
        }
    }

    /// Postgres: `ANALYZE`, as autovacuum would have long since after a history this size
    /// was written (without it the planner knows nothing of the seeded rows).
    pub async fn analyze(&self) -> Result<(), String> {
        if self.pg.is_some() {
            pg_exec(&self.url, "ANALYZE").await?;
        }
        Ok(())
    }

    /// Postgres: a plain `VACUUM`, as autovacuum runs it, so deleted rows' space is
    /// reused (true); SQLite reuses free pages by itself (false: nothing to do).
    pub async fn vacuum(&self) -> Result<bool, String> {
        if self.pg.is_some() {
            pg_exec(&self.url, "VACUUM").await?;
        }
        Ok(self.pg.is_some())
    }

    pub async fn drop_database(&self) {
        if let Some((server, name)) = &self.pg
            && let Err(e) = pg_exec(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await
        {
            eprintln!("warning: could not drop the benchmark's database {name}: {e}");
        }
    }
}

/// Runs one statement of our own (never input) on the server `url` names.
async fn pg_exec(url: &str, statement: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| format!("cannot reach Postgres: {e}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_empty_is_zero() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&s, 0.5), 51);
        assert_eq!(percentile(&s, 0.99), 99);
        assert_eq!(percentile(&s, 1.0), 100);
        assert_eq!(percentile::<u64>(&[], 0.5), 0);
    }

    #[test]
    fn memory_is_read_from_proc_status() {
        let m = Mem::parse(
            "Name:\tconveyor\nVmHWM:\t   51200 kB\nVmRSS:\t   20480 kB\nRssAnon:\t   12288 kB\nRssFile:\t    8192 kB\n",
        );
        assert_eq!(
            m,
            Mem {
                rss_kb: 20480,
                hwm_kb: 51200,
                anon_kb: 12288,
                file_kb: 8192,
            }
        );
        assert_eq!((m.anon_mb(), m.file_mb()), (12.0, 8.0));
        assert_eq!((m.rss_mb(), m.hwm_mb()), (20.0, 50.0));
        assert!(Mem::of(None).rss_kb > 0, "this process has memory");
    }
}
