//! The file's structure: YAML, products, belts, names, triggers.

use crate::{belt, case};

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
    a_repo_with_a_control_character_is_refused,
    "product: p\nrepo: \"https://x.test/a\\0b\"\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n",
    ["t.yml:2:7: error: `repo` contains the control character U+0000; remove it",]
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
