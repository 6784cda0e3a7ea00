//! Checks across products: references, downstreams and triggers between files.

use conveyor_core::check::{self, Source};
use conveyor_core::compile::compile;

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
