//! Both dialects of `.conveyor.yml` compile into the same checked model.

use conveyor_core::compile::compile;
use conveyor_core::expr::Expr;
use conveyor_core::model::*;

fn product(file: &str) -> Product {
    let text = std::fs::read_to_string(file).expect("fixture");
    let c = compile(file, &text);
    assert!(
        c.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        c.diagnostics
    );
    c.product.expect("compiles")
}

fn job<'a>(p: &'a Product, belt: &str, name: &str) -> &'a Job {
    p.belt(belt).and_then(|b| b.job(name)).expect("job exists")
}

#[test]
fn the_seed_products_compile_with_sibling_trigger_parameters() {
    let p = product("../examples/seed/ror-api-backend.yml");
    assert_eq!(p.name, "ror-api-backend");
    assert_eq!(
        p.triggers,
        vec![
            Trigger::ScmEvent(ScmTrigger {
                repo: Some("git://github.com/ror-api-backend".into()),
                event: ScmEventType::PullRequest,
                branches: vec![],
                belts: Some(vec!["pull-request-tests".into()]),
            }),
            Trigger::ScmEvent(ScmTrigger {
                repo: Some("git://github.com/ror-api-backend".into()),
                event: ScmEventType::Merge,
                branches: vec![],
                belts: Some(vec!["build-gem".into()]),
            }),
        ]
    );
    let gem = job(&p, "build-gem", "build-gem");
    assert_eq!(gem.script, "bundle install\nbundle exec rake gem:build\n");
    assert_eq!(
        gem.outputs,
        vec![
            Output {
                name: "GEM_VERSION".into(),
                word: Some("$GEM_VERSION".into())
            },
            Output {
                name: "PACKER_FILE".into(),
                word: Some("ror_ami.json".into())
            },
        ]
    );
    assert_eq!(gem.downstreams.len(), 1);
    assert_eq!(gem.downstreams[0].product, "ami");
    assert_eq!(gem.downstreams[0].belts, Some(vec!["build-ror-ami".into()]));

    let ami = product("../examples/seed/ami.yml");
    assert!(ami.triggers.is_empty(), "a null `triggers:` is no trigger");
    let packer = job(&ami, "build-ror-ami", "execute-packer");
    assert_eq!(packer.script, "packer build \"${CONVEYOR_REF_1}\"\n");
    assert_eq!(packer.refs.len(), 1);
    assert_eq!(
        packer.refs[0].target,
        RefTarget::Product {
            target: ProductRef {
                product: "ror-api-backend".into(),
                belt: None,
                job: Some("build-gem".into())
            },
            output: "PACKER_FILE".into(),
        }
    );
    assert_eq!(packer.inputs[0], Input::Source);
}

#[test]
fn the_later_dialect_compiles_into_the_same_model() {
    let p = product("tests/fixtures/later-dialect.yml");
    let Trigger::ScmEvent(merge) = &p.triggers[1] else {
        panic!("scm trigger")
    };
    assert_eq!(merge.event, ScmEventType::Merge);
    assert_eq!(
        merge.branches,
        vec!["main".to_string(), "release/*".to_string()]
    );
    let Trigger::UpstreamBuild(up) = &p.triggers[2] else {
        panic!("upstream trigger")
    };
    assert_eq!(
        (up.product.as_str(), up.belt.as_deref()),
        ("base-image", Some("publish"))
    );
    assert_eq!(up.build, BuildSelector::Number(42));
    assert_eq!(up.belts, None);

    let rspec = job(&p, "pull-request-tests", "rspec");
    assert_eq!(rspec.fleet, "docker", "belt fleet is inherited");
    assert_eq!(
        rspec.env,
        vec![
            ("RAILS_ENV".into(), "test".into()),
            ("PARALLEL".into(), "4".into())
        ]
    );
    assert_eq!((rspec.timeout_secs, rspec.retries), (Some(5400), 2));
    assert!(
        matches!(&rspec.inputs[1], Input::Git { url } if url == "https://example.test/fixtures.git")
    );
    assert!(
        matches!(&rspec.inputs[2], Input::Product { target, .. } if target.product == "base-image" && target.job.is_none())
    );
    assert_eq!(
        rspec.script,
        "bundle exec rspec --seed \"${CONVEYOR_REF_1}\""
    );
    assert!(
        matches!(&rspec.refs[0].target, RefTarget::Product { target, output }
        if target.belt.as_deref() == Some("publish") && target.job.as_deref() == Some("push") && output == "SEED")
    );
    let rubocop = job(&p, "pull-request-tests", "rubocop");
    assert_eq!(rubocop.script, "bundle install\nbundle exec rubocop");

    let gem = job(&p, "build-gem", "build-gem");
    assert_eq!(
        gem.outputs
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        ["GEM_VERSION", "PACKER_FILE", "AMI_ID"]
    );
    assert_eq!(gem.outputs[2].word, None);
    assert_eq!(
        gem.downstreams.len(),
        1,
        "two belts of one product are one downstream"
    );
    assert_eq!(
        gem.downstreams[0].belts,
        Some(vec!["build-ami".into(), "build-ror-ami".into()])
    );

    let announce = job(&p, "build-gem", "announce");
    assert_eq!(
        announce.script,
        "echo \"gem ${CONVEYOR_REF_1} built into ${CONVEYOR_REF_2}\""
    );
    assert!(announce.manual);
    assert_eq!(announce.fleet, "gpu");
    assert_eq!(announce.artifacts, vec!["dist/*.gem", "reports"]);
    assert!(announce.artifacts_always);
    assert_eq!(
        announce.caches,
        vec![Cache {
            name: "gems".into(),
            key_files: vec!["Gemfile.lock".into()],
            paths: vec!["vendor/bundle".into()],
        }]
    );
    let cond = announce.condition.as_ref().expect("condition");
    assert_eq!(
        cond.refs(),
        vec!["build-gem.AMI_ID", "build-gem.GEM_VERSION"]
    );
    assert!(matches!(cond, Expr::And(_, _)));
    assert_eq!(job(&p, "build-gem", "notify").script, "./notify-slack");

    let belt = p.belt("build-gem").expect("belt");
    assert_eq!(
        belt.edges,
        vec![(0, 1)],
        "announce reads build-gem's outputs"
    );
    let tests = p.belt("pull-request-tests").expect("belt");
    assert_eq!(tests.edges, vec![(0, 1)], "rspec needs rubocop");
}

#[test]
fn edges_come_from_inputs_needs_references_and_conditions() {
    let p = product("../examples/demo/demo.yml");
    let b = p.belt("build").expect("belt");
    let names = |(f, t): (usize, usize)| (b.jobs[f].name.as_str(), b.jobs[t].name.as_str());
    let edges: Vec<_> = b.edges.iter().copied().map(names).collect();
    assert_eq!(
        edges,
        vec![
            ("version", "unit-tests"),
            ("version", "lint"),
            ("version", "docs"),
            ("version", "package"),
            ("unit-tests", "package"),
            ("lint", "package"),
            ("docs", "package"),
        ]
    );
    let deploy = product("../examples/demo/demo-deploy.yml");
    assert_eq!(deploy.belt("deploy").expect("belt").edges, vec![(0, 1)]);
}

#[test]
fn an_upstream_trigger_without_a_selector_reads_the_last_successful_build() {
    let yaml = "product: p\ntriggers:\n  - upstream-build:\n    upstream-product: q\nbelts:\n  - name: b\n    jobs:\n      - name: j\n        commands: 'true'\n";
    let p = compile("t.yml", yaml).product.expect("compiles");
    let Trigger::UpstreamBuild(u) = &p.triggers[0] else {
        panic!("upstream")
    };
    assert_eq!(
        (u.build, u.belt.as_deref(), u.belts.as_deref()),
        (BuildSelector::LastSuccessful, None, None)
    );
}

#[test]
fn yaml_anchors_and_merge_keys_share_job_settings() {
    let p = product("tests/fixtures/anchors.yml");
    let (a, b) = (job(&p, "b", "a"), job(&p, "b", "b"));
    assert_eq!(
        (a.fleet.as_str(), a.timeout_secs, a.retries),
        ("docker", Some(600), 1)
    );
    assert_eq!(
        (b.fleet.as_str(), b.timeout_secs, b.retries),
        ("docker", Some(600), 3)
    );
    assert_eq!(p.belt("b").expect("belt").edges, vec![(0, 1)]);
}

#[test]
fn secrets_named_at_product_belt_and_job_add_up() {
    let text = "product: p\nsecrets: [REGISTRY]\nbelts:\n  - name: b\n    secrets: NPM_TOKEN\n    jobs:\n      - name: publish\n        secrets: [PYPI_TOKEN, REGISTRY]\n        commands: 'true'\n      - name: test\n        commands: 'true'\n";
    let c = conveyor_core::compile::compile("t.yml", text);
    let p = c.product.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
    assert_eq!(
        job(&p, "b", "publish").secrets,
        ["REGISTRY", "NPM_TOKEN", "PYPI_TOKEN"]
    );
    assert_eq!(job(&p, "b", "test").secrets, ["REGISTRY", "NPM_TOKEN"]);
}
