//! Resolving dotted references (`job.OUT`, `product.job.OUT`, …) against the belt.

use std::collections::HashMap;

use crate::diag::{Diagnostics, Pos};
use crate::model::{ProductRef, RefTarget};
use crate::names;

/// Implicit output every job has: the tail of its stdout.
pub const STDOUT: &str = "STDOUT";

/// What the compiler knows about the jobs of the belt being compiled.
pub struct BeltJobs<'a> {
    pub belt: &'a str,
    /// Each job's name and declared outputs, in file order.
    jobs: Vec<(&'a str, Vec<String>)>,
    index: HashMap<&'a str, usize>,
    /// Matrix jobs: the name written, and the names of its instances.
    groups: Vec<(String, Vec<String>)>,
}

impl<'a> BeltJobs<'a> {
    pub fn new(belt: &'a str, jobs: Vec<(&'a str, Vec<String>)>) -> Self {
        let index = jobs.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
        BeltJobs {
            belt,
            jobs,
            index,
            groups: Vec::new(),
        }
    }

    pub fn with_groups(mut self, groups: Vec<(String, Vec<String>)>) -> Self {
        self.groups = groups;
        self
    }

    /// The instances of matrix job `name`.
    pub fn group(&self, name: &str) -> Option<&[String]> {
        self.groups
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, list)| list.as_slice())
    }

    pub fn contains(&self, job: &str) -> bool {
        self.index.contains_key(job)
    }

    fn outputs(&self, job: &str) -> Option<&[String]> {
        self.index.get(job).map(|&i| self.jobs[i].1.as_slice())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.jobs.iter().map(|(n, _)| *n)
    }
}

/// Splits the part before the output into a product reference:
/// `p`, `p.job`, `p.belt.job`; extra leading segments belong to a dotted product name.
pub fn product_ref(prefix: &[&str]) -> ProductRef {
    let n = prefix.len();
    let (product, belt, job) = match n {
        1 => (prefix[0].to_string(), None, None),
        2 => (prefix[0].to_string(), None, Some(prefix[1])),
        _ => (
            prefix[..n - 2].join("."),
            Some(prefix[n - 2]),
            Some(prefix[n - 1]),
        ),
    };
    ProductRef {
        product,
        belt: belt.map(str::to_string),
        job: job.map(str::to_string),
    }
}

fn matrix_ref(shown: &str, job: &str, instances: &[String], output: &str) -> String {
    format!(
        "reference `{shown}` names matrix job `{job}`, whose outputs are per instance: name one, e.g. `{}.{output}`",
        instances.first().map_or("", String::as_str)
    )
}

/// A script's reference into the build's context (`${conveyor.branch}`) is an error:
/// conditions read the context, scripts its variables.
fn reads_context(prefix: &[&str], shown: &str, pos: Pos, d: &mut Diagnostics) -> bool {
    let reads = prefix.first() == Some(&crate::context::NAMESPACE);
    if reads {
        d.error(
            pos,
            format!("reference `{shown}` reads the build's context, which only conditions (`if`) read: in a script use `$CONVEYOR_BRANCH`, `$CONVEYOR_TAG` or `$CONVEYOR_EVENT`"),
        );
    }
    reads
}

/// Resolves `path` (as written inside `${}`); `shown` is the reference for messages.
pub fn resolve(
    path: &str,
    shown: &str,
    jobs: &BeltJobs,
    pos: Pos,
    d: &mut Diagnostics,
) -> Option<RefTarget> {
    let segs: Vec<&str> = path.split('.').collect();
    let (output, prefix) = segs.split_last()?;
    if reads_context(prefix, shown, pos, d) {
        return None;
    }
    if let [job] = prefix {
        if let Some(outputs) = jobs.outputs(job) {
            if *output != STDOUT && !outputs.iter().any(|o| o == output) {
                let candidates = outputs.iter().map(String::as_str).chain([STDOUT]);
                d.error(
                    pos,
                    format!(
                        "reference `{shown}` names output `{output}`, which job `{job}` does not declare{}",
                        names::hint(output, candidates)
                    ),
                );
                return None;
            }
            return Some(RefTarget::Job {
                job: job.to_string(),
                output: output.to_string(),
            });
        }
        if let Some(instances) = jobs.group(job) {
            d.error(pos, matrix_ref(shown, job, instances, output));
            return None;
        }
        if let Some(near) = names::suggest(job, jobs.names()) {
            d.error(
                pos,
                format!("unknown job `{job}` in reference `{shown}` (did you mean `{near}`?)"),
            );
            return None;
        }
    }
    let target = product_ref(prefix);
    if !names::is_product_name(&target.product) {
        d.error(
            pos,
            format!(
                "reference `{shown}` names `{}`, which is neither a job of belt `{}` nor a valid product name",
                target.product, jobs.belt
            ),
        );
        return None;
    }
    Some(RefTarget::Product {
        target,
        output: output.to_string(),
    })
}
