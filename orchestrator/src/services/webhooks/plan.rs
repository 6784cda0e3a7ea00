//! What a delivery will record for each product: the builds of its matching belts at the
//! commit's config, config-error builds when that config is bad, and its new head when the
//! push is to its branch. Reading the config may find the repository unreachable: then the
//! whole delivery is refused, to be redelivered.

use conveyor_core::model::{Product, ScmEventType};

use super::{ConfigError, Wanted, matching_belts};
use crate::git::{GitError, Repos};
use crate::services::{Result, ServiceError, Services};
use crate::store::{NewBuild, PlannedBuild, ProductRecord};

/// What a delivery will record: products' new heads, and each build with its product.
#[derive(Default)]
pub(super) struct Plan {
    pub heads: Vec<ProductRecord>,
    pub builds: Vec<(String, PlannedBuild)>,
    pub errors: Vec<ConfigError>,
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
    let (repos, record, at) = (s.repos.clone(), p.clone(), w.sha.clone());
    let config = tokio::task::spawn_blocking(move || config_at(&repos, &record, &at))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
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
        Ok((yaml, model)) => {
            if on_default {
                plan.heads.extend(new_head(p, yaml, &model, &w.sha));
            }
            for belt in belts.iter().filter(|b| model.belt(b).is_some()) {
                let new = new_build(p, w, belt, Some(model.clone()));
                plan.builds.push((p.name.clone(), PlannedBuild::Run(new)));
            }
            Ok(())
        }
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

/// The product's config at the commit, as text and compiled.
fn config_at(
    repos: &Repos,
    p: &ProductRecord,
    sha: &str,
) -> std::result::Result<(String, Product), Unreadable> {
    let url = p.repo.as_deref().unwrap_or_default();
    let text = repos
        .sync(url)
        .and_then(|mirror| repos.config_at(&mirror, sha))
        .map_err(|e| match e {
            GitError::Unreachable(why) => Unreadable::Later(why),
            GitError::Refused(why) => Unreadable::Bad(why),
        })?;
    let compiled = conveyor_core::compile::compile(".conveyor.yml", &text);
    compiled.product.map(|m| (text, m)).ok_or_else(|| {
        let lines: Vec<String> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        Unreadable::Bad(format!(
            "the config at {sha} has errors:\n{}",
            lines.join("\n")
        ))
    })
}
