//! The SQL both backends share. SQLite and Postgres accept the same statements here
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so the queries are written once and a
//! macro instantiates them for each backend's concrete types; what differs (connecting,
//! opening a write transaction) lives in `sqlite.rs` and `postgres.rs`.

use std::collections::{BTreeMap, HashMap};

use conveyor_core::model::{Input, Job, Product, Reference};
use conveyor_core::protocol::SourceSpec;

use super::{Result, StoreError};

pub fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

pub fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(corrupt)
}

pub fn outputs_of(json: Option<String>) -> Result<BTreeMap<String, String>> {
    json.map_or(Ok(BTreeMap::new()), |s| from_json(&s))
}

/// A fresh random token: 128 bits from two UUIDv4s' random parts.
pub fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The `CONVEYOR_*` variables a job sees.
pub struct JobContext<'a> {
    pub product: &'a str,
    pub belt: &'a str,
    pub number: i64,
    pub build_id: &'a str,
    pub job_run_id: &'a str,
    pub job: &'a str,
    pub attempt: i64,
    pub sha: Option<&'a str>,
    pub git_ref: Option<&'a str>,
}

pub fn conveyor_env(c: &JobContext) -> Vec<(String, String)> {
    let pairs = [
        ("CONVEYOR", "true".to_string()),
        ("CONVEYOR_PRODUCT", c.product.to_string()),
        ("CONVEYOR_BELT", c.belt.to_string()),
        ("CONVEYOR_BUILD_NUMBER", c.number.to_string()),
        ("CONVEYOR_BUILD_ID", c.build_id.to_string()),
        ("CONVEYOR_JOB", c.job.to_string()),
        ("CONVEYOR_JOB_RUN_ID", c.job_run_id.to_string()),
        ("CONVEYOR_ATTEMPT", c.attempt.to_string()),
        ("CONVEYOR_COMMIT_SHA", c.sha.unwrap_or("").to_string()),
        ("CONVEYOR_COMMIT_REF", c.git_ref.unwrap_or("").to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Where a job's `source` comes from, if it takes one.
pub fn source_of(
    job: &Job,
    local: Option<&str>,
    repo: Option<&str>,
    sha: Option<&str>,
) -> Option<SourceSpec> {
    if !job.inputs.contains(&Input::Source) {
        return None;
    }
    match (local, repo, sha) {
        (Some(path), _, _) => Some(SourceSpec::Local {
            path: path.to_string(),
        }),
        (None, Some(url), Some(sha)) => Some(SourceSpec::Git {
            url: url.to_string(),
            sha: sha.to_string(),
        }),
        _ => None,
    }
}

pub fn git_inputs(job: &Job) -> Vec<String> {
    job.inputs
        .iter()
        .filter_map(|i| match i {
            Input::Git { url } => Some(url.clone()),
            _ => None,
        })
        .collect()
}

/// The references whose value must be known: all of them, or only the condition's.
pub fn condition_refs(job: &Job) -> Vec<&Reference> {
    let paths = job.condition.as_ref().map(|c| c.refs()).unwrap_or_default();
    job.refs
        .iter()
        .filter(|r| paths.contains(&r.text.as_str()))
        .collect()
}

/// Evaluates a job's `if` given its references' values.
pub fn condition_holds(job: &Job, values: &HashMap<String, String>) -> bool {
    job.condition
        .as_ref()
        .is_none_or(|c| c.eval(&|path: &str| values.get(path).cloned()))
}

/// The (product, belt) pairs a successful build of `product`/`belt` fires: its jobs'
/// `downstreams`, and every registered product with an `upstream-build` trigger on it.
pub fn downstream_targets(
    me: &Product,
    belt: &str,
    registered: &[Product],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |product: &str, belt: &str| {
        let pair = (product.to_string(), belt.to_string());
        if !out.contains(&pair) {
            out.push(pair);
        }
    };
    let by_name = |n: &str| registered.iter().find(|p| p.name == n);
    if let Some(b) = me.belt(belt) {
        for ds in b.jobs.iter().flat_map(|j| &j.downstreams) {
            let Some(target) = by_name(&ds.product) else {
                continue;
            };
            let belts: Vec<&str> = match &ds.belts {
                Some(list) => list.iter().map(String::as_str).collect(),
                None => target.belts.iter().map(|b| b.name.as_str()).collect(),
            };
            for tb in belts.into_iter().filter(|tb| target.belt(tb).is_some()) {
                add(&target.name, tb);
            }
        }
    }
    for p in registered {
        for t in &p.triggers {
            let conveyor_core::model::Trigger::UpstreamBuild(u) = t else {
                continue;
            };
            if u.product != me.name || u.belt.as_deref().is_some_and(|b| b != belt) {
                continue;
            }
            let belts: Vec<&str> = match &u.belts {
                Some(list) => list.iter().map(String::as_str).collect(),
                None => p.belts.iter().map(|b| b.name.as_str()).collect(),
            };
            for tb in belts {
                add(&p.name, tb);
            }
        }
    }
    out
}
