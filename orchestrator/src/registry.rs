//! Registering products: a config is compiled and checked against the products already
//! registered; a bad config is refused with every located error and nothing is stored.

use conveyor_core::check::{self, Source};
use conveyor_core::compile;

use crate::error::AppError;
use crate::store::{ProductRecord, Store};

/// Compiles `yaml` into a record ready to store, with the warnings to show.
pub async fn compile_for_registration(
    store: &dyn Store,
    file: &str,
    yaml: &str,
) -> Result<(ProductRecord, Vec<String>), AppError> {
    let compiled = compile::compile(file, yaml);
    let Some(model) = compiled.product else {
        return Err(AppError::InvalidConfig(
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
        return Err(AppError::InvalidConfig(
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

/// `.conveyor.yml` at the head of a repository's branch (its default branch when `None`).
pub struct AtBranch {
    pub yaml: String,
    pub branch: String,
    pub sha: String,
}

pub async fn read_from_repo(
    repos: &crate::repos::Repos,
    url: &str,
    branch: Option<String>,
) -> Result<AtBranch, AppError> {
    let (repos, url) = (repos.clone(), url.to_string());
    tokio::task::spawn_blocking(move || {
        let mirror = repos.sync(&url)?;
        let branch = match branch {
            Some(b) => b,
            None => repos.default_branch(&mirror)?,
        };
        let sha = repos
            .commit(&mirror, &format!("refs/heads/{branch}"))
            .map_err(|_| format!("{url} has no branch `{branch}`"))?;
        let yaml = repos.config_at(&mirror, &sha)?;
        Ok::<_, String>(AtBranch { yaml, branch, sha })
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(AppError::BadRequest)
}
