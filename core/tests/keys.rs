//! No key of the language is accepted without effect: every key `docs/language.md` lists
//! either changes the compiled model when it is set (so the engine can act on it) or is
//! refused with a located error; a required key's absence is an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use conveyor_core::compile::{JOB_KEYS, compile};

/// A product of one belt with two jobs, and room for one more line at each level.
fn product(top: &str, belt: &str, job: &str) -> String {
    format!(
        "product: p\n{top}belts:\n  - name: b\n{belt}    jobs:\n      - name: j\n        commands: 'true'\n{job}      - name: k\n        commands: echo\n"
    )
}

/// How a key proves it does something: `(where, key, yaml without it, yaml with it)`.
type Case = (String, String, String, String);

/// Where a case's lines go: the product's top level, the belt, or job `j`.
#[derive(Clone, Copy)]
enum At {
    Top,
    Belt,
    Job,
}

fn at(level: At, lines: &str) -> String {
    match level {
        At::Top => product(lines, "", ""),
        At::Belt => product("", lines, ""),
        At::Job => product("", "", lines),
    }
}

/// Optional keys: `(where, key, level, lines they need anyway, the key's line)`.
const OPTIONAL: &[(&str, &str, At, &str, &str)] = &[
    (
        "product",
        "triggers",
        At::Top,
        "",
        "triggers:\n  - scm-event:\n      type: push\n",
    ),
    ("product", "fleet", At::Top, "", "fleet: gpu\n"),
    ("product", "env", At::Top, "", "env: {A: b}\n"),
    ("product", "secrets", At::Top, "", "secrets: [TOKEN]\n"),
    (
        "product",
        "repo",
        At::Top,
        "",
        "repo: https://git.example/p.git\n",
    ),
    (
        "product",
        "description",
        At::Top,
        "",
        "description: the shop\n",
    ),
    ("belt", "fleet", At::Belt, "", "    fleet: gpu\n"),
    ("belt", "env", At::Belt, "", "    env: {A: b}\n"),
    ("belt", "secrets", At::Belt, "", "    secrets: [TOKEN]\n"),
    ("job", "pre-run", At::Job, "", "        pre-run: make\n"),
    ("job", "inputs", At::Job, "", "        inputs: [source]\n"),
    ("job", "needs", At::Job, "", "        needs: [k]\n"),
    ("job", "outputs", At::Job, "", "        outputs: [V]\n"),
    (
        "job",
        "downstreams",
        At::Job,
        "",
        "        downstreams: [{downstream-product: q}]\n",
    ),
    ("job", "fleet", At::Job, "", "        fleet: gpu\n"),
    ("job", "env", At::Job, "", "        env: {A: b}\n"),
    ("job", "secrets", At::Job, "", "        secrets: [TOKEN]\n"),
    ("job", "timeout", At::Job, "", "        timeout: 5m\n"),
    ("job", "retries", At::Job, "", "        retries: 2\n"),
    ("job", "if", At::Job, "", "        if: \"'a' == 'a'\"\n"),
    ("job", "manual", At::Job, "", "        manual: true\n"),
    (
        "job",
        "artifacts",
        At::Job,
        "",
        "        artifacts: [dist/]\n",
    ),
    (
        "job",
        "cache",
        At::Job,
        "",
        "        cache: {key: [a.lock], paths: [t]}\n",
    ),
    ("job", "driver", At::Job, "", "        driver: slack\n"),
    (
        "artifacts (long form)",
        "when",
        At::Job,
        ART,
        "          when: always\n",
    ),
    ("cache", "name", At::Job, CACHE, "          name: deps\n"),
    (
        "scm-event",
        "repo",
        At::Top,
        SCM,
        "      repo: https://git.example/o.git\n",
    ),
    ("scm-event", "branch", At::Top, SCM, "      branch: main\n"),
    (
        "scm-event",
        "branches",
        At::Top,
        SCM,
        "      branches: [main]\n",
    ),
    ("scm-event", "belts", At::Top, SCM, "      belts: [b]\n"),
    (
        "upstream-build",
        "upstream-belt",
        At::Top,
        UP,
        "      upstream-belt: x\n",
    ),
    (
        "upstream-build",
        "build",
        At::Top,
        UP,
        "      build: last\n",
    ),
    ("upstream-build", "belts", At::Top, UP, "      belts: [b]\n"),
    (
        "downstreams item",
        "belts",
        At::Job,
        DS,
        "            belts: [x]\n",
    ),
    (
        "downstreams item",
        "belt",
        At::Job,
        DS,
        "            belt: x\n",
    ),
];

const ART: &str = "        artifacts:\n          paths: [a]\n";
const CACHE: &str = "        cache:\n          key: [a.lock]\n          paths: [t]\n";
const SCM: &str = "triggers:\n  - scm-event:\n      type: push\n";
const UP: &str = "triggers:\n  - upstream-build:\n      upstream-product: q\n";
const DS: &str = "        downstreams:\n          - downstream-product: q\n";

/// Required keys: `(where, key, level, lines holding it, the key's text to leave out)`.
const REQUIRED: &[(&str, &str, At, &str, &str)] = &[
    ("product", "product", At::Top, "", "product: p\n"),
    ("product", "belts", At::Top, "", "belts:\n"),
    ("belt", "name", At::Top, "", "  - name: b\n"),
    ("belt", "jobs", At::Top, "", "    jobs:\n"),
    ("job", "name", At::Top, "", "      - name: k\n"),
    ("job", "commands", At::Top, "", "        commands: echo\n"),
    (
        "artifacts (long form)",
        "paths",
        At::Job,
        ART,
        "          paths: [a]\n",
    ),
    ("cache", "key", At::Job, CACHE, "          key: [a.lock]\n"),
    ("cache", "paths", At::Job, CACHE, "          paths: [t]\n"),
    ("scm-event", "type", At::Top, SCM, "      type: push\n"),
    (
        "upstream-build",
        "upstream-product",
        At::Top,
        UP,
        "      upstream-product: q\n",
    ),
    (
        "downstreams item",
        "downstream-product",
        At::Job,
        DS,
        "downstream-product: q",
    ),
];

fn cases() -> Vec<Case> {
    let optional = OPTIONAL.iter().map(|(place, key, level, base, line)| {
        let with = at(*level, &format!("{base}{line}"));
        (place.to_string(), key.to_string(), at(*level, base), with)
    });
    let required = REQUIRED.iter().map(|(place, key, level, base, text)| {
        let with = at(*level, base);
        (
            place.to_string(),
            key.to_string(),
            with.replacen(text, "", 1),
            with,
        )
    });
    optional.chain(required).collect()
}

/// The keys the docs' table lists, as `(where, key)`.
fn documented() -> Vec<(String, String)> {
    let docs = include_str!("../../docs/language.md");
    let table = &docs[docs.find("## Keys").unwrap()..];
    let mut out = Vec::new();
    for row in table.lines().skip(3).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let place = cells[1].replace('`', "");
        for (i, piece) in cells[2].split('`').enumerate() {
            if i % 2 == 1 {
                for key in piece.split('/') {
                    out.push((place.clone(), key.to_string()));
                }
            }
        }
    }
    out
}

/// The model and the diagnostics, as text to compare.
fn outcome(yaml: &str) -> (String, Vec<String>) {
    let c = compile("t.yml", yaml);
    let model = format!("{:?}", c.product.or(c.partial));
    let diags = c.diagnostics.iter().map(ToString::to_string).collect();
    (model, diags)
}

#[test]
fn every_documented_key_changes_the_model_or_is_refused_with_a_located_error() {
    let cases = cases();
    for (place, key) in documented() {
        let case = cases.iter().find(|(p, k, _, _)| *p == place && *k == key);
        let (_, _, without, with) =
            case.unwrap_or_else(|| panic!("documented key `{key}` ({place}) has no case here"));
        let (base_model, base_diags) = outcome(without);
        let (model, diags) = outcome(with);
        let errors: Vec<&String> = diags.iter().filter(|d| d.contains(": error: ")).collect();
        let base_errors = base_diags.iter().any(|d| d.contains(": error: "));
        let located = |d: &&String| d.starts_with("t.yml:") && !d.starts_with("t.yml:0:");
        match (errors.is_empty(), base_errors) {
            // Refused: with a located error.
            (false, false) => assert!(errors.iter().all(located), "{key}: {errors:?}"),
            // Required: leaving it out is an error, and with it the file compiles.
            (true, true) => {}
            (true, false) => assert_ne!(model, base_model, "`{key}` ({place}) has no effect"),
            (false, true) => panic!("`{key}` ({place}): neither form compiles: {diags:?}"),
        }
    }
}

#[test]
fn every_key_the_compiler_accepts_in_a_job_is_documented() {
    let docs: Vec<(String, String)> = documented();
    for key in JOB_KEYS {
        assert!(
            docs.iter().any(|(p, k)| p == "job" && k == key),
            "job key `{key}` is accepted but not in docs/language.md's table"
        );
    }
}
