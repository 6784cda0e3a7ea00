//! Writing a seeded history ([`crate::seed`]): a batch of builds per transaction, each
//! table's rows in multi-row inserts. Log lines go through the store's own log path
//! (`logs::append_logs` under a lease the job run holds while they are written), so seeded
//! logs are stored exactly as a runner's would be.

use std::collections::HashMap;

use async_trait::async_trait;
use conveyor_core::model::Belt;
use conveyor_core::protocol::{Lease, LogBatch, LogLine};

use super::conn::{Arg, Conn, Sql, sql};
use super::{Backend, SqlStore, logs, to_json};
use crate::error::{Result, StoreError};
use crate::seed::{Planned, Rng, SeedPlan, Seeded, Seeding, plan_build};
use crate::types::{BuildTrigger, ProductRecord};

/// Builds per transaction.
const BATCH: usize = 250;
/// The lease owner seeded log lines are written under.
const OWNER: &str = "seed";

#[async_trait]
impl<B: Backend> Seeding for SqlStore<B> {
    async fn seed_builds(&self, products: &[ProductRecord], plan: &SeedPlan) -> Result<Seeded> {
        if products.iter().all(|p| p.model.belts.is_empty()) {
            return Err(StoreError::Conflict(
                "seeding needs a product with a belt".into(),
            ));
        }
        let mut specs = Specs::default();
        for p in products {
            specs.add(p)?;
        }
        let mut rng = Rng::new(plan.seed);
        let mut done = Seeded::default();
        let mut upstream: Option<(String, String, String, u64)> = None;
        let mut i = 0u64;
        while i < plan.builds {
            let n = (plan.builds - i).min(BATCH as u64);
            let mut batch = Vec::with_capacity(n as usize);
            // Each build fires at most one downstream: the previous batch's last build is
            // the upstream of one build of this batch (as a product fires another once).
            let mut up = upstream.as_ref();
            for k in i..i + n {
                let at = plan.start_ms + k as i64 * plan.spacing_ms;
                let named = up.map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), *d));
                let planned = plan_build(products, &mut rng, at, named);
                if let Some(BuildTrigger::Upstream { .. }) =
                    planned.as_ref().map(|p| &p.new.trigger)
                {
                    up = None;
                }
                batch.extend(planned);
            }
            let mut tx = self.backend.begin().await?;
            let last = write_batch(&mut *tx, &specs, &batch, plan, i, &mut done).await?;
            B::commit(tx).await?;
            upstream = last.or(upstream);
            i += n;
        }
        Ok(done)
    }
}

/// Each belt's jobs as stored (`job_runs.spec`), by product and belt.
#[derive(Default)]
struct Specs(HashMap<(String, String), (Belt, Vec<String>)>);

impl Specs {
    fn add(&mut self, p: &ProductRecord) -> Result<()> {
        for belt in &p.model.belts {
            let specs = belt.jobs.iter().map(to_json).collect::<Result<Vec<_>>>()?;
            self.0
                .insert((p.name.clone(), belt.name.clone()), (belt.clone(), specs));
        }
        Ok(())
    }

    fn get(&self, product: &str, belt: &str) -> Result<&(Belt, Vec<String>)> {
        self.0
            .get(&(product.to_string(), belt.to_string()))
            .ok_or_else(|| StoreError::NotFound(format!("no belt `{belt}` of `{product}`")))
    }
}

/// One batch's rows; the last build (id, product, belt, number), for upstream triggers.
async fn write_batch<C: Conn>(
    conn: &mut C,
    specs: &Specs,
    batch: &[Planned],
    plan: &SeedPlan,
    first: u64,
    done: &mut Seeded,
) -> Result<Option<(String, String, String, u64)>> {
    let numbers = numbers(conn, batch).await?;
    let mut builds = Vec::new();
    let mut runs = Vec::new();
    let mut edges = Vec::new();
    let mut logged = Vec::new();
    let mut last = None;
    for (k, (p, number)) in batch.iter().zip(numbers).enumerate() {
        let id = uuid::Uuid::now_v7().to_string();
        let (belt, spec) = specs.get(&p.new.product, &p.new.belt)?;
        builds.push(build_row(&id, p, number, belt.jobs.len())?);
        let ids: Vec<String> = (0..belt.jobs.len())
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let logs = plan.log_lines > 0 && (first + k as u64).is_multiple_of(plan.log_every.max(1));
        for (idx, job) in belt.jobs.iter().enumerate() {
            let lease = (logs && idx == 0).then(|| format!("seed-{}", ids[idx]));
            runs.push(run_row(
                &ids[idx],
                &id,
                idx,
                job,
                &spec[idx],
                p,
                lease.clone(),
            ));
            if let Some(token) = lease {
                logged.push((ids[idx].clone(), token, p.created_at));
            }
        }
        for &(from, to) in &belt.edges {
            edges.push(vec![
                Arg::from(&id),
                Arg::from(&ids[from]),
                Arg::from(&ids[to]),
            ]);
        }
        last = Some((id, p.new.product.clone(), p.new.belt.clone(), number as u64));
    }
    insert(conn, BUILDS, &builds, 50).await?;
    insert(conn, RUNS, &runs, 50).await?;
    insert(conn, EDGES, &edges, 300).await?;
    done.builds += builds.len() as u64;
    done.job_runs += runs.len() as u64;
    done.edges += edges.len() as u64;
    for (run, token, at) in logged {
        done.log_lines += write_log(conn, &run, &token, plan.log_lines, at).await?;
    }
    Ok(last)
}

const BUILDS: &str = "INSERT INTO builds (id, product, belt, number, status, trigger, \
     upstream_build_id, git_ref, sha, unfinished, failed, created_at, finished_at, context)";
const RUNS: &str = "INSERT INTO job_runs (id, build_id, idx, name, fleet, status, retries, \
     pending_deps, spec, exit_code, error, reason, queued_at, started_at, finished_at, \
     lease_owner, lease_token)";
const EDGES: &str = "INSERT INTO job_edges (build_id, from_run, to_run)";

async fn insert<C: Conn>(conn: &mut C, head: &str, rows: &[Vec<Arg>], chunk: usize) -> Result<()> {
    for rows in rows.chunks(chunk) {
        conn.exec(Sql::values(head, rows.to_vec(), "")).await?;
    }
    Ok(())
}

/// Each build's number: the next ones of its product, taken in one statement per product.
async fn numbers<C: Conn>(conn: &mut C, batch: &[Planned]) -> Result<Vec<i64>> {
    let mut count: HashMap<&str, i64> = HashMap::new();
    for p in batch {
        *count.entry(p.new.product.as_str()).or_default() += 1;
    }
    let mut next: HashMap<&str, i64> = HashMap::new();
    for (product, n) in count {
        let (last,): (i64,) = conn
            .one(
                sql(
                    "UPDATE products SET next_build_number = next_build_number + $2 \
                     WHERE name = $1 RETURNING next_build_number",
                )
                .bind(product)
                .bind(n),
            )
            .await?;
        next.insert(product, last - n + 1);
    }
    Ok(batch
        .iter()
        .map(|p| {
            next.get_mut(p.new.product.as_str()).map_or(0, |n| {
                *n += 1;
                *n - 1
            })
        })
        .collect())
}

/// A build's row: it took a second per job.
fn build_row(id: &str, p: &Planned, number: i64, jobs: usize) -> Result<Vec<Arg>> {
    let upstream = match &p.new.trigger {
        BuildTrigger::Upstream { build_id, .. } => Some(build_id.clone()),
        _ => None,
    };
    let failed = i64::from(matches!(p.outcome, crate::seed::Outcome::Failed(_)));
    Ok(vec![
        Arg::from(id),
        Arg::from(&p.new.product),
        Arg::from(&p.new.belt),
        Arg::from(number),
        Arg::from(p.outcome.status()),
        Arg::from(to_json(&p.new.trigger)?),
        Arg::from(upstream),
        Arg::from(&p.new.git_ref),
        Arg::from(&p.new.sha),
        Arg::from(0i64),
        Arg::from(failed),
        Arg::from(p.created_at),
        Arg::from(p.created_at + 1_000 * jobs as i64),
        Arg::from(to_json(&p.new.context())?),
    ])
}

fn run_row(
    id: &str,
    build: &str,
    idx: usize,
    job: &conveyor_core::model::Job,
    spec: &str,
    p: &Planned,
    lease: Option<String>,
) -> Vec<Arg> {
    let status = p.outcome.job_status(idx);
    let ran = matches!(status, "succeeded" | "failed") || (lease.is_some());
    let start = p.created_at + 100 + idx as i64 * 1_000;
    let (exit, error, reason) = match status {
        "failed" => (Some(1), Some("exit status 1".to_string()), None),
        "skipped" => (None, None, Some("a job it needs failed".to_string())),
        "succeeded" => (Some(0), None, None),
        _ => (None, None, None),
    };
    vec![
        Arg::from(id),
        Arg::from(build),
        Arg::from(idx as i64),
        Arg::from(&job.name),
        Arg::from(&job.fleet),
        Arg::from(if lease.is_some() { "running" } else { status }),
        Arg::from(i64::from(job.retries)),
        Arg::from(0i64),
        Arg::from(spec),
        Arg::from(exit),
        Arg::from(error),
        Arg::from(reason),
        Arg::from(ran.then_some(p.created_at)),
        Arg::from(ran.then_some(start)),
        Arg::from(p.created_at + 900 + idx as i64 * 1_000),
        Arg::from(lease.as_ref().map(|_| OWNER)),
        Arg::from(lease),
    ]
}

/// `lines` lines of log for a job run seeded as running under `token`, then the run's own
/// state: how many lines were written.
async fn write_log<C: Conn>(
    conn: &mut C,
    run: &str,
    token: &str,
    lines: u32,
    at: i64,
) -> Result<u64> {
    let lease = Lease {
        job_run_id: run.to_string(),
        attempt: 1,
        lease_token: token.to_string(),
    };
    let lines: Vec<LogLine> = (0..lines)
        .map(|n| {
            let text = format!("step {n}: compiling module_{n} ... ok");
            serde_json::from_value(serde_json::json!({"stream": "stdout", "text": text}))
                .map_err(|e| StoreError::Database(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let count = lines.len() as u64;
    let batch = LogBatch {
        lease,
        seq: 0,
        lines,
    };
    logs::append_logs(conn, &batch, OWNER, u64::MAX, at + 500).await?;
    // Its state as the build ended: `job_status` of its first job.
    conn.exec(
        sql(
            "UPDATE job_runs SET status = CASE WHEN exit_code = 0 THEN 'succeeded' \
             WHEN exit_code IS NOT NULL THEN 'failed' ELSE 'cancelled' END, \
             lease_owner = NULL, lease_token = NULL WHERE id = $1",
        )
        .bind(run),
    )
    .await?;
    Ok(count)
}
