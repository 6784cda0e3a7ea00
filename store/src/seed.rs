//! Seeding a long history fast, for benchmarks (`conveyor bench --history`) and tests: N
//! finished builds of registered products written with multi-row inserts, a batch of builds
//! per transaction, with their job runs, edges and a few log lines. The mix is realistic and
//! deterministic for a seed: most builds succeed, some fail (a job failed, the ones after it
//! skipped) or are cancelled; most come from webhooks on `main` or a branch, the rest by
//! hand, on a schedule, or from an upstream build; every belt of every product is used.

use crate::error::Result;
use crate::types::{BuildTrigger, NewBuild, ProductRecord};
use async_trait::async_trait;

/// What [`Seeding::seed_builds`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPlan {
    /// How many builds.
    pub builds: u64,
    /// The first build's creation time (ms since the epoch); each next one is
    /// `spacing_ms` later, so the newest is at `start_ms + (builds - 1) * spacing_ms`.
    pub start_ms: i64,
    pub spacing_ms: i64,
    /// Every `log_every`-th build's first job has `log_lines` lines of log (0: no logs).
    pub log_every: u64,
    pub log_lines: u32,
    /// The generator's seed: the same plan writes the same mix.
    pub seed: u64,
}

impl SeedPlan {
    /// `builds` builds a minute apart ending about now, a log of 20 lines every 50 builds.
    pub fn ending_at(builds: u64, now: i64) -> SeedPlan {
        const MINUTE: i64 = 60_000;
        SeedPlan {
            builds,
            start_ms: now - builds as i64 * MINUTE,
            spacing_ms: MINUTE,
            log_every: 50,
            log_lines: 20,
            seed: 1,
        }
    }
}

/// What a seeding wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seeded {
    pub builds: u64,
    pub job_runs: u64,
    pub edges: u64,
    pub log_lines: u64,
}

#[async_trait]
pub trait Seeding: Send + Sync {
    /// Writes `plan.builds` finished builds of `products` (registered before; their numbers
    /// continue each product's own), in transactions of a few hundred builds.
    async fn seed_builds(&self, products: &[ProductRecord], plan: &SeedPlan) -> Result<Seeded>;
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// How one seeded build ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// This job failed; the jobs after it were skipped.
    Failed(usize),
    /// This job was cancelled while running; the jobs after it were cancelled too.
    Cancelled(usize),
}

impl Outcome {
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled(_) => "cancelled",
        }
    }

    /// Job `idx`'s state in a build that ended so.
    pub fn job_status(self, idx: usize) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed(k) if idx == k => "failed",
            Outcome::Failed(k) if idx > k => "skipped",
            Outcome::Cancelled(k) if idx >= k => "cancelled",
            _ => "succeeded",
        }
    }
}

/// One build to seed: what it is and how it ended.
#[derive(Debug, Clone)]
pub struct Planned {
    pub new: NewBuild,
    pub outcome: Outcome,
    pub created_at: i64,
}

/// The `i`-th build of a plan: its product and belt, trigger, ref and outcome. `upstream`
/// is an earlier build (id, product, belt, number) an upstream trigger may name.
pub fn plan_build(
    products: &[ProductRecord],
    rng: &mut Rng,
    created_at: i64,
    upstream: Option<(&str, &str, &str, u64)>,
) -> Option<Planned> {
    let product = &products[rng.below(products.len() as u64) as usize];
    let belts = &product.model.belts;
    let belt = &belts.get(rng.below(belts.len() as u64) as usize)?;
    let jobs = belt.jobs.len().max(1) as u64;
    let outcome = match rng.below(100) {
        0..=84 => Outcome::Succeeded,
        85..=96 => Outcome::Failed(rng.below(jobs) as usize),
        _ => Outcome::Cancelled(rng.below(jobs) as usize),
    };
    let (trigger, git_ref) = trigger(rng, upstream);
    let sha = format!(
        "{:016x}{:016x}{:08x}",
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64() as u32
    );
    let new = NewBuild {
        product: product.name.clone(),
        belt: belt.name.clone(),
        trigger,
        context: None,
        git_ref: Some(git_ref),
        sha: Some(sha),
        model: None,
        resource: None,
    };
    Some(Planned {
        new,
        outcome,
        created_at,
    })
}

/// A trigger and ref: 60% webhooks (half on `main`, then branches, pull requests, tags),
/// 20% by hand, 15% schedules, 5% upstream builds (when there is one).
fn trigger(rng: &mut Rng, upstream: Option<(&str, &str, &str, u64)>) -> (BuildTrigger, String) {
    let roll = rng.below(100);
    let git_ref = match rng.below(10) {
        0..=4 => "refs/heads/main".to_string(),
        5..=7 => format!("refs/heads/feature-{}", rng.below(40)),
        8 => format!("refs/pull/{}/head", rng.below(500)),
        _ => format!("refs/tags/v1.{}", rng.below(100)),
    };
    let trigger = match (roll, upstream) {
        (0..=59, _) => BuildTrigger::Webhook {
            forge: "github".into(),
            git_ref: git_ref.clone(),
            repository: Some("acme/app".into()),
        },
        (60..=79, _) => BuildTrigger::Manual,
        (80..=94, _) | (_, None) => BuildTrigger::Schedule {
            cron: "0 3 * * *".into(),
            tick: 0,
        },
        (_, Some((id, product, belt, number))) => BuildTrigger::Upstream {
            build_id: id.into(),
            product: product.into(),
            belt: belt.into(),
            number,
        },
    };
    (trigger, git_ref)
}
