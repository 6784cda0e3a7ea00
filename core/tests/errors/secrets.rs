//! `secrets:` names at product, belt and job level.

use crate::case;

case!(
    secret_names_follow_the_variable_rule_and_conveyor_s_are_reserved,
    "product: p\nsecrets: [NPM_TOKEN, 1X]\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        secrets: [CONVEYOR_X, 'a-b']\n        commands: 'true'\n",
    [
        "t.yml:2:22: error: invalid secret name `1X` in `secrets`: use letters, digits and `_`, not starting with a digit",
        "t.yml:7:19: error: secret `CONVEYOR_X` is reserved: names starting with `CONVEYOR_` are set by conveyor",
        "t.yml:7:31: error: invalid secret name `a-b` in `secrets`: use letters, digits and `_`, not starting with a digit",
    ]
);

case!(
    a_name_cannot_be_both_a_secret_and_an_env_variable,
    "product: p\nenv: {TOKEN: x}\nbelts:\n  - name: b\n    secrets: [TOKEN]\n    jobs:\n      - name: j\n        env: {KEY: v}\n        secrets: [KEY]\n        commands: 'true'\n",
    [
        "t.yml:5:14: error: `TOKEN` is both a secret and an `env` variable: a job gets a secret under its own name, so rename one",
        "t.yml:9:18: error: `KEY` is both a secret and an `env` variable: a job gets a secret under its own name, so rename one",
    ]
);

case!(
    secrets_must_be_a_list_of_names,
    "product: p\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        secrets: {A: b}\n        commands: 'true'\n",
    ["t.yml:6:18: error: `secrets` must be a string or a list of strings, found a mapping"]
);
