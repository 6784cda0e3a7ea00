//! A forge's webhook delivery, handled: it is trusted only if it carries the signature of a
//! product registered for its repository; a replayed delivery creates nothing; each product
//! builds the belts whose `scm-event` triggers match, with the config read from
//! `.conveyor.yml` at the pushed commit (a bad one is recorded, located, and nothing runs);
//! a push to a product's branch moves the product's head. All of it is recorded in one
//! transaction with the delivery's id, or none of it is (a repository that cannot be read
//! for a moment), so a forge's redelivery builds what the first delivery could not.

mod belts;
mod plan;

use conveyor_core::context::{BuildContext, Event};
use conveyor_core::model::ScmEventType;
use conveyor_core::names;
use serde_json::Value;

pub use belts::matching_belts;
use plan::{Plan, plan_product};

use super::{Result, ServiceError, Services};
use crate::clock::now_ms;
use crate::forges::{Change, Forge, Headers};
use crate::git::{Diff, repo_key, same_repo};
use crate::store::{self, BuildTrigger, PlannedBuild, ProductRecord};

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
struct Wanted {
    kinds: Vec<ScmEventType>,
    git_ref: String,
    sha: String,
    branch: Option<String>,
    /// A push to a branch (a merge, when the branch is a product's own).
    pushed_branch: bool,
    trigger: BuildTrigger,
    /// The event, branch and tag conditions read (the paths come from `diff`).
    context: BuildContext,
    /// What to compare for the paths the change touched.
    diff: Diff,
}

/// Handles a delivery from `forge`. A repository that cannot be read now answers
/// [`ServiceError::Unavailable`] and records nothing.
pub async fn handle(s: &Services, forge: Forge, h: &Headers, body: &[u8]) -> Result<Delivery> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| ServiceError::Invalid(format!("the payload is not JSON: {e}")))?;
    let urls = forge.repo_urls(&payload);
    let products = signed_products(s, forge, h, body, &urls).await?;
    let change = forge.change(h, &payload);
    let wanted = match &change {
        Change::Ping => return Ok(Delivery::Ping),
        Change::Ignored(why) => return Ok(Delivery::Ignored(why.clone())),
        _ => wanted(forge, &change, &payload)?,
    };
    let mut plan = Plan::default();
    for p in &products {
        plan_product(s, p, &wanted, &urls, &mut plan).await?;
    }
    let delivery = store::Delivery {
        forge: forge.name().into(),
        id: forge.delivery_id(h, body),
        heads: plan.heads,
        builds: plan.builds.iter().map(|(_, b)| b.clone()).collect(),
    };
    let Some((ids, effects)) = s.store.accept_delivery(&delivery, now_ms()).await? else {
        return Ok(Delivery::Duplicate);
    };
    s.apply(effects).await;
    let mut built = Built {
        builds: Vec::new(),
        errors: plan.errors,
    };
    for ((product, planned), id) in plan.builds.into_iter().zip(ids) {
        built
            .builds
            .push(hook_build(s, product, planned, id).await?);
    }
    Ok(Delivery::Built(built))
}

/// What a change asks to build, its names checked the way git checks them.
fn wanted(forge: Forge, change: &Change, payload: &Value) -> Result<Wanted> {
    let (kind, git_ref, sha, branch, diff) = match change {
        Change::Branch { name, sha, before } => (
            ScmEventType::Push,
            format!("refs/heads/{name}"),
            sha,
            Some(name),
            Diff::Push {
                branch: name.clone(),
                before: before.clone(),
                after: sha.clone(),
            },
        ),
        Change::Tag { name, sha } => (
            ScmEventType::Tag,
            format!("refs/tags/{name}"),
            sha,
            None,
            Diff::Unknown,
        ),
        Change::PullRequest {
            number,
            branch,
            sha,
            base,
        } => (
            ScmEventType::PullRequest,
            format!("refs/pull/{number}/head"),
            sha,
            Some(branch),
            Diff::PullRequest {
                base: base.clone(),
                head: sha.clone(),
            },
        ),
        Change::Ping | Change::Ignored(_) => {
            return Err(ServiceError::Internal("no change to build".into()));
        }
    };
    check_names(sha, &git_ref, branch.map(String::as_str))?;
    let mut context = BuildContext::at_ref(event_of(kind), Some(&git_ref));
    context.branch = branch.cloned();
    context.actor = forge.actor(payload);
    Ok(Wanted {
        trigger: BuildTrigger::Webhook {
            forge: forge.name().into(),
            git_ref: git_ref.clone(),
            repository: forge.repository(payload),
        },
        kinds: vec![kind],
        git_ref,
        sha: sha.clone(),
        branch: branch.cloned(),
        pushed_branch: matches!(change, Change::Branch { .. }),
        context,
        diff,
    })
}

/// The event a change's builds count as.
fn event_of(kind: ScmEventType) -> Event {
    match kind {
        ScmEventType::PullRequest => Event::PullRequest,
        ScmEventType::Tag => Event::Tag,
        ScmEventType::Push | ScmEventType::Merge => Event::Push,
    }
}

/// A commit is 40 or 64 hex digits and refs follow git's rules, so nothing a delivery
/// names can reach git as an option (`--output=…`).
fn check_names(sha: &str, git_ref: &str, branch: Option<&str>) -> Result<()> {
    let shown = |v: &str| v.chars().take(80).collect::<String>();
    if !names::is_commit_sha(sha) {
        return Err(ServiceError::Invalid(format!(
            "the delivery names commit `{}`, which is not a commit id (40 or 64 hex digits)",
            shown(sha)
        )));
    }
    if !names::is_ref_name(git_ref) || branch.is_some_and(|b| !names::is_ref_name(b)) {
        return Err(ServiceError::Invalid(format!(
            "the delivery names ref `{}`, which git does not accept as a ref name",
            shown(git_ref)
        )));
    }
    Ok(())
}

/// The answer's line for a build the delivery recorded.
async fn hook_build(
    s: &Services,
    product: String,
    planned: PlannedBuild,
    id: String,
) -> Result<HookBuild> {
    let (belt, sha, number) = match planned {
        PlannedBuild::Run(new) => {
            let number = s.store.build(&id).await?.map(|b| b.number);
            (new.belt, new.sha, number)
        }
        PlannedBuild::ConfigError { build, .. } => (build.belt, build.sha, None),
    };
    Ok(HookBuild {
        id,
        product,
        belt,
        number,
        sha: sha.unwrap_or_default(),
    })
}

/// The products registered for the repository whose secret signed the delivery.
async fn signed_products(
    s: &Services,
    forge: Forge,
    h: &Headers,
    body: &[u8],
    urls: &[String],
) -> Result<Vec<ProductRecord>> {
    let mut keys: Vec<String> = urls.iter().map(|u| repo_key(u)).collect();
    keys.retain(|k| !k.is_empty());
    keys.sort_unstable();
    keys.dedup();
    let products: Vec<ProductRecord> = s
        .store
        .products_of_repos(&keys)
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
