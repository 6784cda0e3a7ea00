//! What a delivery will record for each product: the builds of its matching belts at the
//! commit's config, config-error builds when that config is bad, and its new head when the
//! push is to its branch. Reading the config may find the repository unreachable: then the
//! whole delivery is refused, to be redelivered.

use conveyor_core::context::Commit;
use conveyor_core::model::{Product, ScmEventType};
use conveyor_core::rules::belt_condition_holds;

use super::{ConfigError, Wanted, matching_belts};
use crate::git::{DEFAULT_CONFIG, Diff, GitError, Repos};
use crate::services::{Result, ServiceError, Services};
use crate::store::{NewBuild, PlannedBuild, ProductRecord};

/// What a delivery will record: products' new heads, and each build with its product.
#[derive(Default)]
pub(super) struct Plan {
    pub heads: Vec<ProductRecord>,
    pub builds: Vec<(String, PlannedBuild)>,
    pub errors: Vec<ConfigError>,
    /// Repositories fetched for this delivery: the products of one repository (each a file
    /// of its `.conveyor/`) read their configs from one fetch.
    fetched: std::collections::HashSet<String>,
}

/// Plans what the change asks of one product.
pub(super) async fn plan_product(
    s: &Services,
    p: &ProductRecord,
    w: &Wanted,
    urls: &[String],
    plan: &mut Plan,
) -> Result<()> {
    let mut kinds = w.kinds.clone();
    let on_default = w.pushed_branch && w.branch.is_some() && p.branch == w.branch;
    if on_default {
        kinds.push(ScmEventType::Merge);
    }
    let belts = matching_belts(&p.model, &kinds, w.branch.as_deref(), urls);
    // A push to the default branch moves the product's head even when nothing builds.
    if belts.is_empty() && !on_default {
        return Ok(());
    }
    let url = p.repo.clone().unwrap_or_default();
    let fetched = plan.fetched.contains(&url);
    let (repos, record, at, diff) = (s.repos.clone(), p.clone(), w.sha.clone(), w.diff.clone());
    let read = move || config_at(&repos, &record, &at, &diff, fetched);
    let config = tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    if !matches!(config, Err(Unreadable::Later(_))) {
        plan.fetched.insert(url);
    }
    match config {
        Err(Unreadable::Later(why)) => Err(ServiceError::Unavailable(format!(
            "{why}; nothing was recorded, so the forge's redelivery will build"
        ))),
        // A bad config at the commit is recorded, located, and nothing runs.
        Err(Unreadable::Bad(error)) => {
            for belt in &belts {
                let build = new_build(p, w, belt, None);
                let error = error.clone();
                let planned = PlannedBuild::ConfigError { build, error };
                plan.builds.push((p.name.clone(), planned));
            }
            plan.errors.push(ConfigError {
                product: p.name.clone(),
                error,
            });
            Ok(())
        }
        Ok(at) => {
            plan_builds(p, w, at, on_default, &belts, plan);
            Ok(())
        }
    }
}

/// The builds of the belts whose `if` holds at the commit, and the product's new head when
/// the push is to its branch.
fn plan_builds(
    p: &ProductRecord,
    w: &Wanted,
    at: AtCommit,
    on_default: bool,
    belts: &[String],
    plan: &mut Plan,
) {
    if on_default {
        plan.heads.extend(new_head(p, at.yaml, &at.model, &w.sha));
    }
    let mut context = w.context.clone();
    context.changed = at.changed;
    context.commit = at.commit;
    // A belt whose `if` is false for this change is not built at all.
    let built = belts.iter().filter(|b| {
        at.model
            .belt(b)
            .is_some_and(|belt| belt_condition_holds(belt, &context))
    });
    for belt in built {
        let mut new = new_build(p, w, belt, Some(at.model.clone()));
        new.context = Some(context.clone());
        plan.builds.push((p.name.clone(), PlannedBuild::Run(new)));
    }
}

fn new_build(p: &ProductRecord, w: &Wanted, belt: &str, model: Option<Product>) -> NewBuild {
    NewBuild {
        resource: None,
        product: p.name.clone(),
        belt: belt.to_string(),
        trigger: w.trigger.clone(),
        git_ref: Some(w.git_ref.clone()),
        sha: Some(w.sha.clone()),
        model,
        context: Some(w.context.clone()),
    }
}

/// The registered product follows its default branch: its config and head become the
/// pushed commit's, which is what downstream builds of it check out.
fn new_head(p: &ProductRecord, yaml: String, model: &Product, sha: &str) -> Option<ProductRecord> {
    if model.name != p.name {
        tracing::warn!(product = %p.name, "not following {sha}: its config names product `{}`", model.name);
        return None;
    }
    Some(ProductRecord {
        yaml,
        model: model.clone(),
        head_sha: Some(sha.to_string()),
        ..p.clone()
    })
}

/// Why a product's config at a commit could not be used.
enum Unreadable {
    /// The repository cannot be read now; a redelivery may succeed.
    Later(String),
    /// The config is missing or has errors at that commit: recorded as a config error.
    Bad(String),
}

/// What a product's repository says at the change's commit.
struct AtCommit {
    /// The config, as text and compiled.
    yaml: String,
    model: Product,
    /// The paths the change touched (`None`: unknown).
    changed: Option<Vec<String>>,
    /// The commit's author and message.
    commit: Option<Commit>,
}

/// The product's config at the commit, the paths the change touched and the commit itself,
/// from the repository's mirror: fetched first, unless this delivery `fetched` it already.
fn config_at(
    repos: &Repos,
    p: &ProductRecord,
    sha: &str,
    diff: &Diff,
    fetched: bool,
) -> std::result::Result<AtCommit, Unreadable> {
    let url = p.repo.as_deref().unwrap_or_default();
    let path = p.config_path.as_deref().unwrap_or(DEFAULT_CONFIG);
    let (mut changed, mut commit) = (None, None);
    let mirror = match fetched.then(|| repos.mirror(url)).flatten() {
        Some(mirror) => Ok(mirror),
        None => repos.sync(url),
    };
    let text = mirror
        .and_then(|mirror| {
            changed = repos.changed_paths(&mirror, diff);
            let (text, described) = repos.read_at(&mirror, sha, path)?;
            commit = described;
            Ok(text)
        })
        .map_err(|e| match e {
            GitError::Unreachable(why) => Unreadable::Later(why),
            GitError::Refused(why) => Unreadable::Bad(why),
        })?;
    let compiled = conveyor_core::compile::compile(path, &text);
    let Some(model) = compiled.product else {
        let lines: Vec<String> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        return Err(Unreadable::Bad(format!(
            "the config at {sha} has errors:\n{}",
            lines.join("\n")
        )));
    };
    Ok(AtCommit {
        yaml: text,
        model,
        changed,
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::{Unreadable, config_at};
    use crate::git::{Diff, Repos};
    use crate::store::ProductRecord;

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.test"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn a_repository_fetched_for_the_delivery_is_read_without_fetching_again() {
        let root = std::env::temp_dir().join(format!("conveyor-plan-{}", uuid::Uuid::now_v7()));
        let work = root.join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let yaml = "product: p\nbelts:\n  - name: ci\n    jobs:\n      - name: a\n        commands: 'true'\n";
        std::fs::write(work.join(".conveyor.yml"), yaml).unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "one"]);
        let sha = git(&work, &["rev-parse", "HEAD"]);
        let url = format!("file://{}", work.display());
        let model = conveyor_core::compile::compile("c", yaml).product.unwrap();
        let record = ProductRecord {
            repo: Some(url),
            branch: Some("main".into()),
            ..ProductRecord::of(model, yaml.into())
        };
        let repos = Repos::new(root.join("mirrors"));
        let read = |fetched| config_at(&repos, &record, &sha, &Diff::Unknown, fetched);
        assert!(read(false).is_ok(), "the first product fetches");
        // The repository goes away: only a read that does not fetch can still succeed.
        std::fs::rename(&work, root.join("gone")).unwrap();
        assert!(matches!(read(false), Err(Unreadable::Later(_))));
        let again = read(true)
            .ok()
            .expect("read from the mirror fetched before");
        assert_eq!(again.yaml, yaml);
        let _ = std::fs::remove_dir_all(&root);
    }
}
