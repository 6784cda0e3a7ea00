//! `matrix:` jobs.

use crate::{belt, case};

case!(
    matrix_axes_need_names_and_values_that_keep_their_text,
    belt(
        "      - name: t\n        matrix: {python: [3.10, '3.11'], 1x: [a], os: []}\n        commands: 'true'\n      - name: u\n        matrix: [a]\n        commands: 'true'\n"
    ),
    [
        "t.yml:6:27: error: matrix value of `python` is a number YAML may change (`3.10` reads as 3.1): quote it",
        "t.yml:6:42: error: invalid matrix axis `1x` in job `t`: use letters, digits and `_`, not starting with a digit",
        "t.yml:6:55: error: matrix axis `os` of job `t` has no values",
        "t.yml:9:17: error: `matrix` of job `u` must be a mapping of axis: [values], found a list",
    ]
);

case!(
    a_matrix_jobs_outputs_are_read_per_instance_and_its_names_may_not_clash,
    belt(
        "      - name: t\n        matrix: {v: [a, b]}\n        commands: X=1\n        outputs: [X]\n      - name: t-a\n        commands: 'true'\n      - name: r\n        commands: echo ${t.X}\n"
    ),
    [
        "t.yml:9:9: error: duplicate job `t-a` in belt `b` (first defined at line 5)",
        "t.yml:12:24: error: reference `${t.X}` names matrix job `t`, whose outputs are per instance: name one, e.g. `t-a.X`",
    ]
);
