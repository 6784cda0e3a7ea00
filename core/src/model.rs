//! The checked model a `.conveyor.yml` compiles into. Every value here has been
//! validated: names are well formed, references resolve, the DAG has no cycle.

use serde::{Deserialize, Serialize};

use crate::context::Gate;
use crate::diag::Pos;
use crate::expr::Expr;

/// A product: one `.conveyor.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub name: String,
    /// What the product is, in a sentence: shown on its page.
    #[serde(default)]
    pub description: Option<String>,
    pub repo: Option<String>,
    pub triggers: Vec<Trigger>,
    pub belts: Vec<Belt>,
}

impl Product {
    pub fn belt(&self, name: &str) -> Option<&Belt> {
        self.belts.iter().find(|b| b.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    ScmEvent(ScmTrigger),
    UpstreamBuild(UpstreamTrigger),
    Schedule(ScheduleTrigger),
}

/// Builds on a clock: a cron pattern (UTC), the branch whose head they build, the belts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleTrigger {
    pub cron: String,
    /// `None`: the product's branch (its repository's default one).
    pub branch: Option<String>,
    pub belts: Option<Vec<String>>,
}

impl ScheduleTrigger {
    /// What identifies this schedule across config changes: a changed pattern, branch or
    /// belt list is a new schedule, which starts from the time it is first seen.
    pub fn key(&self) -> String {
        let belts = self.belts.as_ref().map(|b| b.join(",")).unwrap_or_default();
        format!(
            "{}|{}|{belts}",
            self.cron,
            self.branch.as_deref().unwrap_or("")
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScmEventType {
    PullRequest,
    Merge,
    Push,
    Tag,
}

impl ScmEventType {
    pub const ALL: [&'static str; 4] = ["pull-request", "merge", "push", "tag"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pull-request" => Some(Self::PullRequest),
            "merge" => Some(Self::Merge),
            "push" => Some(Self::Push),
            "tag" => Some(Self::Tag),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScmTrigger {
    pub repo: Option<String>,
    pub event: ScmEventType,
    /// Branch names or glob patterns; empty means any branch.
    pub branches: Vec<String>,
    pub belts: Option<Vec<String>>,
}

/// Which upstream build a manual trigger reads outputs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildSelector {
    Last,
    LastSuccessful,
    LastFailure,
    Number(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTrigger {
    /// Where `upstream-product` and `upstream-belt` are written, for messages.
    #[serde(skip)]
    pub pos: Pos,
    #[serde(skip)]
    pub belt_pos: Pos,
    pub product: String,
    pub belt: Option<String>,
    pub build: BuildSelector,
    pub belts: Option<Vec<String>>,
    /// The events and branches of the upstream build that fire this trigger.
    #[serde(default)]
    pub gate: Gate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Belt {
    pub name: String,
    pub jobs: Vec<Job>,
    /// `(from, to)` indices into `jobs`: `to` waits for `from`. Sorted, no duplicates.
    pub edges: Vec<(usize, usize)>,
    /// The belt's `if`, over the build's context only: false skips every job.
    #[serde(default)]
    pub condition: Option<Expr>,
    /// The belt's (or the product's) concurrency group: one build of it runs at a time.
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
}

/// A concurrency group: at most one member runs at a time, the others wait in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    /// The group's name, which may hold `{{ conveyor.branch }}` and the other context names.
    pub group: String,
    /// A newer member cancels the older ones of its group.
    #[serde(default)]
    pub cancel_superseded: bool,
}

impl Belt {
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    pub inputs: Vec<Input>,
    pub needs: Vec<String>,
    /// `pre-run` then `commands`, with every reference rewritten to an environment variable.
    pub script: String,
    pub driver: Option<String>,
    pub refs: Vec<Reference>,
    pub outputs: Vec<Output>,
    pub downstreams: Vec<Downstream>,
    pub fleet: String,
    pub env: Vec<(String, String)>,
    /// The names of the secrets the job receives as environment variables.
    #[serde(default)]
    pub secrets: Vec<String>,
    pub timeout_secs: Option<u64>,
    pub retries: u32,
    pub condition: Option<Expr>,
    /// The `if` as written, for the reason a skipped job shows.
    #[serde(default)]
    pub condition_text: Option<String>,
    pub manual: bool,
    /// The job's concurrency group: one job run of it runs at a time.
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
    /// Paths (globs allowed) uploaded after the job, relative to its workspace.
    pub artifacts: Vec<String>,
    /// Whether the artifacts are kept when the job fails too (`when: always`).
    #[serde(default)]
    pub artifacts_always: bool,
    /// The caches restored before the job and saved after it succeeds.
    #[serde(default)]
    pub caches: Vec<Cache>,
    /// The script as written and where each of its lines is in the file; `None` for a
    /// driver's job and for a product stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_source: Option<ScriptSource>,
    #[serde(skip)]
    pub pos: Pos,
}

/// A cache: `paths` kept under a key made of `name` and a hash of the `key` files' contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    /// The key's prefix: caches of one name fall back to each other.
    pub name: String,
    /// Files (relative to the workspace) whose contents make the key.
    pub key_files: Vec<String>,
    /// Files and directories (relative to the workspace) the cache keeps.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Input {
    Source,
    Git {
        url: String,
    },
    Job {
        job: String,
    },
    Product {
        target: ProductRef,
        #[serde(skip)]
        pos: Pos,
    },
}

/// A place in another product: `product`, `product.job` or `product.belt.job`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductRef {
    pub product: String,
    pub belt: Option<String>,
    pub job: Option<String>,
}

/// What a reference in a script or condition points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RefTarget {
    /// An output of a job of the same belt.
    Job { job: String, output: String },
    /// An output of an upstream product's build.
    Product { target: ProductRef, output: String },
}

/// The job's script as its author wrote it, and where: what the runner shows for each command
/// it runs (`$ make ${build.VERSION}`, never the values) and the lines bash's messages and the
/// failure name (`.conveyor.yml:14`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSource {
    /// The file the script was written in: `.conveyor.yml`, `.conveyor/NAME.yml`, or what a
    /// product registered through the API is called.
    pub file: String,
    /// The script before its references were rewritten; line for line [`JobSpec::script`].
    pub text: String,
    /// The file's line of each line of the script (`lines[0]` is the script's first line).
    pub lines: Vec<u32>,
}

impl ScriptSource {
    /// `FILE:LINE` of the script's line `n` (1-based), if known.
    pub fn locate(&self, n: usize) -> Option<String> {
        let line = self.lines.get(n.checked_sub(1)?)?;
        Some(format!("{}:{line}", self.file))
    }
}

/// A reference and the environment variable the runner binds to its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub env: String,
    pub target: RefTarget,
    /// The reference as written, for messages and the UI.
    pub text: String,
    #[serde(skip)]
    pub pos: Pos,
}

/// A declared output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Output {
    pub name: String,
    /// `String: K=<word>`: a shell word evaluated at the end of the job.
    pub word: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downstream {
    pub product: String,
    /// `None` means every belt of the downstream product.
    pub belts: Option<Vec<String>>,
    /// The events and branches of this build that fire the downstream.
    #[serde(default)]
    pub gate: Gate,
    #[serde(skip)]
    pub pos: Pos,
}
