//! Compiling one job: its script, references, inputs, outputs and extensions.

use super::fields::{self, Fields};
use super::files;
use super::refs::{self, BeltJobs};
use crate::diag::{Diagnostics, Pos};
use crate::model::{Input, Job, Output, Reference};
use crate::script::{self, Context};
use crate::yaml::{Node, Value};
use crate::{duration, expr, names};

pub const JOB_KEYS: &[&str] = &[
    "name",
    "inputs",
    "pre-run",
    "commands",
    "outputs",
    "downstreams",
    "needs",
    "fleet",
    "env",
    "secrets",
    "timeout",
    "retries",
    "if",
    "manual",
    "artifacts",
    "cache",
    "driver",
    "concurrency",
];

/// The most retries a job may ask for.
pub const MAX_RETRIES: i64 = 10;

/// The declared output names of a job node, read before the jobs are compiled so that
/// references to later jobs can be checked.
pub fn declared_outputs(node: &Node) -> Vec<String> {
    let Some(Value::Seq(items)) = node.get("outputs").map(|n| &n.value) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| output_text(item).map(|(name, _)| name))
        .collect()
}

/// `K`, `String: K` or `String: K=<word>` → (name, word).
fn output_text(item: &Node) -> Option<(String, Option<String>)> {
    let text = match &item.value {
        Value::Str(s) => s.clone(),
        Value::Map(entries) if entries.len() == 1 => entries[0].1.scalar_text()?,
        _ => return None,
    };
    match text.split_once('=') {
        Some((k, w)) => Some((k.trim().to_string(), Some(w.to_string()))),
        None => Some((text.trim().to_string(), None)),
    }
}

pub fn compile(
    node: &Node,
    name: &str,
    belt: &BeltJobs,
    inherited: &super::Defaults,
    d: &mut Diagnostics,
) -> Option<Job> {
    let what = format!("job `{name}`");
    let f = Fields::read(node, &what, JOB_KEYS, d)?;
    let own = inherited.under(&f, d);
    let errors_before = d.error_count();
    let pre_run = f
        .present("pre-run")
        .and_then(|n| Some((n, fields::script(n, "pre-run", d)?)));
    let commands = f
        .present("commands")
        .and_then(|n| Some((n, fields::script(n, "commands", d)?)));
    let driver = f.present("driver").and_then(|n| driver(n, d));
    match (&commands, f.present("driver")) {
        (None, None) if f.present("commands").is_none() => d.error(
            node.pos,
            format!("job `{name}` has neither `commands` nor `driver`: give it a script to run"),
        ),
        (Some(_), Some(_)) => d.error(
            node.pos,
            format!("job `{name}` has both `commands` and `driver`: a job runs either a script or a driver"),
        ),
        _ => {}
    }
    let mut refs = Vec::new();
    let written: Vec<(&Node, &str)> = [&pre_run, &commands]
        .into_iter()
        .flatten()
        .map(|(n, text)| (*n, text.as_str()))
        .collect();
    let script_source = (!written.is_empty()).then(|| super::lines::source(&written, d));
    let parts: Vec<String> = written
        .iter()
        .map(|(n, text)| script_part(n, text, name, &mut refs, belt, d))
        .collect();
    let mut script = String::new();
    for part in parts {
        if !script.is_empty() && !script.ends_with('\n') {
            script.push('\n');
        }
        script.push_str(&part);
    }
    let condition = f
        .present("if")
        .and_then(|n| condition(n, name, &mut refs, belt, d));
    let condition_text = f
        .present("if")
        .filter(|_| condition.is_some())
        .and_then(Node::scalar_text);
    let env = super::env::templates(own.env, &mut refs, belt, node.pos, d);
    let (artifacts, artifacts_always) = f
        .present("artifacts")
        .map(|n| files::artifacts(n, name, d))
        .unwrap_or_default();
    let job = Job {
        name: name.to_string(),
        inputs: f
            .present("inputs")
            .map(|n| inputs(n, name, belt, d))
            .unwrap_or_default(),
        needs: f
            .present("needs")
            .map(|n| needs(n, name, belt, d))
            .unwrap_or_default(),
        script,
        fleet: driver.as_deref().map_or(own.fleet, crate::driver::queue_of),
        driver,
        refs,
        outputs: f
            .present("outputs")
            .map(|n| outputs(n, name, d))
            .unwrap_or_default(),
        downstreams: f
            .present("downstreams")
            .map(|n| super::downstreams(n, d))
            .unwrap_or_default(),
        env,
        secrets: own.secrets,
        timeout_secs: f.present("timeout").and_then(|n| timeout(n, d)),
        retries: f
            .present("retries")
            .and_then(|n| retries(n, d))
            .unwrap_or(0),
        condition,
        condition_text,
        concurrency: f
            .present("concurrency")
            .and_then(|n| super::gating::concurrency(n, d)),
        manual: f
            .present("manual")
            .and_then(|n| fields::boolean(n, "manual", d))
            .unwrap_or(false),
        artifacts,
        artifacts_always,
        caches: f
            .present("cache")
            .map(|n| files::caches(n, name, d))
            .unwrap_or_default(),
        script_source,
        pos: node.pos,
    };
    if let Some(name) = &job.driver {
        not_for_drivers(&f, &job, name, d);
    }
    (d.error_count() == errors_before).then_some(job)
}

/// Keys that shape a script's run, which a driver job does not have: refused where written.
fn not_for_drivers(f: &Fields, job: &Job, driver: &str, d: &mut Diagnostics) {
    let name = &job.name;
    for key in ["pre-run", "fleet", "timeout", "artifacts", "cache"] {
        if let Some(node) = f.present(key) {
            d.error(
                node.pos,
                format!("`{key}` does not apply to job `{name}`: it runs driver `{driver}`, not a script; remove `{key}`"),
            );
        }
    }
    let workspace = job
        .inputs
        .iter()
        .find(|i| matches!(i, Input::Source | Input::Git { .. }));
    if let (Some(input), Some(node)) = (workspace, f.present("inputs")) {
        let shown = match input {
            Input::Git { url } => format!("git:{url}"),
            _ => "source".to_string(),
        };
        d.error(
            node.pos,
            format!("input `{shown}` does not apply to job `{name}`: driver `{driver}` gets no workspace (its payload carries the commit); remove it"),
        );
    }
    if let Some(out) = job.outputs.iter().find(|o| o.word.is_some()) {
        let node = f.present("outputs").map_or(job.pos, |n| n.pos);
        d.error(
            node,
            format!("output `{}` of job `{name}` is a shell word, which driver `{driver}` does not evaluate: write `{}` and return it in the result's `data`", out.name, out.name),
        );
    }
}

/// Finds the references in one script part and rewrites them.
fn script_part(
    node: &Node,
    text: &str,
    job: &str,
    refs: &mut Vec<Reference>,
    belt: &BeltJobs,
    d: &mut Diagnostics,
) -> String {
    let found = script::scan(text);
    for hit in &found {
        let shown = &text[hit.start..hit.end];
        let pos = d.pos_in_scalar(node.pos, text, hit.start);
        if hit.context == Context::QuotedHeredoc {
            d.warning(
                pos,
                format!(
                    "reference `{shown}` in job `{job}` is inside a here-document with a quoted delimiter, where bash expands nothing; unquote the delimiter"
                ),
            );
        }
        add_ref(refs, &hit.path, shown, pos, belt, d);
    }
    script::rewrite(text, &found, |path| env_of(refs, path))
}

pub(super) fn env_of(refs: &[Reference], path: &str) -> String {
    refs.iter()
        .find(|r| r.text == path)
        .map_or_else(String::new, |r| r.env.clone())
}

/// Records a reference once per distinct path, numbering its environment variable.
pub(super) fn add_ref(
    refs: &mut Vec<Reference>,
    path: &str,
    shown: &str,
    pos: Pos,
    belt: &BeltJobs,
    d: &mut Diagnostics,
) {
    if refs.iter().any(|r| r.text == path) {
        return;
    }
    if let Some(target) = refs::resolve(path, shown, belt, pos, d) {
        refs.push(Reference {
            env: format!("CONVEYOR_REF_{}", refs.len() + 1),
            target,
            text: path.to_string(),
            pos,
        });
    }
}

fn condition(
    node: &Node,
    job: &str,
    refs: &mut Vec<Reference>,
    belt: &BeltJobs,
    d: &mut Diagnostics,
) -> Option<expr::Expr> {
    let text = fields::string(node, "if", d)?;
    match expr::parse(&text) {
        Ok(e) => {
            for path in e.refs() {
                if path.starts_with("conveyor.") {
                    let where_ = format!("`if` of job `{job}`");
                    super::gating::context_name(path, &where_, node.pos, d);
                } else if script::is_ref_path(path) {
                    add_ref(refs, path, path, node.pos, belt, d);
                } else {
                    d.error(
                        node.pos,
                        format!(
                            "invalid reference `{path}` in `if` of job `{job}`: write `job.OUTPUT`"
                        ),
                    );
                }
            }
            Some(e)
        }
        Err(msg) => {
            d.error(node.pos, format!("invalid `if` in job `{job}`: {msg}"));
            None
        }
    }
}

fn inputs(node: &Node, job: &str, belt: &BeltJobs, d: &mut Diagnostics) -> Vec<Input> {
    let mut out = Vec::new();
    for (text, pos) in fields::string_list(node, "inputs", d) {
        let input = if text == "source" {
            Input::Source
        } else if let Some(url) = text.strip_prefix("git:") {
            if url.trim().is_empty() {
                d.error(
                    pos,
                    format!("empty `git:` input in job `{job}`: write `git:<url>`"),
                );
                continue;
            }
            Input::Git {
                url: url.trim().to_string(),
            }
        } else if let Some(instances) = belt.group(&text) {
            out.extend(instances.iter().map(|i| Input::Job { job: i.clone() }));
            continue;
        } else if belt.contains(&text) {
            Input::Job { job: text }
        } else {
            let segs: Vec<&str> = text.split('.').collect();
            if let (1, Some(near)) = (segs.len(), names::suggest(&text, belt.names())) {
                d.error(
                    pos,
                    format!(
                        "unknown job `{text}` in `inputs` of job `{job}` (did you mean `{near}`?)"
                    ),
                );
                continue;
            }
            let target = refs::product_ref(&segs);
            if segs.len() > 3
                || segs.iter().any(|s| s.is_empty())
                || !names::is_product_name(&target.product)
            {
                d.error(
                    pos,
                    format!("invalid input `{text}` in job `{job}`: use `source`, `git:<url>`, a job of this belt, `product`, `product.job` or `product.belt.job`"),
                );
                continue;
            }
            Input::Product { target, pos }
        };
        out.push(input);
    }
    out
}

fn needs(node: &Node, job: &str, belt: &BeltJobs, d: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    for (text, pos) in fields::string_list(node, "needs", d) {
        if let Some(instances) = belt.group(&text) {
            out.extend(instances.iter().cloned());
        } else if belt.contains(&text) {
            out.push(text);
        } else {
            d.error(
                pos,
                format!(
                    "unknown job `{text}` in `needs` of job `{job}`{}",
                    names::hint(&text, belt.names())
                ),
            );
        }
    }
    out
}

fn outputs(node: &Node, job: &str, d: &mut Diagnostics) -> Vec<Output> {
    let mut out: Vec<Output> = Vec::new();
    for item in fields::list(node, "outputs", d) {
        if let Value::Map(entries) = &item.value
            && let Some((key, _)) = entries.first()
            && key.as_str() != Some("String")
        {
            let shown = key.scalar_text().unwrap_or_default();
            d.error(key.pos, format!("unknown output type `{shown}` in job `{job}`: outputs are strings, write `String: NAME`"));
            continue;
        }
        let Some((name, word)) = output_text(item) else {
            d.error(item.pos, format!("invalid output in job `{job}`: write `NAME`, `String: NAME` or `String: NAME=<word>`"));
            continue;
        };
        if !names::is_var_name(&name) {
            d.error(item.pos, format!("invalid output name `{name}` in job `{job}`: outputs are shell variable names ([A-Za-z_][A-Za-z0-9_]*)"));
        } else if out.iter().any(|o| o.name == name) {
            d.error(
                item.pos,
                format!("duplicate output `{name}` in job `{job}`"),
            );
        } else {
            out.push(Output { name, word });
        }
    }
    out
}

fn timeout(node: &Node, d: &mut Diagnostics) -> Option<u64> {
    let parsed = match &node.value {
        Value::Int(n) => duration::check_range(&n.to_string(), u64::try_from(*n).unwrap_or(0)),
        _ => match node.scalar_text() {
            Some(t) => duration::parse_secs(&t),
            None => Err(format!(
                "`timeout` must be a duration such as `30m`, found {}",
                node.value.kind()
            )),
        },
    };
    parsed.map_err(|msg| d.error(node.pos, msg)).ok()
}

fn retries(node: &Node, d: &mut Diagnostics) -> Option<u32> {
    let n = match &node.value {
        Value::Int(n) => Some(*n),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=MAX_RETRIES).contains(&n) => u32::try_from(n).ok(),
        _ => {
            let shown = node
                .scalar_text()
                .unwrap_or_else(|| node.value.kind().to_string());
            d.error(
                node.pos,
                format!(
                    "`retries` must be a whole number from 0 to {MAX_RETRIES}, found `{shown}`"
                ),
            );
            None
        }
    }
}

/// `driver: NAME`: the job is run by a driver of that name, taken from the queue
/// `driver:NAME` (see `crate::driver`).
fn driver(node: &Node, d: &mut Diagnostics) -> Option<String> {
    fields::name(node, "driver", names::is_fleet_name, fields::FLEET_RULE, d)
}
