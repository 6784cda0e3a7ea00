//! The compiler: a `.conveyor.yml` text → a checked [`Product`], or every located error.

mod env;
mod fields;
mod files;
mod gating;
mod job;
mod lines;
mod matrix;
mod refs;
mod secrets;
mod trigger;

use std::collections::HashMap;

use fields::Fields;
pub use job::{JOB_KEYS, MAX_RETRIES};
pub use refs::STDOUT;

use crate::dag;
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::model::{Belt, Concurrency, Downstream, Product};
use crate::names;
use crate::yaml::{self, Node, Value};

/// The longest repository URL or path a product may name.
pub const MAX_REPO_LEN: usize = 2048;

/// The fleet a job runs on when none is named.
pub const DEFAULT_FLEET: &str = "default";

const PRODUCT_KEYS: &[&str] = &[
    "product",
    "triggers",
    "belts",
    "fleet",
    "env",
    "secrets",
    "repo",
    "description",
    "concurrency",
];
const BELT_KEYS: &[&str] = &[
    "name",
    "jobs",
    "fleet",
    "env",
    "secrets",
    "if",
    "concurrency",
];

/// What a belt or job inherits from the levels above it.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub fleet: String,
    pub env: Vec<(String, String)>,
    /// The names of the secrets a job receives.
    pub secrets: Vec<String>,
}

impl Defaults {
    fn top() -> Defaults {
        Defaults {
            fleet: DEFAULT_FLEET.into(),
            env: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// These defaults under a node's own `fleet` (replacing), `env` (overriding by key) and
    /// `secrets` (adding).
    pub(crate) fn under(&self, f: &Fields, d: &mut Diagnostics) -> Defaults {
        let out = Defaults {
            fleet: f
                .present("fleet")
                .and_then(|n| fleet(n, d))
                .unwrap_or_else(|| self.fleet.clone()),
            env: merged_env(&self.env, f.present("env"), d),
            secrets: secrets::merged(&self.secrets, f.present("secrets"), d),
        };
        if let Some(node) = f.present("secrets").or(f.present("env")) {
            let before = secrets::clashes(&self.secrets, &self.env);
            for name in secrets::clashes(&out.secrets, &out.env) {
                if !before.contains(&name) {
                    secrets::clash(&name, node.pos, d);
                }
            }
        }
        out
    }
}

/// The result of compiling one file: the product if there were no errors, and every
/// diagnostic (errors and warnings) in file order.
#[derive(Debug)]
pub struct Compiled {
    pub product: Option<Product>,
    /// What could be compiled despite errors (belts with errors left out); used only to
    /// check other products against this one, so one run reports as much as it can.
    pub partial: Option<Product>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Compiles one file. `file` is the name used in messages.
pub fn compile(file: &str, text: &str) -> Compiled {
    let mut d = Diagnostics::with_source(file, text);
    let product = match yaml::parse(text) {
        Ok(root) => product(&root, &mut d),
        Err(e) => {
            d.error(e.pos, e.message);
            None
        }
    };
    let (product, partial) = if d.has_errors() {
        (None, product)
    } else {
        (product, None)
    };
    Compiled {
        product,
        partial,
        diagnostics: d.into_sorted(),
    }
}

fn product(root: &Node, d: &mut Diagnostics) -> Option<Product> {
    if root.is_null() {
        d.error(
            root.pos,
            "the file is empty: a .conveyor.yml needs `product` and `belts`",
        );
        return None;
    }
    let f = Fields::read(root, "the product", PRODUCT_KEYS, d)?;
    let name = fields::required_name(
        &f,
        "product",
        "product",
        names::is_product_name,
        fields::PRODUCT_RULE,
        root.pos,
        "missing `product`: name the product, e.g. `product: my-app`",
        d,
    );
    let repo = f.present("repo").and_then(|n| {
        let repo = fields::string(n, "repo", d)?;
        match names::text_problem(&repo, MAX_REPO_LEN) {
            Some(problem) => {
                d.error(n.pos, format!("`repo` {problem}"));
                None
            }
            None => Some(repo),
        }
    });
    let description = f
        .present("description")
        .and_then(|n| fields::string(n, "description", d));
    let defaults = Defaults::top().under(&f, d);
    let concurrency = gating::product_level(&f, name.as_deref(), d);
    let belts = match f.present("belts") {
        Some(n) => belts(n, &defaults, concurrency.as_ref(), d),
        None => {
            d.error(
                root.pos,
                "missing `belts`: a product needs at least one belt",
            );
            Vec::new()
        }
    };
    let declared = declared_belts(f.present("belts"));
    let triggers = f
        .present("triggers")
        .map(|n| trigger::compile_all(n, name.as_deref(), &declared, d))
        .unwrap_or_default();
    let product = Product {
        name: name?,
        description,
        repo,
        triggers,
        belts,
    };
    gating::check_condition_products(&product, d);
    Some(product)
}

/// Names of the belts as written, including belts that failed to compile.
fn declared_belts(node: Option<&Node>) -> Vec<String> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|b| b.get("name").and_then(Node::scalar_text))
            .collect(),
        _ => Vec::new(),
    }
}

fn belts(
    node: &Node,
    defaults: &Defaults,
    concurrency: Option<&Concurrency>,
    d: &mut Diagnostics,
) -> Vec<Belt> {
    let items = fields::list(node, "belts", d);
    if items.is_empty() && matches!(node.value, Value::Seq(_)) {
        d.error(
            node.pos,
            "`belts` is empty: a product needs at least one belt",
        );
    }
    let mut seen: HashMap<String, Pos> = HashMap::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(f) = Fields::read(item, &format!("belt #{}", i + 1), BELT_KEYS, d) else {
            continue;
        };
        let missing = format!("missing `name` in belt #{}", i + 1);
        let rule = fields::NODE_RULE;
        let Some(name) = fields::required_name(
            &f,
            "name",
            "belt",
            names::is_node_name,
            rule,
            item.pos,
            &missing,
            d,
        ) else {
            continue;
        };
        if let Some(first) = seen.get(&name) {
            d.error(
                item.pos,
                format!(
                    "duplicate belt `{name}` (first defined at line {})",
                    first.line
                ),
            );
            continue;
        }
        seen.insert(name.clone(), item.pos);
        let defaults = defaults.under(&f, d);
        let condition = f
            .present("if")
            .and_then(|n| gating::belt_condition(n, &name, d));
        let own = f
            .present("concurrency")
            .and_then(|n| gating::concurrency(n, d));
        if let Some(mut belt) = belt(&name, f.present("jobs"), item.pos, &defaults, d) {
            belt.condition = condition;
            belt.concurrency = own.or_else(|| concurrency.cloned());
            out.push(belt);
        }
    }
    out
}

fn belt(
    name: &str,
    jobs_node: Option<&Node>,
    pos: Pos,
    defaults: &Defaults,
    d: &mut Diagnostics,
) -> Option<Belt> {
    let items = jobs_node
        .map(|n| fields::list(n, "jobs", d))
        .unwrap_or_default();
    if items.is_empty() {
        d.error(
            jobs_node.map_or(pos, |n| n.pos),
            format!("belt `{name}` has no jobs: add them under `jobs`"),
        );
        return None;
    }
    let errors_at_start = d.error_count();
    // First pass: names and declared outputs, so references may point at later jobs.
    let mut named: Vec<(Node, String)> = Vec::new();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut seen: HashMap<String, Pos> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let what = format!("job #{} of belt `{name}`", i + 1);
        let Some(n) = item.get("name") else {
            if matches!(item.value, Value::Map(_)) {
                d.error(item.pos, format!("missing `name` in {what}"));
            } else {
                d.error(
                    item.pos,
                    format!(
                        "expected {what} to be a mapping, found {}",
                        item.value.kind()
                    ),
                );
            }
            continue;
        };
        let Some(job_name) = fields::name(n, "job", names::is_node_name, fields::NODE_RULE, d)
        else {
            continue;
        };
        if gating::reserved(&job_name, "job", n.pos, d) {
            continue;
        }
        let instances = match item.get("matrix") {
            None => vec![(item.clone(), job_name.clone())],
            Some(_) => {
                let Some(list) = matrix::expand(item, &job_name, d) else {
                    continue;
                };
                groups.push((
                    job_name.clone(),
                    list.iter().map(|i| i.name.clone()).collect(),
                ));
                list.into_iter().map(|i| (i.node, i.name)).collect()
            }
        };
        for (node, job_name) in instances {
            if let Some(first) = seen.get(&job_name) {
                d.error(
                    item.pos,
                    format!(
                        "duplicate job `{job_name}` in belt `{name}` (first defined at line {})",
                        first.line
                    ),
                );
                continue;
            }
            seen.insert(job_name.clone(), item.pos);
            named.push((node, job_name));
        }
    }
    let belt_jobs = refs::BeltJobs::new(
        name,
        named
            .iter()
            .map(|(n, j)| (j.as_str(), job::declared_outputs(n)))
            .collect(),
    )
    .with_groups(groups);
    let jobs: Vec<_> = named
        .iter()
        .filter_map(|(node, job_name)| job::compile(node, job_name, &belt_jobs, defaults, d))
        .collect();
    if d.error_count() != errors_at_start || jobs.len() != named.len() {
        return None;
    }
    let edges = dag::edges(&jobs);
    for cycle in dag::cycles(jobs.len(), &edges) {
        let path: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(|&i| jobs[i].name.as_str())
            .collect();
        d.error(
            jobs[cycle[0]].pos,
            format!(
                "belt `{name}` has a dependency cycle: {}",
                path.join(" -> ")
            ),
        );
    }
    Some(Belt {
        name: name.to_string(),
        jobs,
        edges,
        condition: None,
        concurrency: None,
    })
}

/// A fleet name at product, belt or job level.
fn fleet(node: &Node, d: &mut Diagnostics) -> Option<String> {
    fields::name(node, "fleet", names::is_fleet_name, fields::FLEET_RULE, d)
}

/// `env` over inherited values: keys are variable names, values scalars.
fn merged_env(
    inherited: &[(String, String)],
    node: Option<&Node>,
    d: &mut Diagnostics,
) -> Vec<(String, String)> {
    let mut env = inherited.to_vec();
    let Some(node) = node else {
        return env;
    };
    let Value::Map(entries) = &node.value else {
        d.error(
            node.pos,
            format!(
                "`env` must be a mapping of NAME: value, found {}",
                node.value.kind()
            ),
        );
        return env;
    };
    for (k, v) in entries {
        let key = k.scalar_text().unwrap_or_default();
        if !names::is_var_name(&key) {
            d.error(
                k.pos,
                format!("invalid environment variable name `{key}` in `env`"),
            );
            continue;
        }
        if key.starts_with("CONVEYOR_") {
            d.error(k.pos, format!("environment variable `{key}` is reserved: names starting with `CONVEYOR_` are set by conveyor"));
            continue;
        }
        let value = match &v.value {
            Value::Null => String::new(),
            _ => {
                match v.scalar_text() {
                    Some(t) => t,
                    None => {
                        d.error(v.pos, format!("`env` value of `{key}` must be a string, number or boolean, found {}", v.value.kind()));
                        continue;
                    }
                }
            }
        };
        env.retain(|(k2, _)| *k2 != key);
        env.push((key, value));
    }
    env
}

/// `downstreams` in either shape: a list of `{downstream-product, belts}`, or
/// `{belts: [{downstream-product, belt}]}`.
fn downstreams(node: &Node, d: &mut Diagnostics) -> Vec<Downstream> {
    let mut out: Vec<Downstream> = Vec::new();
    let items: &[Node] = match &node.value {
        Value::Seq(items) => items,
        Value::Map(_) => {
            match Fields::read(node, "`downstreams`", &["belts"], d)
                .and_then(|f| f.present("belts"))
            {
                Some(n) => fields::list(n, "downstreams.belts", d),
                None => {
                    d.error(node.pos, "`downstreams` as a mapping needs `belts: [{downstream-product: P, belt: B}]`");
                    &[]
                }
            }
        }
        other => {
            d.error(node.pos, format!("`downstreams` must be a list of `downstream-product` entries or a mapping with `belts`, found {}", other.kind()));
            &[]
        }
    };
    for item in items {
        let Some(f) = Fields::read(
            item,
            "a downstream",
            &["downstream-product", "belts", "belt", "events", "branches"],
            d,
        ) else {
            continue;
        };
        let Some(product) = f.present("downstream-product").and_then(|n| {
            fields::name(
                n,
                "product",
                names::is_product_name,
                fields::PRODUCT_RULE,
                d,
            )
        }) else {
            if f.present("downstream-product").is_none() {
                d.error(item.pos, "a downstream needs `downstream-product`");
            }
            continue;
        };
        let mut belts: Vec<String> = Vec::new();
        for key in ["belts", "belt"] {
            if let Some(n) = f.present(key) {
                belts.extend(fields::string_list(n, key, d).into_iter().map(|(b, _)| b));
            }
        }
        let belts = (!belts.is_empty()).then_some(belts);
        let gate = gating::gate(&f, "a downstream", d);
        match out
            .iter_mut()
            .find(|o| o.product == product && o.gate == gate)
        {
            Some(existing) => match (&mut existing.belts, belts) {
                (Some(have), Some(more)) => have.extend(more),
                (have, _) => *have = None,
            },
            None => out.push(Downstream {
                product,
                belts,
                gate,
                pos: item.pos,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests;
