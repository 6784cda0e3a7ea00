//! The dashboard's forms: re-run or cancel a build, cancel or approve a job run. Each needs
//! a signed-in session and its CSRF token, calls what the JSON API calls, and sends the
//! browser on to the page that shows the result.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;

use super::PageResult;
use super::session::{Anyone, CsrfForm, check};
use crate::error::AppError;
use crate::routes::{approve_job_run, cancel_job_run, rerun_build, start};
use crate::state::{SharedState, now_ms};
use crate::store::{BuildTrigger, NewBuild};

pub async fn rerun(
    State(state): State<SharedState>,
    Anyone(viewer): Anyone,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Redirect> {
    check(&viewer, &form)?;
    let build = rerun_build(&state, &id).await?;
    Ok(Redirect::to(&format!("/builds/{}", build.id)))
}

pub async fn cancel_build(
    State(state): State<SharedState>,
    Anyone(viewer): Anyone,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Redirect> {
    check(&viewer, &form)?;
    let effects = state
        .store
        .cancel_build(&id, now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no build `{id}`.")))?;
    state.apply(effects).await;
    Ok(Redirect::to(&format!("/builds/{id}")))
}

pub async fn cancel_job(
    State(state): State<SharedState>,
    Anyone(viewer): Anyone,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Redirect> {
    check(&viewer, &form)?;
    cancel_job_run(&state, &id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")))
}

pub async fn approve(
    State(state): State<SharedState>,
    Anyone(viewer): Anyone,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Redirect> {
    check(&viewer, &form)?;
    let build = approve_job_run(&state, &id).await?;
    Ok(Redirect::to(&format!("/builds/{}", build.id)))
}

pub async fn start_build(
    State(state): State<SharedState>,
    Anyone(viewer): Anyone,
    Path((product, belt)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Redirect> {
    check(&viewer, &form)?;
    let new = NewBuild {
        product,
        belt,
        trigger: BuildTrigger::Manual,
        git_ref: None,
        sha: None,
        model: None,
    };
    let build = start(&state, &new).await?;
    Ok(Redirect::to(&format!("/builds/{}", build.id)))
}
