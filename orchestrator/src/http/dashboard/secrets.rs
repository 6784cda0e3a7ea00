//! The product page's secrets: names and when each was set (values are never shown), a
//! form to set one, one to remove each, and whether pull-request builds get them. Only a
//! signed-in viewer sees or changes them; each form carries the session's CSRF token.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use serde::Deserialize;

use super::PageResult;
use super::session::{Anyone, CsrfForm, check};
use crate::services::Services;
use crate::services::secrets::{self, Scope};

/// A secret as the product page lists it.
pub struct SecretRow {
    pub name: String,
    pub updated: String,
}

#[derive(Deserialize)]
pub struct SetForm {
    #[serde(default)]
    csrf: String,
    name: String,
    value: String,
}

#[derive(Deserialize)]
pub struct PullRequestForm {
    #[serde(default)]
    csrf: String,
    /// Present (`on`) when the box is ticked.
    allowed: Option<String>,
}

pub async fn set(
    State(services): State<Arc<Services>>,
    Anyone(viewer): Anyone,
    Path(product): Path<String>,
    Form(form): Form<SetForm>,
) -> PageResult<Redirect> {
    check(&viewer, &CsrfForm { csrf: form.csrf })?;
    let scope = Scope::Product(product.clone());
    secrets::set(&services, &scope, form.name.trim(), &form.value).await?;
    Ok(Redirect::to(&format!("/products/{product}#secrets-h")))
}

pub async fn remove(
    State(services): State<Arc<Services>>,
    Anyone(viewer): Anyone,
    Path((product, name)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Redirect> {
    check(&viewer, &form)?;
    secrets::remove(&services, &Scope::Product(product.clone()), &name).await?;
    Ok(Redirect::to(&format!("/products/{product}#secrets-h")))
}

pub async fn pull_requests(
    State(services): State<Arc<Services>>,
    Anyone(viewer): Anyone,
    Path(product): Path<String>,
    Form(form): Form<PullRequestForm>,
) -> PageResult<Redirect> {
    check(&viewer, &CsrfForm { csrf: form.csrf })?;
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
