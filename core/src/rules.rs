//! Domain rules the engine applies when it moves a build on, pure over the model: the
//! variables a job sees, where its source comes from, whether its condition holds, and
//! which products a successful build fires.

use std::collections::HashMap;

use crate::context::{BuildContext, Gate};
use crate::expr::Env;
use crate::model::{Belt, Input, Job, Product, Reference};
use crate::protocol::SourceSpec;

/// Downstream chains longer than this stop firing (a loop among registered products).
pub const MAX_CHAIN: usize = 32;

/// The `CONVEYOR_*` variables a job sees.
pub struct JobContext<'a> {
    pub product: &'a str,
    pub belt: &'a str,
    pub number: i64,
    pub build_id: &'a str,
    pub job_run_id: &'a str,
    pub job: &'a str,
    pub attempt: i64,
    pub sha: Option<&'a str>,
    pub git_ref: Option<&'a str>,
    pub context: &'a BuildContext,
}

pub fn conveyor_env(c: &JobContext) -> Vec<(String, String)> {
    let pairs = [
        ("CONVEYOR", "true".to_string()),
        ("CONVEYOR_PRODUCT", c.product.to_string()),
        ("CONVEYOR_BELT", c.belt.to_string()),
        ("CONVEYOR_BUILD_NUMBER", c.number.to_string()),
        ("CONVEYOR_BUILD_ID", c.build_id.to_string()),
        ("CONVEYOR_JOB", c.job.to_string()),
        ("CONVEYOR_JOB_RUN_ID", c.job_run_id.to_string()),
        ("CONVEYOR_ATTEMPT", c.attempt.to_string()),
        ("CONVEYOR_COMMIT_SHA", c.sha.unwrap_or("").to_string()),
        ("CONVEYOR_COMMIT_REF", c.git_ref.unwrap_or("").to_string()),
        ("CONVEYOR_EVENT", c.context.event.name().to_string()),
        (
            "CONVEYOR_BRANCH",
            c.context.branch.clone().unwrap_or_default(),
        ),
        ("CONVEYOR_TAG", c.context.tag.clone().unwrap_or_default()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Where a job's `source` comes from, if it takes one.
pub fn source_of(
    job: &Job,
    local: Option<&str>,
    repo: Option<&str>,
    sha: Option<&str>,
) -> Option<SourceSpec> {
    if !job.inputs.contains(&Input::Source) {
        return None;
    }
    match (local, repo, sha) {
        (Some(path), _, _) => Some(SourceSpec::Local {
            path: path.to_string(),
        }),
        (None, Some(url), Some(sha)) => Some(SourceSpec::Git {
            url: url.to_string(),
            sha: sha.to_string(),
        }),
        _ => None,
    }
}

pub fn git_inputs(job: &Job) -> Vec<String> {
    job.inputs
        .iter()
        .filter_map(|i| match i {
            Input::Git { url } => Some(url.clone()),
            _ => None,
        })
        .collect()
}

/// The references whose value must be known: all of them, or only the condition's.
pub fn condition_refs(job: &Job) -> Vec<&Reference> {
    let paths = job.condition.as_ref().map(|c| c.refs()).unwrap_or_default();
    job.refs
        .iter()
        .filter(|r| paths.contains(&r.text.as_str()))
        .collect()
}

/// What a condition reads: its references' values and the build's context.
pub struct Scope<'a> {
    pub values: &'a HashMap<String, String>,
    pub context: &'a BuildContext,
}

impl Env for Scope<'_> {
    fn value(&self, path: &str) -> Option<String> {
        match path.strip_prefix("conveyor.") {
            Some(name) => self.context.value(name),
            None => self.values.get(path).cloned(),
        }
    }

    fn changed(&self, pattern: &str) -> bool {
        self.context.changed(pattern)
    }
}

/// Evaluates a job's `if` given its references' values and the build's context.
pub fn condition_holds(job: &Job, values: &HashMap<String, String>, ctx: &BuildContext) -> bool {
    let scope = Scope {
        values,
        context: ctx,
    };
    job.condition.as_ref().is_none_or(|c| c.eval(&scope))
}

/// Evaluates a belt's `if` over the build's context.
pub fn belt_condition_holds(belt: &Belt, ctx: &BuildContext) -> bool {
    let values = HashMap::new();
    let scope = Scope {
        values: &values,
        context: ctx,
    };
    belt.condition.as_ref().is_none_or(|c| c.eval(&scope))
}

/// Every (product, belt) pair a build of `product`/`belt` may fire: its jobs'
/// `downstreams`, and every registered product with an `upstream-build` trigger on it.
pub fn downstream_targets(
    me: &Product,
    belt: &str,
    registered: &[Product],
) -> Vec<(String, String)> {
    targets(me, belt, registered, &|_, _| true, true)
}

/// The (product, belt) pairs a successful build fires, from what really ran (`ran`: the
/// jobs that succeeded): the `downstreams` of those jobs whose gate lets the build's
/// context through, and every registered product with an `upstream-build` trigger on it
/// whose gate does, when at least one job ran.
pub fn fired_downstreams(
    me: &Product,
    belt: &str,
    registered: &[Product],
    ran: &[String],
    ctx: &BuildContext,
) -> Vec<(String, String)> {
    let fires = |job: Option<&Job>, gate: &Gate| {
        job.is_none_or(|j| ran.contains(&j.name)) && gate.allows(ctx)
    };
    targets(me, belt, registered, &fires, !ran.is_empty())
}

/// The targets whose job (`None` for an upstream trigger) and gate `fires` accepts;
/// upstream triggers only when `any_ran`.
fn targets(
    me: &Product,
    belt: &str,
    registered: &[Product],
    fires: &dyn Fn(Option<&Job>, &Gate) -> bool,
    any_ran: bool,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |product: &str, belt: &str| {
        let pair = (product.to_string(), belt.to_string());
        if !out.contains(&pair) {
            out.push(pair);
        }
    };
    let by_name = |n: &str| registered.iter().find(|p| p.name == n);
    if let Some(b) = me.belt(belt) {
        let gated = b
            .jobs
            .iter()
            .flat_map(|j| j.downstreams.iter().map(move |ds| (j, ds)));
        for (_, ds) in gated.filter(|(j, ds)| fires(Some(j), &ds.gate)) {
            let Some(target) = by_name(&ds.product) else {
                continue;
            };
            let belts: Vec<&str> = match &ds.belts {
                Some(list) => list.iter().map(String::as_str).collect(),
                None => target.belts.iter().map(|b| b.name.as_str()).collect(),
            };
            for tb in belts.into_iter().filter(|tb| target.belt(tb).is_some()) {
                add(&target.name, tb);
            }
        }
    }
    for p in registered {
        for t in &p.triggers {
            let crate::model::Trigger::UpstreamBuild(u) = t else {
                continue;
            };
            if u.product != me.name || u.belt.as_deref().is_some_and(|b| b != belt) {
                continue;
            }
            if !any_ran || !fires(None, &u.gate) {
                continue;
            }
            let belts: Vec<&str> = match &u.belts {
                Some(list) => list.iter().map(String::as_str).collect(),
                None => p.belts.iter().map(|b| b.name.as_str()).collect(),
            };
            for tb in belts {
                add(&p.name, tb);
            }
        }
    }
    out
}

/// Whether a build's ref is a pull or merge request's (GitHub, Gitea: `refs/pull/…`;
/// GitLab: `refs/merge-requests/…`).
pub fn is_pull_request(git_ref: &str) -> bool {
    git_ref.starts_with("refs/pull/") || git_ref.starts_with("refs/merge-requests/")
}

/// The scopes a build reads caches from, in order — its branch's, then the default
/// branch's — and the one it writes to (`None` for a pull request's build, which writes
/// none). A build without a branch uses the default branch's scope; the scope of a product
/// without a default branch is `""`.
pub fn cache_scopes(
    git_ref: Option<&str>,
    default_branch: Option<&str>,
) -> (Vec<String>, Option<String>) {
    let default = default_branch.unwrap_or("").to_string();
    let own = match git_ref {
        Some(r) if is_pull_request(r) => None,
        Some(r) => Some(r.strip_prefix("refs/heads/").unwrap_or(r).to_string()),
        None => Some(default.clone()),
    };
    let mut read: Vec<String> = own.iter().cloned().collect();
    if !read.contains(&default) {
        read.push(default);
    }
    (read, own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_reads_its_own_caches_then_the_default_branchs_and_a_pull_request_writes_none() {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cache_scopes(Some("refs/heads/topic"), Some("main")),
            (own(&["topic", "main"]), Some("topic".into()))
        );
        assert_eq!(
            cache_scopes(Some("refs/heads/main"), Some("main")),
            (own(&["main"]), Some("main".into()))
        );
        assert_eq!(
            cache_scopes(Some("refs/pull/7/head"), Some("main")),
            (own(&["main"]), None)
        );
        assert_eq!(cache_scopes(None, None), (own(&[""]), Some(String::new())));
    }
}
