//! Registering products: a config is compiled and checked against the products already
//! registered; a bad config is refused with every located error and nothing is stored. A
//! product registered from its repository takes `.conveyor.yml` at its branch's head.

use conveyor_core::check::{self, Source};
use conveyor_core::compile;
use conveyor_core::model::Product;

use super::{Result, ServiceError, Services, input};
use crate::clock::now_ms;
use crate::git::{DEFAULT_CONFIG, Repos};
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
    /// The repository's other products (`.conveyor/*.yml`), registered with it.
    pub others: Vec<ProductRecord>,
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

/// Registers (or replaces) a product; from a repository, every product it holds
/// (`.conveyor.yml` and `.conveyor/*.yml`), all or none.
pub async fn register(s: &Services, config: Config) -> Result<Registered> {
    check(&config)?;
    let registered = match config {
        Config::Yaml(yaml) => {
            let (mut record, warnings) =
                compile_for_registration(s.store.as_ref(), "request", &yaml).await?;
            name_sources(&mut record.model);
            Registered {
                record,
                warnings,
                sha: None,
                others: Vec::new(),
            }
        }
        Config::Repo {
            url,
            branch,
            webhook_secret,
        } => {
            let at = read_from_repo(&s.repos, &url, branch).await?;
            let (mut records, warnings) = compile_all(s.store.as_ref(), &at.configs).await?;
            for (r, (path, _)) in records.iter_mut().zip(&at.configs) {
                (r.repo, r.branch, r.webhook_secret, r.head_sha) = (
                    Some(url.clone()),
                    Some(at.branch.clone()),
                    webhook_secret.clone(),
                    Some(at.sha.clone()),
                );
                r.config_path = (path != DEFAULT_CONFIG).then(|| path.clone());
            }
            let record = records.remove(0);
            Registered {
                record,
                warnings,
                sha: Some(at.sha),
                others: records,
            }
        }
    };
    for r in std::iter::once(&registered.record).chain(&registered.others) {
        refuse_managed(s, &r.name).await?;
    }
    for r in std::iter::once(&registered.record).chain(&registered.others) {
        s.store.put_product(r, now_ms()).await?;
    }
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

/// A product registered as YAML through the API has no file: its jobs' log names their lines
/// after what it was registered as, `NAME (registered)`.
fn name_sources(model: &mut Product) {
    let file = format!("{} (registered)", model.name);
    let jobs = model.belts.iter_mut().flat_map(|b| b.jobs.iter_mut());
    for source in jobs.filter_map(|j| j.script_source.as_mut()) {
        source.file.clone_from(&file);
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
        source_path: source,
        ..ProductRecord::of(model, yaml)
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
    let (mut records, warnings) =
        compile_all(store, &[(file.to_string(), yaml.to_string())]).await?;
    Ok((records.remove(0), warnings))
}

/// Compiles several files (`(name, yaml)`) registered together into records ready to
/// store, in order, checked beside each other and the products already registered; any
/// error in any of them refuses them all.
async fn compile_all(
    store: &dyn Store,
    files: &[(String, String)],
) -> Result<(Vec<ProductRecord>, Vec<String>)> {
    let mut models = Vec::new();
    let mut messages = Vec::new();
    for (file, yaml) in files {
        let compiled = compile::compile(file, yaml);
        messages.extend(compiled.diagnostics);
        models.extend(compiled.product.map(|m| (file.as_str(), m)));
    }
    if models.len() != files.len() {
        return Err(invalid(messages));
    }
    for (i, (file, m)) in models.iter().enumerate() {
        if let Some((first, _)) = models[..i].iter().find(|(_, o)| o.name == m.name) {
            return Err(ServiceError::InvalidConfig(vec![format!(
                "{file}: error: product `{}` is also defined in {first}: each file defines its own product",
                m.name
            )]));
        }
    }
    let registered: Vec<_> = store
        .products()
        .await?
        .into_iter()
        .map(|p| p.model)
        .collect();
    let others: Vec<_> = registered
        .iter()
        .filter(|p| models.iter().all(|(_, m)| m.name != p.name))
        .collect();
    let sources: Vec<Source> = models
        .iter()
        .map(|(file, product)| Source { file, product })
        .collect();
    messages.extend(check::check(&sources, &others));
    conveyor_core::diag::sort(&mut messages);
    if messages.iter().any(|d| d.is_error()) {
        return Err(invalid(messages));
    }
    let records = models
        .into_iter()
        .zip(files)
        .map(|((_, model), (_, yaml))| ProductRecord::of(model, yaml.clone()))
        .collect();
    Ok((records, messages.iter().map(ToString::to_string).collect()))
}

fn invalid(messages: Vec<conveyor_core::diag::Diagnostic>) -> ServiceError {
    ServiceError::InvalidConfig(messages.iter().map(ToString::to_string).collect())
}

/// A repository's product configs at the head of a branch: `(path, yaml)`, `.conveyor.yml`
/// first.
struct AtBranch {
    configs: Vec<(String, String)>,
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
        let paths = repos.configs_at(&mirror, &sha).map_err(|e| e.to_string())?;
        if paths.is_empty() {
            return Err(format!(
                "there is no {DEFAULT_CONFIG} and no .conveyor/*.yml at the head of {branch} ({sha})"
            ));
        }
        let mut configs = Vec::new();
        for path in paths {
            let yaml = repos.config_at(&mirror, &sha, &path).map_err(|e| e.to_string())?;
            configs.push((path, yaml));
        }
        Ok::<_, String>(AtBranch {
            configs,
            branch,
            sha,
        })
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
    .map_err(ServiceError::Invalid)
}
