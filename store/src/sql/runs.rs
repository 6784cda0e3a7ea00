//! The runner protocol's first steps: claim, heartbeat, logs. A claim takes a queued job
//! run of one of the runner's fleets at the message's attempt; every later call is fenced by
//! `(id, attempt, lease_token, lease_owner)` in its own statement.

use conveyor_core::context::BuildContext;
use conveyor_core::model::Job;
use conveyor_core::protocol::{ClaimRequest, JobSpec, Lease};
use conveyor_core::rules::{self, JobContext};
use sqlx::FromRow;

use super::conn::{Conn, Sql};
use super::{files, from_json, secrets, token, values};
use crate::api::Held;
use crate::error::Result;
use crate::types::{Claim, Owner};

/// The build a claimed job run belongs to, and its product's source.
#[derive(FromRow)]
struct ClaimedBuild {
    product: String,
    belt: String,
    number: i64,
    sha: Option<String>,
    git_ref: Option<String>,
    repo: Option<String>,
    source_path: Option<String>,
    context: Option<String>,
    trigger: String,
}

/// Takes a queued job run at this attempt for `owner`; `None` when it is not (a duplicate
/// or stale message, or a job run of a fleet the runner does not serve). Where the taking
/// is one statement ([`Conn::WRITING_CTE`]) it needs no transaction: what is read after it
/// (secrets, upstream outputs and artifacts) no longer changes.
async fn claim<C: Conn>(
    conn: &mut C,
    req: &ClaimRequest,
    owner: &Owner,
    lease_ms: i64,
    now: i64,
) -> Result<Option<Claim>> {
    let lease_token = token();
    let Some(taken) = take(conn, req, owner, &lease_token, lease_ms, now).await? else {
        return Ok(None);
    };
    let (b, build_id) = (taken.build, taken.build_id);
    let job: Job = from_json(&taken.spec)?;
    let (secrets, missing_secrets) =
        secrets::for_job(conn, &b.product, b.git_ref.as_deref(), &job).await?;
    let refs = values::resolve(conn, &build_id, &job.refs).await?;
    let context = values::context_from(b.context.as_deref(), &b.trigger, b.git_ref.as_deref())?;
    // Artifacts come only along edges (needs, inputs, references); a job without any has none.
    let upstream = !(job.needs.is_empty() && job.inputs.is_empty() && job.refs.is_empty());
    let inputs = match upstream {
        true => files::inputs_of(conn, &build_id, &req.job_run_id, &job).await?,
        false => Vec::new(),
    };
    let lease = Lease {
        job_run_id: req.job_run_id.clone(),
        attempt: req.attempt,
        lease_token,
    };
    let mut spec = spec_of(lease, lease_ms, &job, (b, &context), build_id, refs);
    spec.input_artifacts = inputs;
    Ok(Some(Claim {
        spec,
        waited_ms: now - taken.queued_at.unwrap_or(now),
        secrets,
        missing_secrets,
    }))
}

/// A job run just taken: its build, spec, when it was queued, and the build's row.
#[derive(FromRow)]
struct Taken {
    build_id: String,
    spec: String,
    queued_at: Option<i64>,
    #[sqlx(flatten)]
    build: ClaimedBuild,
}

/// The fenced `UPDATE` that takes the job run if it is queued at this attempt on one of
/// `owner`'s fleets, and the build it belongs to: one statement where the backend can
/// ([`Conn::WRITING_CTE`]), else the update and then a read in the caller's transaction.
async fn take<C: Conn>(
    conn: &mut C,
    req: &ClaimRequest,
    owner: &Owner,
    lease_token: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Option<Taken>> {
    if owner.fleets.is_empty() {
        return Ok(None);
    }
    let fleets: Vec<String> = (0..owner.fleets.len())
        .map(|i| format!("${}", i + 7))
        .collect();
    let update = format!(
        "UPDATE job_runs SET status = 'running', lease_owner = $3, lease_token = $4, \
         lease_expires_at = $5, started_at = COALESCE(started_at, $6) \
         WHERE id = $1 AND attempt = $2 AND status = 'queued' AND fleet IN ({}) \
         RETURNING build_id, spec, queued_at",
        fleets.join(", ")
    );
    let build = "b.product, b.belt, b.number, b.sha, b.git_ref, p.repo, p.source_path, \
                 b.context, b.trigger FROM builds b JOIN products p ON p.name = b.product";
    let q = match C::WRITING_CTE {
        true => format!(
            "WITH t AS ({update}) SELECT t.build_id, t.spec, t.queued_at, {build} \
             JOIN t ON b.id = t.build_id"
        ),
        false => update,
    };
    let mut q = Sql::owned(q)
        .bind(&req.job_run_id)
        .bind(req.attempt)
        .bind(&owner.name)
        .bind(lease_token)
        .bind(now + lease_ms)
        .bind(now);
    for fleet in &owner.fleets {
        q = q.bind(fleet);
    }
    if C::WRITING_CTE {
        return conn.opt(q).await;
    }
    let row: Option<(String, String, Option<i64>)> = conn.opt(q).await?;
    let Some((build_id, spec, queued_at)) = row else {
        return Ok(None);
    };
    let read = Sql::owned(format!("SELECT {build} WHERE b.id = $1")).bind(&build_id);
    let build = conn.one(read).await?;
    Ok(Some(Taken {
        build_id,
        spec,
        queued_at,
        build,
    }))
}

/// What the runner gets: the script, and an environment of the job's `env`, the
/// `CONVEYOR_*` variables and its references' values.
fn spec_of(
    lease: Lease,
    lease_ms: i64,
    job: &Job,
    (b, context): (ClaimedBuild, &BuildContext),
    build_id: String,
    refs: Vec<(String, String)>,
) -> JobSpec {
    let ctx = JobContext {
        product: &b.product,
        belt: &b.belt,
        number: b.number,
        build_id: &build_id,
        job_run_id: &lease.job_run_id,
        job: &job.name,
        attempt: i64::from(lease.attempt),
        sha: b.sha.as_deref(),
        git_ref: b.git_ref.as_deref(),
        context,
    };
    let (env, expand_env) = job_env(job, &ctx, refs, &context.variables);
    let source = rules::source_of(
        job,
        b.source_path.as_deref(),
        b.repo.as_deref(),
        b.sha.as_deref(),
    );
    JobSpec {
        lease,
        lease_secs: (lease_ms / 1000).max(1) as u64,
        source,
        git_inputs: rules::git_inputs(job),
        product: b.product,
        belt: b.belt,
        job: job.name.clone(),
        build_id,
        build_number: b.number as u64,
        script: job.script.clone(),
        env,
        outputs: job.outputs.clone(),
        timeout_secs: job.timeout_secs,
        // The orchestrator opens the sealed secrets (`Claim::secrets`) into `env` and here.
        secrets: Vec::new(),
        input_artifacts: Vec::new(),
        artifact_paths: job.artifacts.clone(),
        artifacts_always: job.artifacts_always,
        caches: job.caches.clone(),
        caches_writable: !b.git_ref.as_deref().is_some_and(rules::is_pull_request),
        expand_env,
        script_source: job.script_source.clone(),
    }
}

/// The job's environment — its `env` (the templates the runner expands), the `CONVEYOR_*`
/// variables, its references' values, then the build's variables — and the names of the
/// templates. The build's variables win over `env` and, being data, are never expanded: a
/// key they replace is no longer a template.
fn job_env(
    job: &Job,
    ctx: &JobContext,
    refs: Vec<(String, String)>,
    variables: &[(String, String)],
) -> (Vec<(String, String)>, Vec<String>) {
    let replaced = |k: &String| variables.iter().any(|(v, _)| v == k);
    let mut env: Vec<(String, String)> = job
        .env
        .iter()
        .filter(|(k, _)| !replaced(k))
        .cloned()
        .collect();
    let templates = env.iter().map(|(name, _)| name.clone()).collect();
    env.extend(rules::conveyor_env(ctx));
    env.extend(refs);
    env.extend(variables.iter().cloned());
    (env, templates)
}

/// Extends a lease to `lease_ms` from `now` — or, `when_due`, only once no more than two
/// thirds of it are left, reading it until then — while it holds; `None` once it is gone.
pub(crate) async fn renew<C: Conn>(
    conn: &mut C,
    lease: &Lease,
    owner: &str,
    (lease_ms, when_due): (i64, bool),
    now: i64,
) -> Result<Option<Held>> {
    let fence = "WHERE id = $1 AND attempt = $2 AND lease_token = $3 AND lease_owner = $4 \
                 AND status = 'running'";
    let bind = |q: Sql| {
        q.bind(&lease.job_run_id)
            .bind(lease.attempt)
            .bind(&lease.lease_token)
            .bind(owner)
    };
    if when_due {
        let read = format!("SELECT cancel_requested, lease_expires_at FROM job_runs {fence}");
        let Some((cancel, expires)) = conn
            .opt::<(bool, Option<i64>)>(bind(Sql::owned(read)))
            .await?
        else {
            return Ok(None);
        };
        if let Some(expires_at) = expires
            && expires_at - now > lease_ms * 2 / 3
        {
            return Ok(Some(Held { cancel, expires_at }));
        }
    }
    let update = format!(
        "UPDATE job_runs SET lease_expires_at = $5 {fence} \
         RETURNING cancel_requested, lease_expires_at"
    );
    let row: Option<(bool, i64)> = conn
        .opt(bind(Sql::owned(update)).bind(now + lease_ms))
        .await?;
    Ok(row.map(|(cancel, expires_at)| Held { cancel, expires_at }))
}

impl<B: super::Backend> super::SqlStore<B> {
    /// Takes a job run for `owner`: in one statement where it is one (committed on its
    /// own), else in a write transaction committed only when the job run was taken.
    pub(super) async fn claim_run(
        &self,
        req: &ClaimRequest,
        owner: &Owner,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<Claim>> {
        if <B::Conn as Conn>::WRITING_CTE {
            let mut conn = self.backend.conn().await?;
            return claim(&mut *conn, req, owner, lease_ms, now).await;
        }
        let mut tx = self.backend.begin().await?;
        let claim = claim(&mut *tx, req, owner, lease_ms, now).await?;
        if claim.is_some() {
            B::commit(tx).await?;
        }
        Ok(claim)
    }
}
