//! The files a job hands on: `artifacts` (uploaded after it, present in the jobs that depend
//! on it) and `cache` (restored before it, saved after it succeeds).

use crate::diag::{Diagnostics, Pos};
use crate::model::Cache;
use crate::names;
use crate::yaml::{Node, Value};

use super::fields::{self, Fields};

const ARTIFACT_KEYS: &[&str] = &["paths", "when"];
const CACHE_KEYS: &[&str] = &["name", "key", "paths"];

/// `artifacts: [paths]`, or `artifacts: {paths: [...], when: on-success | always}`: the
/// paths, and whether they are kept when the job fails too.
pub(crate) fn artifacts(node: &Node, job: &str, d: &mut Diagnostics) -> (Vec<String>, bool) {
    if !matches!(node.value, Value::Map(_)) {
        return (paths(node, "artifacts", "artifact path", d), false);
    }
    let Some(f) = Fields::read(
        node,
        &format!("`artifacts` of job `{job}`"),
        ARTIFACT_KEYS,
        d,
    ) else {
        return (Vec::new(), false);
    };
    let always = match f.present("when").map(|n| (n, n.scalar_text())) {
        None => false,
        Some((_, Some(w))) if w == "on-success" => false,
        Some((_, Some(w))) if w == "always" => true,
        Some((n, shown)) => {
            let shown = shown.unwrap_or_else(|| n.value.kind().to_string());
            d.error(
                n.pos,
                format!("`when` of `artifacts` must be `on-success` or `always`, found `{shown}`"),
            );
            false
        }
    };
    let Some(list) = f.present("paths") else {
        d.error(
            node.pos,
            format!(
                "`artifacts` of job `{job}` needs `paths`: the files to keep, e.g. `paths: [dist/]`"
            ),
        );
        return (Vec::new(), always);
    };
    (paths(list, "artifacts", "artifact path", d), always)
}

/// `cache:` — one mapping or a list of them, each `{name, key: [files], paths: [...]}`.
pub(crate) fn caches(node: &Node, job: &str, d: &mut Diagnostics) -> Vec<Cache> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out: Vec<Cache> = Vec::new();
    for item in items {
        let Some(cache) = cache(item, job, d) else {
            continue;
        };
        if out.iter().any(|c| c.name == cache.name) {
            d.error(
                item.pos,
                format!(
                    "duplicate cache `{}` in job `{job}`: give each cache its own `name`",
                    cache.name
                ),
            );
            continue;
        }
        out.push(cache);
    }
    out
}

fn cache(node: &Node, job: &str, d: &mut Diagnostics) -> Option<Cache> {
    let f = Fields::read(node, &format!("the cache of job `{job}`"), CACHE_KEYS, d)?;
    let name = match f.present("name") {
        Some(n) => fields::name(n, "cache", names::is_node_name, fields::NODE_RULE, d)?,
        None => job.to_string(),
    };
    let key_files = match f.present("key") {
        Some(n) => paths(n, "key", "cache key file", d),
        None => {
            d.error(
                node.pos,
                format!("cache `{name}` of job `{job}` needs `key`: the files whose contents identify it, e.g. `key: [Cargo.lock]`"),
            );
            return None;
        }
    };
    let paths = match f.present("paths") {
        Some(n) => paths(n, "paths", "cache path", d),
        None => {
            d.error(
                node.pos,
                format!("cache `{name}` of job `{job}` needs `paths`: what it keeps, e.g. `paths: [target]`"),
            );
            return None;
        }
    };
    if key_files.is_empty() || paths.is_empty() {
        d.error(
            node.pos,
            format!("cache `{name}` of job `{job}` needs at least one `key` file and one path"),
        );
        return None;
    }
    Some(Cache {
        name,
        key_files,
        paths,
    })
}

/// A string or a list of paths inside the workspace; `what` names one in messages.
fn paths(node: &Node, key: &str, what: &str, d: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    for (path, pos) in fields::string_list(node, key, d) {
        if let Some(path) = relative(&path, what, pos, d) {
            out.push(path);
        }
    }
    out
}

fn relative(path: &str, what: &str, pos: Pos, d: &mut Diagnostics) -> Option<String> {
    if path.trim().is_empty() {
        d.error(pos, format!("empty {what}"));
    } else if path.starts_with('/') || path.starts_with('~') {
        d.error(
            pos,
            format!("{what} `{path}` must be relative to the workspace"),
        );
    } else if path.split('/').any(|seg| seg == "..") {
        d.error(
            pos,
            format!("{what} `{path}` must stay inside the workspace"),
        );
    } else {
        return Some(path.trim_end_matches('/').to_string()).filter(|p| !p.is_empty());
    }
    None
}
