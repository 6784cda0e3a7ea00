//! Resolving a job's references to values: outputs of jobs of the same build, or of the
//! upstream product's build (the one that triggered this chain, else the one the
//! trigger's `build:` selector names).

use std::collections::BTreeMap;

use conveyor_core::context::BuildContext;
use conveyor_core::model::{BuildSelector, Product, RefTarget, Reference, Trigger};
use conveyor_core::rules::MAX_CHAIN;

use super::conn::{Conn, sql};
use super::{from_json, outputs_of};
use crate::error::Result;

/// `(env, value)` for each reference, in order; a missing value is empty.
pub(crate) async fn resolve<C: Conn>(
    conn: &mut C,
    build_id: &str,
    refs: &[Reference],
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let value = match &r.target {
            RefTarget::Job { job, output } => {
                run_outputs(conn, build_id, job).await?.remove(output)
            }
            RefTarget::Product { target, output } => {
                let up = upstream_build(conn, build_id, &target.product, target.belt.as_deref());
                match (up.await?, &target.job) {
                    (Some(up), Some(job)) => run_outputs(conn, &up, job).await?.remove(output),
                    (Some(up), None) => any_output(conn, &up, output).await?,
                    (None, _) => None,
                }
            }
        };
        out.push((r.env.clone(), value.unwrap_or_default()));
    }
    Ok(out)
}

async fn run_outputs<C: Conn>(
    conn: &mut C,
    build_id: &str,
    job: &str,
) -> Result<BTreeMap<String, String>> {
    let row: Option<(Option<String>,)> = conn
        .opt(
            sql("SELECT outputs FROM job_runs WHERE build_id = $1 AND name = $2")
                .bind(build_id)
                .bind(job),
        )
        .await?;
    outputs_of(row.and_then(|(o,)| o))
}

/// The first job (in belt order) of the build that has `output`.
async fn any_output<C: Conn>(conn: &mut C, build_id: &str, output: &str) -> Result<Option<String>> {
    let rows: Vec<(Option<String>,)> = conn
        .all(
            sql(
                "SELECT outputs FROM job_runs WHERE build_id = $1 AND outputs IS NOT NULL \
                 ORDER BY idx",
            )
            .bind(build_id),
        )
        .await?;
    for (json,) in rows {
        if let Some(v) = outputs_of(json)?.remove(output) {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The `build:` selector of this build's product's `upstream-build` trigger on `product`
/// (last successful when it has none).
async fn selector_for<C: Conn>(
    conn: &mut C,
    build_id: &str,
    product: &str,
) -> Result<BuildSelector> {
    let row: Option<(String,)> = conn
        .opt(
            sql(
                "SELECT p.model FROM builds b JOIN products p ON p.name = b.product \
                 WHERE b.id = $1",
            )
            .bind(build_id),
        )
        .await?;
    let Some((model,)) = row else {
        return Ok(BuildSelector::LastSuccessful);
    };
    let model: Product = from_json(&model)?;
    Ok(model
        .triggers
        .iter()
        .find_map(|t| match t {
            Trigger::UpstreamBuild(u) if u.product == product => Some(u.build),
            _ => None,
        })
        .unwrap_or(BuildSelector::LastSuccessful))
}

/// The build of `product` whose outputs this build reads: the nearest in the chain of
/// builds that triggered it, else the one the trigger's selector names.
pub(crate) async fn upstream_build<C: Conn>(
    conn: &mut C,
    build_id: &str,
    product: &str,
    belt: Option<&str>,
) -> Result<Option<String>> {
    // The chain of builds that triggered this one, nearest first, walked in one statement.
    let near: Option<(String,)> = conn
        .opt(
            sql("WITH RECURSIVE chain (id, depth) AS ( \
                 SELECT upstream_build_id, 1 FROM builds \
                 WHERE id = $1 AND upstream_build_id IS NOT NULL \
                 UNION ALL \
                 SELECT b.upstream_build_id, c.depth + 1 FROM builds b JOIN chain c ON b.id = c.id \
                 WHERE b.upstream_build_id IS NOT NULL AND c.depth < $4) \
                 SELECT b.id FROM chain c JOIN builds b ON b.id = c.id \
                 WHERE b.product = $2 AND (CAST($3 AS TEXT) IS NULL OR b.belt = $3) \
                 ORDER BY c.depth LIMIT 1")
            .bind(build_id)
            .bind(product)
            .bind(belt)
            .bind(MAX_CHAIN as i64),
        )
        .await?;
    if let Some((up,)) = near {
        return Ok(Some(up));
    }
    // Not in the chain (a manual build): the trigger's `build:` selector decides.
    let (status, number) = match selector_for(conn, build_id, product).await? {
        BuildSelector::Last => (None, None),
        BuildSelector::LastSuccessful => (Some("succeeded"), None),
        BuildSelector::LastFailure => (Some("failed"), None),
        BuildSelector::Number(n) => (None, Some(n as i64)),
    };
    let row: Option<(String,)> = conn
        .opt(
            sql("SELECT id FROM builds WHERE product = $1 AND (CAST($2 AS TEXT) IS NULL OR belt = $2) \
                 AND (CAST($3 AS TEXT) IS NULL OR status = $3) \
                 AND (CAST($4 AS BIGINT) IS NULL OR number = $4) \
                 AND id <> $5 ORDER BY number DESC LIMIT 1")
            .bind(product)
            .bind(belt)
            .bind(status)
            .bind(number)
            .bind(build_id),
        )
        .await?;
    Ok(row.map(|(id,)| id))
}

/// The context a build's conditions read (a build from before contexts: its trigger's).
pub(crate) async fn context_of<C: Conn>(conn: &mut C, build_id: &str) -> Result<BuildContext> {
    let (context, trigger, git_ref): (Option<String>, String, Option<String>) = conn
        .one(sql("SELECT context, trigger, git_ref FROM builds WHERE id = $1").bind(build_id))
        .await?;
    context_from(context.as_deref(), &trigger, git_ref.as_deref())
}

/// A build's context from its `context`, `trigger` and `git_ref` columns, for a caller that
/// read them with other columns of the build.
pub(crate) fn context_from(
    context: Option<&str>,
    trigger: &str,
    git_ref: Option<&str>,
) -> Result<BuildContext> {
    match context {
        Some(c) => from_json(c),
        None => {
            let trigger: crate::types::BuildTrigger = from_json(trigger)?;
            Ok(BuildContext::at_ref(trigger.event(git_ref), git_ref))
        }
    }
}
