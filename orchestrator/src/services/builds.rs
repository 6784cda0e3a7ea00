//! Builds: starting one, cancelling one, re-running one, and acting on one job run —
//! approving a manual one or cancelling it. Each carries out its effects after commit and
//! answers with the build as it now stands.

use conveyor_core::context::Commit;
use conveyor_core::names;

use super::{Result, ServiceError, Services, input};
use crate::clock::now_ms;
use crate::git::{GitError, Repos};
use crate::store::{BuildView, NewBuild};

/// Creates a build, dispatches its ready jobs, and returns it.
pub async fn start(s: &Services, new: &NewBuild) -> Result<BuildView> {
    start_with(s, new, Asked::default()).await
}

/// What the person starting a build by hand adds to it.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// `KEY=VALUE` pairs every job of the build gets in its environment.
    pub variables: Vec<(String, String)>,
    /// Who asked (shown with the build); `None`: nobody named.
    pub by: Option<String>,
}

/// [`start`], with what the person starting it asked for.
pub async fn start_with(s: &Services, new: &NewBuild, asked: Asked) -> Result<BuildView> {
    check(new)?;
    for (name, value) in &asked.variables {
        input::variable(name, value)?;
    }
    if asked.variables.len() > MAX_VARIABLES {
        return Err(ServiceError::InvalidField {
            field: "variables".into(),
            message: format!("at most {MAX_VARIABLES} variables"),
        });
    }
    if let Some(by) = &asked.by {
        input::actor("by", by)?;
    }
    let mut new = at_head(s, new).await?;
    let mut context = new.context();
    context.variables = asked.variables;
    context.actor = asked.by;
    new.context = Some(context);
    let started = insert(s, &new).await?;
    view(s, &started.id).await
}

/// The most variables one build may be started with.
pub const MAX_VARIABLES: usize = 100;

/// A build just created, and what its creation set moving.
pub struct Started {
    pub id: String,
    /// Builds created: this one, and downstream builds that its ending at once fired.
    pub created: Vec<String>,
    /// Builds among those that have already finished.
    pub finished: Vec<String>,
}

/// Creates a build and dispatches its ready jobs, for a caller that follows the builds it
/// fires (`conveyor run`).
pub async fn create(s: &Services, new: &NewBuild) -> Result<Started> {
    check(new)?;
    insert(s, &at_head(s, new).await?).await
}

/// Records a build already checked and resolved to its commit, and dispatches its jobs.
async fn insert(s: &Services, new: &NewBuild) -> Result<Started> {
    let (id, effects) = s.store.create_build(new, now_ms()).await?;
    let started = Started {
        id,
        created: effects.created.clone(),
        finished: effects.finished.clone(),
    };
    s.apply(effects).await;
    Ok(started)
}

/// Refuses a build whose names, ref or commit no request could rightly carry.
fn check(new: &NewBuild) -> Result<()> {
    input::name("product", &new.product)?;
    input::name("belt", &new.belt)?;
    if let Some(r) = &new.git_ref {
        input::git_ref("ref", r)?;
    }
    if let Some(sha) = &new.sha {
        input::sha("sha", sha)?;
    }
    Ok(())
}

/// A build of a repository's product started without a commit builds the head of the ref
/// it names (a branch, tag or `refs/…`), or of the product's branch, or of the default one,
/// as the repository has it now. Products with a local source (`conveyor run`, `up`), or
/// without a repository, are built as they are.
pub(super) async fn at_head(s: &Services, new: &NewBuild) -> Result<NewBuild> {
    let mut new = new.clone();
    let described = new.context.as_ref().is_some_and(|c| c.commit.is_some());
    if new.sha.is_some() && described {
        return Ok(new);
    }
    let Some(product) = s.store.product(&new.product).await? else {
        return Ok(new);
    };
    let (Some(url), None) = (product.repo, product.source_path) else {
        return Ok(new);
    };
    let (repos, wanted, given) = (
        s.repos.clone(),
        new.git_ref.clone().or(product.branch),
        new.sha.clone(),
    );
    let (resolved, commit) = tokio::task::spawn_blocking(move || match given {
        // A commit named by the caller: described from the mirror as it is, not fetched.
        Some(sha) => {
            let commit = repos.mirror(&url).and_then(|m| repos.describe(&m, &sha));
            Ok((None, commit))
        }
        None => head_of(&repos, &url, wanted).map(|(r, sha, c)| (Some((r, sha)), c)),
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))??;
    if let Some((git_ref, sha)) = resolved {
        new.git_ref = Some(git_ref);
        new.sha = Some(sha);
    }
    if commit.is_some() {
        let mut context = new.context();
        context.commit = commit;
        new.context = Some(context);
    }
    Ok(new)
}

/// The full ref and commit `wanted` names in the repository at `url` (its default branch
/// when `None`).
fn head_of(
    repos: &Repos,
    url: &str,
    wanted: Option<String>,
) -> Result<(String, String, Option<Commit>)> {
    let unavailable = |e: GitError| match e {
        GitError::Unreachable(m) => ServiceError::Unavailable(m),
        GitError::Refused(m) => ServiceError::Invalid(m),
    };
    let mirror = repos.sync(url).map_err(unavailable)?;
    let wanted = match wanted {
        Some(w) => w,
        None => repos.default_branch(&mirror).map_err(unavailable)?,
    };
    let candidates = if wanted.starts_with("refs/") || names::is_commit_sha(&wanted) {
        vec![wanted.clone()]
    } else {
        vec![
            format!("refs/heads/{wanted}"),
            format!("refs/tags/{wanted}"),
        ]
    };
    for full in candidates {
        if let Ok(sha) = repos.commit(&mirror, &full) {
            let commit = repos.describe(&mirror, &sha);
            return Ok((full, sha, commit));
        }
    }
    Err(ServiceError::InvalidField {
        field: "ref".into(),
        message: format!("{url} has no branch, tag or commit `{wanted}`"),
    })
}

/// Cancels a build: its job runs still to finish are cancelled.
pub async fn cancel(s: &Services, id: &str) -> Result<()> {
    input::id("id", id)?;
    let effects = s
        .store
        .cancel_build(id, now_ms())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no build `{id}`")))?;
    s.apply(effects).await;
    Ok(())
}

/// Starts a new build running what build `id` ran; returns the new build.
pub async fn rerun(s: &Services, id: &str) -> Result<BuildView> {
    input::id("id", id)?;
    let (new_id, effects) = s
        .store
        .rerun_build(id, now_ms())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no build `{id}`")))?;
    s.apply(effects).await;
    view(s, &new_id).await
}

/// Retries build `id` in place: its failed and cancelled job runs, and those skipped
/// because of them, run again as new attempts; returns the reopened build.
pub async fn retry(s: &Services, id: &str) -> Result<BuildView> {
    input::id("id", id)?;
    let effects = s
        .store
        .retry_build(id, now_ms())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no build `{id}`")))?;
    s.apply(effects).await;
    view(s, id).await
}

/// The longest name a decision may record as who made it.
pub const MAX_DECIDER_LEN: usize = 100;
/// The longest reason a decline may give.
pub const MAX_REASON_LEN: usize = 1000;

/// Approves a manual job run waiting for approval (`by`: who, as the caller names them):
/// queued, or waiting for its concurrency group; returns its build.
pub async fn approve_job_run(s: &Services, id: &str, by: &str) -> Result<BuildView> {
    let build_id = build_of(s, id).await?;
    input::text("by", by, MAX_DECIDER_LEN)?;
    let effects = s
        .store
        .approve_job_run(id, by, now_ms())
        .await?
        .ok_or_else(|| not_waiting(id, "approved"))?;
    s.apply(effects).await;
    view(s, &build_id).await
}

/// Declines a manual job run waiting for approval: skipped with who declined and why (not
/// a failure); returns its build.
pub async fn decline_job_run(s: &Services, id: &str, by: &str, reason: &str) -> Result<BuildView> {
    let build_id = build_of(s, id).await?;
    input::text("by", by, MAX_DECIDER_LEN)?;
    input::text("reason", reason, MAX_REASON_LEN)?;
    let effects = s
        .store
        .decline_job_run(id, by, reason, now_ms())
        .await?
        .ok_or_else(|| not_waiting(id, "declined"))?;
    s.apply(effects).await;
    view(s, &build_id).await
}

fn not_waiting(id: &str, done: &str) -> ServiceError {
    ServiceError::Conflict(format!(
        "job run `{id}` is not waiting for approval: only a manual job that is waiting can be {done}"
    ))
}

/// Cancels one job run (a finished one stays as it is); returns its build.
pub async fn cancel_job_run(s: &Services, id: &str) -> Result<BuildView> {
    let build_id = build_of(s, id).await?;
    let effects = s
        .store
        .cancel_job_run(id, now_ms())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no job run `{id}`")))?;
    s.apply(effects).await;
    view(s, &build_id).await
}

async fn build_of(s: &Services, job_run_id: &str) -> Result<String> {
    input::id("id", job_run_id)?;
    s.store
        .build_of_job_run(job_run_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no job run `{job_run_id}`")))
}

/// A build that the caller has just created or changed.
async fn view(s: &Services, id: &str) -> Result<BuildView> {
    s.store
        .build(id)
        .await?
        .ok_or_else(|| ServiceError::Internal(format!("build {id} vanished")))
}
