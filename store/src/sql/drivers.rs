//! Drivers (`docs/drivers.md`): registering an instance (a runner of the one fleet
//! `driver:NAME`, plus the resource types its driver listens to), the list of drivers, and
//! what a claimed driver job's payload needs beyond a runner's job spec.

use std::collections::{BTreeMap, BTreeSet};

use conveyor_core::model::{Input, Job};
use sqlx::FromRow;

use super::conn::{Conn, sql};
use super::rows::each;
use super::{from_json, outputs_of, registry, to_json, values};
use crate::error::Result;
use crate::types::{DriverContext, DriverView};

/// Registers instance `runner` of driver `driver` (re-registering replaces its token) and
/// records the resource types the driver listens to; the instance's runner id.
pub(crate) async fn register<C: Conn>(
    conn: &mut C,
    driver: &str,
    runner: &str,
    resources: &[String],
    token_hash: &str,
    now: i64,
) -> Result<String> {
    let fleets = [conveyor_core::driver::queue_of(driver)];
    let id = registry::register_runner(conn, runner, &fleets, token_hash, now).await?;
    conn.exec(
        sql(
            "INSERT INTO drivers (name, resources, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET resources = excluded.resources, \
             updated_at = excluded.updated_at",
        )
        .bind(driver)
        .bind(to_json(&resources)?)
        .bind(now),
    )
    .await?;
    Ok(id)
}

#[derive(FromRow)]
struct DriverRow {
    name: String,
    resources: String,
    updated_at: i64,
}

/// Every driver that ever registered, by name.
pub(crate) async fn drivers<C: Conn>(conn: &mut C) -> Result<Vec<DriverView>> {
    let found: Vec<DriverRow> = conn
        .all(sql(
            "SELECT name, resources, updated_at FROM drivers ORDER BY name",
        ))
        .await?;
    each(found, |r| {
        Ok(DriverView {
            resources: from_json(&r.resources)?,
            name: r.name,
            updated_at: r.updated_at,
        })
    })
}

/// The build's resource and event, the job's references as written, the outputs of every
/// job run of the build this one depends on (directly or not), and of its upstream inputs.
pub(crate) async fn context<C: Conn>(conn: &mut C, job_run_id: &str) -> Result<DriverContext> {
    let row: (String, Option<String>, Option<String>, String) = conn
        .one(
            sql("SELECT b.id, b.resource, b.event, j.spec FROM job_runs j \
                 JOIN builds b ON b.id = j.build_id WHERE j.id = $1")
            .bind(job_run_id),
        )
        .await?;
    let (build_id, resource, event, spec) = row;
    let job: Job = from_json(&spec)?;
    let upstream = upstream_outputs(conn, &build_id, &job).await?;
    let mut seen = BTreeSet::new();
    let mut frontier = vec![job_run_id.to_string()];
    while let Some(run) = frontier.pop() {
        let from: Vec<(String,)> = conn
            .all(sql("SELECT from_run FROM job_edges WHERE to_run = $1").bind(&run))
            .await?;
        for (f,) in from {
            if seen.insert(f.clone()) {
                frontier.push(f);
            }
        }
    }
    let mut steps = BTreeMap::new();
    for run in &seen {
        let (name, outputs): (String, Option<String>) = conn
            .one(sql("SELECT name, outputs FROM job_runs WHERE id = $1").bind(run))
            .await?;
        steps.insert(name, outputs_of(outputs)?);
    }
    Ok(DriverContext {
        outputs: job.outputs.iter().map(|o| o.name.clone()).collect(),
        job: job.name.clone(),
        resource,
        event,
        refs: job
            .refs
            .iter()
            .map(|r| (r.env.clone(), r.text.clone()))
            .collect(),
        steps,
        upstream,
    })
}

/// For each product the job takes as an input, the outputs of the build of it that this
/// build reads (the one that fired it, else the one its trigger's `build:` names), by job.
async fn upstream_outputs<C: Conn>(
    conn: &mut C,
    build_id: &str,
    job: &Job,
) -> Result<BTreeMap<String, Outputs>> {
    let mut out = BTreeMap::new();
    for input in &job.inputs {
        let Input::Product { target, .. } = input else {
            continue;
        };
        let up = values::upstream_build(conn, build_id, &target.product, target.belt.as_deref());
        let Some(up) = up.await? else {
            continue;
        };
        let rows: Vec<(String, Option<String>)> = conn
            .all(sql("SELECT name, outputs FROM job_runs WHERE build_id = $1").bind(&up))
            .await?;
        let mut jobs: Outputs = BTreeMap::new();
        for (name, outputs) in rows {
            if target.job.as_ref().is_none_or(|j| *j == name) {
                jobs.insert(name, outputs_of(outputs)?);
            }
        }
        out.insert(target.product.clone(), jobs);
    }
    Ok(out)
}

/// Outputs by job name.
type Outputs = BTreeMap<String, BTreeMap<String, String>>;
