//! Every error and warning the compiler gives, with its exact text and location.

use conveyor_core::check::{self, Source};
use conveyor_core::compile::compile;

/// Compiles `yaml` as `t.yml` and renders its diagnostics.
fn diags(yaml: &str) -> Vec<String> {
    compile("t.yml", yaml)
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A product wrapper: one belt `b` holding the given jobs (indented as list items).
fn belt(jobs: &str) -> String {
    format!("product: p\nbelts:\n  - name: b\n    jobs:\n{jobs}")
}

macro_rules! case {
    ($name:ident, $yaml:expr, [$($line:expr),* $(,)?]) => {
        #[test]
        fn $name() {
            let expected: Vec<&str> = vec![$($line),*];
            assert_eq!(diags(&$yaml), expected);
        }
    };
}

case!(
    yaml_syntax_errors_are_located,
    "product: p\nbelts: [\n",
    ["t.yml:2:8: error: invalid YAML: unclosed bracket '['",]
);

case!(
    an_empty_file_says_what_a_config_needs,
    "",
    ["t.yml:1:1: error: the file is empty: a .conveyor.yml needs `product` and `belts`",]
);

case!(
    a_top_level_list_is_refused,
    "- a\n- b\n",
    ["t.yml:1:1: error: expected the product to be a mapping, found a list",]
);

case!(
    product_and_belts_are_required,
    "triggers:\n",
    [
        "t.yml:1:1: error: missing `belts`: a product needs at least one belt",
        "t.yml:1:1: error: missing `product`: name the product, e.g. `product: my-app`",
    ]
);

case!(
    an_invalid_product_name_explains_the_rule,
    "product: Shop\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    [
        "t.yml:1:10: error: invalid product name `Shop`: use lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit",
    ]
);

case!(
    unknown_keys_are_named_with_a_suggestion,
    "product: p\nbelt:\n  - name: b\n",
    [
        "t.yml:1:1: error: missing `belts`: a product needs at least one belt",
        "t.yml:2:1: error: unknown key `belt` in the product (did you mean `belts`?)",
    ]
);

case!(
    an_empty_belts_list_is_an_error,
    "product: p\nbelts: []\n",
    ["t.yml:2:8: error: `belts` is empty: a product needs at least one belt",]
);

case!(
    a_belt_without_jobs_is_an_error,
    "product: p\nbelts:\n  - name: b\n",
    ["t.yml:3:5: error: belt `b` has no jobs: add them under `jobs`",]
);

case!(
    duplicate_belts_point_at_the_first,
    "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:7:5: error: duplicate belt `b` (first defined at line 3)",]
);

case!(
    duplicate_jobs_point_at_the_first,
    belt("      - name: j\n        commands: 'true'\n      - name: j\n        commands: 'true'\n"),
    ["t.yml:7:9: error: duplicate job `j` in belt `b` (first defined at line 5)",]
);

case!(
    a_job_without_a_name_is_counted,
    belt("      - commands: 'true'\n"),
    ["t.yml:5:9: error: missing `name` in job #1 of belt `b`",]
);

case!(
    a_job_needs_commands_or_a_driver,
    belt("      - name: j\n        pre-run: echo hi\n"),
    ["t.yml:5:9: error: job `j` has neither `commands` nor `driver`: give it a script to run",]
);

case!(
    a_job_cannot_have_both_commands_and_driver,
    belt("      - name: j\n        commands: 'true'\n        driver: docker\n"),
    [
        "t.yml:5:9: error: job `j` has both `commands` and `driver`: a job runs either a script or a driver",
    ]
);

case!(
    a_misspelled_job_key_is_suggested,
    belt("      - name: j\n        comands: 'true'\n"),
    [
        "t.yml:5:9: error: job `j` has neither `commands` nor `driver`: give it a script to run",
        "t.yml:6:9: error: unknown key `comands` in job `j` (did you mean `commands`?)",
    ]
);

case!(
    unknown_needs_suggest_the_near_job,
    belt(
        "      - name: build\n        commands: 'true'\n      - name: test\n        needs: [biuld]\n        commands: 'true'\n"
    ),
    ["t.yml:8:17: error: unknown job `biuld` in `needs` of job `test` (did you mean `build`?)",]
);

case!(
    unknown_inputs_suggest_the_near_job,
    belt(
        "      - name: build\n        commands: 'true'\n      - name: test\n        inputs: [source, buld]\n        commands: 'true'\n"
    ),
    ["t.yml:8:26: error: unknown job `buld` in `inputs` of job `test` (did you mean `build`?)",]
);

case!(
    an_empty_git_input_is_an_error,
    belt("      - name: j\n        inputs: ['git:']\n        commands: 'true'\n"),
    ["t.yml:6:18: error: empty `git:` input in job `j`: write `git:<url>`",]
);

case!(
    a_reference_to_a_misspelled_job_is_an_error,
    belt(
        "      - name: build\n        commands: V=1\n        outputs: [V]\n      - name: test\n        commands: echo ${biuld.V}\n"
    ),
    ["t.yml:9:24: error: unknown job `biuld` in reference `${biuld.V}` (did you mean `build`?)",]
);

case!(
    a_reference_to_an_undeclared_output_is_an_error,
    belt(
        "      - name: build\n        commands: VERSION=1\n        outputs: [VERSION]\n      - name: test\n        commands: echo {{ build.VERSON }}\n"
    ),
    [
        "t.yml:9:24: error: reference `{{ build.VERSON }}` names output `VERSON`, which job `build` does not declare (did you mean `VERSION`?)",
    ]
);

case!(
    a_cycle_is_printed_as_a_path,
    belt(
        "      - name: a\n        needs: [c]\n        commands: 'true'\n      - name: b\n        needs: [a]\n        commands: 'true'\n      - name: c\n        commands: echo ${b.STDOUT}\n"
    ),
    ["t.yml:5:9: error: belt `b` has a dependency cycle: a -> b -> c -> a",]
);

case!(
    a_job_referencing_itself_is_a_cycle,
    belt("      - name: a\n        commands: X=${a.X}\n        outputs: [X]\n"),
    ["t.yml:5:9: error: belt `b` has a dependency cycle: a -> a",]
);

case!(
    invalid_output_names_and_types_are_errors,
    belt(
        "      - name: j\n        commands: 'true'\n        outputs:\n          - 1X\n          - Int: N\n          - String: A\n          - A\n"
    ),
    [
        "t.yml:8:13: error: invalid output name `1X` in job `j`: outputs are shell variable names ([A-Za-z_][A-Za-z0-9_]*)",
        "t.yml:9:13: error: unknown output type `Int` in job `j`: outputs are strings, write `String: NAME`",
        "t.yml:11:13: error: duplicate output `A` in job `j`",
    ]
);

case!(
    bad_fleet_env_timeout_retries_and_manual,
    belt(
        "      - name: j\n        commands: 'true'\n        fleet: GPU\n        env: {1X: a, CONVEYOR_X: b, OK: [1]}\n        timeout: 30x\n        retries: 11\n        manual: yes-please\n"
    ),
    [
        "t.yml:7:16: error: invalid fleet name `GPU`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit",
        "t.yml:8:15: error: invalid environment variable name `1X` in `env`",
        "t.yml:8:22: error: environment variable `CONVEYOR_X` is reserved: names starting with `CONVEYOR_` are set by conveyor",
        "t.yml:8:41: error: `env` value of `OK` must be a string, number or boolean, found a list",
        "t.yml:9:18: error: invalid duration `30x`: write a number and a unit, such as `30s`, `10m` or `1h30m`",
        "t.yml:10:18: error: `retries` must be a whole number from 0 to 10, found `11`",
        "t.yml:11:17: error: `manual` must be true or false, found a string",
    ]
);

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
        "t.yml:8:20: error: `artifacts` must be a string or a list of strings, found a mapping",
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

/// Checks files together, as `conveyor validate a.yml b.yml` does.
fn across(files: &[(&str, &str)]) -> Vec<String> {
    let compiled: Vec<_> = files.iter().map(|(f, t)| (*f, compile(f, t))).collect();
    let mut out: Vec<String> = compiled
        .iter()
        .flat_map(|(_, c)| c.diagnostics.iter().map(ToString::to_string))
        .collect();
    let sources: Vec<Source> = compiled
        .iter()
        .filter_map(|(f, c)| {
            c.product.as_ref().or(c.partial.as_ref()).map(|p| Source {
                file: f,
                product: p,
            })
        })
        .collect();
    out.extend(check::check(&sources, &[]).iter().map(ToString::to_string));
    out
}

const UPSTREAM: &str = "product: up\nbelts:\n  - name: build\n    jobs:\n      - name: make\n        commands: V=1\n        outputs: [VERSION, AMI_ID]\n      - name: other\n        commands: 'true'\n        outputs: [AMI_ID]\n";

#[test]
fn references_into_a_known_product_are_checked_down_to_the_output() {
    let down = "product: down\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        inputs: [up.mkae, up.release.make]\n        commands: |\n          echo ${up.make.VERSON}\n          echo ${up.AMI_ID} ${up.NOPE}\n          echo ${up.build.make.VERSION}\n";
    assert_eq!(
        across(&[("up.yml", UPSTREAM), ("down.yml", down)]),
        vec![
            "down.yml:6:18: error: unknown job `mkae` in product `up` (input `up.mkae`) (did you mean `make`?)",
            "down.yml:6:27: error: unknown belt `release` in product `up` (input `up.release.make`)",
            "down.yml:8:16: error: reference `${up.make.VERSON}` names output `VERSON`, which job `make` of product `up` does not declare (did you mean `VERSION`?)",
            "down.yml:9:16: error: reference `${up.AMI_ID}` is ambiguous: jobs `make` and `other` of product `up` both declare `AMI_ID`; write `${up.JOB.AMI_ID}`",
            "down.yml:9:29: error: reference `${up.NOPE}` names output `NOPE`, which no job of product `up` declares",
        ]
    );
}

#[test]
fn a_reference_to_an_unknown_product_is_only_a_warning() {
    let down = "product: down\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: echo ${elsewhere.job.X}\n";
    assert_eq!(
        across(&[("down.yml", down)]),
        vec![
            "down.yml:6:24: warning: unknown product `elsewhere` in reference `${elsewhere.job.X}`: it is neither among the files given nor registered, so this is not checked",
        ]
    );
}

#[test]
fn downstreams_and_upstream_triggers_are_checked_against_the_other_product() {
    let a = "product: a\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n        downstreams:\n          - downstream-product: up\n            belts: [biuld]\n";
    let c = "product: c\ntriggers:\n  - upstream-build:\n    upstream-product: up\n    upstream-belt: release\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n";
    assert_eq!(
        across(&[("up.yml", UPSTREAM), ("a.yml", a), ("c.yml", c)]),
        vec![
            "a.yml:8:13: error: unknown belt `biuld` in product `up` (downstreams of job `j`) (did you mean `build`?)",
            "c.yml:5:20: error: unknown belt `release` in product `up` (`upstream-build` trigger)",
        ]
    );
}

#[test]
fn products_that_trigger_each_other_in_a_loop_are_refused() {
    let a = "product: a\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n        downstreams:\n          - downstream-product: b\n";
    let b = "product: b\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n        downstreams: {belts: [{downstream-product: a, belt: b}]}\n";
    assert_eq!(
        across(&[("a.yml", a), ("b.yml", b)]),
        vec!["a.yml:1:1: error: products trigger each other in a cycle: a -> b -> a"]
    );
}

#[test]
fn a_product_given_twice_is_an_error() {
    assert_eq!(
        across(&[("one.yml", UPSTREAM), ("two.yml", UPSTREAM)]),
        vec!["two.yml:1:1: error: product `up` is defined twice (also in one.yml)"]
    );
}

#[test]
fn the_seed_terraform_example_reports_both_of_its_mistakes() {
    let read = |f: &str| std::fs::read_to_string(format!("../examples/seed/{f}")).expect("example");
    let (ror, ami, tf) = (
        read("ror-api-backend.yml"),
        read("ami.yml"),
        read("terraform.yml"),
    );
    assert_eq!(
        across(&[
            ("ror-api-backend.yml", &ror),
            ("ami.yml", &ami),
            ("terraform.yml", &tf)
        ]),
        vec![
            "terraform.yml:7:9: error: trigger names unknown belt `build-ror-ami`",
            "terraform.yml:5:20: error: unknown belt `build-gem` in product `ami` (`upstream-build` trigger)",
        ]
    );
}
