//! The dashboard's forms: start, re-run, retry or cancel a build, cancel, approve or decline a job
//! run.
//! Each needs a signed-in session and its CSRF token (checked by [`Posted`] before the
//! handler runs), calls the same use case as the JSON API, and sends the browser on to the
//! page that shows the result.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Redirect;

use super::PageResult;
use super::session::{NoFields, Posted};
use crate::http::error::AppError;
use crate::services::{ServiceError, Services, builds};
use crate::store::{BuildTrigger, NewBuild};

pub async fn rerun(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> PageResult<Redirect> {
    let build = builds::rerun(&services, &id).await?;
    Ok(Redirect::to(&format!("/builds/{}", build.id)))
}

pub async fn retry(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> PageResult<Redirect> {
    builds::retry(&services, &id).await?;
    Ok(Redirect::to(&format!("/builds/{id}")))
}

pub async fn cancel_build(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> PageResult<Redirect> {
    builds::cancel(&services, &id).await.map_err(|e| match e {
        ServiceError::NotFound(_) => ServiceError::NotFound(format!("There is no build `{id}`.")),
        other => other,
    })?;
    Ok(Redirect::to(&format!("/builds/{id}")))
}

pub async fn cancel_job(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> PageResult<Redirect> {
    builds::cancel_job_run(&services, &id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")))
}

pub async fn approve(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> PageResult<Redirect> {
    let build = builds::approve_job_run(&services, &id, DASHBOARD).await?;
    Ok(Redirect::to(&format!("/builds/{}", build.id)))
}

/// Who decided, for a decision made on the dashboard (its sign-in is the admin token's).
const DASHBOARD: &str = "admin (dashboard)";

/// The decline form: an optional reason.
#[derive(serde::Deserialize)]
pub struct DeclineForm {
    #[serde(default)]
    reason: String,
}

pub async fn decline(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    Posted(form): Posted<DeclineForm>,
) -> PageResult<Redirect> {
    let build = builds::decline_job_run(&services, &id, DASHBOARD, &form.reason).await?;
    Ok(Redirect::to(&format!("/builds/{}", build.id)))
}

/// The start form: an optional branch, tag, `refs/…` or commit, and variables, one
/// `KEY=VALUE` a line.
#[derive(serde::Deserialize)]
pub struct StartForm {
    #[serde(default, rename = "ref")]
    git_ref: String,
    #[serde(default)]
    variables: String,
}

/// The form's variables: one `KEY=VALUE` a line, blank lines skipped; a line without `=`
/// is refused, naming it.
fn variables(text: &str) -> Result<Vec<(String, String)>, AppError> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| {
                    let shown: String = l.chars().take(60).collect();
                    AppError::BadRequest(format!(
                        "The variable line `{shown}` has no `=`: write one KEY=VALUE a line."
                    ))
                })
        })
        .collect()
}

pub async fn start_build(
    State(services): State<Arc<Services>>,
    Path((product, belt)): Path<(String, String)>,
    Posted(form): Posted<StartForm>,
) -> PageResult<Redirect> {
    let git_ref = Some(form.git_ref.trim().to_string()).filter(|r| !r.is_empty());
    let new = NewBuild {
        resource: None,
        product,
        belt,
        trigger: BuildTrigger::Manual,
        git_ref,
        sha: None,
        model: None,
        context: None,
    };
    let asked = builds::Asked {
        variables: variables(&form.variables)?,
        by: Some(DASHBOARD.to_string()),
    };
    let build = builds::start_with(&services, &new, asked).await?;
    Ok(Redirect::to(&format!("/builds/{}", build.id)))
}
