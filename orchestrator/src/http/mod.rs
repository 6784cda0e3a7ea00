//! Everything conveyor says over HTTP, in one router: the JSON API (`api`), the dashboard
//! (`dashboard`) and the forges' webhooks (`hooks`), with who may call what (`auth`) and
//! how failures answer (`error`). Handlers parse, check access, call `services`, and
//! render; every route is listed here, in one place.

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod hooks;
pub mod sessions;
pub mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use conveyor_runner::queue::Queue;
use tower_http::limit::RequestBodyLimitLayer;

use crate::services::Services;
pub use auth::FleetToken;
pub use throttle::ClientAddr;
use throttle::Throttle;

use crate::store::{Owner, Store};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// What the handlers share: the services, and who may do what.
pub struct AppState {
    pub services: Arc<Services>,
    /// The bearer token for mutating calls (and, unless reads are public, for reads).
    pub admin_token: String,
    /// The registration token for runners of any fleet (`--runner-token`).
    pub runner_token: String,
    /// Registration tokens scoped to fleets (`--fleet-token FLEETS=TOKEN`): a runner
    /// registering with one may serve only those fleets.
    pub fleet_tokens: Vec<FleetToken>,
    /// Whether the dashboard's read-only pages and the API's reads are open to anyone
    /// (actions always need the admin token or its session).
    pub public_ui: bool,
    /// Whether browsers reach this node over HTTPS (it serves TLS, or `--public-url` starts
    /// with `https://` behind a proxy that does): the session cookie is then `Secure`.
    pub secure_cookies: bool,
    /// Hashes of runner tokens recently confirmed: when, and whose.
    pub runner_tokens: Mutex<HashMap<String, (i64, Owner)>>,
    /// Failed sign-ins and wrong tokens, per client address.
    pub throttle: Throttle,
    /// Places for the dashboard's live streams (`--max-live-streams`): each open one holds
    /// a place; past them a new one is refused with 503 and its page works without it.
    pub live_streams: Arc<tokio::sync::Semaphore>,
}

/// Live streams a node keeps open at once unless told otherwise.
pub const DEFAULT_LIVE_STREAMS: usize = 256;

/// The router's state: the handlers' shared [`AppState`].
#[derive(Clone)]
pub struct SharedState(Arc<AppState>);

impl std::ops::Deref for SharedState {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl AppState {
    /// Fresh services over `store` and `queue`, with public reads.
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        admin_token: String,
        runner_token: String,
    ) -> Self {
        Self::with_services(
            Arc::new(Services::new(store, queue)),
            admin_token,
            runner_token,
        )
    }

    /// Around `services`, with public reads.
    pub fn with_services(
        services: Arc<Services>,
        admin_token: String,
        runner_token: String,
    ) -> Self {
        AppState {
            services,
            admin_token,
            runner_token,
            fleet_tokens: Vec::new(),
            public_ui: true,
            secure_cookies: false,
            runner_tokens: Mutex::default(),
            throttle: Throttle::default(),
            live_streams: Arc::new(tokio::sync::Semaphore::new(DEFAULT_LIVE_STREAMS)),
        }
    }
}

/// Handlers that need only the use cases take `State<Arc<Services>>`.
impl FromRef<SharedState> for Arc<Services> {
    fn from_ref(state: &SharedState) -> Self {
        state.services.clone()
    }
}

/// Every route.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(api_routes())
        .merge(conveyor_ci_routes())
        .merge(dashboard_routes())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .merge(file_routes())
        .fallback(dashboard::not_found)
        .layer(axum::middleware::from_fn(server_timing))
        .with_state(SharedState(state))
}

/// Says how long the node took to answer, in a `Server-Timing: app;dur=MS` header (shown by
/// browsers' developer tools; `conveyor bench --history` reports it beside the time its
/// client saw): until the response's head, which for pages and lists is the whole body.
async fn server_timing(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let start = std::time::Instant::now();
    let mut res = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        res.headers_mut().insert("server-timing", v);
    }
    res
}

/// The JSON API, the webhooks, health, metrics and Conveyor CI's log API
/// (`tests/api/openapi.rs` checks them against the OpenAPI document).
fn api_routes() -> Router<SharedState> {
    use api::{actions, builds, compat, logs, pages, products, runner, runners, secrets};
    Router::new()
        .merge(driver_routes())
        .route("/health", get(pages::health))
        .route("/metrics", get(pages::metrics))
        .route("/api/openapi.json", get(pages::openapi))
        .route(
            "/api/v1/products",
            get(products::list).post(products::register),
        )
        .route("/api/v1/products/{product}", get(products::show))
        .route(
            "/api/v1/products/{product}/secrets",
            get(secrets::list_product),
        )
        .route(
            "/api/v1/products/{product}/secrets/{name}",
            put(secrets::set_product).delete(secrets::remove_product),
        )
        .route(
            "/api/v1/products/{product}/pr-secrets",
            put(secrets::pull_requests),
        )
        .route("/api/v1/secrets", get(secrets::list_global))
        .route(
            "/api/v1/secrets/{name}",
            put(secrets::set_global).delete(secrets::remove_global),
        )
        .route(
            "/api/v1/products/{product}/belts/{belt}/builds",
            post(builds::create),
        )
        .route("/api/v1/builds", get(builds::list))
        .route("/api/v1/builds/{id}", get(builds::show))
        .route("/api/v1/builds/{id}/cancel", post(builds::cancel))
        .route("/api/v1/job-runs/{id}/logs", get(logs::range))
        .route("/api/v1/job-runs/{id}/logs/search", get(logs::search))
        .route("/logs", get(compat::logs))
        .route("/logs/streams/{driver}/{runid}", get(compat::stream))
        .route("/hooks/github", post(hooks::github))
        .route("/hooks/gitlab", post(hooks::gitlab))
        .route("/hooks/gitea", post(hooks::gitea))
        .route("/api/v1/runners", get(runners::list))
        .route("/api/v1/runners/register", post(runners::register))
        .route("/api/v1/runners/heartbeat", post(runners::heartbeat))
        .route("/api/v1/runner/claim", post(runner::claim))
        .route("/api/v1/runner/heartbeat", post(runner::heartbeat))
        .route("/api/v1/runner/logs", post(runner::logs))
        .route("/api/v1/runner/complete", post(runner::complete))
        .route("/api/v1/runner/release", post(runner::release))
        .route("/api/v1/job-runs/{id}/approve", post(actions::approve))
        .route("/api/v1/job-runs/{id}/decline", post(actions::decline))
        .route("/api/v1/job-runs/{id}/cancel", post(actions::cancel_job))
        .route("/api/v1/builds/{id}/rerun", post(actions::rerun))
        .route("/api/v1/builds/{id}/retry", post(actions::retry))
        .route("/api/v1/builds/{id}/artifacts", get(api::files::list))
        .route("/api/v1/artifacts/{id}", get(api::files::get))
}

/// Conveyor CI's resource and pipeline API, at the root as Conveyor CI has it.
fn conveyor_ci_routes() -> Router<SharedState> {
    use api::{pipelines, resources as r};
    Router::new()
        .route(
            "/resource-definitions",
            get(r::list_definitions).post(r::create_definition),
        )
        .route("/resource-definitions/apply", post(r::apply_definition))
        .route(
            "/resource-definitions/{name}",
            get(r::show_definition)
                .put(r::update_definition)
                .delete(r::delete_definition),
        )
        .route("/resources", post(r::create_resource))
        .route("/resources/{type}", get(r::list_resources))
        .route(
            "/resources/{type}/{name}",
            get(r::show_resource)
                .put(r::update_resource)
                .delete(r::delete_resource),
        )
        .route("/resources/{type}/{name}/{version}", get(r::show_version))
        .route("/pipelines", get(pipelines::list).post(pipelines::create))
        .route(
            "/pipelines/{name}",
            get(pipelines::show)
                .put(pipelines::update)
                .delete(pipelines::delete),
        )
}

/// The driver protocol (`conveyor_core::driver`) and the list of drivers.
fn driver_routes() -> Router<SharedState> {
    // A driver's heartbeat and hand-back are the runner protocol's, under its own paths.
    use api::{drivers, runner};
    Router::new()
        .route("/api/v1/drivers", get(drivers::list))
        .route("/api/v1/drivers/register", post(drivers::register))
        .route("/api/v1/drivers/claim", post(drivers::claim))
        .route("/api/v1/drivers/heartbeat", post(runner::heartbeat))
        .route("/api/v1/drivers/logs", post(drivers::logs))
        .route("/api/v1/drivers/complete", post(drivers::complete))
        .route("/api/v1/drivers/release", post(runner::release))
}

/// The runner's file calls: streamed bodies, limited per file by the services, not by
/// [`MAX_BODY_BYTES`] (these routes are merged outside that layer).
fn file_routes() -> Router<SharedState> {
    use api::files;
    Router::new()
        .route("/api/v1/runner/artifacts", put(files::upload_artifact))
        .route("/api/v1/runner/artifacts/{id}", get(files::runner_artifact))
        .route("/api/v1/runner/caches/lookup", post(files::find_cache))
        .route("/api/v1/runner/caches", put(files::save_cache))
        .route("/api/v1/runner/caches/{id}", get(files::runner_cache))
}

/// The dashboard's pages, live streams, forms, sign-in and assets.
fn dashboard_routes() -> Router<SharedState> {
    use dashboard::{
        actions, assets, build, fleets, job, live, log, overview, product, secrets, session,
    };
    Router::new()
        .route("/", get(overview::page))
        .route("/products/{name}", get(product::page))
        .route(
            "/products/{name}/belts/{belt}/builds",
            post(actions::start_build),
        )
        .route("/products/{name}/secrets", post(secrets::set))
        .route(
            "/products/{name}/secrets/{secret}/remove",
            post(secrets::remove),
        )
        .route("/products/{name}/pr-secrets", post(secrets::pull_requests))
        .route("/builds/{id}", get(build::page))
        .route("/builds/{id}/events", get(live::build_events))
        .route("/builds/{id}/rerun", post(actions::rerun))
        .route("/builds/{id}/retry", post(actions::retry))
        .route("/builds/{id}/cancel", post(actions::cancel_build))
        .route("/jobs/{id}", get(job::page))
        .route("/jobs/{id}/events", get(live::job_events))
        .route("/jobs/{id}/log.txt", get(job::download))
        .route("/jobs/{id}/lines", get(log::lines))
        .route("/jobs/{id}/approve", post(actions::approve))
        .route("/jobs/{id}/decline", post(actions::decline))
        .route("/jobs/{id}/cancel", post(actions::cancel_job))
        .route("/fleets", get(fleets::page))
        .route("/events", get(live::changes))
        .route("/sign-in", get(session::page).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
        .route("/assets/log.js", get(assets::log_js))
}
