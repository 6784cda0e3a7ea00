//! Gating: the build's context in conditions, belt conditions, reserved names,
//! concurrency groups and downstream gates.

use crate::{belt, case};

case!(
    a_condition_on_a_name_no_build_has_is_an_error_not_a_silent_false,
    belt(
        "      - name: j\n        commands: 'true'\n        if: github.ref == 'refs/heads/main'\n"
    ),
    [
        "t.yml:7:13: error: unknown name `github.ref` in `if` of job `j`: a condition reads `conveyor.branch`, `conveyor.tag`, `conveyor.event`, `changed(\"glob\")`, this belt's outputs (`job.OUTPUT`), or the outputs of a product among the job's `inputs` or the product's `upstream-build` triggers",
    ]
);

case!(
    an_unknown_context_name_is_located_and_suggested,
    belt("      - name: j\n        commands: 'true'\n        if: conveyor.brnch == 'main'\n"),
    [
        "t.yml:7:13: error: unknown name `conveyor.brnch` in `if` of job `j` (did you mean `conveyor.branch`?): the build's context is `conveyor.branch`, `conveyor.tag` and `conveyor.event`",
    ]
);

case!(
    changed_needs_a_quoted_pattern,
    belt("      - name: j\n        commands: 'true'\n        if: changed()\n"),
    [
        "t.yml:7:13: error: invalid `if` in job `j`: `changed` needs a quoted pattern: write `changed(\"glob\")` with one quoted pattern, e.g. `changed(\"docs/**\")`",
    ]
);

case!(
    a_belt_condition_reads_only_the_context,
    "product: p\nbelts:\n  - name: b\n    if: j.X == 'y'\n    jobs:\n      - name: j\n        commands: 'true'\n        outputs: [X]\n",
    [
        "t.yml:4:9: error: `j.X` in `if` of belt `b` is not known when the belt starts: a belt's `if` reads only the build's context (`conveyor.branch`, `conveyor.tag`, `conveyor.event`, `changed(\"glob\")`); put conditions on outputs on the jobs",
    ]
);

case!(
    conveyor_is_a_reserved_job_and_product_name,
    "product: conveyor\nbelts:\n  - name: b\n    jobs:\n      - name: conveyor\n        commands: 'true'\n      - name: k\n        commands: 'true'\n",
    [
        "t.yml:1:10: error: `conveyor` is reserved for the build's context (`conveyor.branch`, …): give the product another name",
        "t.yml:5:15: error: `conveyor` is reserved for the build's context (`conveyor.branch`, …): give the job another name",
    ]
);

case!(
    a_script_reading_the_context_is_pointed_at_the_variables,
    belt("      - name: j\n        commands: echo ${conveyor.branch}\n"),
    [
        "t.yml:6:24: error: reference `${conveyor.branch}` reads the build's context, which only conditions (`if`) read: in a script use `$CONVEYOR_BRANCH`, `$CONVEYOR_TAG` or `$CONVEYOR_EVENT`",
    ]
);

case!(
    a_concurrency_group_may_use_only_context_names,
    "product: p\nconcurrency:\n  group: \"ci-{{ conveyor.sha }}\"\n  cancel-superseded: maybe\nbelts:\n  - name: b\n    concurrency: {cancel-superseded: true}\n    jobs:\n      - name: j\n        commands: 'true'\n",
    [
        "t.yml:3:10: error: unknown name `conveyor.sha` in concurrency group `ci-{{ conveyor.sha }}`: a group may use `{{ conveyor.branch }}`, `{{ conveyor.tag }}` and `{{ conveyor.event }}`",
        "t.yml:4:22: error: `cancel-superseded` must be true or false, found a string",
        "t.yml:7:18: error: `concurrency` needs `group`: name the group, e.g. `group: deploy-staging`",
    ]
);

case!(
    a_downstream_gate_names_known_events,
    belt(
        "      - name: j\n        commands: 'true'\n        downstreams:\n          - downstream-product: d\n            events: [push, pull-request]\n"
    ),
    [
        "t.yml:9:28: error: unknown event `pull-request` in `events` of a downstream (did you mean `pull_request`?): events are `push`, `pull_request`, `tag`, `schedule`, `manual`, `upstream`, `resource`",
    ]
);
