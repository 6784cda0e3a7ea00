//! Job runs as runners see them — claim, heartbeat, logs, complete, release (the protocol of
//! `conveyor_core::protocol`) — and runners themselves: registering one, and noting that a
//! runner's token was seen. Each call comes from one runner (its [`Owner`], named by its own
//! token); a call whose lease is gone, or is another runner's, is fenced out with a conflict.

use conveyor_core::protocol::{
    ClaimRequest, Completion, Heartbeat, HeartbeatReply, JobSpec, Lease, LogBatch, LogLine, Outcome,
};

use std::borrow::Cow;

use super::{Event, Result, ServiceError, Services, input};
use crate::clock::now_ms;
use crate::secrets::token_hash;
use crate::store::{Claim, Owner};

fn fenced() -> ServiceError {
    ServiceError::Conflict("this job run is not yours: it was taken, or your lease is gone".into())
}

/// Refuses a lease no runner was given.
fn check_lease(lease: &Lease) -> Result<()> {
    input::id("lease.job_run_id", &lease.job_run_id)?;
    input::id("lease.lease_token", &lease.lease_token)
}

/// Takes a queued job run of one of the runner's fleets; the job to run.
pub async fn claim(s: &Services, req: &ClaimRequest, owner: &Owner) -> Result<JobSpec> {
    input::id("job_run_id", &req.job_run_id)?;
    let claim = s
        .store
        .claim(req, owner, s.lease_ms, now_ms())
        .await?
        .ok_or_else(fenced)?;
    opened(s, claim, owner).await
}

/// A claimed job run's spec with its secrets opened into it. A job that cannot run as
/// written (a secret cannot be opened) fails with the reason, and the runner is told the
/// job run is not its to run (a conflict), so it moves on.
async fn opened(s: &Services, claim: Claim, owner: &Owner) -> Result<JobSpec> {
    if !claim.replayed {
        s.metrics.dispatch.observe_ms(claim.waited_ms);
    }
    let mut spec = claim.spec.clone();
    if let Err(why) = super::secrets::open_into(s, &claim, &mut spec) {
        let failed = Completion {
            lease: spec.lease.clone(),
            outcome: Outcome::Failed,
            exit_code: None,
            outputs: Default::default(),
            error: Some(why.clone()),
            log: Vec::new(),
            take_next: false,
        };
        // Boxed: a completion may open the claim of the next job run in turn.
        Box::pin(complete(s, &failed, owner)).await?;
        return Err(ServiceError::Conflict(why));
    }
    Ok(spec)
}

/// Extends a lease (at once, or when due: see [`Heartbeat::when_due`]); whether the runner
/// should cancel the job, and how long the lease holds.
pub async fn heartbeat(s: &Services, hb: &Heartbeat, owner: &Owner) -> Result<HeartbeatReply> {
    check_lease(&hb.lease)?;
    let now = now_ms();
    let held = s
        .store
        .renew(&hb.lease, &owner.name, s.lease_ms, hb.when_due, now)
        .await?
        .ok_or_else(fenced)?;
    Ok(HeartbeatReply {
        cancel: held.cancel,
        lease_ms_left: Some((held.expires_at - now).max(0) as u64),
    })
}

/// Whether the job of a live lease was asked to cancel: fenced like a heartbeat, and like one
/// renewed only when due.
pub async fn cancel_asked(s: &Services, lease: &Lease, owner: &Owner) -> Result<bool> {
    let hb = Heartbeat {
        lease: lease.clone(),
        when_due: true,
    };
    Ok(heartbeat(s, &hb, owner).await?.cancel)
}

/// Stores a batch of log lines (a NUL in one, which the store cannot keep, as U+FFFD) and
/// tells live views.
pub async fn append_logs(s: &Services, mut batch: LogBatch, owner: &Owner) -> Result<()> {
    check_lease(&batch.lease)?;
    batch.lines = storable_lines(batch.lines);
    if !s
        .store
        .append_logs(&batch, &owner.name, s.max_log_bytes, now_ms())
        .await?
    {
        return Err(fenced());
    }
    let _ = s.events.send(Event::Logs {
        job_run_id: batch.lease.job_run_id,
    });
    Ok(())
}

/// Log lines as the store can keep them: a NUL in one as U+FFFD.
fn storable_lines(mut lines: Vec<LogLine>) -> Vec<LogLine> {
    for line in &mut lines {
        if let Cow::Owned(text) = input::storable(&line.text) {
            line.text = text;
        }
    }
    lines
}

/// Records how a job run ended (a NUL in its outputs or error as U+FFFD), and what that
/// sets moving. A completion that asks to `take_next` gets a job run it readied on the
/// runner's fleets, claimed for it (`None` if it readied none there, or that one could
/// not run as written: it failed instead).
pub async fn complete(s: &Services, c: &Completion, owner: &Owner) -> Result<Option<JobSpec>> {
    check_lease(&c.lease)?;
    let storable = |t: &String| input::storable(t).into_owned();
    let mut c = c.clone();
    c.outputs = c
        .outputs
        .iter()
        .map(|(k, v)| (storable(k), storable(v)))
        .collect();
    c.error = c.error.as_ref().map(storable);
    c.log = storable_lines(std::mem::take(&mut c.log));
    let (effects, next) = match c.take_next {
        true => s
            .store
            .complete_taking(&c, owner, s.max_log_bytes, s.lease_ms, now_ms())
            .await?
            .ok_or_else(fenced)?,
        false => s
            .store
            .complete_logged(&c, &owner.name, s.max_log_bytes, now_ms())
            .await?
            .map(|effects| (effects, None))
            .ok_or_else(fenced)?,
    };
    let replayed = next.as_ref().is_some_and(|n| n.replayed);
    if !c.log.is_empty() && !replayed {
        let _ = s.events.send(Event::Logs {
            job_run_id: c.lease.job_run_id.clone(),
        });
    }
    s.apply(effects).await;
    let Some(next) = next else {
        return Ok(None);
    };
    // The completion is recorded: an error now must not fail it (the runner would send it
    // again, and be refused). A job that cannot run as written has failed (a conflict); one
    // whose failing could not be recorded waits for its lease to expire.
    match opened(s, next, owner).await {
        Ok(spec) => Ok(Some(spec)),
        Err(ServiceError::Conflict(_)) => Ok(None),
        Err(e) => {
            tracing::warn!(job_run = %c.lease.job_run_id, "the next job could not be handed over: {e}");
            Ok(None)
        }
    }
}

/// A runner shutting down hands back a job run it stopped: re-queued at once, as a lost
/// attempt.
pub async fn release(s: &Services, lease: &Lease, owner: &Owner) -> Result<()> {
    check_lease(lease)?;
    let effects = s
        .store
        .release(lease, &owner.name, s.max_lost, now_ms())
        .await?
        .ok_or_else(fenced)?;
    tracing::info!(job_run = %lease.job_run_id, runner = %owner.name, "handed back; queued again");
    s.apply(effects).await;
    Ok(())
}

/// A registered runner and the token it authenticates with from now on.
pub struct Registered {
    pub id: String,
    pub token: String,
}

/// Registers a runner serving `fleets`, with a token of its own (stored as its hash).
/// `scope` is what the registration token allows: any fleet (`None`), or only these.
pub async fn register_runner(
    s: &Services,
    name: &str,
    fleets: &[String],
    scope: Option<&[String]>,
) -> Result<Registered> {
    let invalid = |field: &str, message: String| ServiceError::InvalidField {
        field: field.into(),
        message,
    };
    input::name("name", name)?;
    if name.trim().is_empty() {
        return Err(invalid(
            "name",
            "a runner needs a `name` of 1 to 100 printable characters".into(),
        ));
    }
    if fleets.is_empty() {
        return Err(invalid(
            "fleets",
            "a runner needs at least one fleet in `fleets`".into(),
        ));
    }
    if let Some(bad) = fleets
        .iter()
        .find(|f| !conveyor_core::names::is_fleet_name(f))
    {
        let shown: String = bad
            .chars()
            .take(100)
            .collect::<String>()
            .escape_debug()
            .to_string();
        return Err(invalid(
            "fleets",
            format!(
                "invalid fleet name `{shown}`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit"
            ),
        ));
    }
    if let Some(allowed) = scope {
        within_scope(s, name, fleets, allowed).await?;
    }
    let token = crate::store::token();
    let id = s
        .store
        .register_runner(name, fleets, &token_hash(&token), now_ms())
        .await?;
    Ok(Registered { id, token })
}

/// A fleet token registers runners of its fleets only, and cannot take over the name of a
/// runner registered for other fleets.
pub(super) async fn within_scope(
    s: &Services,
    name: &str,
    fleets: &[String],
    allowed: &[String],
) -> Result<()> {
    let outside = |fleets: &[String]| fleets.iter().find(|f| !allowed.contains(f)).cloned();
    if let Some(f) = outside(fleets) {
        return Err(ServiceError::Forbidden(format!(
            "this registration token is for fleets {}; it cannot register a runner for fleet `{f}`",
            allowed.join(", ")
        )));
    }
    let existing = s.store.runners().await?;
    if let Some(taken) = existing.iter().find(|e| e.name == name)
        && outside(&taken.fleets).is_some()
    {
        return Err(ServiceError::Forbidden(format!(
            "runner `{name}` is registered for fleets this token does not cover; choose another name"
        )));
    }
    Ok(())
}

/// The registered runner whose token hashes to `hash`, noting that it was seen at `now`.
pub async fn seen(s: &Services, hash: &str, now: i64) -> Result<Option<Owner>> {
    let runner = s.store.runner_seen(hash, now).await?;
    Ok(runner.map(|r| Owner {
        name: r.name,
        fleets: r.fleets,
    }))
}
