//! Triggers: `scm-event` and `upstream-build`, with parameters nested or as siblings.

use super::fields::{self, Fields};
use crate::diag::Diagnostics;
use crate::model::{
    BuildSelector, ScheduleTrigger, ScmEventType, ScmTrigger, Trigger, UpstreamTrigger,
};
use crate::names;
use crate::yaml::{Node, Value};

const KINDS: &[&str] = &["scm-event", "upstream-build", "schedule"];
const SCHEDULE_KEYS: &[&str] = &["cron", "branch", "belts"];
const SCM_KEYS: &[&str] = &["repo", "type", "belts", "branch", "branches"];
const UPSTREAM_KEYS: &[&str] = &[
    "upstream-product",
    "upstream-belt",
    "build",
    "belts",
    "events",
    "branches",
];

pub fn compile_all(
    node: &Node,
    product: Option<&str>,
    belts: &[String],
    d: &mut Diagnostics,
) -> Vec<Trigger> {
    fields::list(node, "triggers", d)
        .iter()
        .enumerate()
        .filter_map(|(i, item)| one(item, i + 1, product, belts, d))
        .collect()
}

fn one(
    item: &Node,
    n: usize,
    product: Option<&str>,
    belts: &[String],
    d: &mut Diagnostics,
) -> Option<Trigger> {
    let Value::Map(entries) = &item.value else {
        d.error(
            item.pos,
            format!(
                "expected trigger #{n} to be a mapping, found {}",
                item.value.kind()
            ),
        );
        return None;
    };
    let kinds: Vec<&(Node, Node)> = entries
        .iter()
        .filter(|(k, _)| k.as_str().is_some_and(|k| KINDS.contains(&k)))
        .collect();
    let (kind_key, nested) = match kinds.as_slice() {
        [one] => *one,
        [] => {
            let first = entries.first().and_then(|(k, _)| k.as_str()).unwrap_or("");
            match names::suggest(first, KINDS.iter().copied()) {
                Some(near) => d.error(
                    item.pos,
                    format!("unknown trigger kind `{first}` (did you mean `{near}`?)"),
                ),
                None => d.error(
                    item.pos,
                    format!(
                        "trigger #{n} has no kind: start it with `scm-event:`, `upstream-build:` or `schedule:`"
                    ),
                ),
            }
            return None;
        }
        _ => {
            d.error(
                item.pos,
                format!("trigger #{n} has more than one kind: give each trigger its own list item"),
            );
            return None;
        }
    };
    let kind = kind_key.as_str().unwrap_or_default();
    let siblings: Vec<(Node, Node)> = entries
        .iter()
        .filter(|(k, _)| k != kind_key)
        .cloned()
        .collect();
    let params = match (&nested.value, siblings.is_empty()) {
        (Value::Null, _) => Node {
            pos: item.pos,
            value: Value::Map(siblings),
        },
        (Value::Map(_), true) => nested.clone(),
        (Value::Map(_), false) => {
            d.error(item.pos, format!("trigger `{kind}` has parameters both nested under it and beside it: use one form"));
            return None;
        }
        (other, _) => {
            d.error(
                nested.pos,
                format!(
                    "`{kind}` parameters must be a mapping, found {}",
                    other.kind()
                ),
            );
            return None;
        }
    };
    let what = format!("a `{kind}` trigger");
    if kind == "scm-event" {
        let f = Fields::read(&params, &what, SCM_KEYS, d)?;
        scm(&f, &params, belts, d).map(Trigger::ScmEvent)
    } else if kind == "schedule" {
        let f = Fields::read(&params, &what, SCHEDULE_KEYS, d)?;
        schedule(&f, &params, belts, d).map(Trigger::Schedule)
    } else {
        let f = Fields::read(&params, &what, UPSTREAM_KEYS, d)?;
        upstream(&f, &params, product, belts, d).map(Trigger::UpstreamBuild)
    }
}

fn scm(f: &Fields, params: &Node, belts: &[String], d: &mut Diagnostics) -> Option<ScmTrigger> {
    let event = match f.present("type") {
        None => {
            d.error(
                params.pos,
                "`scm-event` trigger needs `type` (one of pull-request, merge, push, tag)",
            );
            None
        }
        Some(n) => {
            let text = fields::string(n, "type", d)?;
            let parsed = ScmEventType::parse(&text);
            if parsed.is_none() {
                d.error(
                    n.pos,
                    format!(
                        "unknown event type `{text}`{}; use one of pull-request, merge, push, tag",
                        names::hint(&text, ScmEventType::ALL)
                    ),
                );
            }
            parsed
        }
    };
    let mut branches = Vec::new();
    for key in ["branch", "branches"] {
        if let Some(n) = f.present(key) {
            branches.extend(fields::string_list(n, key, d).into_iter().map(|(b, _)| b));
        }
    }
    let repo = f.present("repo").and_then(|n| fields::string(n, "repo", d));
    let belts = trigger_belts(f, belts, d);
    Some(ScmTrigger {
        repo,
        event: event?,
        branches,
        belts,
    })
}

fn schedule(
    f: &Fields,
    params: &Node,
    belts: &[String],
    d: &mut Diagnostics,
) -> Option<ScheduleTrigger> {
    let Some(node) = f.present("cron") else {
        d.error(
            params.pos,
            "`schedule` trigger needs `cron`, e.g. `cron: \"0 3 * * *\"` (UTC; five fields, or six with seconds first)",
        );
        return None;
    };
    let cron = fields::string(node, "cron", d)?;
    if let Err(e) = crate::schedule::parse(&cron) {
        d.error(node.pos, format!("invalid cron pattern `{cron}`: {e}"));
        return None;
    }
    let branch = f.present("branch").and_then(|n| {
        let b = fields::string(n, "branch", d)?;
        if !names::is_ref_name(&format!("refs/heads/{b}")) {
            d.error(n.pos, format!("invalid branch name `{b}`"));
            return None;
        }
        Some(b)
    });
    let belts = trigger_belts(f, belts, d);
    Some(ScheduleTrigger {
        cron,
        branch,
        belts,
    })
}

fn upstream(
    f: &Fields,
    params: &Node,
    product: Option<&str>,
    belts: &[String],
    d: &mut Diagnostics,
) -> Option<UpstreamTrigger> {
    let upstream = fields::required_name(
        f,
        "upstream-product",
        "product",
        names::is_product_name,
        fields::PRODUCT_RULE,
        params.pos,
        "`upstream-build` trigger needs `upstream-product`",
        d,
    );
    if let (Some(up), Some(me)) = (&upstream, product)
        && up == me
    {
        d.error(
            params.pos,
            format!("product `{me}` cannot be its own upstream"),
        );
    }
    let belt = f
        .present("upstream-belt")
        .and_then(|n| fields::name(n, "belt", names::is_node_name, fields::NODE_RULE, d));
    let build = match f.present("build") {
        None => Some(BuildSelector::LastSuccessful),
        Some(n) => selector(n, d),
    };
    let own_belts = trigger_belts(f, belts, d);
    let pos_of = |key: &str| f.present(key).map_or(params.pos, |n| n.pos);
    Some(UpstreamTrigger {
        pos: pos_of("upstream-product"),
        belt_pos: pos_of("upstream-belt"),
        product: upstream?,
        belt,
        build: build?,
        belts: own_belts,
        gate: super::gating::gate(f, "an `upstream-build` trigger", d),
    })
}

fn selector(n: &Node, d: &mut Diagnostics) -> Option<BuildSelector> {
    let text = n.scalar_text().unwrap_or_default();
    let parsed = match text.as_str() {
        "last" => Some(BuildSelector::Last),
        "last_successful" => Some(BuildSelector::LastSuccessful),
        "last_failure" => Some(BuildSelector::LastFailure),
        t => t
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(BuildSelector::Number),
    };
    if parsed.is_none() {
        d.error(n.pos, format!("invalid `build` selector `{text}`: use last, last_successful, last_failure or a build number"));
    }
    parsed
}

/// The trigger's `belts`, each checked against the product's belts.
fn trigger_belts(f: &Fields, belts: &[String], d: &mut Diagnostics) -> Option<Vec<String>> {
    let node = f.present("belts")?;
    let mut out = Vec::new();
    for (name, pos) in fields::string_list(node, "belts", d) {
        if belts.contains(&name) {
            out.push(name);
        } else {
            let hint = names::hint(&name, belts.iter().map(String::as_str));
            d.error(pos, format!("trigger names unknown belt `{name}`{hint}"));
        }
    }
    Some(out)
}
