//! Jobs: scripts, references, inputs, outputs and extensions.

use crate::{belt, case};

case!(
    artifacts_must_stay_in_the_workspace,
    belt(
        "      - name: j\n        commands: 'true'\n        artifacts: [/etc/passwd, ../up, dist/app]\n"
    ),
    [
        "t.yml:7:21: error: artifact path `/etc/passwd` must be relative to the workspace",
        "t.yml:7:34: error: artifact path `../up` must stay inside the workspace",
    ]
);

case!(
    a_malformed_condition_is_explained,
    belt("      - name: j\n        commands: 'true'\n        if: j.X ==\n"),
    ["t.yml:7:13: error: invalid `if` in job `j`: condition ends where a value was expected",]
);

case!(
    a_trigger_naming_a_missing_belt_suggests_one,
    "product: p\ntriggers:\n  - scm-event:\n    type: push\n    belts: [biuld]\nbelts:\n  - name: build\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:5:13: error: trigger names unknown belt `biuld` (did you mean `build`?)",]
);

case!(
    a_trigger_with_a_bad_event_type_lists_the_types,
    "product: p\ntriggers:\n  - scm-event:\n      type: pull_request\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    [
        "t.yml:4:13: error: unknown event type `pull_request` (did you mean `pull-request`?); use one of pull-request, merge, push, tag",
    ]
);

case!(
    a_trigger_kind_typo_is_suggested,
    "product: p\ntriggers:\n  - scm-evnt:\n    type: push\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:3:5: error: unknown trigger kind `scm-evnt` (did you mean `scm-event`?)",]
);

case!(
    a_trigger_may_not_mix_nested_and_sibling_parameters,
    "product: p\ntriggers:\n  - scm-event:\n      type: push\n    belts: [b]\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    [
        "t.yml:3:5: error: trigger `scm-event` has parameters both nested under it and beside it: use one form",
    ]
);

case!(
    an_upstream_trigger_needs_a_product_and_a_valid_selector,
    "product: p\ntriggers:\n  - upstream-build:\n    build: newest\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    [
        "t.yml:3:5: error: `upstream-build` trigger needs `upstream-product`",
        "t.yml:4:12: error: invalid `build` selector `newest`: use last, last_successful, last_failure or a build number",
    ]
);

case!(
    a_product_cannot_be_its_own_upstream,
    "product: p\ntriggers:\n  - upstream-build:\n    upstream-product: p\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:3:5: error: product `p` cannot be its own upstream",]
);

case!(
    a_downstream_needs_its_product,
    belt(
        "      - name: j\n        commands: 'true'\n        downstreams:\n          - belts: [x]\n"
    ),
    ["t.yml:8:13: error: a downstream needs `downstream-product`",]
);

case!(
    a_quoted_heredoc_reference_is_a_warning,
    belt(
        "      - name: a\n        commands: V=1\n        outputs: [V]\n      - name: j\n        commands: |\n          cat <<'EOF'\n          ${a.V}\n          EOF\n"
    ),
    [
        "t.yml:11:11: warning: reference `${a.V}` in job `j` is inside a here-document with a quoted delimiter, where bash expands nothing; unquote the delimiter",
    ]
);

case!(
    several_errors_are_all_reported,
    belt(
        "      - name: a\n        needs: [zzz]\n      - name: b\n        commands: 'true'\n        timeout: 0s\n"
    ),
    [
        "t.yml:5:9: error: job `a` has neither `commands` nor `driver`: give it a script to run",
        "t.yml:6:17: error: unknown job `zzz` in `needs` of job `a`",
        "t.yml:9:18: error: duration `0s` must be longer than 0s",
    ]
);

case!(
    non_string_keys_are_refused,
    "product: p\n1: x\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:2:1: error: keys in the product must be strings, found a number",]
);

case!(
    a_name_must_be_a_string,
    "product: [p]\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:1:10: error: `product` must be a string, found a list",]
);

case!(
    list_items_and_lists_are_checked,
    belt(
        "      - name: j\n        commands: 'true'\n        needs: [[a]]\n        artifacts: {a: b}\n        outputs: x\n"
    ),
    [
        "t.yml:7:17: error: items of `needs` must be strings, found a list",
        "t.yml:8:20: error: `artifacts` of job `j` needs `paths`: the files to keep, e.g. `paths: [dist/]`",
        "t.yml:8:21: error: unknown key `a` in `artifacts` of job `j`",
        "t.yml:9:18: error: `outputs` must be a list, found a string",
    ]
);

case!(
    triggers_must_be_a_list_of_mappings,
    "product: p\ntriggers:\n  - push\n  - {}\n  - scm-event: push\n  - scm-event:\n    upstream-build:\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    [
        "t.yml:3:5: error: expected trigger #1 to be a mapping, found a string",
        "t.yml:4:5: error: trigger #2 has no kind: start it with `scm-event:` or `upstream-build:`",
        "t.yml:5:16: error: `scm-event` parameters must be a mapping, found a string",
        "t.yml:6:5: error: trigger #4 has more than one kind: give each trigger its own list item",
    ]
);

case!(
    an_scm_trigger_needs_a_type,
    "product: p\ntriggers:\n  - scm-event:\n    belts: [b]\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:3:5: error: `scm-event` trigger needs `type` (one of pull-request, merge, push, tag)",]
);

case!(
    malformed_outputs_inputs_timeouts_and_artifacts,
    belt(
        "      - name: j\n        commands: 'true'\n        inputs: [a.b.c.d, Up.job]\n        outputs: [[X]]\n        timeout: [1]\n        artifacts: ['']\n        driver: Docker\n"
    ),
    [
        "t.yml:5:9: error: job `j` has both `commands` and `driver`: a job runs either a script or a driver",
        "t.yml:7:18: error: invalid input `a.b.c.d` in job `j`: use `source`, `git:<url>`, a job of this belt, `product`, `product.job` or `product.belt.job`",
        "t.yml:7:27: error: invalid input `Up.job` in job `j`: use `source`, `git:<url>`, a job of this belt, `product`, `product.job` or `product.belt.job`",
        "t.yml:8:19: error: invalid output in job `j`: write `NAME`, `String: NAME` or `String: NAME=<word>`",
        "t.yml:9:18: error: `timeout` must be a duration such as `30m`, found a list",
        "t.yml:10:21: error: empty artifact path",
        "t.yml:11:17: error: invalid driver name `Docker`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit",
    ]
);

case!(
    a_driver_job_refuses_the_keys_of_a_script,
    belt(
        "      - name: notify\n        driver: slack\n        fleet: gpu\n        timeout: 5m\n        pre-run: echo\n        artifacts: [a]\n        cache: {key: [a], paths: [b]}\n        inputs: [source]\n        outputs: [{String: X=1}]\n"
    ),
    [
        "t.yml:7:16: error: `fleet` does not apply to job `notify`: it runs driver `slack`, not a script; remove `fleet`",
        "t.yml:8:18: error: `timeout` does not apply to job `notify`: it runs driver `slack`, not a script; remove `timeout`",
        "t.yml:9:18: error: `pre-run` does not apply to job `notify`: it runs driver `slack`, not a script; remove `pre-run`",
        "t.yml:10:20: error: `artifacts` does not apply to job `notify`: it runs driver `slack`, not a script; remove `artifacts`",
        "t.yml:11:16: error: `cache` does not apply to job `notify`: it runs driver `slack`, not a script; remove `cache`",
        "t.yml:12:17: error: input `source` does not apply to job `notify`: driver `slack` gets no workspace (its payload carries the commit); remove it",
        "t.yml:13:18: error: output `X` of job `notify` is a shell word, which driver `slack` does not evaluate: write `X` and return it in the result's `data`",
    ]
);

case!(
    the_long_form_of_artifacts_needs_paths_and_a_known_when,
    belt(
        "      - name: j\n        commands: 'true'\n        artifacts: {when: sometimes}\n      - name: k\n        commands: 'true'\n        artifacts: {paths: [/abs], when: always}\n"
    ),
    [
        "t.yml:7:20: error: `artifacts` of job `j` needs `paths`: the files to keep, e.g. `paths: [dist/]`",
        "t.yml:7:27: error: `when` of `artifacts` must be `on-success` or `always`, found `sometimes`",
        "t.yml:10:29: error: artifact path `/abs` must be relative to the workspace",
    ]
);

case!(
    a_cache_needs_a_key_and_paths_inside_the_workspace,
    belt(
        "      - name: j\n        commands: 'true'\n        cache: {paths: [target]}\n      - name: k\n        commands: 'true'\n        cache:\n          - {name: deps, key: [../Cargo.lock], paths: [~/.cargo]}\n          - {name: deps, key: [a.lock], paths: [b], keys: [c]}\n          - {name: Bad Name, key: x, paths: y}\n"
    ),
    [
        "t.yml:7:16: error: cache `j` of job `j` needs `key`: the files whose contents identify it, e.g. `key: [Cargo.lock]`",
        "t.yml:11:13: error: cache `deps` of job `k` needs at least one `key` file and one path",
        "t.yml:11:32: error: cache key file `../Cargo.lock` must stay inside the workspace",
        "t.yml:11:56: error: cache path `~/.cargo` must be relative to the workspace",
        "t.yml:12:53: error: unknown key `keys` in the cache of job `k` (did you mean `key`?)",
        "t.yml:13:20: error: invalid cache name `Bad Name`: use letters, digits, `_` and `-`, starting with a letter, digit or `_`",
    ]
);

case!(
    a_condition_reference_must_be_dotted_properly,
    belt("      - name: j\n        commands: 'true'\n        if: ${a..b} == 'x'\n"),
    ["t.yml:7:13: error: invalid reference `a..b` in `if` of job `j`: write `job.OUTPUT`",]
);

case!(
    downstreams_must_have_a_known_shape,
    belt(
        "      - name: j\n        commands: 'true'\n        downstreams: ami\n      - name: k\n        commands: 'true'\n        downstreams: {product: ami}\n"
    ),
    [
        "t.yml:7:22: error: `downstreams` must be a list of `downstream-product` entries or a mapping with `belts`, found a string",
        "t.yml:10:22: error: `downstreams` as a mapping needs `belts: [{downstream-product: P, belt: B}]`",
        "t.yml:10:23: error: unknown key `product` in `downstreams`",
    ]
);

case!(
    a_reference_to_an_invalid_product_name_is_an_error,
    belt("      - name: j\n        commands: echo ${Up.job.X}\n"),
    [
        "t.yml:6:24: error: reference `${Up.job.X}` names `Up`, which is neither a job of belt `b` nor a valid product name",
    ]
);

case!(
    several_documents_are_refused,
    "product: p\n---\nproduct: q\n",
    ["t.yml:2:1: error: a .conveyor.yml holds one product; found several YAML documents",]
);

case!(
    env_must_be_a_mapping,
    belt("      - name: j\n        commands: 'true'\n        env: [A]\n        timeout: 8d\n"),
    [
        "t.yml:7:14: error: `env` must be a mapping of NAME: value, found a list",
        "t.yml:8:18: error: duration `8d` is longer than the 7d limit",
    ]
);

case!(
    belts_and_jobs_need_names_and_mappings,
    "product: p\nbelts:\n  - jobs: []\n  - name: b\n    jobs:\n      - just-a-string\n",
    [
        "t.yml:3:5: error: missing `name` in belt #1",
        "t.yml:6:9: error: expected job #1 of belt `b` to be a mapping, found a string",
    ]
);
