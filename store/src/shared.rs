//! The `Store` trait implemented once for both backends by `impl_store!`; each backend
//! provides `fn pool(&self)` and `async fn begin(&self)` (its write transaction).

macro_rules! impl_store {
    ($store:ident, $db:ty, $conn:ty) => {
        $crate::txn::tx_steps!($store, $db, $conn);
        $crate::values::value_steps!($store, $conn);
        $crate::runs::run_steps!($store, $db, $conn);
        $crate::actions::action_steps!($store, $db, $conn);

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn put_product(&self, p: &$crate::ProductRecord, now: i64) -> $crate::Result<()> {
                use $crate::sql::{db_err, to_json};
                sqlx::query(
                    "INSERT INTO products (name, yaml, model, repo, branch, webhook_secret, source_path, head_sha, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $8, $8) ON CONFLICT (name) DO UPDATE SET yaml = excluded.yaml, \
                     model = excluded.model, repo = excluded.repo, branch = excluded.branch, \
                     webhook_secret = excluded.webhook_secret, source_path = excluded.source_path, \
                     head_sha = excluded.head_sha, updated_at = excluded.updated_at",
                )
                .bind(&p.name)
                .bind(&p.yaml)
                .bind(to_json(&p.model)?)
                .bind(&p.repo)
                .bind(&p.branch)
                .bind(&p.webhook_secret)
                .bind(&p.source_path)
                .bind(now)
                .bind(&p.head_sha)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn product(&self, name: &str) -> $crate::Result<Option<$crate::ProductRecord>> {
                let rows = sqlx::query($crate::shared::PRODUCT_SELECT_ONE).bind(name).fetch_all(self.pool()).await.map_err($crate::sql::db_err)?;
                Ok(Self::product_rows(rows)?.pop())
            }

            async fn products(&self) -> $crate::Result<Vec<$crate::ProductRecord>> {
                let rows = sqlx::query($crate::shared::PRODUCT_SELECT_ALL).fetch_all(self.pool()).await.map_err($crate::sql::db_err)?;
                Self::product_rows(rows)
            }

            async fn create_build(&self, new: &$crate::NewBuild, now: i64) -> $crate::Result<(String, $crate::Effects)> {
                let mut tx = self.begin().await?;
                let mut work = Work::default();
                let id = Self::insert_build(&mut tx, new, None, now, &mut work).await?;
                Self::fire_all(&mut tx, now, &mut work).await?;
                tx.commit().await.map_err($crate::sql::db_err)?;
                Ok((id, work.effects))
            }

            async fn claim(&self, req: &conveyor_core::protocol::ClaimRequest, lease_ms: i64, now: i64)
                -> $crate::Result<Option<$crate::Claim>> {
                let mut tx = self.begin().await?;
                let spec = Self::claim_in(&mut tx, req, lease_ms, now).await?;
                tx.commit().await.map_err($crate::sql::db_err)?;
                Ok(spec)
            }

            async fn heartbeat(&self, lease: &conveyor_core::protocol::Lease, lease_ms: i64, now: i64) -> $crate::Result<Option<bool>> {
                use sqlx::Row;
                let row = sqlx::query(
                    "UPDATE job_runs SET lease_expires_at = $4 WHERE id = $1 AND attempt = $2 AND lease_token = $3 \
                     AND status = 'running' RETURNING cancel_requested",
                )
                .bind(&lease.job_run_id)
                .bind(i64::from(lease.attempt))
                .bind(&lease.lease_token)
                .bind(now + lease_ms)
                .fetch_optional(self.pool())
                .await
                .map_err($crate::sql::db_err)?;
                row.map(|r| r.try_get::<bool, _>("cancel_requested")).transpose().map_err($crate::sql::db_err)
            }

            async fn append_logs(&self, batch: &conveyor_core::protocol::LogBatch, now: i64) -> $crate::Result<bool> {
                use $crate::sql::db_err;
                let mut tx = self.begin().await?;
                let live = sqlx::query("SELECT 1 AS one FROM job_runs WHERE id = $1 AND attempt = $2 AND lease_token = $3 AND status = 'running'")
                    .bind(&batch.lease.job_run_id)
                    .bind(i64::from(batch.lease.attempt))
                    .bind(&batch.lease.lease_token)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .is_some();
                if !live {
                    return Ok(false);
                }
                for (chunk_no, chunk) in batch.lines.chunks(200).enumerate() {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO log_lines (job_run_id, attempt, seq, line_no, stream, text, at) ");
                    q.push_values(chunk.iter().enumerate(), |mut b, (i, line)| {
                        let stream = serde_json::to_value(line.stream).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                        b.push_bind(batch.lease.job_run_id.clone())
                            .push_bind(i64::from(batch.lease.attempt))
                            .push_bind(batch.seq as i64)
                            .push_bind((chunk_no * 200 + i) as i64)
                            .push_bind(stream)
                            .push_bind(line.text.clone())
                            .push_bind(now);
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    q.build().execute(&mut *tx).await.map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn complete(&self, c: &conveyor_core::protocol::Completion, now: i64) -> $crate::Result<Option<$crate::Effects>> {
                let mut tx = self.begin().await?;
                let mut work = Work::default();
                if !Self::complete_in(&mut tx, c, now, &mut work).await? {
                    return Ok(None);
                }
                Self::fire_all(&mut tx, now, &mut work).await?;
                tx.commit().await.map_err($crate::sql::db_err)?;
                Ok(Some(work.effects))
            }

            async fn reap(&self, now: i64, max_lost: u32) -> $crate::Result<$crate::Effects> {
                let mut tx = self.begin().await?;
                let mut work = Work::default();
                Self::reap_in(&mut tx, now, max_lost, &mut work).await?;
                Self::fire_all(&mut tx, now, &mut work).await?;
                tx.commit().await.map_err($crate::sql::db_err)?;
                Ok(work.effects)
            }

            async fn queued_by_fleet(&self) -> $crate::Result<Vec<(String, u64)>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let rows = sqlx::query("SELECT fleet, COUNT(*) AS n FROM job_runs WHERE status = 'queued' GROUP BY fleet")
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter()
                    .map(|r| Ok((r.try_get("fleet").map_err(db_err)?, r.try_get::<i64, _>("n").map_err(db_err)? as u64)))
                    .collect()
            }

            async fn stale_queued(&self, before: i64, fleet: &str, limit: u64) -> $crate::Result<Vec<$crate::Dispatch>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let rows = sqlx::query(
                    "SELECT id, attempt, fleet FROM job_runs WHERE status = 'queued' AND fleet = $2 AND queued_at < $1 \
                     ORDER BY queued_at LIMIT $3",
                )
                    .bind(before)
                    .bind(fleet)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::Dispatch {
                            fleet: r.try_get("fleet").map_err(db_err)?,
                            msg: conveyor_core::protocol::QueueMessage {
                                job_run_id: r.try_get("id").map_err(db_err)?,
                                attempt: r.try_get::<i64, _>("attempt").map_err(db_err)? as u32,
                            },
                        })
                    })
                    .collect()
            }

            async fn cancel_build(&self, id: &str, now: i64) -> $crate::Result<Option<$crate::Effects>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let mut tx = self.begin().await?;
                let n = sqlx::query("UPDATE builds SET status = 'cancelled' WHERE id = $1 AND status = 'running'")
                    .bind(id).execute(&mut *tx).await.map_err(db_err)?.rows_affected();
                let exists = n == 1 || sqlx::query("SELECT id FROM builds WHERE id = $1").bind(id).fetch_optional(&mut *tx).await.map_err(db_err)?.is_some();
                if !exists {
                    return Ok(None);
                }
                sqlx::query("UPDATE job_runs SET cancel_requested = TRUE WHERE build_id = $1 AND status = 'running'")
                    .bind(id).execute(&mut *tx).await.map_err(db_err)?;
                let stopped: Vec<String> = sqlx::query(
                    "UPDATE job_runs SET status = 'cancelled', finished_at = $2 WHERE build_id = $1 \
                     AND status IN ('pending', 'queued', 'waiting') RETURNING id",
                )
                .bind(id).bind(now).fetch_all(&mut *tx).await.map_err(db_err)?
                .iter().map(|r| r.try_get("id")).collect::<std::result::Result<_, _>>().map_err(db_err)?;
                let mut work = Work::default();
                let settled = stopped.into_iter().map(|r| (r, "cancelled")).collect();
                Self::settle(&mut tx, id, settled, now, &mut work).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(Some(work.effects))
            }

            async fn build(&self, id: &str) -> $crate::Result<Option<$crate::BuildView>> {
                let rows = sqlx::query($crate::shared::BUILD_SELECT_ONE).bind(id).fetch_all(self.pool()).await.map_err($crate::sql::db_err)?;
                let mut builds = Self::build_rows(rows)?;
                for b in &mut builds {
                    b.jobs = self.job_views(&b.id).await?;
                }
                Ok(builds.pop())
            }

            async fn builds(&self, f: &$crate::BuildFilter) -> $crate::Result<Vec<$crate::BuildView>> {
                let rows = sqlx::query($crate::shared::BUILD_SELECT_FILTERED)
                    .bind(&f.product)
                    .bind(&f.status)
                    .bind(i64::from(f.limit.unwrap_or(50).min(500)))
                    .fetch_all(self.pool())
                    .await
                    .map_err($crate::sql::db_err)?;
                let mut builds = Self::build_rows(rows)?;
                for b in &mut builds {
                    b.jobs = self.job_views(&b.id).await?;
                }
                Ok(builds)
            }

            async fn logs(&self, job_run_id: &str, after: i64, limit: u32) -> $crate::Result<Vec<$crate::LogRow>> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let rows = sqlx::query("SELECT id, attempt, stream, text, at FROM log_lines WHERE job_run_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                    .bind(job_run_id).bind(after).bind(i64::from(limit))
                    .fetch_all(self.pool()).await.map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::LogRow {
                            id: r.try_get("id").map_err(db_err)?,
                            attempt: r.try_get::<i64, _>("attempt").map_err(db_err)? as u32,
                            stream: r.try_get("stream").map_err(db_err)?,
                            text: r.try_get("text").map_err(db_err)?,
                            at: r.try_get("at").map_err(db_err)?,
                        })
                    })
                    .collect()
            }

            async fn downstream_builds(&self, id: &str) -> $crate::Result<Vec<String>> {
                use sqlx::Row;
                let rows = sqlx::query("SELECT id FROM builds WHERE upstream_build_id = $1 ORDER BY id")
                    .bind(id).fetch_all(self.pool()).await.map_err($crate::sql::db_err)?;
                rows.iter().map(|r| r.try_get("id")).collect::<std::result::Result<_, _>>().map_err($crate::sql::db_err)
            }

            async fn register_runner(&self, name: &str, fleets: &[String], token_hash: &str, now: i64) -> $crate::Result<String> {
                use sqlx::Row;
                use $crate::sql::{db_err, to_json};
                let row = sqlx::query(
                    "INSERT INTO runners (id, name, fleets, token_hash, last_seen_at, created_at) VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (name) DO UPDATE SET fleets = excluded.fleets, token_hash = excluded.token_hash, \
                     last_seen_at = excluded.last_seen_at RETURNING id",
                )
                .bind(uuid::Uuid::now_v7().to_string()).bind(name).bind(to_json(&fleets)?).bind(token_hash).bind(now)
                .fetch_one(self.pool()).await.map_err(db_err)?;
                row.try_get("id").map_err(db_err)
            }

            async fn runner_seen(&self, token_hash: &str, now: i64) -> $crate::Result<Option<$crate::RunnerView>> {
                let rows = sqlx::query(
                    "UPDATE runners SET last_seen_at = $2 WHERE token_hash = $1 RETURNING id, name, fleets, last_seen_at, created_at",
                )
                .bind(token_hash).bind(now).fetch_all(self.pool()).await.map_err($crate::sql::db_err)?;
                Ok(Self::runner_rows(rows)?.pop())
            }

            async fn runners(&self) -> $crate::Result<Vec<$crate::RunnerView>> {
                let rows = sqlx::query("SELECT id, name, fleets, last_seen_at, created_at FROM runners ORDER BY name")
                    .fetch_all(self.pool()).await.map_err($crate::sql::db_err)?;
                Self::runner_rows(rows)
            }

            async fn record_config_error(&self, new: &$crate::NewBuild, error: &str, now: i64) -> $crate::Result<String> {
                use sqlx::Row;
                use $crate::sql::{db_err, to_json};
                let mut tx = self.begin().await?;
                let number: i64 = sqlx::query(
                    "UPDATE products SET next_build_number = next_build_number + 1 WHERE name = $1 RETURNING next_build_number",
                )
                .bind(&new.product).fetch_optional(&mut *tx).await.map_err(db_err)?
                .ok_or_else(|| $crate::StoreError::NotFound(format!("no product `{}`", new.product)))?
                .try_get("next_build_number").map_err(db_err)?;
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(
                    "INSERT INTO builds (id, product, belt, number, status, trigger, git_ref, sha, error, unfinished, created_at, finished_at, forge_status) \
                     VALUES ($1, $2, $3, $4, 'config_error', $5, $6, $7, $8, 0, $9, $9, $10)",
                )
                .bind(&id).bind(&new.product).bind(&new.belt).bind(number).bind(to_json(&new.trigger)?)
                .bind(&new.git_ref).bind(&new.sha).bind(error).bind(now).bind(new.trigger.reports_to_forge().then_some(""))
                .execute(&mut *tx).await.map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(id)
            }

            async fn record_delivery(&self, forge: &str, delivery_id: &str, now: i64) -> $crate::Result<bool> {
                let n = sqlx::query("INSERT INTO deliveries (forge, delivery_id, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(forge).bind(delivery_id).bind(now)
                    .execute(self.pool()).await.map_err($crate::sql::db_err)?.rows_affected();
                Ok(n == 1)
            }

            async fn run_counts(&self) -> $crate::Result<(Vec<$crate::RunCount>, u64)> {
                use sqlx::Row;
                use $crate::sql::db_err;
                let rows = sqlx::query("SELECT status, fleet, COUNT(*) AS n FROM job_runs GROUP BY status, fleet ORDER BY status, fleet")
                    .fetch_all(self.pool()).await.map_err(db_err)?;
                let counts = rows.iter().map(|r| Ok($crate::RunCount {
                    status: r.try_get("status").map_err(db_err)?,
                    fleet: r.try_get("fleet").map_err(db_err)?,
                    count: r.try_get::<i64, _>("n").map_err(db_err)? as u64,
                })).collect::<$crate::Result<Vec<_>>>()?;
                let busy = sqlx::query("SELECT COUNT(DISTINCT lease_owner) AS n FROM job_runs WHERE status = 'running'")
                    .fetch_one(self.pool()).await.map_err(db_err)?;
                Ok((counts, busy.try_get::<i64, _>("n").map_err(db_err)? as u64))
            }

            async fn forge_status_due(&self, since: i64, limit: u32) -> $crate::Result<Vec<String>> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT id FROM builds WHERE forge_status IS NOT NULL AND created_at >= $1 \
                     AND forge_status <> status ORDER BY created_at LIMIT $2",
                )
                .bind(since)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await
                .map_err($crate::sql::db_err)?;
                rows.iter().map(|r| r.try_get("id").map_err($crate::sql::db_err)).collect()
            }

            async fn set_forge_status(&self, id: &str, status: &str) -> $crate::Result<()> {
                sqlx::query("UPDATE builds SET forge_status = $2 WHERE id = $1 AND forge_status IS NOT NULL")
                    .bind(id)
                    .bind(status)
                    .execute(self.pool())
                    .await
                    .map_err($crate::sql::db_err)?;
                Ok(())
            }

            async fn job_run(&self, id: &str) -> $crate::Result<Option<$crate::JobRunView>> {
                let rows = sqlx::query($crate::shared::JOB_SELECT_ONE)
                    .bind(id)
                    .fetch_all(self.pool())
                    .await
                    .map_err($crate::sql::db_err)?;
                Ok(Self::job_rows(rows)?.pop())
            }

            fn pool_handle(&self) -> $crate::PoolHandle {
                self.pool().clone().into()
            }

            async fn unfinished_builds(&self) -> $crate::Result<u64> {
                use sqlx::Row;
                let row = sqlx::query("SELECT COUNT(*) AS n FROM builds WHERE finished_at IS NULL")
                    .fetch_one(self.pool()).await.map_err($crate::sql::db_err)?;
                Ok(row.try_get::<i64, _>("n").map_err($crate::sql::db_err)? as u64)
            }

            async fn approve_job_run(&self, id: &str, now: i64) -> $crate::Result<Option<$crate::Effects>> {
                let mut tx = self.begin().await?;
                let effects = Self::approve_in(&mut tx, id, now).await?;
                tx.commit().await.map_err($crate::sql::db_err)?;
                Ok(effects)
            }

            async fn cancel_job_run(&self, id: &str, now: i64) -> $crate::Result<Option<$crate::Effects>> {
                let mut tx = self.begin().await?;
                let effects = Self::cancel_run_in(&mut tx, id, now).await?;
                tx.commit().await.map_err($crate::sql::db_err)?;
                Ok(effects)
            }

            async fn rerun_build(&self, id: &str, now: i64) -> $crate::Result<Option<(String, $crate::Effects)>> {
                let mut tx = self.begin().await?;
                let mut work = Work::default();
                let Some(new_id) = Self::rerun_in(&mut tx, id, now, &mut work).await? else {
                    return Ok(None);
                };
                Self::fire_all(&mut tx, now, &mut work).await?;
                tx.commit().await.map_err($crate::sql::db_err)?;
                Ok(Some((new_id, work.effects)))
            }

            async fn build_of_job_run(&self, job_run_id: &str) -> $crate::Result<Option<String>> {
                use sqlx::Row;
                let row = sqlx::query("SELECT build_id FROM job_runs WHERE id = $1")
                    .bind(job_run_id).fetch_optional(self.pool()).await.map_err($crate::sql::db_err)?;
                row.map(|r| r.try_get("build_id")).transpose().map_err($crate::sql::db_err)
            }

            async fn job_edges(&self, build_id: &str) -> $crate::Result<Vec<(String, String)>> {
                self.edges_of(build_id).await
            }

            async fn log_tail(&self, job_run_id: &str, before: Option<i64>, limit: u32) -> $crate::Result<Vec<$crate::LogRow>> {
                self.tail_of(job_run_id, before, limit).await
            }
        }

        impl $store {
            fn product_rows(rows: Vec<<$db as sqlx::Database>::Row>) -> $crate::Result<Vec<$crate::ProductRecord>> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json};
                rows.iter()
                    .map(|r| {
                        Ok($crate::ProductRecord {
                            name: r.try_get("name").map_err(db_err)?,
                            yaml: r.try_get("yaml").map_err(db_err)?,
                            model: from_json(&r.try_get::<String, _>("model").map_err(db_err)?)?,
                            repo: r.try_get("repo").map_err(db_err)?,
                            branch: r.try_get("branch").map_err(db_err)?,
                            webhook_secret: r.try_get("webhook_secret").map_err(db_err)?,
                            source_path: r.try_get("source_path").map_err(db_err)?,
                            head_sha: r.try_get("head_sha").map_err(db_err)?,
                        })
                    })
                    .collect()
            }

            fn runner_rows(rows: Vec<<$db as sqlx::Database>::Row>) -> $crate::Result<Vec<$crate::RunnerView>> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json};
                rows.iter()
                    .map(|r| {
                        Ok($crate::RunnerView {
                            id: r.try_get("id").map_err(db_err)?,
                            name: r.try_get("name").map_err(db_err)?,
                            fleets: from_json(&r.try_get::<String, _>("fleets").map_err(db_err)?)?,
                            last_seen_at: r.try_get("last_seen_at").map_err(db_err)?,
                            created_at: r.try_get("created_at").map_err(db_err)?,
                        })
                    })
                    .collect()
            }

            fn build_rows(rows: Vec<<$db as sqlx::Database>::Row>) -> $crate::Result<Vec<$crate::BuildView>> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json};
                rows.iter()
                    .map(|r| {
                        Ok($crate::BuildView {
                            id: r.try_get("id").map_err(db_err)?,
                            product: r.try_get("product").map_err(db_err)?,
                            belt: r.try_get("belt").map_err(db_err)?,
                            number: r.try_get::<i64, _>("number").map_err(db_err)? as u64,
                            status: r.try_get("status").map_err(db_err)?,
                            trigger: from_json(&r.try_get::<String, _>("trigger").map_err(db_err)?)?,
                            upstream_build_id: r.try_get("upstream_build_id").map_err(db_err)?,
                            git_ref: r.try_get("git_ref").map_err(db_err)?,
                            sha: r.try_get("sha").map_err(db_err)?,
                            error: r.try_get("error").map_err(db_err)?,
                            created_at: r.try_get("created_at").map_err(db_err)?,
                            finished_at: r.try_get("finished_at").map_err(db_err)?,
                            forge_status: r.try_get("forge_status").map_err(db_err)?,
                            jobs: Vec::new(),
                        })
                    })
                    .collect()
            }

            async fn job_views(&self, build_id: &str) -> $crate::Result<Vec<$crate::JobRunView>> {
                let rows = sqlx::query($crate::shared::JOB_SELECT_BY_BUILD)
                    .bind(build_id)
                    .fetch_all(self.pool())
                    .await
                    .map_err($crate::sql::db_err)?;
                Self::job_rows(rows)
            }

            fn job_rows(rows: Vec<<$db as sqlx::Database>::Row>) -> $crate::Result<Vec<$crate::JobRunView>> {
                use sqlx::Row;
                use $crate::sql::{db_err, outputs_of};
                rows.iter()
                    .map(|r| {
                        Ok($crate::JobRunView {
                            id: r.try_get("id").map_err(db_err)?,
                            name: r.try_get("name").map_err(db_err)?,
                            status: r.try_get("status").map_err(db_err)?,
                            attempts: r.try_get::<i64, _>("attempt").map_err(db_err)? as u32,
                            exit_code: r.try_get::<Option<i64>, _>("exit_code").map_err(db_err)?.map(|c| c as i32),
                            outputs: outputs_of(r.try_get("outputs").map_err(db_err)?)?,
                            fleet: r.try_get("fleet").map_err(db_err)?,
                            runner: r.try_get("lease_owner").map_err(db_err)?,
                            error: r.try_get("error").map_err(db_err)?,
                            queued_at: r.try_get("queued_at").map_err(db_err)?,
                            started_at: r.try_get("started_at").map_err(db_err)?,
                            finished_at: r.try_get("finished_at").map_err(db_err)?,
                        })
                    })
                    .collect()
            }
        }
    };
}

macro_rules! job_select {
    ($where:literal) => {
        concat!(
            "SELECT id, name, status, attempt, exit_code, outputs, fleet, lease_owner, error, ",
            "queued_at, started_at, finished_at FROM job_runs ",
            $where
        )
    };
}
pub const JOB_SELECT_BY_BUILD: &str = job_select!("WHERE build_id = $1 ORDER BY idx");
pub const JOB_SELECT_ONE: &str = job_select!("WHERE id = $1");
pub const PRODUCT_SELECT_ONE: &str = "SELECT name, yaml, model, repo, branch, webhook_secret, source_path, head_sha FROM products WHERE name = $1";
pub const PRODUCT_SELECT_ALL: &str = "SELECT name, yaml, model, repo, branch, webhook_secret, source_path, head_sha FROM products ORDER BY name";
pub const BUILD_SELECT_ONE: &str = "SELECT id, product, belt, number, status, trigger, upstream_build_id, git_ref, sha, \
     error, created_at, finished_at, forge_status FROM builds WHERE id = $1";
pub const BUILD_SELECT_FILTERED: &str = "SELECT id, product, belt, number, status, trigger, upstream_build_id, git_ref, sha, \
     error, created_at, finished_at, forge_status FROM builds WHERE (CAST($1 AS TEXT) IS NULL OR product = $1) \
     AND (CAST($2 AS TEXT) IS NULL OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3";

pub(crate) use impl_store;
