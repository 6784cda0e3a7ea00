//! The transactional steps of the scheduler, written once for both backends: creating a
//! build, settling job runs (unblocking, skipping, finishing the build) and firing
//! downstream products. `tx_steps!(Store, Conn)` expands them for one backend.

macro_rules! tx_steps {
    ($store:ident, $db:ty, $conn:ty) => {
        /// Work left over inside one transaction: builds whose success fires downstreams.
        #[derive(Default)]
        struct Work {
            effects: $crate::Effects,
            to_fire: Vec<String>,
        }

        impl $store {
            /// Inserts a build with its job runs and edges, and readies the free jobs.
            async fn insert_build(
                conn: &mut $conn,
                new: &$crate::NewBuild,
                upstream: Option<&str>,
                now: i64,
                work: &mut Work,
            ) -> $crate::Result<String> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json, to_json};
                let row = sqlx::query("SELECT model FROM products WHERE name = $1")
                    .bind(&new.product)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| $crate::StoreError::NotFound(format!("no product `{}`", new.product)))?;
                let model: conveyor_core::model::Product = match &new.model {
                    Some(m) => m.clone(),
                    None => from_json(&row.try_get::<String, _>("model").map_err(db_err)?)?,
                };
                let belt = model.belt(&new.belt).ok_or_else(|| {
                    $crate::StoreError::NotFound(format!("product `{}` has no belt `{}`", new.product, new.belt))
                })?;
                let number: i64 = sqlx::query(
                    "UPDATE products SET next_build_number = next_build_number + 1 WHERE name = $1 RETURNING next_build_number",
                )
                .bind(&new.product)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?
                .try_get("next_build_number")
                .map_err(db_err)?;
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(
                    "INSERT INTO builds (id, product, belt, number, status, trigger, upstream_build_id, git_ref, sha, unfinished, created_at, forge_status) \
                     VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&id)
                .bind(&new.product)
                .bind(&new.belt)
                .bind(number)
                .bind(to_json(&new.trigger)?)
                .bind(upstream)
                .bind(&new.git_ref)
                .bind(&new.sha)
                .bind(belt.jobs.len() as i64)
                .bind(now)
                .bind(new.trigger.reports_to_forge().then_some(""))
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                let run_ids: Vec<String> = belt.jobs.iter().map(|_| uuid::Uuid::now_v7().to_string()).collect();
                let mut deps = vec![0i64; belt.jobs.len()];
                for &(_, to) in &belt.edges {
                    deps[to] += 1;
                }
                let specs: Vec<String> = belt.jobs.iter().map(to_json).collect::<$crate::Result<_>>()?;
                for chunk in (0..belt.jobs.len()).collect::<Vec<_>>().chunks(100) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO job_runs (id, build_id, idx, name, fleet, status, retries, pending_deps, spec) ",
                    );
                    q.push_values(chunk, |mut b, &i| {
                        let job = &belt.jobs[i];
                        b.push_bind(run_ids[i].clone())
                            .push_bind(id.clone())
                            .push_bind(i as i64)
                            .push_bind(job.name.clone())
                            .push_bind(job.fleet.clone())
                            .push_bind("pending")
                            .push_bind(i64::from(job.retries))
                            .push_bind(deps[i])
                            .push_bind(specs[i].clone());
                    });
                    q.build().execute(&mut *conn).await.map_err(db_err)?;
                }
                for chunk in belt.edges.chunks(300) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO job_edges (build_id, from_run, to_run) ");
                    q.push_values(chunk, |mut b, &(from, to)| {
                        b.push_bind(id.clone()).push_bind(run_ids[from].clone()).push_bind(run_ids[to].clone());
                    });
                    q.build().execute(&mut *conn).await.map_err(db_err)?;
                }
                work.effects.created.push(id.clone());
                if new.trigger.reports_to_forge() {
                    work.effects.report.push(id.clone());
                }
                let mut settled = Vec::new();
                for (i, job) in belt.jobs.iter().enumerate() {
                    if deps[i] == 0 {
                        Self::make_ready(conn, &id, &run_ids[i], job, now, work, &mut settled).await?;
                    }
                }
                Self::settle(conn, &id, settled, now, work).await?;
                Ok(id)
            }

            /// A job run whose dependencies are done: skipped by its condition, waiting
            /// for approval, or queued for dispatch.
            async fn make_ready(
                conn: &mut $conn,
                build_id: &str,
                run_id: &str,
                job: &conveyor_core::model::Job,
                now: i64,
                work: &mut Work,
                settled: &mut Vec<(String, &'static str)>,
            ) -> $crate::Result<()> {
                use conveyor_core::rules::{condition_holds, condition_refs};
                use $crate::sql::db_err;
                if job.condition.is_some() {
                    let refs: Vec<conveyor_core::model::Reference> = condition_refs(job).into_iter().cloned().collect();
                    let values = Self::resolve_values(conn, build_id, &refs).await?;
                    let by_path = refs.iter().zip(values).map(|(r, (_, v))| (r.text.clone(), v)).collect();
                    if !condition_holds(job, &by_path) {
                        sqlx::query("UPDATE job_runs SET status = 'skipped', finished_at = $2 WHERE id = $1")
                            .bind(run_id)
                            .bind(now)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err)?;
                        settled.push((run_id.to_string(), "skipped"));
                        return Ok(());
                    }
                }
                let status = if job.manual { "waiting" } else { "queued" };
                sqlx::query("UPDATE job_runs SET status = $2, queued_at = $3 WHERE id = $1")
                    .bind(run_id)
                    .bind(status)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                if !job.manual {
                    work.effects.dispatch.push($crate::Dispatch {
                        fleet: job.fleet.clone(),
                        msg: conveyor_core::protocol::QueueMessage { job_run_id: run_id.to_string(), attempt: 1 },
                    });
                }
                Ok(())
            }

            /// Moves a build on after job runs reached a final state: unblocks or skips
            /// their dependents, then finishes the build when nothing is left.
            async fn settle(
                conn: &mut $conn,
                build_id: &str,
                mut queue: Vec<(String, &'static str)>,
                now: i64,
                work: &mut Work,
            ) -> $crate::Result<()> {
                use sqlx::Row;
                use $crate::sql::{db_err, from_json};
                if queue.is_empty() {
                    return Ok(());
                }
                let (mut done, mut failed) = (0i64, 0i64);
                while let Some((run, status)) = queue.pop() {
                    done += 1;
                    if status == "failed" || status == "cancelled" {
                        failed += 1;
                    }
                    let dependents: Vec<String> = sqlx::query("SELECT to_run FROM job_edges WHERE from_run = $1 ORDER BY to_run")
                        .bind(&run)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(db_err)?
                        .iter()
                        .map(|r| r.try_get("to_run"))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(db_err)?;
                    for dep in dependents {
                        if status == "succeeded" {
                            let row = sqlx::query(
                                "UPDATE job_runs SET pending_deps = pending_deps - 1 WHERE id = $1 AND status = 'pending' RETURNING pending_deps, spec",
                            )
                            .bind(&dep)
                            .fetch_optional(&mut *conn)
                            .await
                            .map_err(db_err)?;
                            if let Some(row) = row
                                && row.try_get::<i64, _>("pending_deps").map_err(db_err)? == 0
                            {
                                let job: conveyor_core::model::Job = from_json(&row.try_get::<String, _>("spec").map_err(db_err)?)?;
                                Self::make_ready(conn, build_id, &dep, &job, now, work, &mut queue).await?;
                            }
                        } else {
                            let skipped = sqlx::query(
                                "UPDATE job_runs SET status = 'skipped', finished_at = $2 WHERE id = $1 AND status = 'pending'",
                            )
                            .bind(&dep)
                            .bind(now)
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err)?
                            .rows_affected();
                            if skipped == 1 {
                                queue.push((dep, "skipped"));
                            }
                        }
                    }
                }
                let row = sqlx::query(
                    "UPDATE builds SET unfinished = unfinished - $2, failed = failed + $3 WHERE id = $1 RETURNING unfinished, failed, status, forge_status",
                )
                .bind(build_id)
                .bind(done)
                .bind(failed)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
                let unfinished: i64 = row.try_get("unfinished").map_err(db_err)?;
                let failed: i64 = row.try_get("failed").map_err(db_err)?;
                let status: String = row.try_get("status").map_err(db_err)?;
                let reports: Option<String> = row.try_get("forge_status").map_err(db_err)?;
                if unfinished > 0 {
                    return Ok(());
                }
                let final_status = match (status.as_str(), failed) {
                    ("running", 0) => "succeeded",
                    ("running", _) => "failed",
                    (other, _) => if other == "cancelled" { "cancelled" } else { "failed" },
                };
                sqlx::query("UPDATE builds SET status = $2, finished_at = $3 WHERE id = $1")
                    .bind(build_id)
                    .bind(final_status)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                work.effects.finished.push(build_id.to_string());
                if reports.is_some() {
                    work.effects.report.push(build_id.to_string());
                }
                if final_status == "succeeded" {
                    work.to_fire.push(build_id.to_string());
                }
                Ok(())
            }

            /// Creates the builds that successful builds fire, until none is left.
            async fn fire_all(conn: &mut $conn, now: i64, work: &mut Work) -> $crate::Result<()> {
                use sqlx::Row;
                use conveyor_core::rules::downstream_targets;
                use $crate::sql::{db_err, from_json};
                while let Some(build_id) = work.to_fire.pop() {
                    let row = sqlx::query("SELECT product, belt, number FROM builds WHERE id = $1")
                        .bind(&build_id)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(db_err)?;
                    let product: String = row.try_get("product").map_err(db_err)?;
                    let belt: String = row.try_get("belt").map_err(db_err)?;
                    let number: i64 = row.try_get("number").map_err(db_err)?;
                    let depth = Self::chain_depth(conn, &build_id).await?;
                    if depth >= conveyor_core::rules::MAX_CHAIN {
                        tracing::warn!(%build_id, "not firing downstream products: the chain is {depth} builds long");
                        continue;
                    }
                    let mut registered = Vec::new();
                    for r in sqlx::query("SELECT model FROM products ORDER BY name").fetch_all(&mut *conn).await.map_err(db_err)? {
                        registered.push(from_json::<conveyor_core::model::Product>(&r.try_get::<String, _>("model").map_err(db_err)?)?);
                    }
                    let Some(me) = registered.iter().find(|p| p.name == product).cloned() else { continue };
                    for (p, b) in downstream_targets(&me, &belt, &registered) {
                        // A product from a repository builds the head of its branch.
                        let head = sqlx::query("SELECT branch, head_sha FROM products WHERE name = $1")
                            .bind(&p)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(db_err)?;
                        let branch: Option<String> = head.try_get("branch").map_err(db_err)?;
                        let new = $crate::NewBuild {
                            product: p,
                            belt: b,
                            trigger: $crate::BuildTrigger::Upstream {
                                build_id: build_id.clone(),
                                product: product.clone(),
                                belt: belt.clone(),
                                number: number as u64,
                            },
                            git_ref: branch.map(|b| format!("refs/heads/{b}")),
                            sha: head.try_get("head_sha").map_err(db_err)?,
                            model: None,
                        };
                        Self::insert_build(conn, &new, Some(&build_id), now, work).await?;
                    }
                }
                Ok(())
            }

            /// How many upstream builds lead to this one.
            async fn chain_depth(conn: &mut $conn, build_id: &str) -> $crate::Result<usize> {
                use sqlx::Row;
                let mut depth = 0;
                let mut at = build_id.to_string();
                while depth < conveyor_core::rules::MAX_CHAIN {
                    let up: Option<String> = sqlx::query("SELECT upstream_build_id FROM builds WHERE id = $1")
                        .bind(&at)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err($crate::sql::db_err)?
                        .and_then(|r| r.try_get("upstream_build_id").ok().flatten());
                    match up {
                        Some(u) => {
                            depth += 1;
                            at = u;
                        }
                        None => break,
                    }
                }
                Ok(depth)
            }
        }
    };
}

pub(crate) use tx_steps;
