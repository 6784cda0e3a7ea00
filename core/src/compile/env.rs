//! A job's `env` values: each reference in them (`${make.V}`, `{{ make.V }}`) is recorded
//! with the job's other references and rewritten to `${CONVEYOR_REF_n}`, which the runner
//! expands, once, with `$NAME` and `${NAME}` (see [`crate::expand`]).

use super::job::{add_ref, env_of};
use super::refs::BeltJobs;
use crate::diag::{Diagnostics, Pos};
use crate::expand::{refs_in, rewrite_refs};
use crate::model::Reference;

pub(super) fn templates(
    env: Vec<(String, String)>,
    refs: &mut Vec<Reference>,
    belt: &BeltJobs,
    pos: Pos,
    d: &mut Diagnostics,
) -> Vec<(String, String)> {
    env.into_iter()
        .map(|(name, value)| {
            let found = refs_in(&value);
            for hit in &found {
                add_ref(refs, &hit.path, &value[hit.start..hit.end], pos, belt, d);
            }
            let value = rewrite_refs(&value, &found, |path| env_of(refs, path));
            (name, value)
        })
        .collect()
}
