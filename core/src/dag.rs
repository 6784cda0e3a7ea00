//! The belt's DAG: edges from inputs, needs and references; cycles found and printed.

use std::collections::{BTreeSet, HashMap};

use crate::model::{Input, Job, RefTarget};

/// Every `(dependency, dependent)` pair, by job index, sorted and without duplicates.
/// Names that match no job are ignored here; the compiler has reported them already.
pub fn edges(jobs: &[Job]) -> Vec<(usize, usize)> {
    let by_name: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect();
    let index = |name: &str| by_name.get(name).copied();
    let mut set = BTreeSet::new();
    for (to, job) in jobs.iter().enumerate() {
        let from_inputs = job.inputs.iter().filter_map(|i| match i {
            Input::Job { job } => Some(job.as_str()),
            _ => None,
        });
        let from_refs = job.refs.iter().filter_map(|r| match &r.target {
            RefTarget::Job { job, .. } => Some(job.as_str()),
            RefTarget::Product { .. } => None,
        });
        let names = from_inputs
            .chain(job.needs.iter().map(String::as_str))
            .chain(from_refs);
        for from in names.filter_map(index) {
            set.insert((from, to));
        }
    }
    set.into_iter().collect()
}

/// Each cycle once, as job indices in data-flow order, starting at its earliest job.
pub fn cycles(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for &(from, to) in edges {
        deps[to].push(from);
        waiting[to] += 1;
    }
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(from, to) in edges {
        dependents[from].push(to);
    }
    // Kahn: whatever cannot be ordered sits on or behind a cycle.
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut done = vec![false; n];
    while let Some(i) = ready.pop() {
        done[i] = true;
        for &t in &dependents[i] {
            waiting[t] -= 1;
            if waiting[t] == 0 {
                ready.push(t);
            }
        }
    }
    let mut covered = vec![false; n];
    let mut found = Vec::new();
    for start in 0..n {
        if done[start] || covered[start] {
            continue;
        }
        let mut path = vec![start];
        let mut on_path = vec![usize::MAX; n];
        on_path[start] = 0;
        let mut at = start;
        while let Some(&next) = deps[at].iter().find(|&&p| !done[p]) {
            if on_path[next] != usize::MAX {
                let mut cycle: Vec<usize> = path[on_path[next]..].to_vec();
                let fresh = cycle.iter().all(|&c| !covered[c]);
                cycle.reverse();
                if fresh {
                    found.push(rotate_to_min(cycle));
                }
                break;
            }
            on_path[next] = path.len();
            path.push(next);
            at = next;
        }
        for &p in &path {
            covered[p] = true;
        }
    }
    found
}

fn rotate_to_min(mut cycle: Vec<usize>) -> Vec<usize> {
    if let Some(min_at) = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, v)| **v)
        .map(|(i, _)| i)
    {
        cycle.rotate_left(min_at);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dag_has_no_cycles() {
        assert!(cycles(4, &[(0, 1), (0, 2), (1, 3), (2, 3)]).is_empty());
    }

    #[test]
    fn cycles_are_reported_once_in_data_flow_order() {
        // 0 -> 1 -> 2 -> 0, and 3 depends on the cycle; 4 -> 4 on its own.
        let c = cycles(5, &[(0, 1), (1, 2), (2, 0), (2, 3), (4, 4)]);
        assert_eq!(c, vec![vec![0, 1, 2], vec![4]]);
    }
}
