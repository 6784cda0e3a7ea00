//! Registering products: a config is compiled and checked against the products already
//! registered; a bad config is refused with every located error and nothing is stored. A
//! product registered from its repository takes `.conveyor.yml` at its branch's head.

use conveyor_core::check::{self, Source};
use conveyor_core::compile;
use conveyor_core::model::Product;

use super::{Result, ServiceError, Services, input};
use crate::clock::now_ms;
use crate::git::Repos;
use crate::store::{ProductRecord, Store};

/// Where a product's config comes from.
pub enum Config {
    /// The text of a `.conveyor.yml`.
    Yaml(String),
    /// A repository's `.conveyor.yml`, at the head of `branch` (its default branch when
    /// `None`); the product follows that branch and trusts webhooks signed with the secret.
    Repo {
        url: String,
        branch: Option<String>,
        webhook_secret: Option<String>,
    },
}

/// A product just registered.
pub struct Registered {
    pub record: ProductRecord,
    /// Warnings about the config, located.
    pub warnings: Vec<String>,
    /// The commit the config was read at, for a product from a repository.
    pub sha: Option<String>,
}

/// The longest webhook secret a product may have.
pub const MAX_SECRET_LEN: usize = 1024;

/// Refuses a config with a NUL (the store cannot keep it), a repository URL, branch or secret
/// no forge would send.
fn check(config: &Config) -> Result<()> {
    match config {
        Config::Yaml(yaml) if yaml.contains('\0') => Err(ServiceError::InvalidField {
            field: "yaml".into(),
            message: "`yaml` contains a NUL byte, which YAML does not allow; remove it".into(),
        }),
        Config::Yaml(_) => Ok(()),
        Config::Repo {
            url,
            branch,
            webhook_secret,
        } => {
            input::text("repo", url, compile::MAX_REPO_LEN)?;
            if let Some(b) = branch {
                input::git_ref("branch", b)?;
            }
            if let Some(secret) = webhook_secret {
                input::text("webhook_secret", secret, MAX_SECRET_LEN)?;
            }
            Ok(())
        }
    }
}

/// Registers (or replaces) a product.
pub async fn register(s: &Services, config: Config) -> Result<Registered> {
    check(&config)?;
    let registered = match config {
        Config::Yaml(yaml) => {
            let (record, warnings) =
                compile_for_registration(s.store.as_ref(), "request", &yaml).await?;
            Registered {
                record,
                warnings,
                sha: None,
            }
        }
        Config::Repo {
            url,
            branch,
            webhook_secret,
        } => {
            let at = read_from_repo(&s.repos, &url, branch).await?;
            let (mut r, warnings) =
                compile_for_registration(s.store.as_ref(), ".conveyor.yml", &at.yaml).await?;
            (r.repo, r.branch, r.webhook_secret, r.head_sha) = (
                Some(url),
                Some(at.branch),
                webhook_secret,
                Some(at.sha.clone()),
            );
            Registered {
                record: r,
                warnings,
                sha: Some(at.sha),
            }
        }
    };
    refuse_managed(s, &registered.record.name).await?;
    s.store.put_product(&registered.record, now_ms()).await?;
    Ok(registered)
}

/// A config may not take the name of a product a pipeline or a resource type manages: it
/// would replace that product's config.
async fn refuse_managed(s: &Services, name: &str) -> Result<()> {
    match s.store.product_owner(name).await? {
        Some(Some(owner)) => Err(ServiceError::Conflict(format!(
            "the name `{name}` belongs to a {owner}'s product: choose another product name"
        ))),
        _ => Ok(()),
    }
}

/// Registers a product compiled from a local file (`conveyor up`, `conveyor run`, the
/// benchmarks), already checked beside the files given with it; `source` is the local
/// directory its jobs check out, if any.
pub async fn register_local(
    s: &Services,
    model: Product,
    yaml: String,
    source: Option<String>,
) -> Result<()> {
    let record = ProductRecord {
        name: model.name.clone(),
        yaml,
        repo: model.repo.clone(),
        model,
        branch: None,
        webhook_secret: None,
        source_path: source,
        head_sha: None,
    };
    s.store.put_product(&record, now_ms()).await?;
    Ok(())
}

/// Compiles `yaml` into a record ready to store, with the warnings to show.
pub async fn compile_for_registration(
    store: &dyn Store,
    file: &str,
    yaml: &str,
) -> Result<(ProductRecord, Vec<String>)> {
    let compiled = compile::compile(file, yaml);
    let Some(model) = compiled.product else {
        return Err(ServiceError::InvalidConfig(
            compiled
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect(),
        ));
    };
    let registered: Vec<_> = store
        .products()
        .await?
        .into_iter()
        .map(|p| p.model)
        .collect();
    let others: Vec<_> = registered.iter().filter(|p| p.name != model.name).collect();
    let across = check::check(
        &[Source {
            file,
            product: &model,
        }],
        &others,
    );
    let mut messages: Vec<_> = compiled.diagnostics.into_iter().chain(across).collect();
    conveyor_core::diag::sort(&mut messages);
    if messages.iter().any(|d| d.is_error()) {
        return Err(ServiceError::InvalidConfig(
            messages.iter().map(ToString::to_string).collect(),
        ));
    }
    let record = ProductRecord {
        name: model.name.clone(),
        yaml: yaml.to_string(),
        repo: model.repo.clone(),
        model,
        branch: None,
        webhook_secret: None,
        source_path: None,
        head_sha: None,
    };
    Ok((record, messages.iter().map(ToString::to_string).collect()))
}

/// `.conveyor.yml` at the head of a repository's branch.
struct AtBranch {
    yaml: String,
    branch: String,
    sha: String,
}

async fn read_from_repo(repos: &Repos, url: &str, branch: Option<String>) -> Result<AtBranch> {
    let (repos, url) = (repos.clone(), url.to_string());
    tokio::task::spawn_blocking(move || {
        let mirror = repos.sync(&url).map_err(|e| e.to_string())?;
        let branch = match branch {
            Some(b) => b,
            None => repos.default_branch(&mirror).map_err(|e| e.to_string())?,
        };
        let sha = repos
            .commit(&mirror, &format!("refs/heads/{branch}"))
            .map_err(|_| format!("{url} has no branch `{branch}`"))?;
        let yaml = repos.config_at(&mirror, &sha).map_err(|e| e.to_string())?;
        Ok::<_, String>(AtBranch { yaml, branch, sha })
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
    .map_err(ServiceError::Invalid)
}
