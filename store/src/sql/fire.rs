//! Downstream products: the builds a successful build fires, each a build of the
//! downstream product's branch head, until none is left (and never past `MAX_CHAIN`).

use conveyor_core::model::Product;
use conveyor_core::rules::{MAX_CHAIN, fired_downstreams};

use super::builds::insert_build;
use super::conn::{Conn, sql};
use super::{Work, from_json, values};
use crate::error::Result;
use crate::types::{BuildTrigger, NewBuild};

/// Creates the builds that successful builds fire, until none is left.
pub(crate) async fn fire_all<C: Conn>(conn: &mut C, now: i64, work: &mut Work) -> Result<()> {
    while let Some(build_id) = work.to_fire.pop() {
        let (product, belt, number): (String, String, i64) = conn
            .one(sql("SELECT product, belt, number FROM builds WHERE id = $1").bind(&build_id))
            .await?;
        let depth = chain_depth(conn, &build_id).await?;
        if depth >= MAX_CHAIN {
            tracing::warn!(%build_id, "not firing downstream products: the chain is {depth} builds long");
            continue;
        }
        let models: Vec<(String,)> = conn
            .all(sql("SELECT model FROM products ORDER BY name"))
            .await?;
        let registered: Vec<Product> = models
            .iter()
            .map(|(m,)| from_json(m))
            .collect::<Result<_>>()?;
        let Some(me) = registered.iter().find(|p| p.name == product) else {
            continue;
        };
        let trigger = BuildTrigger::Upstream {
            build_id: build_id.clone(),
            product: product.clone(),
            belt: belt.clone(),
            number: number as u64,
        };
        let ran: Vec<(String,)> = conn
            .all(
                sql("SELECT name FROM job_runs WHERE build_id = $1 AND status = 'succeeded'")
                    .bind(&build_id),
            )
            .await?;
        let ran: Vec<String> = ran.into_iter().map(|(n,)| n).collect();
        let ctx = values::context_of(conn, &build_id).await?;
        for (p, b) in fired_downstreams(me, &belt, &registered, &ran, &ctx) {
            let new = downstream_build(conn, p, b, trigger.clone()).await?;
            insert_build(conn, &new, Some(&build_id), now, work).await?;
        }
    }
    Ok(())
}

/// A downstream build: a product from a repository builds the head of its branch.
async fn downstream_build<C: Conn>(
    conn: &mut C,
    product: String,
    belt: String,
    trigger: BuildTrigger,
) -> Result<NewBuild> {
    let (branch, head): (Option<String>, Option<String>) = conn
        .one(sql("SELECT branch, head_sha FROM products WHERE name = $1").bind(&product))
        .await?;
    Ok(NewBuild {
        product,
        belt,
        trigger,
        git_ref: branch.map(|b| format!("refs/heads/{b}")),
        sha: head,
        model: None,
        resource: None,
        context: None,
    })
}

/// How many upstream builds lead to this one.
async fn chain_depth<C: Conn>(conn: &mut C, build_id: &str) -> Result<usize> {
    let mut depth = 0;
    let mut at = build_id.to_string();
    while depth < MAX_CHAIN {
        let up: Option<(Option<String>,)> = conn
            .opt(sql("SELECT upstream_build_id FROM builds WHERE id = $1").bind(&at))
            .await?;
        match up.and_then(|(u,)| u) {
            Some(u) => {
                depth += 1;
                at = u;
            }
            None => break,
        }
    }
    Ok(depth)
}
