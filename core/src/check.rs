//! Checks across products: references, inputs, downstreams and upstream triggers that
//! point into other products are checked against the products that are known.

use std::collections::HashMap;

use crate::dag;
use crate::diag::{self, Diagnostic, Diagnostics, Pos};
use crate::model::{Input, Job, Product, ProductRef, RefTarget, Trigger};
use crate::names;

/// A compiled product and the file it came from.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub file: &'a str,
    pub product: &'a Product,
}

/// Checks every product in `given` against `given` and the already `registered` ones
/// (a product given by file replaces its registered version).
pub fn check(given: &[Source], registered: &[&Product]) -> Vec<Diagnostic> {
    let mut known: HashMap<&str, &Product> =
        registered.iter().map(|p| (p.name.as_str(), *p)).collect();
    let mut out = Vec::new();
    let mut first_file: HashMap<&str, &str> = HashMap::new();
    for s in given {
        if let Some(other) = first_file.insert(&s.product.name, s.file) {
            let mut d = Diagnostics::new(s.file);
            d.error(
                Pos::new(1, 1),
                format!(
                    "product `{}` is defined twice (also in {other})",
                    s.product.name
                ),
            );
            out.extend(d.into_sorted());
        }
        known.insert(&s.product.name, s.product);
    }
    for s in given {
        let mut d = Diagnostics::new(s.file);
        Checker {
            known: &known,
            d: &mut d,
        }
        .product(s.product);
        out.extend(d.into_sorted());
    }
    out.extend(chain_cycles(given, &known));
    diag::sort(&mut out);
    out
}

struct Checker<'a, 'd> {
    known: &'a HashMap<&'a str, &'a Product>,
    d: &'d mut Diagnostics,
}

impl<'a> Checker<'a, '_> {
    fn product(&mut self, p: &Product) {
        for t in &p.triggers {
            if let Trigger::UpstreamBuild(u) = t
                && let Some(up) = self.lookup(&u.product, "`upstream-build` trigger", u.pos)
                && let Some(belt) = &u.belt
                && up.belt(belt).is_none()
            {
                let hint = names::hint(belt, up.belts.iter().map(|b| b.name.as_str()));
                self.d.error(
                    u.belt_pos,
                    format!(
                        "unknown belt `{belt}` in product `{}` (`upstream-build` trigger){hint}",
                        up.name
                    ),
                );
            }
        }
        for job in p.belts.iter().flat_map(|b| &b.jobs) {
            self.job(job);
        }
    }

    fn job(&mut self, job: &Job) {
        for input in &job.inputs {
            if let Input::Product { target, pos } = input {
                let ctx = format!("input `{}`", shown(target));
                self.target(target, &ctx, *pos);
            }
        }
        for r in &job.refs {
            if let RefTarget::Product { target, output } = &r.target {
                let ctx = format!("reference `${{{}}}`", r.text);
                self.output(target, output, &ctx, r.pos);
            }
        }
        for ds in &job.downstreams {
            let ctx = format!("downstreams of job `{}`", job.name);
            if let (Some(p), Some(belts)) = (self.lookup(&ds.product, &ctx, ds.pos), &ds.belts) {
                for b in belts.iter().filter(|b| p.belt(b).is_none()) {
                    let hint = names::hint(b, p.belts.iter().map(|x| x.name.as_str()));
                    self.d.error(
                        ds.pos,
                        format!("unknown belt `{b}` in product `{}` ({ctx}){hint}", p.name),
                    );
                }
            }
        }
    }

    fn lookup(&mut self, product: &str, ctx: &str, pos: Pos) -> Option<&'a Product> {
        let found = self.known.get(product).copied();
        if found.is_none() {
            self.d.warning(
                pos,
                format!("unknown product `{product}` in {ctx}: it is neither among the files given nor registered, so this is not checked"),
            );
        }
        found
    }

    /// The jobs `target` may name (several when a job name is used in several belts).
    fn target(&mut self, target: &ProductRef, ctx: &str, pos: Pos) -> Option<Vec<&'a Job>> {
        let p = self.lookup(&target.product, ctx, pos)?;
        let belts: Vec<_> = match &target.belt {
            None => p.belts.iter().collect(),
            Some(b) => match p.belt(b) {
                Some(belt) => vec![belt],
                None => {
                    let hint = names::hint(b, p.belts.iter().map(|x| x.name.as_str()));
                    self.d.error(
                        pos,
                        format!("unknown belt `{b}` in product `{}` ({ctx}){hint}", p.name),
                    );
                    return None;
                }
            },
        };
        let all: Vec<&'a Job> = belts.iter().flat_map(|b| &b.jobs).collect();
        let Some(job) = &target.job else {
            return Some(all);
        };
        let matching: Vec<&'a Job> = all.iter().copied().filter(|j| &j.name == job).collect();
        if matching.is_empty() {
            let hint = names::hint(job, all.iter().map(|j| j.name.as_str()));
            let place = match &target.belt {
                Some(b) => format!("belt `{b}` of product `{}`", p.name),
                None => format!("product `{}`", p.name),
            };
            self.d
                .error(pos, format!("unknown job `{job}` in {place} ({ctx}){hint}"));
            return None;
        }
        Some(matching)
    }

    fn output(&mut self, target: &ProductRef, output: &str, ctx: &str, pos: Pos) {
        let Some(jobs) = self.target(target, ctx, pos) else {
            return;
        };
        if output == crate::compile::STDOUT && target.job.is_some() {
            return;
        }
        let declaring: Vec<&&Job> = jobs
            .iter()
            .filter(|j| j.outputs.iter().any(|o| o.name == output))
            .collect();
        let declared = jobs
            .iter()
            .flat_map(|j| j.outputs.iter().map(|o| o.name.as_str()));
        let hint = names::hint(output, declared);
        let product = &target.product;
        match (&target.job, declaring.as_slice()) {
            (Some(job), []) => self.d.error(
                pos,
                format!("{ctx} names output `{output}`, which job `{job}` of product `{product}` does not declare{hint}"),
            ),
            (None, []) => self.d.error(
                pos,
                format!("{ctx} names output `{output}`, which no job of product `{product}` declares{hint}"),
            ),
            (None, [a, b, ..]) if a.name != b.name => self.d.error(
                pos,
                format!(
                    "{ctx} is ambiguous: jobs `{}` and `{}` of product `{product}` both declare `{output}`; write `${{{product}.JOB.{output}}}`",
                    a.name, b.name
                ),
            ),
            _ => {}
        }
    }
}

fn shown(t: &ProductRef) -> String {
    [Some(&t.product), t.belt.as_ref(), t.job.as_ref()]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(".")
}

/// Products that trigger each other in a loop would build forever.
fn chain_cycles(given: &[Source], known: &HashMap<&str, &Product>) -> Vec<Diagnostic> {
    let mut names: Vec<&str> = known.keys().copied().collect();
    names.sort_unstable();
    let index = |n: &str| names.iter().position(|x| *x == n);
    let mut edges = Vec::new();
    for p in known.values() {
        let Some(me) = index(&p.name) else { continue };
        for ds in p
            .belts
            .iter()
            .flat_map(|b| &b.jobs)
            .flat_map(|j| &j.downstreams)
        {
            if let Some(to) = index(&ds.product) {
                edges.push((me, to));
            }
        }
        for t in &p.triggers {
            if let Trigger::UpstreamBuild(u) = t
                && let Some(from) = index(&u.product)
            {
                edges.push((from, me));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    let mut out = Vec::new();
    for cycle in dag::cycles(names.len(), &edges) {
        let path: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(|&i| names[i])
            .collect();
        let file = given
            .iter()
            .find(|s| cycle.iter().any(|&i| names[i] == s.product.name))
            .map_or("", |s| s.file);
        let mut d = Diagnostics::new(file);
        d.error(
            Pos::new(1, 1),
            format!(
                "products trigger each other in a cycle: {}",
                path.join(" -> ")
            ),
        );
        out.extend(d.into_sorted());
    }
    out
}
