//! The product page's secrets: names and when each was set (values are never shown), a
//! form to set one, one to remove each, and whether pull-request builds get them. Only a
//! signed-in viewer sees or changes them; each form carries the session's CSRF token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Redirect;
use serde::Deserialize;

use super::PageResult;
use super::session::{NoFields, Posted};
use crate::services::Services;
use crate::services::secrets::{self, Scope};

/// A secret as the product page lists it.
pub struct SecretRow {
    pub name: String,
    pub updated: String,
}

#[derive(Deserialize)]
pub struct SetForm {
    name: String,
    value: String,
}

#[derive(Deserialize)]
pub struct PullRequestForm {
    /// Present (`on`) when the box is ticked.
    allowed: Option<String>,
}

pub async fn set(
    State(services): State<Arc<Services>>,
    Path(product): Path<String>,
    Posted(form): Posted<SetForm>,
) -> PageResult<Redirect> {
    let scope = Scope::Product(product.clone());
    secrets::set(&services, &scope, form.name.trim(), &form.value).await?;
    Ok(Redirect::to(&format!("/products/{product}#secrets-h")))
}

pub async fn remove(
    State(services): State<Arc<Services>>,
    Path((product, name)): Path<(String, String)>,
    Posted(_): Posted<NoFields>,
) -> PageResult<Redirect> {
    secrets::remove(&services, &Scope::Product(product.clone()), &name).await?;
    Ok(Redirect::to(&format!("/products/{product}#secrets-h")))
}

pub async fn pull_requests(
    State(services): State<Arc<Services>>,
    Path(product): Path<String>,
    Posted(form): Posted<PullRequestForm>,
) -> PageResult<Redirect> {
    let allowed = form.allowed.is_some();
    secrets::allow_pull_requests(&services, &product, allowed).await?;
    Ok(Redirect::to(&format!("/products/{product}#secrets-h")))
}

/// The product's secrets for a signed-in viewer (nothing otherwise), and the PR setting.
pub async fn rows(
    services: &Services,
    product: &str,
    signed_in: bool,
) -> PageResult<(Vec<SecretRow>, bool)> {
    if !signed_in {
        return Ok((Vec::new(), false));
    }
    let scope = Scope::Product(product.to_string());
    let list = secrets::list(services, &scope).await?;
    let rows = list
        .into_iter()
        .map(|s| SecretRow {
            name: s.name,
            updated: super::view::when(s.updated_at),
        })
        .collect();
    let pr = services.store.pr_secrets(product).await?.unwrap_or(false);
    Ok((rows, pr))
}
