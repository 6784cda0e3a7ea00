//! Gating keys: `concurrency` (product, belt, job), a belt's `if` over the build's context,
//! `events`/`branches` on downstreams and upstream triggers, and the `conveyor.*` names a
//! condition reads.

use super::fields::{self, Fields};
use crate::context::{self, Event, Gate};
use crate::diag::{Diagnostics, Pos};
use crate::expr::{self, Expr};
use crate::model::{Concurrency, Job, Product, RefTarget, Trigger};
use crate::names;
use crate::yaml::{Node, Value};

/// The longest concurrency group name a file may write.
pub const MAX_GROUP_LEN: usize = 200;

const CONCURRENCY_KEYS: &[&str] = &["group", "cancel-superseded"];

/// `concurrency: NAME` or `concurrency: {group: NAME, cancel-superseded: BOOL}`.
pub fn concurrency(node: &Node, d: &mut Diagnostics) -> Option<Concurrency> {
    let (group_node, cancel_superseded) = match &node.value {
        Value::Map(_) => {
            let f = Fields::read(node, "`concurrency`", CONCURRENCY_KEYS, d)?;
            let cancel = f
                .present("cancel-superseded")
                .and_then(|n| fields::boolean(n, "cancel-superseded", d))
                .unwrap_or(false);
            let Some(group) = f.present("group") else {
                d.error(
                    node.pos,
                    "`concurrency` needs `group`: name the group, e.g. `group: deploy-staging`",
                );
                return None;
            };
            (group, cancel)
        }
        _ => (node, false),
    };
    let group = fields::string(group_node, "concurrency", d)?;
    let unknown = context::unknown_in_template(&group);
    if let Some(name) = unknown.first() {
        d.error(
            group_node.pos,
            format!("unknown name `{name}` in concurrency group `{group}`: a group may use `{{{{ conveyor.branch }}}}`, `{{{{ conveyor.tag }}}}` and `{{{{ conveyor.event }}}}`"),
        );
        return None;
    }
    if group.trim().is_empty() || group.len() > MAX_GROUP_LEN {
        d.error(
            group_node.pos,
            format!("a concurrency group needs a name of 1 to {MAX_GROUP_LEN} characters"),
        );
        return None;
    }
    Some(Concurrency {
        group,
        cancel_superseded,
    })
}

/// `events` and `branches` beside a downstream or an upstream trigger.
pub fn gate(f: &Fields, what: &str, d: &mut Diagnostics) -> Gate {
    let events = f.present("events").map(|n| {
        let mut out = Vec::new();
        for (text, pos) in fields::string_list(n, "events", d) {
            match Event::parse(&text) {
                Some(e) if !out.contains(&e) => out.push(e),
                Some(_) => {}
                None => d.error(
                    pos,
                    format!(
                        "unknown event `{text}` in `events` of {what}{}: events are {}",
                        names::hint(&text, Event::ALL.iter().map(|e| e.name())),
                        event_list()
                    ),
                ),
            }
        }
        out
    });
    let branches = f
        .present("branches")
        .map(|n| fields::string_list(n, "branches", d))
        .unwrap_or_default()
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    Gate { events, branches }
}

fn event_list() -> String {
    let all: Vec<String> = Event::ALL
        .iter()
        .map(|e| format!("`{}`", e.name()))
        .collect();
    all.join(", ")
}

/// Checks a `conveyor.NAME` a condition reads; `where_` names the condition for messages.
pub fn context_name(path: &str, where_: &str, pos: Pos, d: &mut Diagnostics) {
    let name = path.strip_prefix("conveyor.").unwrap_or(path);
    if !context::NAMES.contains(&name) {
        let hint = names::suggest(name, context::NAMES)
            .map(|n| format!(" (did you mean `conveyor.{n}`?)"))
            .unwrap_or_default();
        d.error(
            pos,
            format!("unknown name `{path}` in {where_}{hint}: the build's context is `conveyor.branch`, `conveyor.tag` and `conveyor.event`"),
        );
    }
}

/// A belt's `if`: a condition over the build's context only.
pub fn belt_condition(node: &Node, belt: &str, d: &mut Diagnostics) -> Option<Expr> {
    let text = fields::string(node, "if", d)?;
    let e = match expr::parse(&text) {
        Ok(e) => e,
        Err(msg) => {
            d.error(node.pos, format!("invalid `if` in belt `{belt}`: {msg}"));
            return None;
        }
    };
    let where_ = format!("`if` of belt `{belt}`");
    let before = d.error_count();
    for path in e.refs() {
        if path.starts_with("conveyor.") {
            context_name(path, &where_, node.pos, d);
        } else {
            d.error(
                node.pos,
                format!("`{path}` in {where_} is not known when the belt starts: a belt's `if` reads only the build's context (`conveyor.branch`, `conveyor.tag`, `conveyor.event`, `changed(\"glob\")`); put conditions on outputs on the jobs"),
            );
        }
    }
    (d.error_count() == before).then_some(e)
}

/// A condition may read another product's outputs only when the job names that product
/// among its `inputs` or the product has an `upstream-build` trigger on it: any other
/// name (`github.ref`) is not something a build has, and is an error.
pub fn check_condition_products(p: &Product, d: &mut Diagnostics) {
    let upstreams: Vec<&str> = p
        .triggers
        .iter()
        .filter_map(|t| match t {
            Trigger::UpstreamBuild(u) => Some(u.product.as_str()),
            Trigger::ScmEvent(_) | Trigger::Schedule(_) => None,
        })
        .collect();
    for job in p.belts.iter().flat_map(|b| &b.jobs) {
        let in_condition = job.condition.as_ref().map(Expr::refs).unwrap_or_default();
        for r in &job.refs {
            let RefTarget::Product { target, .. } = &r.target else {
                continue;
            };
            if in_condition.contains(&r.text.as_str())
                && !upstreams.contains(&target.product.as_str())
                && !names_product(job, &target.product)
            {
                d.error(
                    r.pos,
                    format!(
                        "unknown name `{}` in `if` of job `{}`: a condition reads `conveyor.branch`, `conveyor.tag`, `conveyor.event`, `changed(\"glob\")`, this belt's outputs (`job.OUTPUT`), or the outputs of a product among the job's `inputs` or the product's `upstream-build` triggers",
                        r.text, job.name
                    ),
                );
            }
        }
    }
}

fn names_product(job: &Job, product: &str) -> bool {
    job.inputs.iter().any(|i| match i {
        crate::model::Input::Product { target, .. } => target.product == product,
        _ => false,
    })
}

/// The product's own gating keys: its name is not the reserved one; its `concurrency`.
pub fn product_level(f: &Fields, name: Option<&str>, d: &mut Diagnostics) -> Option<Concurrency> {
    if let (Some(n), Some(name)) = (f.present("product"), name) {
        reserved(name, "product", n.pos, d);
    }
    f.present("concurrency").and_then(|n| concurrency(n, d))
}

/// `conveyor` is the context's namespace: no job or product may be called so.
pub fn reserved(name: &str, kind: &str, pos: Pos, d: &mut Diagnostics) -> bool {
    if name == context::NAMESPACE {
        d.error(
            pos,
            format!("`conveyor` is reserved for the build's context (`conveyor.branch`, …): give the {kind} another name"),
        );
        return true;
    }
    false
}
