//! A forge's webhook delivery, handled: it is trusted only if it carries the signature of a
//! product registered for its repository; a replayed delivery creates nothing; each product
//! builds the belts whose `scm-event` triggers match, with the config read from
//! `.conveyor.yml` at the pushed commit (a bad one is recorded, located, and nothing runs);
//! a push to a product's branch moves the product's head.

use conveyor_core::model::{Product, ScmEventType, Trigger};
use serde_json::Value;

use super::{Result, ServiceError, Services};
use crate::clock::now_ms;
use crate::forges::{Change, Forge, Headers};
use crate::git::{Repos, same_repo};
use crate::store::{BuildTrigger, NewBuild, ProductRecord};

/// What a delivery did.
pub enum Delivery {
    /// The delivery was seen before: nothing was done again.
    Duplicate,
    /// The forge testing the hook.
    Ping,
    /// A change conveyor does not build, and what it was.
    Ignored(String),
    Built(Built),
}

/// The builds a change started or recorded, and the products whose config had errors.
#[derive(Default)]
pub struct Built {
    pub builds: Vec<HookBuild>,
    pub errors: Vec<ConfigError>,
}

/// A build a delivery started, or recorded as a config error (`number` is `None`).
pub struct HookBuild {
    pub id: String,
    pub product: String,
    pub belt: String,
    pub number: Option<u64>,
    pub sha: String,
}

/// A product's config at the commit did not compile.
pub struct ConfigError {
    pub product: String,
    pub error: String,
}

/// What a change asks to build: the event kinds it counts as, its ref, commit and branch.
struct Wanted<'a> {
    kinds: Vec<ScmEventType>,
    git_ref: String,
    sha: &'a str,
    branch: Option<&'a str>,
    /// A push to a branch (a merge, when the branch is a product's own).
    pushed_branch: bool,
    trigger: BuildTrigger,
}

/// Handles a delivery from `forge`.
pub async fn handle(s: &Services, forge: Forge, h: &Headers, body: &[u8]) -> Result<Delivery> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| ServiceError::Invalid(format!("the payload is not JSON: {e}")))?;
    let urls = forge.repo_urls(&payload);
    let products = signed_products(s, forge, h, body, &urls).await?;
    if !s
        .store
        .record_delivery(forge.name(), &forge.delivery_id(h, body), now_ms())
        .await?
    {
        return Ok(Delivery::Duplicate);
    }
    let change = forge.change(h, &payload);
    let (kinds, git_ref, sha, branch) = match &change {
        Change::Ping => return Ok(Delivery::Ping),
        Change::Ignored(why) => return Ok(Delivery::Ignored(why.clone())),
        Change::Branch { name, sha } => (
            vec![ScmEventType::Push],
            format!("refs/heads/{name}"),
            sha,
            Some(name.as_str()),
        ),
        Change::Tag { name, sha } => (
            vec![ScmEventType::Tag],
            format!("refs/tags/{name}"),
            sha,
            None,
        ),
        Change::PullRequest {
            number,
            branch,
            sha,
        } => (
            vec![ScmEventType::PullRequest],
            format!("refs/pull/{number}/head"),
            sha,
            Some(branch.as_str()),
        ),
    };
    let wanted = Wanted {
        trigger: BuildTrigger::Webhook {
            forge: forge.name().into(),
            git_ref: git_ref.clone(),
            repository: forge.repository(&payload),
        },
        kinds,
        git_ref,
        sha,
        branch,
        pushed_branch: matches!(change, Change::Branch { .. }),
    };
    let mut built = Built::default();
    for p in &products {
        build_product(s, p, &wanted, &urls, &mut built).await?;
    }
    Ok(Delivery::Built(built))
}

/// The products registered for the repository whose secret signed the delivery.
async fn signed_products(
    s: &Services,
    forge: Forge,
    h: &Headers,
    body: &[u8],
    urls: &[String],
) -> Result<Vec<ProductRecord>> {
    let products: Vec<ProductRecord> = s
        .store
        .products()
        .await?
        .into_iter()
        .filter(|p| {
            p.repo
                .as_deref()
                .is_some_and(|r| urls.iter().any(|u| same_repo(r, u)))
        })
        .filter(|p| {
            p.webhook_secret
                .as_deref()
                .is_some_and(|secret| forge.verify(h, body, secret))
        })
        .collect();
    if products.is_empty() {
        tracing::warn!(forge = forge.name(), repo = ?urls.first(), "webhook refused: no product of this repository has this signature");
        return Err(ServiceError::BadSignature);
    }
    Ok(products)
}

/// Builds what the change asks of one product.
async fn build_product(
    s: &Services,
    p: &ProductRecord,
    w: &Wanted<'_>,
    urls: &[String],
    out: &mut Built,
) -> Result<()> {
    let mut kinds = w.kinds.clone();
    let on_default = w.pushed_branch && w.branch.is_some_and(|b| p.branch.as_deref() == Some(b));
    if on_default {
        kinds.push(ScmEventType::Merge);
    }
    let belts = matching_belts(&p.model, &kinds, w.branch, urls);
    // A push to the default branch moves the product's head even when nothing builds.
    if belts.is_empty() && !on_default {
        return Ok(());
    }
    let (repos, record, at) = (s.repos.clone(), p.clone(), w.sha.to_string());
    let config = tokio::task::spawn_blocking(move || config_at(&repos, &record, &at))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    match config {
        // A bad config at the commit is recorded, located, and nothing runs.
        Err(error) => record_config_error(s, p, w, &belts, error, out).await,
        Ok((yaml, model)) => {
            if on_default {
                follow_branch(s, p, yaml, &model, w.sha).await?;
            }
            for belt in belts.iter().filter(|b| model.belt(b).is_some()) {
                let new = new_build(p, w, belt, Some(model.clone()));
                let b = super::builds::start(s, &new).await?;
                out.builds.push(HookBuild {
                    id: b.id,
                    product: b.product,
                    belt: b.belt,
                    number: Some(b.number),
                    sha: w.sha.to_string(),
                });
            }
            Ok(())
        }
    }
}

fn new_build(p: &ProductRecord, w: &Wanted<'_>, belt: &str, model: Option<Product>) -> NewBuild {
    NewBuild {
        product: p.name.clone(),
        belt: belt.to_string(),
        trigger: w.trigger.clone(),
        git_ref: Some(w.git_ref.clone()),
        sha: Some(w.sha.to_string()),
        model,
    }
}

/// Records a config error for each belt the change would have built; its commit status is
/// queued at once.
async fn record_config_error(
    s: &Services,
    p: &ProductRecord,
    w: &Wanted<'_>,
    belts: &[String],
    error: String,
    out: &mut Built,
) -> Result<()> {
    for belt in belts {
        let id = s
            .store
            .record_config_error(&new_build(p, w, belt, None), &error, now_ms())
            .await?;
        if let Some(statuses) = &s.statuses {
            statuses.push(&id).await;
        }
        out.builds.push(HookBuild {
            id,
            product: p.name.clone(),
            belt: belt.clone(),
            number: None,
            sha: w.sha.to_string(),
        });
    }
    out.errors.push(ConfigError {
        product: p.name.clone(),
        error,
    });
    Ok(())
}

/// The registered product follows its default branch: its config and head become the
/// pushed commit's, which is what downstream builds of it check out.
async fn follow_branch(
    s: &Services,
    p: &ProductRecord,
    yaml: String,
    model: &Product,
    sha: &str,
) -> Result<()> {
    if model.name != p.name {
        tracing::warn!(product = %p.name, "not following {sha}: its config names product `{}`", model.name);
        return Ok(());
    }
    let record = ProductRecord {
        yaml,
        model: model.clone(),
        head_sha: Some(sha.to_string()),
        ..p.clone()
    };
    s.store.put_product(&record, now_ms()).await?;
    Ok(())
}

/// The product's config at the commit, as text and compiled; a bad config is reported,
/// not built.
fn config_at(
    repos: &Repos,
    p: &ProductRecord,
    sha: &str,
) -> std::result::Result<(String, Product), String> {
    let url = p.repo.as_deref().unwrap_or_default();
    let mirror = repos.sync(url)?;
    let text = repos.config_at(&mirror, sha)?;
    let compiled = conveyor_core::compile::compile(".conveyor.yml", &text);
    compiled.product.map(|m| (text, m)).ok_or_else(|| {
        let lines: Vec<String> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        format!("the config at {sha} has errors:\n{}", lines.join("\n"))
    })
}

/// The belts of `scm-event` triggers that match the event types, branch and repository.
pub fn matching_belts(
    model: &Product,
    kinds: &[ScmEventType],
    branch: Option<&str>,
    urls: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &model.triggers {
        let Trigger::ScmEvent(t) = t else { continue };
        let repo_ok = t
            .repo
            .as_deref()
            .is_none_or(|r| urls.iter().any(|u| same_repo(r, u)));
        let branch_ok = t.branches.is_empty()
            || branch.is_some_and(|b| t.branches.iter().any(|pat| glob(pat, b)));
        if !kinds.contains(&t.event) || !repo_ok || !branch_ok {
            continue;
        }
        let belts = t
            .belts
            .clone()
            .unwrap_or_else(|| model.belts.iter().map(|b| b.name.clone()).collect());
        for b in belts {
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    out
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| {
                    text.is_char_boundary(head.len() + i) && glob(rest, &text[head.len() + i..])
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn branch_patterns_match_with_stars() {
        assert!(glob("main", "main"));
        assert!(!glob("main", "mainline"));
        assert!(glob("release/*", "release/1.2"));
        assert!(!glob("release/*", "hotfix/1"));
        assert!(glob("*", "anything"));
        assert!(glob("feat-*-x", "feat-abc-x"));
    }
}
