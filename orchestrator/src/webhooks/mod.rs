//! Forge webhooks: `/hooks/github`, `/hooks/gitlab`, `/hooks/gitea`. A delivery is trusted
//! only if it carries the signature of a product registered for its repository; a replayed
//! delivery creates nothing; the config is read from `.conveyor.yml` at the pushed commit.

mod forges;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use conveyor_core::model::{Product, ScmEventType, Trigger};
use serde_json::{Value, json};

pub use forges::{Change, Forge};

use crate::error::{AppError, AppResult};
use crate::repos::same_repo;
use crate::state::{SharedState, now_ms};
use crate::store::{BuildTrigger, NewBuild, ProductRecord};

pub async fn github(
    s: State<SharedState>,
    h: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    handle(s, Forge::GitHub, h, body).await
}

pub async fn gitlab(
    s: State<SharedState>,
    h: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    handle(s, Forge::GitLab, h, body).await
}

pub async fn gitea(
    s: State<SharedState>,
    h: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    handle(s, Forge::Gitea, h, body).await
}

async fn handle(
    State(state): State<SharedState>,
    forge: Forge,
    h: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("the payload is not JSON: {e}")))?;
    let urls = forge.repo_urls(&payload);
    let products: Vec<ProductRecord> = state
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
                .is_some_and(|s| forge.verify(&h, &body, s))
        })
        .collect();
    if products.is_empty() {
        tracing::warn!(forge = forge.name(), repo = ?urls.first(), "webhook refused: no product of this repository has this signature");
        return Err(AppError::BadSignature);
    }
    if !state
        .store
        .record_delivery(forge.name(), &forge.delivery_id(&h, &body), now_ms())
        .await?
    {
        return Ok((
            StatusCode::OK,
            Json(json!({ "builds": [], "duplicate": true })),
        ));
    }
    let change = forge.change(&h, &payload);
    let (kinds, git_ref, sha, branch) = match &change {
        Change::Ping => return Ok((StatusCode::OK, Json(json!({ "builds": [], "pong": true })))),
        Change::Ignored(why) => {
            return Ok((
                StatusCode::OK,
                Json(json!({ "builds": [], "ignored": why })),
            ));
        }
        Change::Branch { name, sha } => (
            vec![ScmEventType::Push],
            format!("refs/heads/{name}"),
            sha,
            Some(name),
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
            Some(branch),
        ),
    };
    let mut builds = Vec::new();
    let mut errors = Vec::new();
    for p in &products {
        let mut kinds = kinds.clone();
        let on_default = matches!(change, Change::Branch { .. })
            && branch.is_some_and(|b| p.branch.as_deref() == Some(b.as_str()));
        if on_default {
            kinds.push(ScmEventType::Merge);
        }
        let belts = matching_belts(&p.model, &kinds, branch.map(String::as_str), &urls);
        // A push to the default branch moves the product's head even when nothing builds.
        if belts.is_empty() && !on_default {
            continue;
        }
        let (repos, record, at) = (state.repos.clone(), p.clone(), sha.clone());
        let config = tokio::task::spawn_blocking(move || config_at(&repos, &record, &at))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let new = |belt: &str, model: Option<Product>| NewBuild {
            product: p.name.clone(),
            belt: belt.to_string(),
            trigger: BuildTrigger::Webhook {
                forge: forge.name().into(),
                git_ref: git_ref.clone(),
                repository: forge.repository(&payload),
            },
            git_ref: Some(git_ref.clone()),
            sha: Some(sha.clone()),
            model,
        };
        match config {
            // A bad config at the commit is recorded, located, and nothing runs.
            Err(e) => {
                for belt in &belts {
                    let id = state
                        .store
                        .record_config_error(&new(belt, None), &e, now_ms())
                        .await?;
                    if let Some(statuses) = &state.statuses {
                        statuses.push(&id).await;
                    }
                    builds.push(json!({ "id": id, "product": p.name, "belt": belt, "status": "config_error", "sha": sha }));
                }
                errors.push(json!({ "product": p.name, "error": e }));
            }
            Ok((yaml, model)) => {
                if on_default {
                    follow_branch(&state, p, yaml, &model, sha).await?;
                }
                for belt in belts.iter().filter(|b| model.belt(b).is_some()) {
                    let b = crate::routes::start(&state, &new(belt, Some(model.clone()))).await?;
                    builds.push(json!({ "id": b.id, "product": b.product, "belt": b.belt, "number": b.number, "sha": sha }));
                }
            }
        }
    }
    let status = if builds.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({ "builds": builds, "errors": errors }))))
}

/// The registered product follows its default branch: its config and head become the
/// pushed commit's, which is what downstream builds of it check out.
async fn follow_branch(
    state: &SharedState,
    p: &ProductRecord,
    yaml: String,
    model: &Product,
    sha: &str,
) -> AppResult<()> {
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
    state.store.put_product(&record, now_ms()).await?;
    Ok(())
}

/// The product's config at the commit, as text and compiled; a bad config is reported,
/// not built.
fn config_at(
    repos: &crate::repos::Repos,
    p: &ProductRecord,
    sha: &str,
) -> Result<(String, Product), String> {
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
