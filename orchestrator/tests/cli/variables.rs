//! `conveyor trigger --var KEY=VALUE`: every job gets the variables in its environment, as
//! data, over the config's `env`; the build records them; a bad name creates nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

use crate::common;
use crate::up::{cli, get, start_up_with};

const PRODUCT: &str = "product: vars
belts:
  - name: b
    jobs:
      - name: show
        env: {GREETING: \"hello $NAME\", MODE: slow}
        commands: V=\"$GREETING|$NAME|$MODE\"
        outputs: [V]
";

const HOSTILE: &str = "$(touch PWNED) ${HOME} `id`";

#[test]
fn a_builds_variables_reach_its_jobs_as_data_over_the_configs_env() {
    let dir = common::temp_dir("variables");
    let examples = dir.join("examples");
    std::fs::create_dir_all(&examples).unwrap();
    std::fs::write(examples.join("vars.yml"), PRODUCT).unwrap();
    let (_up, url, _) = start_up_with(&dir.join("data"), Some(&examples));
    let token = ["--token", "t0ken-for-up-tests"];
    let name = format!("NAME={HOSTILE}");
    let mut args = vec![
        "trigger",
        "vars",
        "b",
        "--wait",
        "--var",
        &name,
        "--var",
        "MODE=fast",
    ];
    args.extend(token);
    let (code, out, err) = cli(&url, &args);
    assert_eq!(code, 0, "{out}{err}");
    let started = out
        .lines()
        .find(|l| l.starts_with("started vars b #1: "))
        .unwrap();
    let id = started.rsplit('/').next().unwrap();
    let (status, body) = get(&url, &format!("/api/v1/builds/{id}"));
    assert_eq!(status, 200);
    let build: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        build["jobs"][0]["outputs"]["V"],
        format!("hello {HOSTILE}|{HOSTILE}|fast")
    );
    assert_eq!(
        build["context"]["variables"][0],
        serde_json::json!(["MODE", "fast"])
    );
    let (_, page) = get(&url, &format!("/builds/{id}"));
    assert!(page.contains("id=\"build-variables\""), "{page}");
    assert!(page.contains("<code>MODE=fast</code>"), "{page}");

    let mut bad = vec!["trigger", "vars", "b", "--var", "CONVEYOR_X=1"];
    bad.extend(token);
    let (code, _, err) = cli(&url, &bad);
    assert_eq!(code, 1);
    assert!(err.contains("`variables.CONVEYOR_X` is reserved"), "{err}");
    let (_, list) = get(&url, "/api/v1/builds?product=vars");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        list["builds"].as_array().unwrap().len(),
        1,
        "nothing created"
    );
}
