//! Drivers (`docs/drivers.md`, the wire in `conveyor_core::driver`): registering an
//! instance, claiming work for it from its driver's queue, and its heartbeats, log lines and
//! fenced results — the runner protocol's use cases (`runs`) under a driver's shape.

use std::collections::BTreeMap;
use std::time::Duration;

use conveyor_core::driver::{
    self as wire, Commit, DriverCompletion, DriverLogBatch, DriverPayload, DriverRegistered,
    DriverRegistration, DriverWork,
};
use conveyor_core::expand::expand_env;
use conveyor_core::protocol::{
    ClaimRequest, Completion, JobSpec, LogBatch, LogLine, Outcome, Stream,
};

use super::{Result, ServiceError, Services, input, runs};
use crate::clock::now_ms;
use crate::secrets::token_hash;
use crate::store::Owner;

/// The `seq` of the batch holding a result's message: above any an SDK numbers its own.
pub const RESULT_SEQ: u64 = 1 << 40;

/// How long a runner or driver instance may go unseen and still count as connected.
pub const CONNECTED_MS: i64 = 60_000;

/// Whether runner (or driver instance) `r` was heard from within [`CONNECTED_MS`] of `now`.
pub fn heard_from(r: &crate::store::RunnerView, now: i64) -> bool {
    now - r.last_seen_at < CONNECTED_MS
}

fn invalid(field: &str, message: String) -> ServiceError {
    ServiceError::InvalidField {
        field: field.into(),
        message,
    }
}

/// The runner name an instance is stored under: `DRIVER/INSTANCE`.
pub fn runner_name(driver: &str, instance: &str) -> String {
    format!("{driver}/{instance}")
}

/// Registers a driver instance; its own token. `scope` is what the registration token
/// allows: anything (`None`), or only these fleets (`driver:NAME` among them).
pub async fn register(
    s: &Services,
    r: &DriverRegistration,
    scope: Option<&[String]>,
) -> Result<DriverRegistered> {
    if !conveyor_core::names::is_fleet_name(&r.driver) {
        let shown: String = r.driver.chars().take(100).collect();
        return Err(invalid(
            "driver",
            format!(
                "invalid driver name `{}`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit",
                shown.escape_debug()
            ),
        ));
    }
    input::name("instance", &r.instance)?;
    if r.instance.trim().is_empty() || r.instance.contains('/') {
        return Err(invalid(
            "instance",
            "an instance needs a name of printable characters without `/`, e.g. `host-1234`".into(),
        ));
    }
    let runner = runner_name(&r.driver, &r.instance);
    input::name("instance", &runner)?;
    for t in &r.resources {
        input::name("resources", t)?;
    }
    let queue = wire::queue_of(&r.driver);
    if let Some(allowed) = scope {
        runs::within_scope(s, &runner, std::slice::from_ref(&queue), allowed).await?;
    }
    let token = crate::store::token();
    let id = s
        .store
        .register_driver(
            &r.driver,
            &runner,
            &r.resources,
            &token_hash(&token),
            now_ms(),
        )
        .await?;
    Ok(DriverRegistered {
        id,
        driver: r.driver.clone(),
        instance: r.instance.clone(),
        token,
    })
}

/// The driver an instance's token belongs to; refused for a runner's token.
fn driver_of(owner: &Owner) -> Result<String> {
    match owner.fleets.as_slice() {
        [fleet] => wire::driver_of(fleet).map(str::to_string),
        _ => None,
    }
    .ok_or_else(|| {
        ServiceError::Forbidden(
            "this token is a runner's, not a driver instance's: register with /api/v1/drivers/register".into(),
        )
    })
}

/// Waits up to `wait` for a job of the instance's driver and claims it for the instance;
/// `None` when none came. A message popped for a job run that is no longer queued at its
/// attempt is dropped, as a runner drops it.
pub async fn claim(s: &Services, owner: &Owner, wait: Duration) -> Result<Option<DriverWork>> {
    let driver = driver_of(owner)?;
    let fleets = [wire::queue_of(&driver)];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let popped = tokio::time::timeout_at(deadline, s.queue.pop(&fleets, &owner.name)).await;
        let delivery = match popped {
            Err(_) => return Ok(None),
            Ok(Err(e)) => return Err(ServiceError::Unavailable(e.to_string())),
            Ok(Ok(d)) => d,
        };
        if let Err(e) = s.queue.ack(&delivery).await {
            tracing::warn!("ack of a driver's delivery: {e}");
        }
        let req = ClaimRequest {
            job_run_id: delivery.msg.job_run_id,
            attempt: delivery.msg.attempt,
            runner: owner.name.clone(),
        };
        match runs::claim(s, &req, owner).await {
            Ok(spec) => return work_of(s, spec, driver).await.map(Some),
            Err(ServiceError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A claimed job as its driver receives it.
async fn work_of(s: &Services, spec: JobSpec, driver: String) -> Result<DriverWork> {
    let ctx = s.store.driver_context(&spec.lease.job_run_id).await?;
    // `env:` values expand against the job's own variables: a driver inherits nothing.
    let expanded = expand_env(&spec.env, &spec.expand_env, Default::default());
    let env: BTreeMap<String, String> = expanded.into_iter().collect();
    let var = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    let git_ref = var("CONVEYOR_COMMIT_REF");
    let commit = Commit {
        sha: var("CONVEYOR_COMMIT_SHA"),
        branch: git_ref
            .as_deref()
            .and_then(wire::branch_of)
            .map(str::to_string),
        git_ref,
    };
    let refs = ctx
        .refs
        .iter()
        .map(|(name, text)| (text.clone(), env.get(name).cloned().unwrap_or_default()))
        .collect();
    let event = match (&ctx.event, ctx.steps.is_empty()) {
        (_, false) => wire::EVENT_PROCESS.to_string(),
        (Some(e), true) => e.clone(),
        (None, true) => wire::EVENT_CREATE.to_string(),
    };
    let resource = match &ctx.resource {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| ServiceError::Internal(format!("a build's resource: {e}")))?,
        ),
        None => None,
    };
    let payload = DriverPayload {
        build_id: spec.build_id.clone(),
        build_number: spec.build_number,
        product: spec.product,
        belt: spec.belt,
        job: spec.job,
        attempt: spec.lease.attempt,
        commit,
        env,
        secrets: spec.secrets,
        refs,
        outputs: ctx.outputs,
        steps: ctx.steps,
        upstream: ctx.upstream,
        resource,
    };
    Ok(DriverWork {
        run_id: spec.build_id,
        lease: spec.lease,
        lease_secs: spec.lease_secs,
        driver,
        event,
        payload,
    })
}

/// Stores a driver's log lines, with their labels, as the job's log.
pub async fn append_logs(s: &Services, batch: DriverLogBatch, owner: &Owner) -> Result<()> {
    driver_of(owner)?;
    if batch.seq >= RESULT_SEQ {
        return Err(invalid("seq", format!("`seq` must be below {RESULT_SEQ}")));
    }
    let lines = batch
        .lines
        .into_iter()
        .map(|l| LogLine {
            stream: Stream::Stdout,
            text: l.message,
            labels: l.labels,
            at: None,
        })
        .collect();
    let batch = LogBatch {
        lease: batch.lease,
        seq: batch.seq,
        lines,
    };
    runs::append_logs(s, batch, owner).await
}

/// Records a driver's result under its lease: `data` as the outputs (every declared one
/// present, else the job fails saying which is missing), `message` as the last log line and
/// a failure's reason; `cancelled` when the job was cancelled meanwhile.
pub async fn complete(s: &Services, c: DriverCompletion, owner: &Owner) -> Result<()> {
    let driver = driver_of(owner)?;
    let mut outputs = BTreeMap::new();
    for (k, v) in c.data {
        let serde_json::Value::String(v) = v else {
            return Err(invalid(
                &format!("data.{k}"),
                format!("`data.{k}` must be a string: outputs are text"),
            ));
        };
        outputs.insert(k, v);
    }
    // Fenced like the completion itself; also tells whether the job was cancelled.
    let cancelled = runs::cancel_asked(s, &c.lease, owner).await?;
    let ctx = s.store.driver_context(&c.lease.job_run_id).await?;
    let missing = ctx.outputs.iter().find(|o| !outputs.contains_key(*o));
    let (outcome, error) = match (cancelled, c.success, missing) {
        (true, _, _) => (Outcome::Cancelled, None),
        (false, true, None) => (Outcome::Succeeded, None),
        (false, true, Some(k)) => (
            Outcome::Failed,
            Some(format!(
                "driver `{driver}` returned no `{k}`, which job `{}` declares",
                ctx.job
            )),
        ),
        (false, false, _) if c.message.trim().is_empty() => (
            Outcome::Failed,
            Some(format!("driver `{driver}` reported a failure")),
        ),
        (false, false, _) => (Outcome::Failed, Some(c.message.clone())),
    };
    if !c.message.is_empty() {
        let line = LogLine {
            stream: Stream::System,
            text: c.message,
            labels: Default::default(),
            at: None,
        };
        let batch = LogBatch {
            lease: c.lease.clone(),
            seq: RESULT_SEQ,
            lines: vec![line],
        };
        runs::append_logs(s, batch, owner).await?;
    }
    if outcome != Outcome::Succeeded {
        outputs.clear();
    }
    let completion = Completion {
        lease: c.lease,
        outcome,
        exit_code: None,
        outputs,
        error,
        log: Vec::new(),
        take_next: false,
    };
    runs::complete(s, &completion, owner).await.map(|_| ())
}

/// Whether an instance of `driver` was seen within [`CONNECTED_MS`] of `now`.
pub fn connected(runners: &[crate::store::RunnerView], driver: &str, now: i64) -> bool {
    let queue = wire::queue_of(driver);
    runners
        .iter()
        .any(|r| r.fleets.contains(&queue) && heard_from(r, now))
}

/// What a queued job run of a driver no instance of which is connected says.
pub fn not_connected(driver: &str) -> String {
    format!("no driver `{driver}` is connected")
}
