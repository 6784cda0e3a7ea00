//! The engine's SQL, written once for both backends: [`SqlStore`] implements [`Store`] over
//! any [`Backend`] by running the use cases of `builds`, `runs`, `actions`, `values` and
//! `reads` on the backend's connections. Each use case that writes runs in one transaction
//! and returns what the caller must do after commit ([`Effects`]).

mod actions;
mod builds;
mod catalog;
mod chain;
mod chunks;
pub(crate) mod conn;
mod definitions;
mod drivers;
mod files;
mod fire;
mod follow;
mod groups;
mod history;
mod json;
mod leases;
mod log_reads;
mod logs;
mod next;
mod reads;
mod registry;
mod resources;
mod retention;
mod retry;
mod rows;
mod runs;
mod schedules;
mod secrets;
mod seed;
mod sessions;
mod values;

use async_trait::async_trait;
use conveyor_core::protocol::{ClaimRequest, Completion, Lease, LogBatch};

use crate::api::{Held, Store};
use crate::error::Result;
use crate::types::*;
pub(crate) use conn::Backend;
use groups::FollowUp;

/// The store over one backend.
pub(crate) struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(backend: B) -> Self {
        SqlStore { backend }
    }
}

/// What one transaction has done so far: effects for after commit, builds whose success
/// fires downstream products, and what to do in transactions of their own after commit.
#[derive(Default)]
pub(crate) struct Work {
    pub(crate) effects: Effects,
    pub(crate) to_fire: Vec<String>,
    pub(crate) follow: Vec<FollowUp>,
}

pub use logs::truncation_marker;

pub use json::token;
pub(crate) use json::{from_json, outputs_of, to_json};

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn put_product(&self, p: &ProductRecord, now: i64) -> Result<()> {
        registry::put_product(&mut *self.backend.writer().await?, p, now).await
    }

    async fn product(&self, name: &str) -> Result<Option<ProductRecord>> {
        registry::product(&mut *self.backend.conn().await?, name).await
    }

    async fn products(&self) -> Result<Vec<ProductRecord>> {
        registry::products(&mut *self.backend.conn().await?).await
    }

    async fn create_build(&self, new: &NewBuild, now: i64) -> Result<(String, Effects)> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        let id = builds::insert_build(&mut *tx, new, None, now, &mut work).await?;
        Ok((id, self.finish(tx, work, now).await?))
    }

    async fn schedule_last_tick(&self, product: &str, key: &str, now: i64) -> Result<i64> {
        schedules::last_tick(&mut *self.backend.conn().await?, product, key, now).await
    }

    async fn fire_schedule(
        &self,
        key: &str,
        tick: i64,
        new: &NewBuild,
        now: i64,
    ) -> Result<Option<(String, Effects)>> {
        let mut tx = self.backend.begin().await?;
        if !schedules::advance(&mut *tx, &new.product, key, tick).await? {
            return Ok(None);
        }
        let mut work = Work::default();
        let id = builds::insert_build(&mut *tx, new, None, now, &mut work).await?;
        builds::fire_all(&mut *tx, now, &mut work).await?;
        B::commit(tx).await?;
        Ok(Some((id, work.effects)))
    }

    async fn claim(
        &self,
        req: &ClaimRequest,
        owner: &Owner,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<Claim>> {
        self.claim_run(req, owner, lease_ms, now).await
    }

    async fn renew(
        &self,
        lease: &Lease,
        owner: &str,
        lease_ms: i64,
        when_due: bool,
        now: i64,
    ) -> Result<Option<Held>> {
        self.renew_lease(lease, owner, (lease_ms, when_due), now)
            .await
    }

    async fn append_logs(
        &self,
        batch: &LogBatch,
        owner: &str,
        max_bytes: u64,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.backend.begin().await?;
        if !logs::append_logs(&mut *tx, batch, owner, max_bytes, now).await? {
            return Ok(false);
        }
        B::commit(tx).await?;
        Ok(true)
    }

    async fn complete_logged(
        &self,
        c: &Completion,
        owner: &str,
        max_log_bytes: u64,
        now: i64,
    ) -> Result<Option<Effects>> {
        let done = self.complete_run(c, owner, None, max_log_bytes, now);
        Ok(done.await?.map(|(effects, _)| effects))
    }

    async fn complete_taking(
        &self,
        c: &Completion,
        owner: &Owner,
        max_log_bytes: u64,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<(Effects, Option<Claim>)>> {
        let taking = Some((owner, lease_ms));
        (self.complete_run(c, &owner.name, taking, max_log_bytes, now)).await
    }

    async fn release(
        &self,
        lease: &Lease,
        owner: &str,
        max_lost: u32,
        now: i64,
    ) -> Result<Option<Effects>> {
        let which = leases::LostLease::HandedBack { lease, owner };
        self.lose(which, max_lost, now).await
    }

    async fn reap(&self, now: i64, max_lost: u32) -> Result<Effects> {
        let expired = leases::expired(&mut *self.backend.conn().await?, now).await?;
        let mut effects = Effects::default();
        for (id, attempt) in expired {
            let which = leases::LostLease::Expired {
                job_run_id: &id,
                attempt: attempt as u32,
            };
            if let Some(e) = self.lose(which, max_lost, now).await? {
                effects.absorb(e);
            }
        }
        Ok(effects)
    }

    async fn stale_queued(&self, before: i64, fleet: &str, limit: u64) -> Result<Vec<Dispatch>> {
        reads::stale_queued(&mut *self.backend.conn().await?, before, fleet, limit).await
    }

    async fn queued_by_fleet(&self) -> Result<Vec<(String, u64)>> {
        reads::queued_by_fleet(&mut *self.backend.conn().await?).await
    }

    async fn cancel_build(&self, id: &str, now: i64) -> Result<Option<Effects>> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        if !actions::cancel_build(&mut *tx, id, now, &mut work).await? {
            return Ok(None);
        }
        self.finish(tx, work, now).await.map(Some)
    }

    async fn build(&self, id: &str) -> Result<Option<BuildView>> {
        reads::build(&mut *self.backend.conn().await?, id).await
    }

    async fn builds(&self, filter: &BuildFilter) -> Result<Vec<BuildView>> {
        history::builds(&mut *self.backend.conn().await?, filter).await
    }

    async fn logs(&self, job_run_id: &str, after: i64, limit: u32) -> Result<Vec<LogRow>> {
        log_reads::logs(&mut *self.backend.conn().await?, job_run_id, after, limit).await
    }

    async fn downstream_builds(&self, id: &str) -> Result<Vec<String>> {
        reads::downstream_builds(&mut *self.backend.conn().await?, id).await
    }

    async fn unfinished_builds(&self) -> Result<u64> {
        reads::unfinished_builds(&mut *self.backend.conn().await?).await
    }

    async fn register_runner(
        &self,
        name: &str,
        fleets: &[String],
        token_hash: &str,
        now: i64,
    ) -> Result<String> {
        let mut conn = self.backend.writer().await?;
        registry::register_runner(&mut *conn, name, fleets, token_hash, now).await
    }

    async fn runner_seen(&self, token_hash: &str, now: i64) -> Result<Option<RunnerView>> {
        registry::runner_seen(&mut *self.backend.conn().await?, token_hash, now).await
    }

    async fn runners(&self) -> Result<Vec<RunnerView>> {
        registry::runners(&mut *self.backend.conn().await?).await
    }

    async fn register_driver(
        &self,
        driver: &str,
        runner: &str,
        resources: &[String],
        token_hash: &str,
        now: i64,
    ) -> Result<String> {
        let mut tx = self.backend.begin().await?;
        let id = drivers::register(&mut *tx, driver, runner, resources, token_hash, now).await?;
        B::commit(tx).await?;
        Ok(id)
    }

    async fn drivers(&self) -> Result<Vec<DriverView>> {
        drivers::drivers(&mut *self.backend.conn().await?).await
    }

    async fn driver_context(&self, job_run_id: &str) -> Result<DriverContext> {
        drivers::context(&mut *self.backend.conn().await?, job_run_id).await
    }

    async fn accept_delivery(
        &self,
        d: &Delivery,
        now: i64,
    ) -> Result<Option<(Vec<String>, Effects)>> {
        let mut tx = self.backend.begin().await?;
        if !registry::record_delivery(&mut *tx, &d.forge, &d.id, now).await? {
            return Ok(None);
        }
        for head in &d.heads {
            registry::put_product(&mut *tx, head, now).await?;
        }
        let mut work = Work::default();
        let mut ids = Vec::with_capacity(d.builds.len());
        for planned in &d.builds {
            let id = match planned {
                PlannedBuild::Run(new) => {
                    builds::insert_build(&mut *tx, new, None, now, &mut work).await?
                }
                PlannedBuild::ConfigError { build, error } => {
                    let id = builds::insert_config_error(&mut *tx, build, error, now).await?;
                    work.effects.created.push(id.clone());
                    if build.trigger.reports_to_forge() {
                        work.effects.report.push(id.clone());
                    }
                    id
                }
            };
            ids.push(id);
        }
        Ok(Some((ids, self.finish(tx, work, now).await?)))
    }

    async fn put_secret(&self, scope: &str, name: &str, sealed: &str, now: i64) -> Result<()> {
        secrets::put(&mut *self.backend.writer().await?, scope, name, sealed, now).await
    }

    async fn secrets(&self, scope: &str) -> Result<Vec<SecretInfo>> {
        secrets::list(&mut *self.backend.conn().await?, scope).await
    }

    async fn delete_secret(&self, scope: &str, name: &str) -> Result<bool> {
        secrets::delete(&mut *self.backend.writer().await?, scope, name).await
    }

    async fn set_pr_secrets(&self, product: &str, allowed: bool) -> Result<bool> {
        secrets::set_pr_secrets(&mut *self.backend.writer().await?, product, allowed).await
    }

    async fn pr_secrets(&self, product: &str) -> Result<Option<bool>> {
        secrets::pr_secrets(&mut *self.backend.conn().await?, product).await
    }

    async fn run_counts(&self) -> Result<(Vec<RunCount>, u64)> {
        reads::run_counts(&mut *self.backend.conn().await?).await
    }

    async fn forge_status_due(&self, since: i64, limit: u32) -> Result<Vec<String>> {
        reads::forge_status_due(&mut *self.backend.conn().await?, since, limit).await
    }

    async fn set_forge_status(&self, id: &str, status: &str) -> Result<()> {
        reads::set_forge_status(&mut *self.backend.writer().await?, id, status).await
    }

    async fn job_run(&self, id: &str) -> Result<Option<JobRunView>> {
        reads::job_run(&mut *self.backend.conn().await?, id).await
    }

    async fn start_session(&self, id_hash: &str, expires_at: i64, now: i64) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        sessions::start(&mut *tx, id_hash, expires_at, now).await?;
        B::commit(tx).await
    }

    async fn session_live(&self, id_hash: &str, now: i64) -> Result<bool> {
        sessions::live(&mut *self.backend.conn().await?, id_hash, now).await
    }

    async fn end_session(&self, id_hash: &str) -> Result<bool> {
        sessions::end(&mut *self.backend.writer().await?, id_hash).await
    }

    fn pool_handle(&self) -> PoolHandle {
        self.backend.pool_handle()
    }

    async fn approve_job_run(&self, id: &str, by: &str, now: i64) -> Result<Option<Effects>> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        if !actions::approve(&mut *tx, id, by, now, &mut work).await? {
            return Ok(None);
        }
        self.finish(tx, work, now).await.map(Some)
    }

    async fn decline_job_run(
        &self,
        id: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<Effects>> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        if !actions::decline(&mut *tx, id, by, reason, now, &mut work).await? {
            return Ok(None);
        }
        self.finish(tx, work, now).await.map(Some)
    }

    async fn start_held_groups(&self, now: i64) -> Result<Effects> {
        let members = groups::unstarted(&mut *self.backend.conn().await?).await?;
        let work = Work {
            follow: members.into_iter().map(FollowUp::Start).collect(),
            ..Default::default()
        };
        let tx = self.backend.begin().await?;
        self.finish(tx, work, now).await
    }

    async fn cancel_job_run(&self, id: &str, now: i64) -> Result<Option<Effects>> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        if !actions::cancel_run(&mut *tx, id, now, &mut work).await? {
            return Ok(None);
        }
        self.finish(tx, work, now).await.map(Some)
    }

    async fn rerun_build(&self, id: &str, now: i64) -> Result<Option<(String, Effects)>> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        let Some(new_id) = actions::rerun(&mut *tx, id, now, &mut work).await? else {
            return Ok(None);
        };
        Ok(Some((new_id, self.finish(tx, work, now).await?)))
    }

    async fn retry_build(&self, id: &str, now: i64) -> Result<Option<Effects>> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        if !retry::retry_build(&mut *tx, id, now, &mut work).await? {
            return Ok(None);
        }
        self.finish(tx, work, now).await.map(Some)
    }

    async fn build_of_job_run(&self, job_run_id: &str) -> Result<Option<String>> {
        reads::build_of_job_run(&mut *self.backend.conn().await?, job_run_id).await
    }

    async fn job_edges(&self, build_id: &str) -> Result<Vec<(String, String)>> {
        reads::job_edges(&mut *self.backend.conn().await?, build_id).await
    }

    async fn log_tail(
        &self,
        job_run_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LogRow>> {
        log_reads::log_tail(&mut *self.backend.conn().await?, job_run_id, before, limit).await
    }

    async fn lease_info(&self, lease: &Lease, owner: &str) -> Result<Option<LeaseInfo>> {
        files::lease_info(&mut *self.backend.conn().await?, lease, owner).await
    }

    async fn add_artifact(
        &self,
        lease: &Lease,
        owner: &str,
        file: &StoredFile,
        now: i64,
    ) -> Result<Option<ArtifactView>> {
        let mut conn = self.backend.writer().await?;
        files::add_artifact(&mut *conn, lease, owner, file, now).await
    }

    async fn artifact(&self, id: &str) -> Result<Option<ArtifactView>> {
        files::artifact(&mut *self.backend.conn().await?, id).await
    }

    async fn build_artifacts(&self, build_id: &str) -> Result<Vec<ArtifactView>> {
        files::build_artifacts(&mut *self.backend.conn().await?, build_id).await
    }

    async fn find_cache(
        &self,
        product: &str,
        scopes: &[String],
        name: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<CacheView>> {
        let mut conn = self.backend.conn().await?;
        files::find_cache(&mut *conn, product, scopes, name, key, now).await
    }

    async fn cache(&self, id: &str) -> Result<Option<CacheView>> {
        files::cache(&mut *self.backend.conn().await?, id).await
    }

    async fn put_cache(
        &self,
        product: &str,
        scope: &str,
        name: &str,
        file: &StoredFile,
        now: i64,
    ) -> Result<Option<CacheView>> {
        let mut conn = self.backend.writer().await?;
        files::put_cache(&mut *conn, product, scope, name, file, now).await
    }

    async fn evict_caches(&self, product: &str, limit: u64) -> Result<Vec<CacheView>> {
        let mut tx = self.backend.begin().await?;
        let removed = files::evict_caches(&mut *tx, product, limit).await?;
        B::commit(tx).await?;
        Ok(removed)
    }
}
