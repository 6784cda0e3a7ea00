//! The `Store` boundary: every use case the orchestrator has for its database.

use async_trait::async_trait;
use conveyor_core::protocol::{ClaimRequest, Completion, Lease, LogBatch};

use crate::catalog::Catalog;
use crate::error::Result;
use crate::history::History;
use crate::logs::Logs;
use crate::seed::Seeding;
use crate::types::*;

/// A lease that holds: whether its job was asked to cancel, and when the lease expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub cancel: bool,
    pub expires_at: i64,
}

/// Every use case the orchestrator has for its database (Conveyor CI's resources and
/// pipelines: [`Catalog`]; history: [`History`]; logs by line range: [`Logs`]; a seeded
/// history for benchmarks and tests: [`Seeding`]).
#[async_trait]
pub trait Store: Catalog + History + Logs + Seeding + Send + Sync {
    /// Registers a product, or replaces its config.
    async fn put_product(&self, p: &ProductRecord, now: i64) -> Result<()>;
    async fn product(&self, name: &str) -> Result<Option<ProductRecord>>;
    async fn products(&self) -> Result<Vec<ProductRecord>>;

    /// Writes the build, its job runs and edges in one transaction; the job runs with no
    /// unmet dependency are returned for dispatch.
    async fn create_build(&self, new: &NewBuild, now: i64) -> Result<(String, Effects)>;
    /// The last tick the schedule `key` of `product` fired; a schedule first seen is
    /// recorded as of `now`, so that it fires from its next tick on.
    async fn schedule_last_tick(&self, product: &str, key: &str, now: i64) -> Result<i64>;
    /// Fires tick `tick` of schedule `key` of `new.product`: creates the build only if the
    /// schedule's last tick is earlier, in one transaction. `None`: it was fired already
    /// (by another orchestrator), and nothing is created.
    async fn fire_schedule(
        &self,
        key: &str,
        tick: i64,
        new: &NewBuild,
        now: i64,
    ) -> Result<Option<(String, Effects)>>;
    /// Takes a queued job run at this attempt for `owner`, if it is of one of the owner's
    /// fleets; `None` when it is not (duplicate, stale, or another fleet's).
    async fn claim(
        &self,
        req: &ClaimRequest,
        owner: &Owner,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<Claim>>;
    /// Extends `owner`'s lease to `lease_ms` from `now` — or, `when_due`, only once no more
    /// than two thirds of it are left (until then only reads it): while it holds, whether
    /// its job was asked to cancel and when the lease expires; `None` once it is gone (or it
    /// was never this runner's).
    async fn renew(
        &self,
        lease: &Lease,
        owner: &str,
        lease_ms: i64,
        when_due: bool,
        now: i64,
    ) -> Result<Option<Held>>;
    /// [`Store::renew`] at once; `Some(cancel)` while the lease holds.
    async fn heartbeat(
        &self,
        lease: &Lease,
        owner: &str,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<bool>> {
        let held = self.renew(lease, owner, lease_ms, false, now).await?;
        Ok(held.map(|h| h.cancel))
    }
    /// Stores a log batch under `owner`'s live lease (a batch sent twice is stored once),
    /// keeping each attempt's log within `max_bytes`: the first line past it becomes one
    /// marker line ([`crate::truncation_marker`]) and the rest is dropped. False when the
    /// lease is not live.
    async fn append_logs(
        &self,
        batch: &LogBatch,
        owner: &str,
        max_bytes: u64,
        now: i64,
    ) -> Result<bool>;
    /// Records a result under `owner`'s live lease and moves the build on; `None` if fenced
    /// out. The log lines it carries ([`Completion::log`]) are stored in the same
    /// transaction, once, as the attempt's last batch, within `max_log_bytes` (as
    /// [`Store::append_logs`] would), and only when the completion is accepted.
    async fn complete_logged(
        &self,
        c: &Completion,
        owner: &str,
        max_log_bytes: u64,
        now: i64,
    ) -> Result<Option<Effects>>;
    /// [`Store::complete_logged`], then — the runner has a slot free — one job run the
    /// completion readied on `owner`'s fleets, claimed for `owner` in the same transaction
    /// instead of dispatched: the next step of a chain without a trip through the queue.
    /// `None` if fenced out; no claim if nothing was readied there.
    async fn complete_taking(
        &self,
        c: &Completion,
        owner: &Owner,
        max_log_bytes: u64,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<(Effects, Option<Claim>)>>;
    /// [`Store::complete_logged`] with no cap on the log lines it carries.
    async fn complete(&self, c: &Completion, owner: &str, now: i64) -> Result<Option<Effects>> {
        self.complete_logged(c, owner, u64::MAX, now).await
    }
    /// A runner hands back a job run it stopped (it is shutting down): re-queued at once as
    /// a lost attempt, as the reaper would once the lease expired. `None` if fenced out.
    async fn release(
        &self,
        lease: &Lease,
        owner: &str,
        max_lost: u32,
        now: i64,
    ) -> Result<Option<Effects>>;
    /// Re-queues running job runs whose lease expired (a lost runner), failing those
    /// lost more than `max_lost` times.
    async fn reap(&self, now: i64, max_lost: u32) -> Result<Effects>;
    /// At most `limit` job runs of `fleet` queued before `before`, oldest first, to re-send
    /// in case their message was lost.
    async fn stale_queued(&self, before: i64, fleet: &str, limit: u64) -> Result<Vec<Dispatch>>;
    /// How many job runs are queued on each fleet.
    async fn queued_by_fleet(&self) -> Result<Vec<(String, u64)>>;
    /// Cancels a build: queued and waiting job runs at once, running ones at their next
    /// heartbeat. `None` if there is no such build.
    async fn cancel_build(&self, id: &str, now: i64) -> Result<Option<Effects>>;

    async fn build(&self, id: &str) -> Result<Option<BuildView>>;
    async fn builds(&self, filter: &BuildFilter) -> Result<Vec<BuildView>>;
    /// Log lines of a job run after line number `after`, at most `limit`.
    async fn logs(&self, job_run_id: &str, after: i64, limit: u32) -> Result<Vec<LogRow>>;
    /// Builds created as a consequence of `id` (downstream products).
    async fn downstream_builds(&self, id: &str) -> Result<Vec<String>>;
    /// How many builds have not finished.
    async fn unfinished_builds(&self) -> Result<u64>;
    /// Registers a runner (or re-registers one by name, replacing its token); returns its id.
    async fn register_runner(
        &self,
        name: &str,
        fleets: &[String],
        token_hash: &str,
        now: i64,
    ) -> Result<String>;
    /// The runner whose token has this hash, marking it seen.
    async fn runner_seen(&self, token_hash: &str, now: i64) -> Result<Option<RunnerView>>;
    async fn runners(&self) -> Result<Vec<RunnerView>>;
    /// Registers instance `runner` of driver `driver` as a runner of the fleet
    /// `driver:NAME` (replacing its token if it was registered before), and records the
    /// resource types the driver listens to, in one transaction; the runner's id.
    async fn register_driver(
        &self,
        driver: &str,
        runner: &str,
        resources: &[String],
        token_hash: &str,
        now: i64,
    ) -> Result<String>;
    /// Every driver that registered, by name.
    async fn drivers(&self) -> Result<Vec<DriverView>>;
    /// What a driver job run's payload needs beyond its job spec.
    async fn driver_context(&self, job_run_id: &str) -> Result<DriverContext>;
    /// Records a delivery with the product heads it moves and the builds it starts, all in
    /// one transaction; the ids of the builds, in order, and what they caused. `None` if
    /// the delivery was recorded before (a replay): nothing is written.
    async fn accept_delivery(
        &self,
        d: &Delivery,
        now: i64,
    ) -> Result<Option<(Vec<String>, Effects)>>;
    /// Sets a secret (sealed by the caller) for a product, or globally when `scope` is empty.
    async fn put_secret(&self, scope: &str, name: &str, sealed: &str, now: i64) -> Result<()>;
    /// The secrets of a scope, by name, without their values.
    async fn secrets(&self, scope: &str) -> Result<Vec<SecretInfo>>;
    /// Removes a secret; false if there was none.
    async fn delete_secret(&self, scope: &str, name: &str) -> Result<bool>;
    /// Whether builds of the product's pull requests get secrets; false if no such product.
    async fn set_pr_secrets(&self, product: &str, allowed: bool) -> Result<bool>;
    /// Whether builds of the product's pull requests get secrets (`None`: no such product).
    async fn pr_secrets(&self, product: &str) -> Result<Option<bool>>;
    /// Job runs by state and fleet, and how many runners hold a running job run.
    async fn run_counts(&self) -> Result<(Vec<RunCount>, u64)>;
    /// Builds created since `since` whose forge has not been told their current status.
    async fn forge_status_due(&self, since: i64, limit: u32) -> Result<Vec<String>>;
    /// Records that the forge was told `status` for build `id`.
    async fn set_forge_status(&self, id: &str, status: &str) -> Result<()>;
    /// One job run, as a build shows it.
    async fn job_run(&self, id: &str) -> Result<Option<JobRunView>>;
    /// Records a dashboard session (by the hash of its id) until `expires_at`; expired ones
    /// are forgotten.
    async fn start_session(&self, id_hash: &str, expires_at: i64, now: i64) -> Result<()>;
    /// Whether a session was started, has not expired at `now` and was not ended.
    async fn session_live(&self, id_hash: &str, now: i64) -> Result<bool>;
    /// Ends a session (signing out); false if it was not live.
    async fn end_session(&self, id_hash: &str) -> Result<bool>;
    /// The connection pool, for background tasks kept in the same database (apalis).
    fn pool_handle(&self) -> PoolHandle;
    /// Approves a manual job run waiting for approval (`by` recorded): it is queued and
    /// dispatched, or waits for its job's concurrency group. `None` if no job run with this
    /// id waits for approval.
    async fn approve_job_run(&self, id: &str, by: &str, now: i64) -> Result<Option<Effects>>;
    /// Declines a manual job run waiting for approval: skipped, with `by` and the reason
    /// recorded; its dependents are skipped, and the build's outcome follows the rest.
    /// `None` if no job run with this id waits for approval.
    async fn decline_job_run(
        &self,
        id: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<Effects>>;
    /// Starts concurrency group members promoted to hold their group but not started (a
    /// crash came between): the maintenance tick's safety net.
    async fn start_held_groups(&self, now: i64) -> Result<Effects>;
    /// Cancels one job run: at once if it has not started (its dependents are skipped), at
    /// its next heartbeat if it is running; a finished one is left as it is. `None` if
    /// there is no such job run.
    async fn cancel_job_run(&self, id: &str, now: i64) -> Result<Option<Effects>>;
    /// Starts a new build of build `id`'s product, belt, ref and commit, running the jobs
    /// that build ran; its trigger names the build it re-runs. `None` if there is no such
    /// build.
    async fn rerun_build(&self, id: &str, now: i64) -> Result<Option<(String, Effects)>>;
    /// Retries a finished build in place: its failed and cancelled job runs, and those
    /// skipped because of them, start a new attempt and the build runs again. `None` if
    /// there is no such build; a conflict if it is still running or nothing failed.
    async fn retry_build(&self, id: &str, now: i64) -> Result<Option<Effects>>;
    /// The id of the build a job run belongs to.
    async fn build_of_job_run(&self, job_run_id: &str) -> Result<Option<String>>;
    /// A build's dependency edges as `(from, to)` job run ids: `to` waits for `from`.
    async fn job_edges(&self, build_id: &str) -> Result<Vec<(String, String)>>;
    /// The last `limit` log lines of a job run before line number `before` (or the end),
    /// oldest first.
    async fn log_tail(
        &self,
        job_run_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LogRow>>;
    /// The job run `owner`'s lease holds, while it is live.
    async fn lease_info(&self, lease: &Lease, owner: &str) -> Result<Option<LeaseInfo>>;
    /// Records an artifact file under `owner`'s live lease (the same path again replaces
    /// it); `None` if the lease is gone.
    async fn add_artifact(
        &self,
        lease: &Lease,
        owner: &str,
        file: &StoredFile,
        now: i64,
    ) -> Result<Option<ArtifactView>>;
    async fn artifact(&self, id: &str) -> Result<Option<ArtifactView>>;
    /// The artifacts of each of the build's job runs' current attempt, in belt order.
    async fn build_artifacts(&self, build_id: &str) -> Result<Vec<ArtifactView>>;
    /// The cache to restore — `key`, else the newest named `name` — looking in `scopes` in
    /// order; marked used.
    async fn find_cache(
        &self,
        product: &str,
        scopes: &[String],
        name: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<CacheView>>;
    async fn cache(&self, id: &str) -> Result<Option<CacheView>>;
    /// Records a cache archive (`file.name` is its key); `None` if the scope has the key.
    async fn put_cache(
        &self,
        product: &str,
        scope: &str,
        name: &str,
        file: &StoredFile,
        now: i64,
    ) -> Result<Option<CacheView>>;
    /// Forgets the product's least recently used caches until the rest fit in `limit`
    /// bytes; the ones forgotten, whose objects the caller deletes.
    async fn evict_caches(&self, product: &str, limit: u64) -> Result<Vec<CacheView>>;
}
