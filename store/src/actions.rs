//! What a person does to a build from the dashboard or the API, written once for both
//! backends: approve a manual job run, cancel one job run, re-run a build; and the reads
//! the dashboard needs (a build's edges, the tail of a log).

macro_rules! action_steps {
    ($store:ident, $db:ty, $conn:ty) => {
        impl $store {
            async fn approve_in(conn: &mut $conn, id: &str, now: i64) -> $crate::Result<Option<$crate::Effects>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let Some(row) = sqlx::query(
                    "UPDATE job_runs SET status = 'queued', queued_at = $2 WHERE id = $1 AND status = 'waiting' RETURNING fleet, attempt",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                else {
                    return Ok(None);
                };
                let mut effects = $crate::Effects::default();
                effects.dispatch.push($crate::Dispatch {
                    fleet: row.try_get("fleet").map_err(db_err)?,
                    msg: conveyor_core::protocol::QueueMessage {
                        job_run_id: id.to_string(),
                        attempt: row.try_get::<i64, _>("attempt").map_err(db_err)? as u32,
                    },
                });
                Ok(Some(effects))
            }

            async fn cancel_run_in(conn: &mut $conn, id: &str, now: i64) -> $crate::Result<Option<$crate::Effects>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let Some(row) = sqlx::query("SELECT build_id, status FROM job_runs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?
                else {
                    return Ok(None);
                };
                let build_id: String = row.try_get("build_id").map_err(db_err)?;
                let status: String = row.try_get("status").map_err(db_err)?;
                let mut work = Work::default();
                match status.as_str() {
                    "running" => {
                        sqlx::query("UPDATE job_runs SET cancel_requested = TRUE WHERE id = $1 AND status = 'running'")
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err)?;
                    }
                    "pending" | "queued" | "waiting" => {
                        sqlx::query("UPDATE job_runs SET status = 'cancelled', finished_at = $2 WHERE id = $1")
                            .bind(id)
                            .bind(now)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err)?;
                        Self::settle(conn, &build_id, vec![(id.to_string(), "cancelled")], now, &mut work).await?;
                    }
                    // Already finished: nothing to stop.
                    _ => {}
                }
                Ok(Some(work.effects))
            }

            /// The belt a build ran, rebuilt from its job runs and edges, so a re-run runs
            /// the same jobs even when the registered config has changed since.
            async fn belt_of(conn: &mut $conn, build_id: &str, belt: &str) -> $crate::Result<Option<conveyor_core::model::Belt>> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json};
                let rows = sqlx::query("SELECT id, spec FROM job_runs WHERE build_id = $1 ORDER BY idx")
                    .bind(build_id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_err)?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let mut ids = Vec::with_capacity(rows.len());
                let mut jobs = Vec::with_capacity(rows.len());
                for r in &rows {
                    ids.push(r.try_get::<String, _>("id").map_err(db_err)?);
                    jobs.push(from_json::<conveyor_core::model::Job>(&r.try_get::<String, _>("spec").map_err(db_err)?)?);
                }
                let mut edges = Vec::new();
                for r in sqlx::query("SELECT from_run, to_run FROM job_edges WHERE build_id = $1")
                    .bind(build_id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_err)?
                {
                    let from: String = r.try_get("from_run").map_err(db_err)?;
                    let to: String = r.try_get("to_run").map_err(db_err)?;
                    if let (Some(f), Some(t)) = (ids.iter().position(|i| *i == from), ids.iter().position(|i| *i == to)) {
                        edges.push((f, t));
                    }
                }
                edges.sort_unstable();
                Ok(Some(conveyor_core::model::Belt { name: belt.to_string(), jobs, edges }))
            }

            async fn rerun_in(conn: &mut $conn, id: &str, now: i64, work: &mut Work) -> $crate::Result<Option<String>> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json};
                let Some(row) = sqlx::query(
                    "SELECT b.product, b.belt, b.number, b.git_ref, b.sha, b.upstream_build_id, b.trigger, p.model \
                     FROM builds b JOIN products p ON p.name = b.product WHERE b.id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                else {
                    return Ok(None);
                };
                let belt: String = row.try_get("belt").map_err(db_err)?;
                let mut model: conveyor_core::model::Product = from_json(&row.try_get::<String, _>("model").map_err(db_err)?)?;
                let ran = Self::belt_of(conn, id, &belt).await?;
                let rebuilt = ran.is_some();
                if let Some(ran) = ran {
                    model.belts.retain(|b| b.name != belt);
                    model.belts.push(ran);
                }
                let upstream: Option<String> = row.try_get("upstream_build_id").map_err(db_err)?;
                let new = $crate::NewBuild {
                    product: row.try_get("product").map_err(db_err)?,
                    belt,
                    trigger: $crate::BuildTrigger::Rerun {
                        build_id: id.to_string(),
                        number: row.try_get::<i64, _>("number").map_err(db_err)? as u64,
                        forge: from_json::<$crate::BuildTrigger>(&row.try_get::<String, _>("trigger").map_err(db_err)?)?
                            .forge_target(),
                    },
                    git_ref: row.try_get("git_ref").map_err(db_err)?,
                    sha: row.try_get("sha").map_err(db_err)?,
                    // A build that never ran (a config error) is re-run from the registered config.
                    model: rebuilt.then_some(model),
                };
                Self::insert_build(conn, &new, upstream.as_deref(), now, work).await.map(Some)
            }

            async fn edges_of(&self, build_id: &str) -> $crate::Result<Vec<(String, String)>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let rows = sqlx::query("SELECT from_run, to_run FROM job_edges WHERE build_id = $1 ORDER BY from_run, to_run")
                    .bind(build_id)
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter()
                    .map(|r| Ok((r.try_get("from_run").map_err(db_err)?, r.try_get("to_run").map_err(db_err)?)))
                    .collect()
            }

            async fn tail_of(&self, job_run_id: &str, before: Option<i64>, limit: u32) -> $crate::Result<Vec<$crate::LogRow>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let rows = sqlx::query(
                    "SELECT id, attempt, stream, text, at FROM log_lines WHERE job_run_id = $1 \
                     AND (CAST($2 AS BIGINT) IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(job_run_id)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
                let mut lines = rows
                    .iter()
                    .map(|r| {
                        Ok($crate::LogRow {
                            id: r.try_get("id").map_err(db_err)?,
                            attempt: r.try_get::<i64, _>("attempt").map_err(db_err)? as u32,
                            stream: r.try_get("stream").map_err(db_err)?,
                            text: r.try_get("text").map_err(db_err)?,
                            at: r.try_get("at").map_err(db_err)?,
                        })
                    })
                    .collect::<$crate::Result<Vec<_>>>()?;
                lines.reverse();
                Ok(lines)
            }
        }
    };
}

pub(crate) use action_steps;
