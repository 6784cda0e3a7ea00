//! History at scale: keyset pages of builds ([`cursor_of`] and a [`crate::BuildFilter`]'s
//! `before`) and each belt's latest build per state. The [`History`] use cases are part of
//! the [`crate::Store`] boundary (a supertrait, as [`crate::Catalog`] is).

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{BuildView, ProductRecord};

/// The kinds of trigger a list can be filtered by.
pub const TRIGGER_KIND: [&str; 5] = ["manual", "webhook", "upstream", "schedule", "resource"];

/// The cursor that continues a list after `build` (opaque to clients).
pub fn cursor_of(build: &BuildView) -> String {
    format!("{}.{}", build.created_at, build.id)
}

/// A cursor's position (creation time and id), or `None` when it is not one.
pub fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (at, id) = cursor.split_once('.')?;
    let at = at.parse::<i64>().ok()?;
    (!id.is_empty() && id.len() <= 128 && !id.contains('\0')).then(|| (at, id.to_string()))
}

/// What retention keeps: builds younger than `max_age_ms`, and the last `keep_last` of each
/// belt; a finished build past every rule given is deleted (none given: nothing is). A
/// belt's latest build in each state, and every unfinished build, are always kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age_ms: Option<i64>,
    pub keep_last: Option<u32>,
}

/// What one sweep deleted: how many builds, and the artifact objects to delete from the
/// object store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    pub builds: u64,
    pub objects: Vec<String>,
}

/// The builds linked to one build by upstream triggers, without their jobs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildChain {
    /// The build that triggered it, the one that triggered that, and so on: nearest first.
    pub upstream: Vec<BuildView>,
    /// The builds it triggered and theirs, by distance then id; each names its parent in
    /// `upstream_build_id`.
    pub downstream: Vec<BuildView>,
}

#[async_trait]
pub trait History: Send + Sync {
    /// The chain of builds linked to build `id`, at most `depth` links either way and at most
    /// `limit` downstream builds: two statements (a recursive walk each way).
    async fn build_chain(&self, id: &str, depth: u32, limit: u32) -> Result<BuildChain>;

    /// The latest build of each of `belts` of `product` in each state it has one in,
    /// without their jobs: one indexed probe per belt and state, in one statement.
    async fn latest_by_state(&self, product: &str, belts: &[String]) -> Result<Vec<BuildView>>;

    /// Each product's latest build, without its jobs (a product with none has no entry):
    /// one statement, an indexed probe per product.
    async fn latest_of_products(&self) -> Result<Vec<BuildView>>;

    /// The products registered for any of these repositories, by key (trimmed, no trailing
    /// `/` or `.git`, lower case): an indexed lookup, for a webhook.
    async fn products_of_repos(&self, keys: &[String]) -> Result<Vec<ProductRecord>>;

    /// The products whose config has a `schedule:` trigger (and perhaps a few others: the
    /// filter reads the stored model's text), for the upkeep that fires schedules.
    async fn scheduled_products(&self) -> Result<Vec<ProductRecord>>;

    /// Deletes at most `batch` builds that `retention` no longer keeps, with their job runs,
    /// logs and artifact rows, in one short transaction.
    async fn sweep(&self, retention: &Retention, now: i64, batch: u32) -> Result<Swept>;

    /// Whether the database answers (a constant statement, for `/health`).
    async fn ping(&self) -> Result<()>;
}
