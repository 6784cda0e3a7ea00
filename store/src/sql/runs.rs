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

/// Completes the claim of a job run just taken under `lease_token`: its secrets, its
/// references' values and upstream artifacts, read after the taking committed (none of
/// them changes once the job run is running).
async fn claim<C: Conn>(
    conn: &mut C,
    req: &ClaimRequest,
    taken: Taken,
    lease_token: String,
    lease_ms: i64,
    now: i64,
) -> Result<Claim> {
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
    Ok(Claim {
        spec,
        waited_ms: now - taken.queued_at.unwrap_or(now),
        secrets,
        missing_secrets,
        replayed: false,
    })
}

/// A job run just taken: its build, spec, when it was queued, and the build's row.
#[derive(FromRow)]
pub(super) struct Taken {
    build_id: String,
    spec: String,
    queued_at: Option<i64>,
    #[sqlx(flatten)]
    build: ClaimedBuild,
}

/// The job run's own columns a claim's `UPDATE` returns: its build, spec and when it was
/// queued.
pub(super) type TakenRow = (String, String, Option<i64>);

/// A job run just taken: with its build's row where one statement could read it
/// ([`Conn::WRITING_CTE`]), else its own columns only.
pub(super) enum Took {
    Whole(Taken),
    Row(TakenRow),
}

/// What a claimed job run's build row gives its spec.
const CLAIMED_BUILD: &str = "b.product, b.belt, b.number, b.sha, b.git_ref, p.repo, \
                             p.source_path, b.context, b.trigger \
                             FROM builds b JOIN products p ON p.name = b.product";

/// A lease being given: its token, and the lease token of the completion taking the job
/// run (`None` for a claim of a job run from the queue).
#[derive(Clone, Copy)]
pub(super) struct Taking<'a> {
    pub(super) token: &'a str,
    pub(super) after: Option<&'a str>,
}

/// The fenced `UPDATE` that takes the job run if it is queued at this attempt on one of
/// `owner`'s fleets; where the backend can ([`Conn::WRITING_CTE`]), in the same statement
/// as the read of its build (`build`), else returning only the job run's own columns.
fn take(req: &ClaimRequest, owner: &Owner, lease: Taking<'_>, lease_ms: i64, now: i64) -> Sql {
    let fleets: Vec<String> = (0..owner.fleets.len())
        .map(|i| format!("${}", i + 8))
        .collect();
    let update = format!(
        "UPDATE job_runs SET status = 'running', lease_owner = $3, lease_token = $4, \
         lease_expires_at = $5, started_at = COALESCE(started_at, $6), taken_after = $7 \
         WHERE id = $1 AND attempt = $2 AND status = 'queued' AND fleet IN ({}) \
         RETURNING build_id, spec, queued_at",
        fleets.join(", ")
    );
    let mut q = Sql::owned(update)
        .bind(&req.job_run_id)
        .bind(req.attempt)
        .bind(&owner.name)
        .bind(lease.token)
        .bind(now + lease_ms)
        .bind(now)
        .bind(lease.after);
    for fleet in &owner.fleets {
        q = q.bind(fleet);
    }
    q
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

/// The statement `head` fenced by a live lease of `owner`'s (`$1`–`$4`).
pub(super) fn fenced(head: &str, lease: &Lease, owner: &str, tail: &str) -> Sql {
    Sql::owned(format!(
        "{head} WHERE id = $1 AND attempt = $2 AND lease_token = $3 AND lease_owner = $4 \
         AND status = 'running'{tail}"
    ))
    .bind(&lease.job_run_id)
    .bind(lease.attempt)
    .bind(&lease.lease_token)
    .bind(owner)
}

/// A live lease's cancel flag and expiry, read; `None` once it is gone.
async fn read_lease<C: Conn>(
    conn: &mut C,
    lease: &Lease,
    owner: &str,
) -> Result<Option<(bool, Option<i64>)>> {
    let read = "SELECT cancel_requested, lease_expires_at FROM job_runs";
    conn.opt(fenced(read, lease, owner, "")).await
}

/// Extends a live lease to `lease_ms` from `now`; `None` once it is gone.
async fn extend<C: Conn>(
    conn: &mut C,
    lease: &Lease,
    owner: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Option<Held>> {
    let update = "UPDATE job_runs SET lease_expires_at = $5";
    let tail = " RETURNING cancel_requested, lease_expires_at";
    let row: Option<(bool, i64)> = conn
        .opt(fenced(update, lease, owner, tail).bind(now + lease_ms))
        .await?;
    Ok(row.map(|(cancel, expires_at)| Held { cancel, expires_at }))
}

impl<B: super::Backend> super::SqlStore<B> {
    /// Extends a lease to `lease_ms` from `now` — or, `when_due`, only once no more than two
    /// thirds of it are left, reading it (off the writer) until then; `None` once it is gone.
    pub(super) async fn renew_lease(
        &self,
        lease: &Lease,
        owner: &str,
        (lease_ms, when_due): (i64, bool),
        now: i64,
    ) -> Result<Option<Held>> {
        if when_due {
            let read = read_lease(&mut *self.backend.conn().await?, lease, owner).await?;
            match read {
                None => return Ok(None),
                Some((cancel, Some(expires_at))) if expires_at - now > lease_ms * 2 / 3 => {
                    return Ok(Some(Held { cancel, expires_at }));
                }
                Some(_) => {}
            }
        }
        extend(
            &mut *self.backend.writer().await?,
            lease,
            owner,
            lease_ms,
            now,
        )
        .await
    }

    /// Takes a job run for `owner` (`None`: it is not queued at this attempt on one of the
    /// runner's fleets) in one statement committed on its own, then reads what its spec
    /// needs.
    pub(super) async fn claim_run(
        &self,
        req: &ClaimRequest,
        owner: &Owner,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<Claim>> {
        let lease_token = token();
        let mut claimer = self.backend.claimer().await?;
        let lease = Taking {
            token: &lease_token,
            after: None,
        };
        let took = take_on(&mut *claimer, req, owner, lease, lease_ms, now).await?;
        drop(claimer);
        match took {
            Some(took) => self
                .claimed(req, took, lease_token, lease_ms, now)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// What a job run just taken needs for its spec, read after the taking committed on one
    /// reader: its build (where the taking could not read it), secrets, references,
    /// artifacts.
    pub(super) async fn claimed(
        &self,
        req: &ClaimRequest,
        took: Took,
        lease_token: String,
        lease_ms: i64,
        now: i64,
    ) -> Result<Claim> {
        let mut conn = self.backend.conn().await?;
        let taken = match took {
            Took::Whole(taken) => taken,
            Took::Row((build_id, spec, queued_at)) => {
                let read = Sql::owned(format!("SELECT {CLAIMED_BUILD} WHERE b.id = $1"));
                Taken {
                    build: conn.one(read.bind(&build_id)).await?,
                    build_id,
                    spec,
                    queued_at,
                }
            }
        };
        claim(&mut *conn, req, taken, lease_token, lease_ms, now).await
    }
}

/// Takes the job run `req` names for `owner` if it is queued at that attempt on one of the
/// runner's fleets: the fenced `UPDATE` of [`take`], with its build's row where one
/// statement can read it ([`Conn::WRITING_CTE`]).
pub(super) async fn take_on<C: Conn>(
    conn: &mut C,
    req: &ClaimRequest,
    owner: &Owner,
    lease: Taking<'_>,
    lease_ms: i64,
    now: i64,
) -> Result<Option<Took>> {
    if owner.fleets.is_empty() {
        return Ok(None);
    }
    let update = take(req, owner, lease, lease_ms, now);
    if C::WRITING_CTE {
        let q = update.wrap(|u| {
            format!(
                "WITH t AS ({u}) SELECT t.build_id, t.spec, t.queued_at, {CLAIMED_BUILD} \
                 JOIN t ON b.id = t.build_id"
            )
        });
        let row: Option<Taken> = conn.opt(q).await?;
        Ok(row.map(Took::Whole))
    } else {
        let row: Option<TakenRow> = conn.opt(update).await?;
        Ok(row.map(Took::Row))
    }
}
